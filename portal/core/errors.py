"""The one error a service raises when an action is refused; views show its message."""
from __future__ import annotations


class ServiceError(Exception):
    """An action refused for a reason the user can fix. ``field`` names the form field at fault."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(str(message))
        self.message = message
        self.field = field


class RecordedRefusal(ServiceError):
    """A refusal whose own record must outlive the rollback of the refused action (a wrong
    current password counted against the account): ``core.web.action`` rolls the action
    back, then runs ``record`` and commits it alone."""

    def __init__(self, message: str, field: str | None = None, *, record):
        super().__init__(message, field)
        self.record = record


class ConflictError(ServiceError):
    """Someone else changed the object first (optimistic locking)."""


def required_reason(value, missing: str, limit: int, field: str = "reason") -> str:
    """The reason typed for an action (stripped), refused when empty (with ``missing``) or
    longer than ``limit`` characters."""
    from flask_babel import gettext as _

    text = (value or "").strip()
    if not text:
        raise ServiceError(missing, field)
    if len(text) > limit:
        raise ServiceError(_("The reason may be at most %(n)d characters.", n=limit), field)
    return text
