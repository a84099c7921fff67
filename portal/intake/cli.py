"""``flask intake``: import ticket and volume files from disk, re-evaluate tickets."""
from __future__ import annotations

from pathlib import Path

import click
import sqlalchemy as sa
from flask.cli import AppGroup
from flask_babel import force_locale

from portal.extensions import db
from portal.intake import services
from portal.intake.models import BatchKind, BatchSource, Ticket

intake_cli = AppGroup("intake", help="Complaint tickets, shipment volumes and the rule engine.")


def _run(path: Path, kind: BatchKind, lang: str) -> None:
    with force_locale(lang), path.open("rb") as stream:
        try:
            batch = services.run_import(stream, path.name, kind, BatchSource.CLI)
        except services.ImportRefused as err:
            db.session.rollback()
            raise click.ClickException(err.message) from None
        db.session.commit()
        services.recount_dashboard()
        click.echo(services.summary(batch))
        for r in batch.rejections[:50]:
            click.echo(f"  {path.name}:{r.line}: {services.rejection_text(r)}", err=True)
        if batch.rejected > 50:
            click.echo(f"  ... {batch.rejected - 50} more", err=True)


@intake_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--volumes", is_flag=True, help="The file holds shipment volumes, not tickets.")
@click.option("--lang", default="zh_CN", type=click.Choice(["zh_CN", "en"]),
              help="Language of the report (default zh_CN).")
def import_file(path: Path, volumes: bool, lang: str):
    """Import a CSV or XLSX file of tickets (or of volumes with --volumes)."""
    _run(path, BatchKind.VOLUMES if volumes else BatchKind.TICKETS, lang)


@intake_cli.command("evaluate")
@click.option("--ticket", "tickets", multiple=True, help="Only this ticket number (repeatable).")
def evaluate(tickets: tuple[str, ...]):
    """Re-evaluate tickets against the rules (all, or the ones named), e.g. after a correction."""
    t = Ticket.__table__
    if tickets:
        where = (lambda src: src.c.ticket_no.in_(tickets))
        scope = sa.select(t.c.ticket_no).where(t.c.ticket_no.in_(tickets))
    else:
        where, scope = None, sa.select(t.c.ticket_no)
    counts = services.reevaluate(where, scope)
    db.session.commit()
    click.echo(f"added {counts['added']}, revised {counts['revised']}, "
               f"withdrawn {counts['withdrawn']}")
