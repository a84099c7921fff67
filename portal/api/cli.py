"""``flask tokens``: issue, list and revoke API tokens from the command line."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select

from portal.accounts.models import User
from portal.api import services
from portal.core.audit import acting_as
from portal.core.errors import ServiceError
from portal.core.timeutil import zone
from portal.extensions import db

tokens_cli = AppGroup("tokens", help="API tokens for integrations: issue, list, revoke.")

_lang = click.option("--lang", default="zh_CN", type=click.Choice(["zh_CN", "en"]),
                     help="Language of the messages (default zh_CN).")
_user = click.option("--user", "username", default=None, metavar="USERNAME",
                     help="The portal user doing this (recorded in the audit log).")


def _find_user(username: str | None) -> User | None:
    if username is None:
        return None
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise click.ClickException(_("No user is called %(name)s.", name=username))
    return user


def _run(action, user):
    """``action()`` as one transaction; a refusal is the command's error message."""
    try:
        with acting_as(user):
            result = action()
    except ServiceError as err:
        db.session.rollback()
        raise click.ClickException(err.message) from None
    db.session.commit()
    return result


@tokens_cli.command("issue")
@click.argument("name")
@_user
@_lang
def issue(name: str, username: str | None, lang: str):
    """Issue a token called NAME and print it (once: only its hash is kept)."""
    with force_locale(lang):
        user = _find_user(username)
        token, plaintext = _run(lambda: services.issue_token(name, user), user)
        click.echo(plaintext)
        click.echo(_("Token %(name)s (%(prefix)s) issued. Copy it now: it will not be shown "
                     "again.", name=token.name, prefix=token.prefix), err=True)


@tokens_cli.command("list")
@_lang
def list_tokens(lang: str):
    """The tokens: id, prefix, status, name, created, last used."""
    tz = zone(current_app.config.get("PORTAL_DEFAULT_TIMEZONE"))

    def at(moment):
        return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M") if moment else "-"

    with force_locale(lang):
        for t in services.list_tokens():
            status = _("active") if t.active else _("revoked %(at)s", at=at(t.revoked_at))
            creator = t.created_by.username if t.created_by else "-"
            click.echo("\t".join([str(t.id), t.prefix, status, t.name,
                                  f"{at(t.created_at)} {creator}", at(t.last_used_at)]))


@tokens_cli.command("revoke")
@click.argument("prefix_or_id")
@_user
@_lang
def revoke(prefix_or_id: str, username: str | None, lang: str):
    """Revoke the token with this id or prefix: it stops working at once."""
    with force_locale(lang):
        user = _find_user(username)
        token = _run(lambda: services.revoke_token(services.find_token(prefix_or_id), user),
                     user)
        click.echo(_("Token %(name)s (%(prefix)s) revoked: it no longer opens the API.",
                     name=token.name, prefix=token.prefix))
