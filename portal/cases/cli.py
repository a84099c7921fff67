"""``flask statements``: monthly party statements from the command line (e.g. a monthly cron
job on the 1st: ``flask --app wsgi statements issue --month 2026-11``)."""
from __future__ import annotations

import click
from flask.cli import AppGroup
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select

from portal.accounts.models import User
from portal.core.audit import acting_as
from portal.core.errors import ServiceError
from portal.extensions import db

statements_cli = AppGroup("statements", help="Monthly party statements (对账单).")


@statements_cli.command("issue")
@click.option("--month", "month", required=True, metavar="YYYY-MM",
              help="The calendar month (portal time zone) to issue, e.g. 2026-11.")
@click.option("--user", "username", default=None, metavar="USERNAME",
              help="The portal user issuing them (recorded in the audit log).")
@click.option("--lang", default="zh_CN", type=click.Choice(["zh_CN", "en"]),
              help="Language of the messages (default zh_CN).")
def issue(month: str, username: str | None, lang: str):
    """Issue the statement of every party with charges or reversals in MONTH that has none."""
    from portal.cases.statements import issue_all

    with force_locale(lang):
        user = None
        if username is not None:
            user = db.session.scalar(select(User).where(User.username == username))
            if user is None:
                raise click.ClickException(_("No user is called %(name)s.", name=username))
        try:
            with acting_as(user):
                issued = issue_all(month, user)
        except ServiceError as err:
            db.session.rollback()
            raise click.ClickException(err.message) from None
        db.session.commit()
        click.echo(_("%(n)d statements issued for %(p)s.", n=len(issued), p=month.strip()))
        for st in issued:
            click.echo(f"  {st.number}  {st.party.code:<8} {st.amount_total:>12}  "
                       f"{st.points_total:>5}")
