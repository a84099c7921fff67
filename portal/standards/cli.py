from pathlib import Path

import click
from flask.cli import AppGroup

from portal import ROOT
from portal.extensions import db
from portal.standards.loader import load_directory

standards_cli = AppGroup("standards", help="The standards rulebook.")


@standards_cli.command("load")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path),
                default=ROOT / "standards")
def load(directory: Path):
    """Load or update the standards in DIRECTORY (default: standards/). Idempotent."""
    result = load_directory(directory)
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
