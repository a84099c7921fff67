"""The functions the portal hands to ``core.jobs.enqueue``: plain, importable, taking ids.

Each runs inside an application context (``core.jobs.run_in_app``) and commits its own work.
"""
from __future__ import annotations

import logging

from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


def scheduled_round() -> dict:
    """The minute's round (``run_round``): versions take effect, reminders, HR escalations,
    outbox delivery and retries, old report jobs removed."""
    from portal.worker.cli import run_round

    result = run_round()
    log.info("round: %s", " ".join(f"{k}={v}" for k, v in result.items()))
    return result


def deliver_outbox(limit: int = 200) -> dict:
    """Deliver what is due in the outbox now (enqueued when a request committed messages)."""
    from portal.core.outbox import deliver_pending, worker_name

    report = deliver_pending(limit, worker=worker_name())
    return {"sent": report.sent, "retried": report.retried, "failed": report.failed}


def render_report(job_id: str) -> None:
    from flask import current_app

    from portal.reports.jobs import run_job

    run_job(current_app._get_current_object(), job_id)


def import_upload(batch_id: int, path: str, key: str = "") -> None:
    """Import an uploaded ticket file. ``key``: the file was put in shared storage for a worker
    on another machine (``start_upload`` under Redis); it is copied to a local temporary file
    (the importer seeks), imported, and removed from storage."""
    import shutil
    import tempfile
    from pathlib import Path

    from portal.core.storage import storage
    from portal.intake.services import run_upload

    if not key:
        run_upload(batch_id, Path(path))
        return
    backend = storage()
    suffix = Path(path).suffix
    with tempfile.NamedTemporaryFile(suffix=suffix, delete=False) as tmp, \
            backend.open(key) as stream:
        shutil.copyfileobj(stream, tmp, 1 << 20)
    try:
        run_upload(batch_id, Path(tmp.name))   # removes the local copy when done
    finally:
        Path(tmp.name).unlink(missing_ok=True)
        backend.delete(key)


# --- outbox: a delivery run after a commit that queued messages ---------------------------------

_NEW = "portal.outbox.new"


# Under Redis (``OUTBOX_DELIVER_ON_COMMIT``, on by default when ``REDIS_URL`` is set), a
# transaction that adds outbox messages enqueues a delivery run when it commits, so emails go out
# within seconds instead of at the next minute's round. Without Redis the round (``flask worker
# run``) delivers, as before: a thread per request sending email would race the worker.


def _noted(session, flush_context) -> None:
    from portal.core.outbox import OutboxMessage

    if any(isinstance(obj, OutboxMessage) for obj in session.new):
        session.info[_NEW] = True


def _forget(session) -> None:
    session.info.pop(_NEW, None)


def _committed(session) -> None:
    if not session.info.pop(_NEW, False) or session.in_nested_transaction():
        return
    from flask import current_app, has_app_context

    if not has_app_context() or not current_app.config.get("OUTBOX_DELIVER_ON_COMMIT"):
        return
    from portal.core.jobs import enqueue, uses_queue

    if not uses_queue():
        return
    try:
        enqueue(deliver_outbox)
    except Exception:  # Redis down: the minute's round delivers instead
        log.warning("could not enqueue an outbox delivery; the next round will send",
                    exc_info=True)


event.listen(Session, "after_flush", _noted)
event.listen(Session, "after_commit", _committed)
event.listen(Session, "after_rollback", _forget)
