import click
from flask.cli import AppGroup

from portal.demo.data import DEMO_PASSWORD, is_loaded, load_demo, logins

demo_cli = AppGroup("demo", help="Demo data.")


@demo_cli.command("load")
@click.option("--months", default=4, show_default=True, help="Months of cases to generate.")
def load(months: int):
    """Load the demo world (once; does nothing if it is already there)."""
    if is_loaded():
        click.echo("demo data already loaded")
    else:
        counts = load_demo(months=months)
        click.echo(f"demo data loaded: {counts}")
    click.echo(f"\nDemo logins (password for all: {DEMO_PASSWORD}):")
    for username, name, role in logins():
        click.echo(f"  {username:<12} {role:<20} {name}")
