"""Helpers every blueprint uses: the action wrapper, form-error flashing, pagination args."""
from __future__ import annotations

from contextlib import contextmanager

from flask import flash
from flask_babel import gettext as _
from sqlalchemy.orm.exc import StaleDataError

from portal.core.errors import ConflictError, ServiceError
from portal.extensions import db


class ActionFailed(Exception):
    """Raised out of ``action()`` after the failure was rolled back and shown to the user."""

    def __init__(self, error: ServiceError):
        super().__init__(error.message)
        self.error = error


@contextmanager
def action(form=None, success: str | None = None):
    """One user action = one transaction.

    Commits when the block succeeds; on a ``ServiceError`` or a lost optimistic-lock race rolls
    everything back, attaches the message to the form field at fault (or flashes it) and raises
    ``ActionFailed`` for the view to re-render its form.
    """
    try:
        yield
        db.session.commit()
    except StaleDataError:
        db.session.rollback()
        err = ConflictError(_("Someone else changed this record while you were editing it. "
                              "Reload the page to see their change, then try again."))
        flash(err.message, "error")
        raise ActionFailed(err) from None
    except ServiceError as err:
        db.session.rollback()
        field = getattr(form, err.field, None) if (form is not None and err.field) else None
        if field is not None:
            field.errors = [*field.errors, err.message] if isinstance(field.errors, list) \
                else [err.message]
        flash(err.message, "error")
        raise ActionFailed(err) from None
    except Exception:
        db.session.rollback()
        raise
    if success:
        flash(success, "success")


def page_arg(request) -> int:
    try:
        return max(1, int(request.args.get("page", 1)))
    except ValueError:
        return 1
