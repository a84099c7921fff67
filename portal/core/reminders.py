"""Reminder emails for tasks with a due date (reading tasks, training tasks).

Tasks are grouped per person: one email lists everything that person has due soon (or
overdue). The mark on each task and the outbox row are written in the same transaction, so a
reminder is never queued twice; the outbox key is derived from the tasks it covers.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable

from portal.core.audit import record
from portal.core.db import utcnow
from portal.core.notify import email_text


def queue_grouped(tasks, *, prefix: str, kind: str, mark: str,
                  text: Callable[[object, list], tuple[str, str]]) -> int:
    """One email per person for ``tasks`` (each with ``user_id`` and ``user``); sets ``mark``
    on every task. ``text(user, tasks)`` gives subject and body, called in the user's
    email language (``notify.email_text``). Returns how many emails were queued."""
    by_user: dict[int, list] = {}
    for t in tasks:
        by_user.setdefault(t.user_id, []).append(t)
    queued = 0
    now = utcnow()
    for group in by_user.values():
        user = group[0].user
        ids = ",".join(str(t.id) for t in group)
        key = f"{prefix}-{kind}:{user.id}:{hashlib.sha256(ids.encode()).hexdigest()[:32]}"
        if email_text(user, key=key,
                      text=lambda u=user, g=group: text(u, g)) is not None:
            queued += 1
        for t in group:
            setattr(t, mark, now)
        record(f"{prefix}_reminder.{kind}", user, after={
            "user": user.username, "tasks": [t.id for t in group], "outbox_key": key})
    return queued
