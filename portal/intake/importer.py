"""Importing tickets and shipment volumes: one path for uploads, the API and the CLI.

A batch is one transaction: good rows are stored, bad rows are reported by line number and
reason and nothing of them is stored, and the batch's counts say how many tickets were created,
updated, unchanged and rejected. The same ticket number again updates its ticket only if
something in it changed; the rule engine then re-evaluates exactly the tickets that changed, so
importing a file twice changes nothing the second time.

This module holds the portable path (SQLite, small batches, the API): rows are parsed in Python
in chunks and written with executemany. ``intake.fastpath`` does the same on PostgreSQL for big
files with COPY and set-based SQL.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa

from portal.core.audit import record
from portal.core.db import pg_settings, utcnow
from portal.core.filetypes import zip_problem
from portal.core.timeutil import zone
from portal.extensions import db
from portal.intake import engine
from portal.intake.fields import (
    TICKET_NAMES,
    VOLUME_NAMES,
    Parties,
    RowError,
    parse_ticket,
    parse_volume,
)
from portal.intake.models import (
    BatchKind,
    BatchSource,
    BatchStatus,
    ImportBatch,
    ImportRejection,
    ShipmentVolume,
    Ticket,
)

CHUNK = 2000
IMPORT_LOCK = "hashtext('portal.intake.import')"   # the advisory lock file imports hold
MAX_REJECTIONS_KEPT = 10_000
# what a ticket's content is: compared to tell "updated" from "unchanged"
CONTENT = ["order_no", "carrier_id", "merchant_id", "warehouse_id", "request_to_id", "category",
           "order_value", "opened_at", "promised_at", "delivered_at", "carrier_signed",
           "customer_signed", "proxy_signed", "cs_request_at", "responded_at", "customer_tz",
           "text"]


class FileProblem(Exception):
    """The file as a whole cannot be read (not CSV, no header, missing columns...)."""


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejections: list[dict] = field(default_factory=list)

    def reject(self, line: int, err: RowError, ticket_no: str = "") -> None:
        self.rejected += 1
        if len(self.rejections) < MAX_REJECTIONS_KEPT:
            self.rejections.append({"line": line, "field": err.field, "reason": err.reason,
                                    "value": err.value, "ticket_no": ticket_no[:40]})


# --- reading files ---------------------------------------------------------------------------

def sniff_encoding(stream) -> str:
    """UTF-8 (with or without BOM), else GB18030 as saved by Chinese Excel: the whole file is
    decoded once, block by block, to be sure (a file can be ASCII for a million rows and
    Chinese after). The stream is left at its start."""
    import codecs

    for encoding in ("utf-8-sig", "gb18030"):
        stream.seek(0)
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            while block := stream.read(1 << 20):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        stream.seek(0)
        return encoding
    raise FileProblem("encoding")


def read_header(stream, encoding: str, required: Iterable[str]) -> list[str]:
    """The column names of a CSV file; the stream is left at its start."""
    stream.seek(0)
    text = io.TextIOWrapper(stream, encoding=encoding, newline="")
    try:
        header = next(csv.reader(text))
    except StopIteration:
        raise FileProblem("empty") from None
    except (csv.Error, UnicodeDecodeError):
        raise FileProblem("not_csv") from None
    finally:
        text.detach()
        stream.seek(0)
    header = [h.strip().lstrip("\ufeff") for h in header]
    missing = [n for n in required if n not in header]
    if missing:
        raise FileProblem("missing:" + ",".join(missing))
    return header


def read_csv(text: str | io.TextIOBase, names: list[str],
             required: Iterable[str]) -> Iterator[tuple[int, dict]]:
    """(line, row) pairs; the line is the spreadsheet row number (the header is row 1)."""
    stream = io.StringIO(text) if isinstance(text, str) else text
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        raise FileProblem("empty") from None
    except csv.Error:
        raise FileProblem("not_csv") from None
    header = [h.strip().lstrip("\ufeff") for h in header]
    missing = [n for n in required if n not in header]
    if missing:
        raise FileProblem("missing:" + ",".join(missing))
    known = [(i, h) for i, h in enumerate(header) if h in names]
    for line, values in records(reader, len(header)):
        yield line, None if values is None else {h: values[i] for i, h in known}


def records(reader, width: int) -> Iterator[tuple[int, list[str] | None]]:
    """The records after the header as (line, values), the line being the spreadsheet row
    number; blank rows are skipped, a row of the wrong width (or one the csv module cannot
    read, which ends the file) comes as (line, None)."""
    line = 1
    try:
        for values in reader:
            line += 1
            if not any(v.strip() for v in values):
                continue
            yield line, values if len(values) == width else None
    except csv.Error:
        yield line + 1, None


def read_xlsx(stream, names: list[str], required: Iterable[str]
              ) -> Iterator[tuple[int, dict]]:
    """The first sheet of a workbook, read as a stream (openpyxl read-only mode), once its zip
    directory has shown it is no zip bomb (``core.filetypes.zip_problem``)."""
    from flask import current_app
    from openpyxl import load_workbook

    problem = zip_problem(stream, current_app.config["IMPORT_MAX_BYTES"])
    if problem:
        raise FileProblem("archive:" + problem)
    try:
        book = load_workbook(stream, read_only=True, data_only=True)
    except Exception:  # noqa: BLE001  any unreadable workbook is the same problem to the user
        raise FileProblem("not_xlsx") from None
    rows = book.worksheets[0].iter_rows(values_only=True)
    try:
        header = [str(h).strip() if h is not None else "" for h in next(rows)]
    except StopIteration:
        raise FileProblem("empty") from None
    missing = [n for n in required if n not in header]
    if missing:
        raise FileProblem("missing:" + ",".join(missing))
    known = [(i, h) for i, h in enumerate(header) if h in names]
    for line, values in enumerate(rows, start=2):
        if values is None or all(v in (None, "") for v in values):
            continue
        yield line, {h: _cell(values[i]) if i < len(values) else "" for i, h in known}


def _cell(value) -> str:
    from datetime import datetime

    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def is_xlsx(stream, filename: str) -> bool:
    stream.seek(0)
    magic = stream.read(4)
    stream.seek(0)
    return filename.lower().endswith(".xlsx") or magic == b"PK\x03\x04"


def rows_from_file(stream, filename: str, kind: BatchKind) -> Iterator[tuple[int, dict]]:
    """(line, row) pairs of a CSV or XLSX file, read as a stream (a binary, seekable file)."""
    names = TICKET_NAMES if kind is BatchKind.TICKETS else VOLUME_NAMES
    required = ["ticket_no"] if kind is BatchKind.TICKETS else VOLUME_NAMES
    if is_xlsx(stream, filename):
        return read_xlsx(stream, names, required)
    encoding = sniff_encoding(stream)
    read_header(stream, encoding, required)    # refuse a bad file before anything is stored
    return read_csv(io.TextIOWrapper(stream, encoding=encoding, newline=""), names, required)


def import_file(batch: ImportBatch, stream, filename: str, kind: BatchKind,
                progress=None) -> Counts:
    """Import one file (a binary, seekable stream); on PostgreSQL a CSV file of tickets takes
    the COPY path (``intake.fastpath``). Raises ``FileProblem`` before storing anything.
    On PostgreSQL file imports run one at a time: each holds the import lock to the end of its
    transaction, so two never race on the same ticket (and ``services.fail_abandoned_uploads``
    knows whether one is running)."""
    if db.session.get_bind().dialect.name == "postgresql":
        # through the connection, not the session: a flush here would lock the batch's row,
        # which the progress of an upload updates from another connection as the file is read
        db.session.connection().exec_driver_sql(f"SELECT pg_advisory_xact_lock({IMPORT_LOCK})")
    if (kind is BatchKind.TICKETS and db.session.get_bind().dialect.name == "postgresql"
            and not is_xlsx(stream, filename)):
        encoding = sniff_encoding(stream)
        header = read_header(stream, encoding, ["ticket_no"])
        return import_tickets_fast(batch, stream, encoding, header, progress)
    rows = rows_from_file(stream, filename, kind)
    if kind is BatchKind.TICKETS:
        return import_tickets(batch, rows, progress=progress)
    return import_volumes(batch, rows)


def import_tickets_fast(batch: ImportBatch, stream, encoding: str, header: list[str],
                        progress=None) -> Counts:
    from flask import current_app

    from portal.intake import fastpath

    counts = Counts()
    tz = zone(current_app.config.get("PORTAL_DEFAULT_TIMEZONE"))
    fastpath.import_csv(batch, stream, encoding, header, counts, default_zone=tz.key,
                        captured_at=utcnow(), progress=progress)
    evaluated = evaluate_batch(batch, counts)
    _finish(batch, counts, evaluated)
    return counts


# --- importing -------------------------------------------------------------------------------

def new_batch(kind: BatchKind, source: BatchSource, *, filename: str = "", user=None,
              token=None, size: int = 0) -> ImportBatch:
    batch = ImportBatch(kind=kind, source=source, filename=filename[:200],
                        user_id=getattr(user, "id", None), token_id=getattr(token, "id", None),
                        size_bytes=size, status=BatchStatus.RUNNING, started_at=utcnow())
    db.session.add(batch)
    db.session.flush()
    return batch


def import_tickets(batch: ImportBatch, rows: Iterable[tuple[int, dict | None]],
                   progress=None) -> Counts:
    """Store the good rows of ``rows`` and evaluate what changed; the caller commits."""
    session = db.session
    parties = Parties(session)
    from flask import current_app

    tz = zone(current_app.config.get("PORTAL_DEFAULT_TIMEZONE"))
    now = utcnow()
    counts, seen, chunk = Counts(), set(), []
    for line, raw in rows:
        if raw is None:
            counts.reject(line, RowError("", "bad_row"))
            continue
        if not isinstance(raw, dict):
            counts.reject(line, RowError("", "not_object"))
            continue
        row = accept(line, raw, parties, tz, now, seen, counts)
        if row is None:
            continue
        chunk.append(row)
        if len(chunk) >= CHUNK:
            _store(chunk, batch, counts)
            chunk = []
            if progress:
                progress()
    if chunk:
        _store(chunk, batch, counts)
    evaluated = evaluate_batch(batch, counts)
    _finish(batch, counts, evaluated)
    return counts


def accept(line: int, raw: dict, parties: Parties, tz, captured_at, seen: set[str],
           counts: Counts) -> dict | None:
    """The parsed row, or None if it is rejected (counted in ``counts``): a bad row, or a
    ticket number already taken in this batch (``seen``, updated)."""
    ticket_no = str(raw.get("ticket_no") or "").strip()
    try:
        row = parse_ticket(raw, parties, tz, captured_at)
    except RowError as err:
        counts.reject(line, err, ticket_no)
        return None
    if row["ticket_no"] in seen:
        counts.reject(line, RowError("ticket_no", "duplicate", ticket_no), ticket_no)
        return None
    seen.add(row["ticket_no"])
    return row


def _store(chunk: list[dict], batch: ImportBatch, counts: Counts) -> None:
    t = Ticket.__table__
    keys = [r["ticket_no"] for r in chunk]
    existing = {r.ticket_no: r for r in db.session.execute(
        sa.select(t.c.ticket_no, *[t.c[c] for c in CONTENT]).where(t.c.ticket_no.in_(keys)))}
    new, changed = [], []
    for row in chunk:
        row["batch_id"] = batch.id
        old = existing.get(row["ticket_no"])
        if old is None:
            new.append(row)
        elif any(getattr(old, c) != row[c] for c in CONTENT):
            changed.append(row)
        else:
            counts.unchanged += 1
    if new:
        db.session.execute(sa.insert(t), new)
        counts.created += len(new)
    if changed:
        cols = [c for c in changed[0] if c != "ticket_no"]
        stmt = (sa.update(t).where(t.c.ticket_no == sa.bindparam("b_key"))
                .values({c: sa.bindparam("b_" + c) for c in cols}))
        db.session.execute(stmt, [{"b_key": r["ticket_no"], **{"b_" + c: r[c] for c in cols}}
                                  for r in changed])
        counts.updated += len(changed)


ANALYZE_AFTER = 10_000   # tickets written: enough to change the plans the engine gets


def evaluate_batch(batch: ImportBatch, counts: Counts) -> dict:
    """Evaluate the tickets this batch created or changed."""
    t = Ticket.__table__
    return evaluate_tickets(lambda src: src.c.batch_id == batch.id,
                            sa.select(t.c.ticket_no).where(t.c.batch_id == batch.id),
                            analyze=counts.created + counts.updated >= ANALYZE_AFTER)


def evaluate_tickets(where, scope, *, analyze: bool = False) -> dict:
    """Run the engine over the tickets ``where`` selects and bring their proposals in line.
    ``analyze``: refresh the tickets table's statistics first (after a big import; fresh rows
    without statistics get the engine's joins planned as nested loops, 100x slower)."""
    conn = db.session.connection()
    cal = engine.calendar_table("intake_engine_calendar", prefixes=["TEMPORARY"])
    res = engine.result_table("intake_engine_result", prefixes=["TEMPORARY"])
    for table in (cal, res):
        table.drop(conn, checkfirst=True)
        table.create(conn)
    try:
        # JIT: a second of compiling for statements that run once
        with pg_settings(conn, jit="off"):
            rows = engine.calendar_rows(engine.calendar(db.session))
            if rows:
                conn.execute(sa.insert(cal), rows)
            if conn.dialect.name == "postgresql":   # fresh tables have no statistics to plan by
                conn.exec_driver_sql(f"ANALYZE {cal.name}")
                if analyze:
                    conn.exec_driver_sql(f"ANALYZE {Ticket.__tablename__}")
            engine.evaluate(conn, Ticket.__table__, cal, res, where)
            if conn.dialect.name == "postgresql":
                # planned without statistics, the check for proposals already there can become
                # a scan of the violations per result row (seen: minutes for 168k rows)
                conn.exec_driver_sql(f"ANALYZE {res.name}")
            return engine.apply(conn, res, scope)
    finally:
        for table in (cal, res):
            table.drop(conn, checkfirst=True)


def _finish(batch: ImportBatch, counts: Counts, evaluated: dict) -> None:
    batch.created, batch.updated = counts.created, counts.updated
    batch.unchanged, batch.rejected = counts.unchanged, counts.rejected
    batch.rows_total = counts.created + counts.updated + counts.unchanged + counts.rejected
    batch.violations = evaluated.get("added", 0) + evaluated.get("revised", 0)
    batch.status, batch.finished_at = BatchStatus.DONE, utcnow()
    batch.bytes_read = batch.size_bytes
    if counts.rejections:
        db.session.execute(sa.insert(ImportRejection.__table__),
                           [{**r, "batch_id": batch.id} for r in counts.rejections])
    record("import_batch.finished", batch, after={**batch.snapshot(), **evaluated})


def import_volumes(batch: ImportBatch, rows: Iterable[tuple[int, dict | None]]) -> Counts:
    parties = Parties(db.session)
    counts, seen, good = Counts(), set(), []
    for line, raw in rows:
        if raw is None or not isinstance(raw, dict):
            counts.reject(line, RowError("", "bad_row" if raw is None else "not_object"))
            continue
        try:
            row = parse_volume(raw, parties)
        except RowError as err:
            counts.reject(line, err)
            continue
        key = (row["party_id"], row["day"])
        if key in seen:
            counts.reject(line, RowError("day", "duplicate", str(row["day"])))
            continue
        seen.add(key)
        good.append(row)
    v = ShipmentVolume.__table__
    for start in range(0, len(good), CHUNK):
        part = good[start:start + CHUNK]
        existing = {(r.party_id, r.day): r.orders for r in db.session.execute(
            sa.select(v.c.party_id, v.c.day, v.c.orders).where(
                sa.tuple_(v.c.party_id, v.c.day).in_([(r["party_id"], r["day"]) for r in part])
            ))}
        new = [r | {"batch_id": batch.id} for r in part if (r["party_id"], r["day"]) not in existing]
        changed = [r for r in part if existing.get((r["party_id"], r["day"]), r["orders"])
                   != r["orders"]]
        counts.unchanged += len(part) - len(new) - len(changed)
        if new:
            db.session.execute(sa.insert(v), new)
            counts.created += len(new)
        if changed:
            db.session.execute(
                sa.update(v).where(v.c.party_id == sa.bindparam("b_party"),
                                   v.c.day == sa.bindparam("b_day"))
                .values(orders=sa.bindparam("b_orders"), batch_id=batch.id),
                [{"b_party": r["party_id"], "b_day": r["day"], "b_orders": r["orders"]}
                 for r in changed])
            counts.updated += len(changed)
    _finish(batch, counts, {})
    return counts

