"""``flask accounts``: the way back in when no administrator can sign in (a lost phone, a
forgotten password). Run on the server, so whoever runs it already controls the portal."""
from __future__ import annotations

import click
from flask.cli import AppGroup
from flask_babel import force_locale
from sqlalchemy import func, select

from portal.accounts import services
from portal.accounts.models import User
from portal.core.errors import ServiceError
from portal.extensions import db

accounts_cli = AppGroup("accounts", help="User accounts: reset two-factor sign-in, passwords.")


def _user(username: str) -> User:
    user = db.session.scalar(select(User).where(
        func.lower(User.username) == username.strip().lower()))
    if user is None:
        raise click.ClickException(f"no user {username}")
    return user


def _run(action, done: str) -> None:
    with force_locale("en"):
        try:
            action()
        except ServiceError as err:
            db.session.rollback()
            raise click.ClickException(err.message) from None
    db.session.commit()
    click.echo(done)


@accounts_cli.command("reset-2fa")
@click.argument("username")
def reset_2fa(username: str):
    """Clear USERNAME's two-factor sign-in (they set it up again at their next sign-in) and
    end their sessions."""
    user = _user(username)
    _run(lambda: services.reset_two_factor(user, None),
         f"two-factor sign-in of {user.username} reset; their sessions are ended")


@accounts_cli.command("set-password")
@click.argument("username")
@click.password_option("--password", prompt="New password",
                       help="The new password (asked for when not given).")
def set_password(username: str, password: str):
    """Give USERNAME a new password (the same rules as everywhere) and end their sessions."""
    user = _user(username)
    _run(lambda: services.set_password(user, password, None),
         f"password of {user.username} set; their sessions are ended")
