"""What services call to tell someone something: an email in the recipient's language, or a
webhook event for the systems that subscribed to it. Both only add rows to the outbox
(``core.outbox``) in the caller's transaction; the worker delivers them.
"""
from __future__ import annotations

from collections.abc import Callable

from flask import current_app
from flask_babel import force_locale

from portal.core.outbox import OutboxChannel, OutboxMessage, enqueue


def email_locale(user) -> str:
    """The language ``user`` reads emails in: the one chosen on their settings page, else the
    language of their pages, else the portal's default."""
    languages = current_app.config["PORTAL_LANGUAGES"]
    for choice in (getattr(user, "email_locale", None), user.locale):
        if choice in languages:
            return choice
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def email_user(user, *, key: str, subject: Callable[[], str], body: Callable[[], str]
               ) -> OutboxMessage | None:
    """Queue an email to ``user`` written in their email language; ``subject`` and ``body``
    are called under it. Nothing for a user without an address; ``None`` if ``key`` was
    queued before (never twice)."""
    return email_text(user, key=key, text=lambda: (subject(), body()))


def email_text(user, *, key: str, text: Callable[[], tuple[str, str]]
               ) -> OutboxMessage | None:
    """``email_user`` for a caller that writes subject and body together: ``text()`` gives
    both, called in the user's email language."""
    if not user.email:
        return None
    with force_locale(email_locale(user)):
        subject, body = text()
    return enqueue(key=key, to=user.email, subject=subject, body=body, user_id=user.id)


def webhook(*, event: str, key: str, payload: dict) -> list[OutboxMessage]:
    """Queue ``payload`` as event ``event`` for every active endpoint subscribed to it: one
    outbox row each, keyed ``<key>:ep<endpoint id>`` (never twice). ``event`` must be one of
    ``webhooks.EVENTS``; the payload's shape is the caller's (it becomes ``data``)."""
    from portal.core import webhooks

    if event not in webhooks.EVENTS:
        raise ValueError(f"unknown webhook event {event!r}: add it to webhooks.EVENTS")
    endpoints = webhooks.subscribers(event)
    if not endpoints:
        return []
    body = webhooks.body_of(event, payload)
    queued = []
    for endpoint in endpoints:
        msg = enqueue(key=f"{key}:ep{endpoint.id}", to=endpoint.name, subject=event, body=body,
                      channel=OutboxChannel.WEBHOOK, endpoint_id=endpoint.id, event=event)
        if msg is not None:
            queued.append(msg)
    return queued
