"""The PostgreSQL COPY path and the portable Python path reach the same verdict on every row.

Each corpus is imported twice into the same database state, once through ``intake.fastpath``
(what a CSV upload takes on PostgreSQL) and once through ``importer.import_tickets`` (what
SQLite, XLSX files and the API take); the stored tickets, the rejected lines with their field
and reason, the counts and the proposed violations must be identical.
"""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from portal.cases.models import Violation
from portal.core.timeutil import frozen_time
from portal.extensions import db
from portal.intake import importer
from portal.intake.fields import TICKET_NAMES
from portal.intake.models import BatchKind, BatchSource, Ticket
from tests.factories import build_world
from tests.test_intake import rulebook, ticket

GOOD = {"promised_at": "2026-03-02 18:00", "delivered_at": "2026-03-04 09:12",
        "cs_request_at": "2026-03-03 09:00", "responded_at": "2026-03-03 11:30"}

# (ticket fields) -> every shape of value the SQL checks must either accept exactly as Python
# does or leave to Python
CORPUS = [
    ticket("A01", **GOOD),
    ticket("A02", promised_at="2026-03-02T18:00", delivered_at="2026-03-04T09:12:30"),
    ticket("A03", promised_at="2026-03-02T18:00:00+08:00", delivered_at="2026-03-03T01:00Z"),
    ticket("A04", opened_at="2026-03-05"),
    ticket("A05", opened_at="2026/03/05 10:00"),
    ticket("A06", opened_at="2026-03-05 24:00"),
    ticket("A07", opened_at="2026-03-05 23:59:60"),
    ticket("A08", opened_at="2028-02-29 10:00"),
    ticket("A09", opened_at="2026-13-01 10:00"),
    ticket("A10", opened_at="yesterday"),
    ticket("A11", opened_at="2026-03-05 10:00:00.250"),
    ticket("A12", order_value="1,234.5"),
    ticket("A13", order_value="-5"),
    ticket("A14", order_value="12."),
    ticket("A15", order_value="1.2,3"),
    ticket("A16", order_value="1e3"),
    ticket("A17", order_value=" 12 "),
    ticket("A18", order_value="12345678901"),
    ticket("A19", order_value="1.,"),
    ticket("A20", carrier_signed="Y", customer_signed="否", proxy_signed="on"),
    ticket("A21", carrier_signed="TRUE", customer_signed="No"),
    ticket("A22", carrier_code="C999"),
    ticket("A23", carrier_code="M001"),
    ticket("A24", carrier_code=" C001 "),
    ticket("A25", carrier_code="", merchant_code="M001", warehouse_code="W001"),
    ticket("A26", carrier_code=""),
    ticket("A27" + "x" * 40),
    ticket(" A28 "),
    ticket("A29", order_value="oops"),
    ticket("A29", order_value="29.00"),
    ticket("A30"),
    ticket("A30", order_value="30.00"),
    ticket(" A31"),
    ticket("A31"),
    ticket("A32", customer_tz="America/New_York", promised_at="2026-11-01 01:30",
           delivered_at="2026-11-02 01:30"),
    ticket("A33", customer_tz="Mars/Base"),
    ticket("A43", customer_tz="America/New_York", promised_at="2026-03-08 02:30",
           delivered_at="2026-03-09 02:30"),
    ticket("A44", opened_at="x"),
    ticket("A45", opened_at="2026-03-05 10:00|2026-03-05 10:00"),
    ticket("A46", opened_at="2026-03-05 10|00"),
    ticket("A47", opened_at="now"),
    ticket("A48", opened_at="2026-03-05 10:00 "),
    ticket("A49", opened_at="2026-03-05 10:00+08"),
    ticket("A50", order_value='""'),
    ticket("A34", cs_request_at="2026-03-03 09:00", responded_at="2026-03-03 08:59"),
    ticket("A35", text="\u3000客户说没收到"),
    ticket("A36", text="été"),
    ticket("A37", text="客户称：未收到。"),
    ticket("A38", request_to="W001", cs_request_at="2026-03-03 09:00"),
    ticket("A39", request_to="X404", cs_request_at="2026-03-03 09:00"),
    ticket("A40", promised_at="2026-03-02 18:00", delivered_at="2026-03-03 00:01",
           customer_tz="Asia/Urumqi"),
    ticket("A41", opened_at="２０２６-03-05 10:00"),
    ticket("A42", opened_at="2026-03-05 10:00", order_value="０"),
]


@pytest.fixture
def world(ctx):
    build_world(with_case=False)
    rulebook()
    db.session.commit()


def _csv(rows, extra_lines: str = "") -> bytes:
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=TICKET_NAMES, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return (out.getvalue() + extra_lines).encode()


def _state() -> dict:
    tickets = [tuple(getattr(t, c.name) for c in Ticket.__table__.columns
                     if c.name not in ("batch_id", "captured_at"))
               for t in db.session.scalars(sa.select(Ticket).order_by(Ticket.ticket_no))]
    violations = [(v.ticket_no, v.clause_number, v.party_id, v.customer_compensation,
                   v.party_fine, v.fact_value, v.tier_no)
                  for v in db.session.scalars(sa.select(Violation).order_by(
                      Violation.ticket_no, Violation.clause_number))]
    return {"tickets": tickets, "violations": violations}


def _import(data: bytes, fast: bool):
    batch = importer.new_batch(BatchKind.TICKETS, BatchSource.CLI, filename="t.csv",
                               size=len(data))
    stream = io.BytesIO(data)
    if fast:
        importer.import_file(batch, stream, "t.csv", BatchKind.TICKETS)
    else:
        importer.import_tickets(batch, importer.rows_from_file(stream, "t.csv",
                                                               BatchKind.TICKETS))
    db.session.flush()
    result = {"counts": (batch.created, batch.updated, batch.unchanged, batch.rejected,
                         batch.violations),
              "rejections": sorted((r.line, r.field, r.reason, r.ticket_no)
                                   for r in batch.rejections), **_state()}
    db.session.rollback()
    return result


def _both(data: bytes):
    """Both paths at the same moment (an unanswered request is measured up to the import)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the COPY path is PostgreSQL's")
    with frozen_time(datetime(2026, 3, 6, 8, 0, 0, 123456, tzinfo=UTC)):
        return _import(data, fast=True), _import(data, fast=False)


@pytest.mark.parametrize("extra", ["", "\n\n", "A99,too,few\n"], ids=[
    "copy-reads-the-file", "blank-lines-checked-in-python", "wrong-width-checked-in-python"])
def test_every_row_gets_the_same_verdict_on_both_paths(world, extra):
    fast, portable = _both(_csv(CORPUS, extra))
    assert fast["rejections"] == portable["rejections"]
    assert fast["counts"] == portable["counts"]
    assert fast["tickets"] == portable["tickets"]
    assert fast["violations"] == portable["violations"]
    assert fast["counts"][0] > 20 and fast["counts"][3] > 15   # the corpus has both kinds


def test_an_update_and_an_unchanged_row_count_the_same_on_both_paths(world):
    first = _csv([ticket("B1", **GOOD), ticket("B2", **GOOD)])
    importer_batch = importer.new_batch(BatchKind.TICKETS, BatchSource.CLI)
    importer.import_file(importer_batch, io.BytesIO(first), "t.csv", BatchKind.TICKETS)
    db.session.commit()
    again = _csv([ticket("B1", **GOOD), ticket("B2", **{**GOOD, "order_value": "5.00"}),
                  ticket("B3")])
    fast, portable = _both(again)
    assert fast == portable
    assert fast["counts"][:4] == (1, 1, 1, 0)


def test_a_date_that_does_not_exist_is_found_without_failing_the_import(world):
    # 2026-02-29 passes the quick shape check and makes the cast fail: the careful conversion
    # takes over and the row is rejected like any other
    fast, portable = _both(_csv([ticket("C1", **GOOD), ticket("C2", opened_at="2026-02-29 10:00"),
                                 ticket("C3", promised_at="2026-04-31 10:00")]))
    assert fast == portable
    assert [r[:3] for r in fast["rejections"]] == [(3, "opened_at", "bad_time"),
                                                   (4, "promised_at", "bad_time")]


def test_plainly_good_rows_are_converted_in_sql_not_left_to_python(world, monkeypatch):
    # the SQL conversion must vouch for every usual shape of a good row; were it to leave them
    # to Python the verdicts would still agree, only a million rows would take minutes
    from portal.intake import fastpath

    left = []
    real = fastpath.leftovers

    def spy(staging, chunk=2000):
        for rows in real(staging, chunk):
            left.extend(line for line, _raw in rows)
            yield rows

    monkeypatch.setattr(fastpath, "leftovers", spy)
    good = [ticket("G01", **GOOD),
            ticket("G02", promised_at="2026-03-02T18:00:00", delivered_at="2026-03-04T09:12"),
            ticket("G03", order_value="1,234.50", carrier_signed="Y", customer_signed="否",
                   proxy_signed="TRUE", text="客户称：未收到。"),
            ticket("G04", order_value="7", customer_tz="America/New_York",
                   promised_at="2026-03-02 18:00", delivered_at="2026-03-03 00:01"),
            ticket("G05", carrier_code="", merchant_code="M001", warehouse_code="W001",
                   request_to="W001", cs_request_at="2026-03-03 09:00", order_value="0.5")]
    fast, portable = _both(_csv(good))
    assert fast == portable
    assert fast["counts"][:4] == (5, 0, 0, 0)
    assert left == []
