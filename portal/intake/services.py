"""Intake operations the views, the API and the CLI share."""
from __future__ import annotations

import io
import uuid
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from portal.core.audit import acting_as, record
from portal.core.db import utcnow
from portal.core.errors import ServiceError
from portal.core.filetypes import UnsafeArchive, check_zip, zip_problem_text
from portal.extensions import db
from portal.intake import importer
from portal.intake.fields import reasons
from portal.intake.models import (
    BatchKind,
    BatchSource,
    BatchStatus,
    ImportBatch,
    ImportRejection,
)


class ImportRefused(ServiceError):
    """The file as a whole cannot be imported; ``problem`` is the code of why."""

    def __init__(self, message: str, problem: str = ""):
        super().__init__(message)
        self.problem = problem


def file_problem_text(problem: str) -> str:
    if problem.startswith("missing:"):
        return _("The file lacks the column(s): %(cols)s. The first row must name the columns.",
                 cols=problem.split(":", 1)[1])
    if problem.startswith("archive:"):
        return zip_problem_text(problem.split(":", 1)[1],
                                current_app.config["IMPORT_MAX_BYTES"])
    return {
        "encoding": _("The file is neither UTF-8 nor GB18030 text; save it as CSV UTF-8."),
        "empty": _("The file is empty."),
        "not_csv": _("The file is not a CSV file."),
        "not_xlsx": _("The file is not a readable XLSX workbook."),
        "failed": _("The import failed on an unexpected error; nothing of it was stored. The "
                    "error is in the server log."),
        "interrupted": _("The import was interrupted before it finished (the server or the "
                         "worker stopped); nothing of it was stored. Upload the file again."),
    }.get(problem, problem)


def run_import(source, filename: str, kind: BatchKind, origin: BatchSource, *, user=None,
               token=None, progress=None, batch: ImportBatch | None = None) -> ImportBatch:
    """Import one file, given as bytes or as a binary, seekable file (read as a stream, never
    whole); raises ``ImportRefused`` if the file as a whole is unusable (nothing is stored
    then). ``progress()`` is called now and then while the file is read. ``batch``: one
    already recorded (an upload waiting in the background), else a new one."""
    stream = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    if batch is None:
        batch = importer.new_batch(kind, origin, filename=filename, user=user, token=token,
                                   size=size)
    else:
        batch.status, batch.started_at, batch.size_bytes = BatchStatus.RUNNING, utcnow(), size
    try:
        importer.import_file(batch, stream, filename, kind, progress=progress)
    except importer.FileProblem as err:
        raise ImportRefused(file_problem_text(str(err)), problem=str(err)) from None
    return batch


# --- uploads: stored, then imported in the background ----------------------------------------

UPLOAD_SUFFIXES = (".csv", ".xlsx")


def upload_dir() -> Path:
    path = Path(current_app.instance_path) / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def accept_upload(storage, kind: BatchKind, user) -> tuple[ImportBatch, Path]:
    """Keep an uploaded file under a generated name (outside the web root) and record its
    batch, waiting; the caller commits, then starts ``run_upload``."""
    name = (storage.filename or "").strip() if storage is not None else ""
    if not name:
        raise ServiceError(_("Choose a file to upload."), "file")
    if not name.lower().endswith(UPLOAD_SUFFIXES):
        raise ServiceError(_("Upload a CSV (.csv) or Excel (.xlsx) file; %(name)s is neither.",
                             name=name), "file")
    path = upload_dir() / f"{uuid.uuid4().hex}{Path(name).suffix.lower()}"
    storage.save(path)
    size = path.stat().st_size
    if size == 0:
        path.unlink()
        raise ServiceError(_("The file is empty."), "file")
    try:
        with path.open("rb") as f:
            if importer.is_xlsx(f, name):   # a zip bomb is refused before openpyxl opens it
                check_zip(f, current_app.config["IMPORT_MAX_BYTES"])
    except UnsafeArchive:
        path.unlink()
        raise
    batch = ImportBatch(kind=kind, source=BatchSource.UPLOAD, filename=name[:200],
                        user_id=user.id, size_bytes=size, status=BatchStatus.QUEUED)
    db.session.add(batch)
    db.session.flush()
    record("import_batch.queued", batch, after=batch.snapshot())
    return batch, path


# How far the running uploads have read, for the progress bar: in this process, and written
# to the batch row (its own short transaction, at most twice a second) on PostgreSQL so that a
# page served by another process sees it too. SQLite holds one writer at a time, so there the
# bar is fed from memory only.
_progress: dict[int, int] = {}


def progress_of(batch: ImportBatch) -> int:
    """Bytes read so far."""
    return max(_progress.get(batch.id, 0), batch.bytes_read or 0)


def run_upload(batch_id: int, path: Path) -> None:
    """Import an uploaded file (in a background thread, inside an app context): one
    transaction; a refused or failed file leaves the batch marked failed with the reason."""
    import logging
    import time

    batch = db.session.get(ImportBatch, batch_id)
    user = batch.user
    shared = db.engine.dialect.name == "postgresql"
    last = [0.0]

    def progress():
        done = stream.tell()
        _progress[batch_id] = done
        now = time.monotonic()
        if shared and now - last[0] > 0.5:
            last[0] = now
            with db.engine.begin() as conn:
                conn.execute(sa.update(ImportBatch.__table__).where(
                    ImportBatch.__table__.c.id == batch_id).values(bytes_read=done))

    try:
        with acting_as(user), path.open("rb") as stream:
            run_import(stream, batch.filename, batch.kind, BatchSource.UPLOAD, user=user,
                       progress=progress, batch=batch)
            db.session.commit()
        recount_dashboard()
    except ImportRefused as err:
        db.session.rollback()
        _fail(batch_id, err.problem)
    except Exception:
        db.session.rollback()
        logging.getLogger(__name__).exception("import of batch %s failed", batch_id)
        _fail(batch_id, "failed")
    finally:
        _progress.pop(batch_id, None)
        path.unlink(missing_ok=True)


def recount_dashboard() -> None:
    """Count the dashboard's last twelve months again now that new tickets or volumes are in,
    so that the next person to open it does not wait for the count (``reports.metrics``
    counts any month it finds stale anyway). A failure here never fails the import."""
    import logging

    from portal.reports import metrics

    try:
        metrics.ensure_rollup(metrics.Period.last_twelve_months().month_starts())
    except Exception:
        db.session.rollback()
        logging.getLogger(__name__).exception("recounting the dashboard after an import failed")


def _fail(batch_id: int, problem: str) -> None:
    batch = db.session.get(ImportBatch, batch_id)
    batch.status, batch.error, batch.finished_at = BatchStatus.FAILED, problem, utcnow()
    with acting_as(batch.user):
        record("import_batch.failed", batch, after={**batch.snapshot(), "error": problem})
    db.session.commit()


def fail_abandoned_uploads(now=None) -> int:
    """Mark failed the uploads whose import will never finish, so that nobody waits on a
    progress bar that no longer moves: the process importing one stopped (a restart, a crash:
    its transaction went with it, so nothing was stored) or its job was lost. On PostgreSQL,
    while no import holds the import lock, an upload that had started reading (its progress is
    committed as it goes) is abandoned at once; any upload still waiting after
    ``INTAKE_ABANDONED_HOURS`` (6) is abandoned too. Run by the scheduled round; returns how
    many."""
    now = now or utcnow()
    t = ImportBatch.__table__
    waiting = [BatchStatus.QUEUED, BatchStatus.RUNNING]
    long_ago = now - timedelta(hours=current_app.config.get("INTAKE_ABANDONED_HOURS", 6))
    if db.session.connection().dialect.name == "postgresql":
        # held until this transaction ends: no import starts while we look
        if not db.session.execute(sa.text(
                f"SELECT pg_try_advisory_xact_lock({importer.IMPORT_LOCK})")).scalar():
            db.session.rollback()
            return 0       # an import is running: it may be one of these
        abandoned = sa.or_(t.c.bytes_read > 0, t.c.created_at < long_ago)
    else:
        abandoned = t.c.created_at < long_ago
    ids = db.session.scalars(sa.select(t.c.id).where(t.c.status.in_(waiting), abandoned)
                             .order_by(t.c.id)).all()
    for batch_id in ids:
        _fail(batch_id, "interrupted")     # commits, which lets the lock go
    db.session.rollback()
    return len(ids)


def start_upload(batch_id: int, path: Path) -> None:
    """Run the import of a committed upload batch in the background (``core.jobs``: a thread
    of this process, or an RQ worker under Redis, which reads the file from shared storage;
    the page shows its progress), or at once when ``INTAKE_RUN_INLINE`` is set (tests)."""
    from portal.core import jobs
    from portal.worker.tasks import import_upload

    app = current_app._get_current_object()
    if app.config.get("INTAKE_RUN_INLINE"):
        run_upload(batch_id, path)
        return
    key = ""
    if jobs.uses_queue(app):   # the worker may be on another machine
        from portal.core.storage import new_key, storage

        key = new_key("imports")
        with path.open("rb") as stream:
            storage().put(key, stream)
        path.unlink(missing_ok=True)
    jobs.enqueue(import_upload, batch_id, str(path), key)


def batch_problem(batch: ImportBatch) -> str:
    return file_problem_text(batch.error) if batch.error else ""


class _Engine:
    """What a re-evaluation's audit event is about: the rule engine itself."""

    __tablename__ = "rule_engine"
    id = ""


def reevaluate(where, scope) -> dict:
    counts = importer.evaluate_tickets(where, scope)
    record("rule_engine.reevaluated", _Engine(), after=counts)
    return counts


def rejection_text(r: ImportRejection) -> str:
    reason = reasons().get(r.reason, r.reason)
    if r.field:
        text = f"{r.field}: {reason}"
    else:
        text = reason
    return f"{text} ({r.value})" if r.value else text


def summary(batch: ImportBatch) -> str:
    return _("Created %(created)d, updated %(updated)d, unchanged %(unchanged)d, rejected "
             "%(rejected)d; %(violations)d violations proposed or revised.",
             created=batch.created, updated=batch.updated, unchanged=batch.unchanged,
             rejected=batch.rejected, violations=batch.violations)
