"""``flask worker run``: the portal's background work, one short transaction per step.

Each round lets scheduled versions take effect, reopens training whose certificates are about
to expire, queues acknowledgement and training reminders and delivers the outbox (emails and
webhooks, see ``core.outbox`` for what is guaranteed). Run it under a process supervisor
(systemd, supervisord) without ``--once``, or from cron with ``--once``. Several workers may
run at once: each claims its own outbox rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) under
a lease, so a worker that is killed loses nothing: its rows are taken again when the lease
ends. SIGTERM or Ctrl-C stops a worker after the message in hand, giving back the rest of
its claim at once.

With Redis (``REDIS_URL``, see ``core.jobs``) the work is split: ``flask worker jobs`` runs the
queued jobs (reports, imports, outbox deliveries, the scheduled round), as many processes as you
like on any machine; ``flask worker schedule`` enqueues the round every ``SCHEDULE_SECONDS``
(60). Several schedulers may run for safety: each slot of time is claimed in Redis by one of
them only (``core.jobs.claim_slot``). rq 3's own ``CronScheduler`` was not used: every running
copy of it would enqueue, so it must run exactly once, which is what we want to avoid having to
guarantee. Equivalent without a scheduler process: cron ``* * * * * flask worker run --once``.
"""
from __future__ import annotations

import os
import signal
import time

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import func, select

from portal.core.db import utcnow
from portal.core.outbox import (
    OutboxMessage,
    OutboxStatus,
    counts_by_channel,
    deliver_pending,
    retry,
    worker_name,
)
from portal.extensions import db
from portal.worker import tasks

worker_cli = AppGroup("worker", help="Background jobs: reminders, email and webhook delivery.")


class _Stop:
    """Set by SIGTERM / SIGINT: finish the message in hand, then stop."""

    asked = False

    def __call__(self) -> bool:
        return self.asked

    def ask(self, signum, frame) -> None:
        self.asked = True


def run_round(limit: int = 200, *, worker: str | None = None, stop=None) -> dict:
    from portal.hr.escalation import escalate_overdue
    from portal.intake.services import fail_abandoned_uploads
    from portal.standards.campaigns import schedule_reminders, take_effect
    from portal.training import assignments

    superseded = take_effect()
    db.session.commit()
    renewals = assignments.reopen_expiring()
    db.session.commit()
    reminders = schedule_reminders()
    db.session.commit()
    reminders.update(assignments.schedule_reminders())
    reminders["hr_escalated"] = escalate_overdue()   # HR notices left unacknowledged
    db.session.commit()
    report = deliver_pending(limit, worker=worker, stop=stop)
    reports_deleted = _purge_reports()
    imports_abandoned = fail_abandoned_uploads()
    return {"superseded": superseded, "renewals": renewals, **reminders, "sent": report.sent,
            "retried": report.retried, "failed": report.failed, "released": report.released,
            "interrupted": report.interrupted, "reports_deleted": reports_deleted,
            "imports_abandoned": imports_abandoned}


def _purge_reports() -> int:
    """Report jobs older than ``REPORTS_KEEP_DAYS``; a failure here never stops the round."""
    from portal.reports.jobs import purge_old_jobs

    try:
        return purge_old_jobs()
    except Exception:
        current_app.logger.exception("could not remove old report jobs")
        return 0


@worker_cli.command("run")
@click.option("--once", is_flag=True, help="Do one round and stop (for cron and tests).")
@click.option("--interval", default=60, show_default=True, help="Seconds between rounds.")
@click.option("--limit", default=200, show_default=True,
              help="Messages claimed per round at most (a full round starts the next at once).")
def run(once: bool, interval: int, limit: int):
    """Let versions take effect, queue reminders, deliver the outbox; forever or --once."""
    stop = _Stop()
    saved = {sig: signal.signal(sig, stop.ask) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        _loop(once, interval, limit, stop)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _loop(once: bool, interval: int, limit: int, stop: _Stop) -> None:
    worker = worker_name()
    while not stop():
        busy = False
        try:
            result = run_round(limit, worker=worker, stop=stop)
        except Exception:  # keep the worker alive; the error is logged, the round retried
            db.session.rollback()
            if once:
                raise
            click.echo("round failed; retrying next round", err=True)
        else:
            click.echo(" ".join(f"{k}={v}" for k, v in result.items()))
            busy = result["sent"] + result["retried"] + result["failed"] >= limit
        finally:
            db.session.remove()
        if once:
            return
        deadline = time.monotonic() + (0 if busy else interval)
        while not stop() and time.monotonic() < deadline:
            time.sleep(min(1.0, interval))


@worker_cli.command("jobs")
@click.option("--burst", is_flag=True, help="Run the queued jobs, then stop (tests, cron).")
@click.option("--name", default=None, help="Worker name (default: host and process id).")
def jobs_command(burst: bool, name: str | None):
    """Run queued background jobs (needs REDIS_URL); start several for more throughput."""
    from redis.exceptions import RedisError
    from rq import Worker

    from portal.core.jobs import _PID, queue, redis_connection

    app = current_app._get_current_object()
    if not app.config.get("REDIS_URL"):
        raise click.ClickException("REDIS_URL is not set: without Redis, jobs run inside the "
                                   "web process and `flask worker run` does the scheduled work")
    try:
        redis_connection(app).ping()
    except RedisError as err:
        raise click.ClickException(f"REDIS_URL: cannot reach Redis ({err})") from None
    app.extensions[_PID] = os.getpid()   # each job's forked process drops our DB connections
    worker = Worker([queue(app)], connection=redis_connection(app), name=name)
    worker.work(burst=burst, logging_level="INFO")


@worker_cli.command("schedule")
@click.option("--interval", type=int, default=None,
              help="Seconds between rounds (default: SCHEDULE_SECONDS, 60).")
@click.option("--once", is_flag=True, help="Enqueue one round (if this slot is free), stop.")
def schedule_command(interval: int | None, once: bool):
    """Enqueue the scheduled round every minute (needs REDIS_URL); safe to run on several
    machines: one of them enqueues each round."""
    from portal.core.jobs import claim_slot, enqueue, redis_connection

    app = current_app._get_current_object()
    if not app.config.get("REDIS_URL"):
        raise click.ClickException("REDIS_URL is not set: use `flask worker run` (or cron "
                                   "`* * * * * flask worker run --once`) instead")
    interval = interval or int(app.config.get("SCHEDULE_SECONDS", 60))
    if interval < 5:
        raise click.ClickException("--interval: at least 5 seconds")
    redis_connection(app).ping()
    stop = _Stop()
    saved = {sig: signal.signal(sig, stop.ask) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stop():
            if claim_slot("round", interval, app):
                job_id = enqueue(tasks.scheduled_round)
                click.echo(f"round enqueued: {job_id}")
            elif once:
                click.echo("this round was already enqueued (by another scheduler)")
            if once:
                return
            deadline = time.monotonic() + interval - (time.time() % interval)
            while not stop() and time.monotonic() < deadline:
                time.sleep(0.5)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


@worker_cli.command("status")
def status():
    """Messages by channel and status; the ones in a worker's hands and the stuck ones."""
    counts = counts_by_channel()
    for name in OutboxStatus:
        by_channel = {c: n for (c, s), n in counts.items() if s == name.value}
        detail = ", ".join(f"{c} {n}" for c, n in sorted(by_channel.items()))
        click.echo(f"{name.value:<8} {sum(by_channel.values())}"
                   + (f"  ({detail})" if detail else ""))
    now = utcnow()
    sending = db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.status == OutboxStatus.SENDING).order_by(OutboxMessage.id)).all()
    for m in sending:
        if m.lease_until is not None and m.lease_until >= now:
            click.echo(f"  in a worker's hands until {m.lease_until:%H:%M:%S}Z: #{m.id} {m.key}")
        else:
            click.echo(f"  stuck (its worker stopped; the next round takes it again): #{m.id} "
                       f"{m.key} -> {m.to_addr}")
    due = db.session.scalar(select(func.min(OutboxMessage.next_attempt_at)).where(
        OutboxMessage.status == OutboxStatus.PENDING))
    if due is not None:
        click.echo(f"next pending due at {due:%Y-%m-%d %H:%M:%S}Z")


@worker_cli.command("retry")
@click.argument("message_id", type=int)
def retry_command(message_id: int):
    """Put a failed (or stuck) outbox message back in the queue, with fresh attempts."""
    from portal.core.errors import ServiceError

    msg = db.session.get(OutboxMessage, message_id)
    if msg is None:
        raise click.ClickException(f"no outbox message #{message_id}")
    try:
        retry(msg)
    except ServiceError as err:
        db.session.rollback()
        raise click.ClickException(f"#{message_id} is {msg.status.value}: {err.message}"
                                   ) from None
    db.session.commit()
    click.echo(f"#{message_id} {msg.key}: queued again")
