"""How a view runs one user action: one transaction, a clear message, nothing half-written."""
from __future__ import annotations

import csv
import io
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Response, flash, redirect, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm.exc import StaleDataError
from wtforms import FieldList

from portal.core.errors import ConflictError, RecordedRefusal, ServiceError
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
    category: str = "success"     # "warning" for an outcome that worked but is not good news


@contextmanager
def action(form=None, success: str | None = None, *, place: str = ""):
    """One user action = one transaction.

    Commits when the block succeeds and flashes ``success`` (or the ``message`` set on the yielded
    object); on a ``ServiceError`` or a lost optimistic-lock race rolls everything back, shows the
    message beside the form field at fault (or as a flash) and raises ``ActionFailed``.

    ``place`` shows the messages in one part of the page instead of at its top (a category
    ``error@place``: see ``flashes(place)`` in macros.html), for a form far down a long page.
    """
    done = _Done(success)
    try:
        yield done
        db.session.commit()
    except StaleDataError:
        db.session.rollback()
        err = ConflictError(_("Someone else changed this record while you were editing it. "
                              "Reload the page to see their change, then try again."))
        flash(err.message, _at("error", place))
        raise ActionFailed(err) from None
    except ServiceError as err:
        db.session.rollback()
        if isinstance(err, RecordedRefusal):
            err.record()
            db.session.commit()
        field = getattr(form, err.field, None) if (form is not None and err.field) else None
        if field is not None and not isinstance(field, FieldList):  # shown beside the field
            field.errors = [*field.errors, err.message]
        else:
            flash(err.message, _at("error", place))
        raise ActionFailed(err) from None
    except Exception:
        db.session.rollback()
        raise
    if done.message:
        flash(done.message, _at(done.category, place))


def _at(category: str, place: str) -> str:
    return f"{category}@{place}" if place else category


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
    for attempt in range(1, RETRY_ATTEMPTS + 1):
        try:
            with action(form) as done:
                result = run()
                done.message = success(result) if callable(success) else success
        except ActionFailed:
            return Outcome(False)
        except DBAPIError as exc:     # rolled back by ``action``
            if attempt == RETRY_ATTEMPTS or not retryable(exc):
                raise
            continue
        return Outcome(True, result)
    raise AssertionError("unreachable")


# PostgreSQL's deadlock_detected and serialization_failure: the transaction was rolled back
# whole and the same action may simply run again (PostgreSQL's own advice for these errors).
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
RETRY_ATTEMPTS = 3


def retryable(exc: BaseException) -> bool:
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in RETRYABLE_SQLSTATES


def one_click(run: Callable[[], Any], success: str, target: str):
    """A button that does one thing (publish, acknowledge...), then back to ``target``."""
    submit(ConfirmForm(), run, success)
    return redirect(target)


def safe_target(target: str | None, default: str | None = None) -> str:
    """Where to send the browser back to after an action that carries a ``next``: a path on
    this portal, else ``default`` (the home page), never an error.

    Refused: anything that is not an absolute path (``/...``), a network-path reference
    (``//host``), any backslash (browsers read it as a slash) and any control character
    (browsers drop a tab or newline from a URL, so slash, tab, slash is ``//`` to them; and a
    newline in a ``Location`` header is an error)."""
    fallback = default or url_for("main.home")
    target = target or ""
    if (not target.startswith("/") or target.startswith("//") or "\\" in target
            or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target)):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return fallback
    return target


def page_arg(request) -> int:
    return int_arg(request, "page")


@dataclass
class Paged:
    """One page of a list counted in SQL, shaped for the ``pager`` macro."""

    items: list
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def prev_num(self) -> int:
        return self.page - 1

    @property
    def next_num(self) -> int:
        return self.page + 1


@dataclass
class CappedPage(Paged):
    """A page of a long list whose total is counted only up to ``cap`` + 1 ("10,000+"); whether
    a next page exists is known from the page's own query (one row more than shown)."""

    more: bool = False
    cap: int = 10_000

    @property
    def capped(self) -> bool:
        return self.total > self.cap

    @property
    def pages(self) -> int:
        return max(1, -(-min(self.total, self.cap) // self.per_page))

    @property
    def has_next(self) -> bool:
        return self.more


def capped_page(q, id_column, page: int, per_page: int, cap: int = 10_000) -> CappedPage:
    """One page of the select ``q`` (ordered; options for eager loading already on it), its
    rows fetched with one row more to know whether another page follows, and counted only up
    to ``cap`` (and not at all when the first page holds everything)."""
    from sqlalchemy import func, select

    from portal.extensions import db

    found = db.session.scalars(q.offset((page - 1) * per_page).limit(per_page + 1)).all()
    more = len(found) > per_page
    found = found[:per_page]
    if page == 1 and not more:
        total = len(found)
    else:
        ids = q.with_only_columns(id_column).order_by(None).limit(cap + 1).subquery()
        total = db.session.scalar(select(func.count()).select_from(ids))
    return CappedPage(found, page, per_page, total, more=more, cap=cap)


def int_arg(request, name: str, default: int = 1) -> int:
    try:
        return max(1, int(request.args.get(name, default)))
    except ValueError:
        return default


def spreadsheet_safe(value):
    """A text cell a spreadsheet would run as a formula (=, +, -, @, tab, CR) made plain text
    (CSV injection); numbers are left as they are."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_response(filename: str, header: list[str], rows) -> Response:
    """``rows`` as a CSV download (UTF-8 with BOM, so Excel opens Chinese correctly), every
    text cell ``spreadsheet_safe``.

    Built in full before the response starts: the rows come from the database session, which
    is gone by the time a streamed body would be read."""
    buf = io.StringIO()
    buf.write("\ufeff")
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows([spreadsheet_safe(v) for v in row] for row in rows)
    return Response(buf.getvalue(), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def allow_large_body(limit: int) -> None:
    """Let this request's body be up to ``limit`` bytes, then check its CSRF token.

    For upload views marked ``csrf.exempt``: the app-wide CSRF check would read the body under
    the default ``MAX_CONTENT_LENGTH`` before the view could raise it. Raises Werkzeug's
    ``RequestEntityTooLarge`` when the body is larger, ``CSRFError`` when the token is wrong."""
    from flask import request

    from portal.extensions import csrf

    request.max_content_length = limit
    csrf.protect()
