from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy import select

from portal import ROOT
from portal.accounts.models import User
from portal.extensions import db
from portal.standards.loader import load_directory

standards_cli = AppGroup("standards", help="The standards rulebook.")


@standards_cli.command("load")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path),
                default=ROOT / "standards")
@click.option("--owner", "owner_name", default="",
              help="Username of the CS supervisor or administrator who owns new standards.")
def load(directory: Path, owner_name: str):
    """Load or update the standards in DIRECTORY (default: standards/). Idempotent."""
    owner = None
    if owner_name:
        owner = db.session.scalar(select(User).where(User.username == owner_name.lower()))
        if owner is None:
            raise click.BadParameter(f"no user {owner_name}", param_hint="--owner")
    result = load_directory(directory, owner=owner)
    db.session.commit()
    for name in result.created:
        click.echo(f"created   {name}")
    for name in result.updated:
        click.echo(f"updated   {name}")
    for name in result.unchanged:
        click.echo(f"unchanged {name}")
    for err in result.errors:
        click.echo(f"rejected  {err}", err=True)
    if result.errors:
        raise SystemExit(1)


@standards_cli.command("activate")
def activate():
    """Let versions whose effective date has come replace the ones before them (the worker
    does this too)."""
    from portal.standards.campaigns import take_effect

    n = take_effect()
    db.session.commit()
    click.echo(f"{n} version(s) superseded")


@standards_cli.command("remind")
def remind():
    """Queue reminder emails for acknowledgement tasks due soon or overdue (the worker does
    this too); `flask worker run --once` sends them."""
    from portal.standards.campaigns import schedule_reminders

    counts = schedule_reminders()
    db.session.commit()
    click.echo(f"queued {counts['due_soon']} due-soon and {counts['overdue']} overdue reminder(s)")
