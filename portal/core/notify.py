"""What services call to tell someone something: an email in the recipient's language, or a
webhook event for the systems that subscribed to it. Both only add rows to the outbox
(``core.outbox``) in the caller's transaction; the worker delivers them.

(The webhook half is being built: ``webhook`` queues nothing yet.)
"""
from __future__ import annotations

from collections.abc import Callable

from flask_babel import force_locale

from portal.core.outbox import OutboxMessage, enqueue


def email_user(user, *, key: str, subject: Callable[[], str], body: Callable[[], str]
               ) -> OutboxMessage | None:
    """Queue an email to ``user`` written in their language; ``subject`` and ``body`` are
    called under it. Nothing for a user without an address; ``None`` if ``key`` was queued
    before (never twice)."""
    if not user.email:
        return None
    with force_locale(user.locale or "zh_CN"):
        text_subject, text_body = subject(), body()
    return enqueue(key=key, to=user.email, subject=text_subject, body=text_body)


def webhook(*, event: str, key: str, payload: dict) -> list[OutboxMessage]:
    """Queue ``payload`` as event ``event`` for every registered endpoint subscribed to it
    (one outbox row each, keyed ``key`` + endpoint)."""
    return []
