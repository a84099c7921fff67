"""How a view runs one user action: one transaction, a clear message, nothing half-written."""
from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import flash, redirect
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from sqlalchemy.orm.exc import StaleDataError
from wtforms import FieldList

from portal.core.errors import ConflictError, ServiceError
from portal.extensions import db


class ActionFailed(Exception):
    """Raised out of ``action()`` after the failure was rolled back and shown to the user."""

    def __init__(self, error: ServiceError):
        super().__init__(error.message)
        self.error = error


class ConfirmForm(FlaskForm):
    """A bare form for one-click actions: it carries only the CSRF token."""


@dataclass
class _Done:
    message: str | None = None


@contextmanager
def action(form=None, success: str | None = None):
    """One user action = one transaction.

    Commits when the block succeeds and flashes ``success`` (or the ``message`` set on the yielded
    object); on a ``ServiceError`` or a lost optimistic-lock race rolls everything back, shows the
    message beside the form field at fault (or as a flash) and raises ``ActionFailed``.
    """
    done = _Done(success)
    try:
        yield done
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
        if field is not None and not isinstance(field, FieldList):  # shown beside the field
            field.errors = [*field.errors, err.message]
        else:
            flash(err.message, "error")
        raise ActionFailed(err) from None
    except Exception:
        db.session.rollback()
        raise
    if done.message:
        flash(done.message, "success")


@dataclass
class Outcome:
    ok: bool
    result: Any = None


def submit(form, run: Callable[[], Any],
           success: str | Callable[[Any], str] | None = None) -> Outcome:
    """Validate ``form``, then run ``run()`` as one action.

    ``success`` is the message to flash, or a function of ``run``'s result that makes it.
    ``ok`` is False when the form was invalid or the action was refused (the user was told).
    """
    if not form.validate_on_submit():
        return Outcome(False)
    try:
        with action(form) as done:
            result = run()
            done.message = success(result) if callable(success) else success
    except ActionFailed:
        return Outcome(False)
    return Outcome(True, result)


def one_click(run: Callable[[], Any], success: str, target: str):
    """A button that does one thing (publish, acknowledge...), then back to ``target``."""
    submit(ConfirmForm(), run, success)
    return redirect(target)


def page_arg(request) -> int:
    try:
        return max(1, int(request.args.get("page", 1)))
    except ValueError:
        return 1
