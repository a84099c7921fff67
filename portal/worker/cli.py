"""``flask worker run``: the portal's background work, one short transaction per step.

Each round lets scheduled versions take effect, reopens training whose certificates are about
to expire, queues acknowledgement and training reminders and delivers the outbox. Run it
under a process supervisor (systemd, supervisord) without ``--once``, or from cron with
``--once``. Several workers may run at once: the outbox rows are claimed with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL.
"""
from __future__ import annotations

import time

import click
from flask.cli import AppGroup

from portal.core.outbox import OutboxMessage, OutboxStatus, deliver_pending, status_counts
from portal.extensions import db

worker_cli = AppGroup("worker", help="Background jobs: reminders and email delivery.")


def run_round(limit: int = 200) -> dict:
    from portal.standards.campaigns import schedule_reminders, take_effect
    from portal.training import assignments

    superseded = take_effect()
    db.session.commit()
    renewals = assignments.reopen_expiring()
    db.session.commit()
    reminders = schedule_reminders()
    db.session.commit()
    reminders.update(assignments.schedule_reminders())
    db.session.commit()
    report = deliver_pending(limit)
    return {"superseded": superseded, "renewals": renewals, **reminders, "sent": report.sent,
            "retried": report.retried, "failed": report.failed}


@worker_cli.command("run")
@click.option("--once", is_flag=True, help="Do one round and stop (for cron and tests).")
@click.option("--interval", default=60, show_default=True, help="Seconds between rounds.")
@click.option("--limit", default=200, show_default=True, help="Emails sent per round at most.")
def run(once: bool, interval: int, limit: int):
    """Let versions take effect, queue reminders, send the outbox; forever or --once."""
    while True:
        try:
            result = run_round(limit)
        except Exception:  # keep the worker alive; the error is logged, the round retried
            db.session.rollback()
            if once:
                raise
            click.echo("round failed; retrying next round", err=True)
        else:
            click.echo(" ".join(f"{k}={v}" for k, v in result.items()))
        finally:
            db.session.remove()
        if once:
            return
        time.sleep(interval)


@worker_cli.command("status")
def status():
    """How many emails are pending, sent, failed, or stuck while sending."""
    counts = status_counts()
    for name in OutboxStatus:
        click.echo(f"{name.value:<8} {counts.get(name.value, 0)}")
    stuck = db.session.scalars(db.select(OutboxMessage).where(
        OutboxMessage.status == OutboxStatus.SENDING)).all()
    for m in stuck:
        click.echo(f"  sending since attempt {m.attempts}: #{m.id} {m.key} -> {m.to_addr} "
                   "(the worker stopped mid-send; check the mail server before resetting)")
