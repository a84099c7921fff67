import click
from flask.cli import AppGroup

from portal.demo.data import (
    DEMO_PASSWORD,
    DEMO_TOTP_SECRET,
    demo_code,
    is_loaded,
    load_demo,
    logins,
)

demo_cli = AppGroup("demo", help="Demo data.")


@demo_cli.command("load")
@click.option("--months", default=4, show_default=True, help="Months of cases to generate.")
def load(months: int):
    """Load the demo world (once; does nothing if it is already there)."""
    if is_loaded():
        click.echo("demo data already loaded")
    else:
        counts = load_demo(months=months)
        from portal.intake.services import recount_dashboard

        recount_dashboard()     # the dashboard's months counted now, not at its first reader
        click.echo(f"demo data loaded: {counts}")
    click.echo(f"\nDemo logins (password for all: {DEMO_PASSWORD}):")
    for username, name, role in logins():
        click.echo(f"  {username:<12} {role:<20} {name}")
    click.echo(f"\nCS, HR and auditor accounts also ask for a code from an authenticator app "
               f"holding the demo key {DEMO_TOTP_SECRET}, or from: flask demo code USERNAME")


@demo_cli.command("code")
@click.argument("username")
def code(username: str):
    """Print the current two-factor code of a demo account (only accounts holding the demo
    key: real accounts' keys are never shown)."""
    from portal.core.errors import ServiceError

    try:
        click.echo(demo_code(username))
    except ServiceError as err:
        raise click.ClickException(err.message) from None
