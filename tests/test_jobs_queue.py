"""Background jobs (``core.jobs``): on a real Redis through an RQ worker in burst mode, and in
this process (a thread) without Redis. The Redis tests use database 15 of the local server
(``TEST_REDIS_URL`` to change it), flushed before and after; they are skipped when no Redis
answers there."""
# ruff: noqa: F811  (pytest fixtures imported from the report and outbox tests)
from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest

from portal.core import jobs
from portal.extensions import db
from tests.test_outbox import people, queue  # noqa: F401  (fixture, helper)
from tests.test_reports import (  # noqa: F401  (fixtures)
    download,
    job_id_of,
    period,
    reports,
    signed_in,
    world,
)

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _redis_or_skip():
    from redis import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except RedisError as err:
        pytest.skip(f"no Redis at {REDIS_URL} ({err}); these tests need a real one")
    return client


@pytest.fixture
def redis_app(app):
    """The app with jobs on the test Redis (its database flushed before and after)."""
    client = _redis_or_skip()
    client.flushdb()
    keys = ("REDIS_URL", "OUTBOX_DELIVER_ON_COMMIT", "JOBS_INLINE")
    saved = {k: app.config.get(k) for k in keys}
    app.config.update(REDIS_URL=REDIS_URL, OUTBOX_DELIVER_ON_COMMIT=True, JOBS_INLINE=False)
    yield app
    app.config.update(saved)
    app.extensions.pop("portal.redis", None)
    client.flushdb()


def run_worker(app) -> bool:
    """An RQ worker (forking a process per job, as in production) until the queue is empty."""
    from rq import Worker

    with app.app_context():
        app.extensions[jobs._PID] = os.getpid()
        worker = Worker([jobs.queue(app)], connection=jobs.redis_connection(app))
        return worker.work(burst=True)


def test_a_report_is_rendered_by_an_rq_worker(redis_app, world, reports, make_browser):
    redis_app.config["REPORTS_RUN_INLINE"] = False
    auditor = signed_in(make_browser, "auditor")
    auditor.get("/reports/")   # the form's page, as a browser would (its CSRF token)
    job_id = job_id_of(auditor.post("/reports/audit", period()))
    assert auditor.get(f"/reports/jobs/{job_id}/progress").get_json()["status"] == "queued"
    with redis_app.app_context():
        assert jobs.queue().count == 1
    assert run_worker(redis_app)
    progress = auditor.get(f"/reports/jobs/{job_id}/progress").get_json()
    assert progress["status"] == "done", progress
    assert download(auditor, job_id).startswith(b"%PDF")
    assert (reports / job_id / "report.pdf").is_file()


def test_an_email_queued_by_a_request_is_delivered_by_an_rq_worker(
        redis_app, people, smtp_server):
    with redis_app.test_request_context():
        queue(people["lina"], "k-redis", subject="Prompt delivery")   # commits: enqueues
        assert jobs.queue().count == 1
    assert run_worker(redis_app)
    (mail,) = smtp_server.messages
    assert mail["Subject"] == "Prompt delivery"
    from portal.core.outbox import OutboxMessage, OutboxStatus

    with redis_app.app_context():
        msg = db.session.scalar(db.select(OutboxMessage).where(OutboxMessage.key == "k-redis"))
        assert msg.status is OutboxStatus.SENT


def test_a_rolled_back_outbox_message_enqueues_nothing(redis_app, people):
    from portal.accounts.models import User
    from portal.core import notify

    with redis_app.test_request_context():
        notify.email_user(db.session.get(User, people["lina"]), key="k-gone",
                          subject=lambda: "x", body=lambda: "y")
        db.session.flush()
        db.session.rollback()
        db.session.commit()
        assert jobs.queue().count == 0


def test_the_scheduler_enqueues_one_round_per_slot_however_many_run(redis_app):
    runner = redis_app.test_cli_runner()
    first = runner.invoke(args=["worker", "schedule", "--once", "--interval", "60"])
    second = runner.invoke(args=["worker", "schedule", "--once", "--interval", "60"])
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    with redis_app.app_context():
        count = jobs.queue().count
    # both ran in the same minute, unless the minute turned between them
    assert count == 1 or time.time() % 60 < 2, (first.output, second.output)
    assert run_worker(redis_app)


def test_the_worker_command_says_what_is_missing_without_redis(app):
    result = app.test_cli_runner().invoke(args=["worker", "jobs", "--burst"])
    assert result.exit_code != 0 and "REDIS_URL is not set" in result.output


def test_only_module_level_functions_are_jobs(app):
    with app.app_context(), pytest.raises(ValueError, match="module-level"):
        jobs.enqueue(lambda: None)


# --- without Redis: in this process ------------------------------------------------------------

def test_without_redis_a_job_runs_in_a_thread_of_this_process(app, people, smtp_server):
    from portal.worker.tasks import deliver_outbox

    assert not app.config.get("REDIS_URL")
    with app.test_request_context():
        queue(people["lina"], "k-thread", subject="From a thread")
        assert jobs.enqueue(deliver_outbox) is None
    deadline = time.monotonic() + 30
    while not smtp_server.messages:
        assert time.monotonic() < deadline, "the thread did not deliver"
        time.sleep(0.1)
    assert smtp_server.messages[0]["Subject"] == "From a thread"


def test_without_redis_a_commit_does_not_start_deliveries(app, people, smtp_server):
    """The embedded default keeps delivering from the round (`flask worker run`) only."""
    with app.test_request_context():
        queue(people["lina"], "k-quiet")
    time.sleep(0.5)
    assert smtp_server.messages == []


def test_jobs_inline_runs_at_once(app, people, smtp_server, monkeypatch):
    from portal.worker.tasks import deliver_outbox

    monkeypatch.setitem(app.config, "JOBS_INLINE", True)
    with app.test_request_context():
        queue(people["lina"], "k-inline", subject="Inline")
        jobs.enqueue(deliver_outbox)
    assert [m["Subject"] for m in smtp_server.messages] == ["Inline"]


# --- retention -----------------------------------------------------------------------------

def test_old_finished_report_jobs_are_removed_by_the_round_never_running_ones(
        app, world, reports, make_browser):
    from portal.core.db import utcnow
    from portal.reports import jobs as report_jobs

    auditor = signed_in(make_browser, "auditor")
    auditor.get("/reports/")   # the form's page, as a browser would (its CSRF token)
    done = job_id_of(auditor.post("/reports/audit", period()))
    with app.test_request_context():
        running = report_jobs.load_job(done)
        running.id, running.status = "f" * 32, report_jobs.JobStatus.RUNNING
        report_jobs._save(running)
        later = utcnow() + timedelta(days=31)
        assert report_jobs.purge_old_jobs(later) == 1
        assert report_jobs.load_job(done) is None
        assert report_jobs.load_job("f" * 32) is not None
    assert not (reports / done).exists()
    assert auditor.get(f"/reports/jobs/{done}/report.pdf").status_code == 404


def test_an_uploaded_ticket_file_is_imported_by_an_rq_worker_from_storage(
        redis_app, make_browser, tmp_path, monkeypatch):
    """Under Redis the upload is put in shared storage (the worker may be elsewhere), imported
    by the worker, then removed from storage."""
    from portal.core.storage import storage
    from portal.intake.models import BatchStatus
    from tests.test_intake_upload import GOOD, HEADER, batches, upload
    from tests.test_intake_upload import signed_in as intake_user
    from tests.test_intake_upload import world as intake_world

    monkeypatch.setitem(redis_app.config, "FILE_STORAGE_DIR", str(tmp_path / "files"))
    intake_world.__wrapped__(redis_app)
    b = intake_user(make_browser)
    assert upload(b, (HEADER + GOOD).encode()).status_code == 302
    with redis_app.app_context():
        assert batches()[0].status is BatchStatus.QUEUED
        assert len(storage().list_keys("imports")) == 1
    assert run_worker(redis_app)
    with redis_app.app_context():
        (batch,) = batches()
        assert (batch.status, batch.created) == (BatchStatus.DONE, 1)
        assert storage().list_keys("imports") == []
