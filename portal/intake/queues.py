"""The review queue of proposed violations and the follow-up queue (跟单) of late shipments.

Pages on the intake blueprint: CS and auditors read them (``Perm.VIEW_INTAKE``), CS officers
act (``Perm.HANDLE_CASES``). The operations are in ``intake.review``. The two small forms live
here with the only pages that use them.
"""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import format_datetime, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from portal.core import filters
from portal.core.i18n import select_locale
from portal.core.permissions import Perm, allowed, require
from portal.core.timeutil import local_day_bounds_utc, local_today, zone
from portal.core.web import Paged, csv_response, page_arg, submit
from portal.extensions import db
from portal.intake import followup, review
from portal.intake.models import Ticket
from portal.intake.views import bp
from portal.parties.forms import KIND_LABELS
from portal.parties.models import Party, PartyKind

# --- forms ------------------------------------------------------------------------------------


class ReviewActionForm(FlaskForm):
    """Confirm, merge or dismiss: the ticked proposals (``ids``), or the one whose own button
    was pressed (``one``)."""

    ids = SelectMultipleField(coerce=int, validate_choice=False)
    one = IntegerField(validators=[Optional()])
    case_no = StringField(_l("Case number"), validators=[Optional(), Length(max=20)],
                          description=_l("To merge into an open case, e.g. CASE-000123."))
    reason = TextAreaField(_l("Reason for dismissing"),
                           validators=[Optional(), Length(max=review.REASON_MAX)])

    def selected(self) -> list[int]:
        return [self.one.data] if self.one.data else list(self.ids.data or [])


class ChaseForm(FlaskForm):
    ticket_no = HiddenField(validators=[DataRequired(), Length(max=40)])
    note = StringField(_l("What was done"), validators=[
        DataRequired(message=_l("Say what was done (whom you reached, what they promised).")),
        Length(max=followup.NOTE_MAX)])


# --- the review queue -------------------------------------------------------------------------

def _filters(args) -> tuple[review.QueueFilters, dict[str, str]]:
    """The queue's filters from the query string; a value that cannot be read is ignored and
    said beside its box."""
    f, errors = review.QueueFilters(), {}
    f.kind = filters.party_kind(args, errors)
    f.party = filters.text(args, "party")
    f.standard_id, f.clause_number = filters.clause(args, errors)
    f.min_amount = filters.amount(args, errors, "min")
    f.older_than_days = filters.whole_number(
        args, errors, "age", 1, 3650, _("Enter a whole number of days from 1 to 3650."))
    f.number = filters.text(args, "q", 40)
    try:
        f.sort = review.Sort(args.get("sort") or review.Sort.OLDEST)
    except ValueError:
        f.sort = review.Sort.OLDEST
    return f, errors


def _here(endpoint: str, **changes) -> str:
    """``endpoint`` with this page's query string (the filters and page travel with a form)."""
    path = request.view_args or {}
    args = {k: v for k, v in {**request.args.to_dict(), **changes}.items() if k not in path}
    return url_for(endpoint, **path, **args)


@bp.get("/review")
@require(Perm.VIEW_INTAKE)
def review_queue(action_form: ReviewActionForm | None = None):
    filters, errors = _filters(request.args)
    locale = select_locale()
    page = review.queue_page(filters, page_arg(request), zone(current_user.timezone))
    ctx = {"page": page, "filters": filters, "errors": errors, "kinds": list(PartyKind),
           "clauses": review.clause_options(locale), "sorts": list(review.Sort),
           "count_cap": review.COUNT_CAP, "here": _here,
           "kind_labels": {k: str(label) for k, label in KIND_LABELS.items()}}
    if allowed(current_user, Perm.HANDLE_CASES):
        ctx["form"] = action_form or ReviewActionForm()
    return render_template("intake/review.html", **ctx)


def _review_action(run, success):
    """Run one queue action on the posted selection: done -> the queue again (same filters);
    refused -> the queue with the message and the form as typed (400)."""
    form = ReviewActionForm()
    done = submit(form, lambda: run(form), success)
    if done.ok:
        for z in done.result.zeroed:
            flash(z.message(), "warning")
        return redirect(_here("intake.review_queue"))
    if form.ids.errors or form.one.errors:
        flash(_("The selection could not be read; reload the queue and select again."), "error")
    return review_queue(action_form=form), 400


@bp.post("/review/confirm")
@require(Perm.HANDLE_CASES)
def review_confirm():
    return _review_action(
        lambda form: review.confirm(form.selected(), user=current_user,
                                    tz=zone(current_user.timezone)),
        lambda r: ngettext("Case %(case)s opened with %(num)d violation.",
                           "Case %(case)s opened with %(num)d violations.",
                           len(r.violations), case=r.case.number))


@bp.post("/review/merge")
@require(Perm.HANDLE_CASES)
def review_merge():
    return _review_action(
        lambda form: review.merge(form.selected(), form.case_no.data, user=current_user),
        lambda r: ngettext("%(num)d violation merged into case %(case)s.",
                           "%(num)d violations merged into case %(case)s.",
                           len(r.violations), case=r.case.number))


@bp.post("/review/dismiss")
@require(Perm.HANDLE_CASES)
def review_dismiss():
    return _review_action(
        lambda form: review.dismiss(form.selected(), form.reason.data, user=current_user),
        lambda r: ngettext("%(num)d violation dismissed.", "%(num)d violations dismissed.",
                           len(r.violations)))


# --- the follow-up queue (跟单) ----------------------------------------------------------------

def _portal_zone() -> str:
    return current_app.config["PORTAL_DEFAULT_TIMEZONE"]


def _when(moment) -> str:
    return format_datetime(moment, "yyyy-MM-dd HH:mm") if moment else ""


@bp.get("/follow-up")
@require(Perm.VIEW_INTAKE)
def follow_up():
    today = local_today()
    day_start, _end = local_day_bounds_utc(today, today, zone(_portal_zone()))
    carriers = followup.late_by_carrier(day_start, _portal_zone())
    if request.args.get("format") == "csv":
        return csv_response("follow-up.csv", [
            _("Carrier code"), _("Carrier"), _("Late shipments"), _("Oldest promised time"),
            _("Days late"), _("Hours late"), _("Chased today")],
            [(c.carrier.code, c.carrier.name(select_locale()), c.late,
              _when(c.oldest_promised_at), c.oldest.days, c.oldest.hours, c.chased_today)
             for c in carriers])
    return render_template("intake/followup.html", carriers=carriers,
                           total=sum(c.late for c in carriers))


def _carrier_or_404(carrier_id: int) -> Party:
    carrier = db.session.get(Party, carrier_id)
    if carrier is None or carrier.kind is not PartyKind.CARRIER:
        abort(404)
    return carrier


@bp.get("/follow-up/<int:carrier_id>")
@require(Perm.VIEW_INTAKE)
def follow_up_carrier(carrier_id: int, chase_form: ChaseForm | None = None):
    carrier = _carrier_or_404(carrier_id)
    if request.args.get("format") == "csv":
        shipments, _total = followup.late_shipments(carrier.id, None, default_tz=_portal_zone())
        return csv_response(f"follow-up-{carrier.code}.csv", [
            _("Ticket"), _("Order"), _("Promised"), _("Days late"), _("Hours late"),
            _("Chases"), _("Last chased"), _("Chased by"), _("Note")],
            [(s.ticket.ticket_no, s.ticket.order_no, _when(s.ticket.promised_at),
              s.lateness.days, s.lateness.hours, s.chases,
              _when(s.last_chase.chased_at) if s.last_chase else "",
              s.last_chase.user.display_name if s.last_chase else "",
              s.last_chase.note if s.last_chase else "") for s in shipments])
    page = page_arg(request)
    shipments, total = followup.late_shipments(carrier.id, page, default_tz=_portal_zone())
    ctx = {"carrier": carrier, "page": Paged(shipments, page, followup.PER_PAGE, total),
           "here": _here}
    if allowed(current_user, Perm.HANDLE_CASES):
        ctx["chase_form"] = chase_form or ChaseForm()
    return render_template("intake/followup_carrier.html", **ctx)


@bp.post("/follow-up/<int:carrier_id>/chase")
@require(Perm.HANDLE_CASES)
def chase(carrier_id: int):
    carrier = _carrier_or_404(carrier_id)
    form = ChaseForm()
    ticket = None
    if (form.ticket_no.data or "").strip():
        ticket = db.session.get(Ticket, form.ticket_no.data.strip())
        if ticket is None or ticket.carrier_id != carrier.id:
            abort(404)
    done = submit(form, lambda: followup.chase(ticket, form.note.data, user=current_user),
                  _("Chase recorded for ticket %(t)s.", t=form.ticket_no.data))
    if done.ok:
        return redirect(_here("intake.follow_up_carrier", _anchor=f"t-{ticket.ticket_no}"))
    return follow_up_carrier(carrier.id, chase_form=form), 400
