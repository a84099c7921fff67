from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from portal.cases import appeals, rulings, services
from portal.cases.forms import (
    AppealForm,
    CaseForm,
    DecideAppealForm,
    DeclineForm,
    RulingForm,
    ViolationForm,
)
from portal.cases.models import (
    Appeal,
    AppealStatus,
    Case,
    CaseStatus,
    Ruling,
    RulingStatus,
)
from portal.core import filters
from portal.core.forms import choices
from portal.core.i18n import select_locale
from portal.core.money import format_yuan
from portal.core.permissions import Perm, Role, allowed, ensure_visible, party_scope, require
from portal.core.timeutil import zone
from portal.core.web import ConfirmForm, csv_response, one_click, page_arg, submit
from portal.extensions import db
from portal.intake.review import clause_options
from portal.parties.forms import KIND_LABELS
from portal.parties.models import Party, PartyKind
from portal.standards.models import Clause

bp = Blueprint("cases", __name__)


def _case_or_404(case_id: int) -> Case:
    case = db.session.get(Case, case_id) or abort(404)
    ensure_visible(case.party_ids())
    return case


def _party_choices():
    parties = db.session.scalars(select(Party).where(Party.active.is_(True))
                                 .order_by(Party.kind, Party.code)).all()
    return [(p.id, f"{p.code} {p.name_zh} · {KIND_LABELS[p.kind]}") for p in parties]


def _violation_form(form: ViolationForm | None = None) -> ViolationForm:
    form = form or ViolationForm()
    form.clause_id.choices = choices(
        (c.id, f"{c.label} {c.title_zh}" + (f" (¥{c.fine_per_occurrence})" if c.fine_per_occurrence else ""))
        for c in services.ruled_clauses())
    form.party_id.choices = choices(_party_choices())
    return form


def _ruling_form(form: RulingForm | None = None) -> RulingForm:
    form = form or RulingForm()
    options = choices([(0, "—")] + _party_choices())
    for row in form.shares:
        row.form.party_id.choices = options
    return form


def _case_filters(args, tz) -> tuple[services.CaseFilters, dict[str, str]]:
    f, errors = services.CaseFilters(), {}
    f.q = filters.text(args, "q", 60)
    status = args.get("status", "")
    if status:
        try:
            f.status = CaseStatus(status)
        except ValueError:
            errors["status"] = _("Unknown status.")
    f.kind = filters.party_kind(args, errors)
    f.party = filters.text(args, "party")
    f.standard_id, f.clause_number = filters.clause(args, errors)
    f.incident_from = filters.local_day(args, errors, "from", tz)
    f.incident_to = filters.local_day(args, errors, "to", tz, end=True)
    f.min_amount = filters.amount(args, errors, "min")
    appeal = args.get("appeal", "")
    if appeal and appeal not in services.APPEAL_CHOICES:
        errors["appeal"] = _("Unknown appeal filter.")
        appeal = ""
    f.appeal, f.open_appeal = appeal, appeal == "open"
    f.appeal_from = filters.local_day(args, errors, "appeal_from", tz)
    f.appeal_to = filters.local_day(args, errors, "appeal_to", tz, end=True)
    return f, errors


@bp.get("/cases")
@require(Perm.VIEW_CASES)
def index():
    scope = party_scope(current_user)
    f, errors = _case_filters(request.args, zone(current_user.timezone))
    page = services.cases_page(current_user, f, page_arg(request))
    ctx = {"page": page, "scope": scope, "filters": f, "errors": errors,
           "statuses": list(CaseStatus), "count_cap": services.COUNT_CAP}
    if scope is None:
        ctx.update(kinds=list(PartyKind), clauses=clause_options(select_locale(), everything=True))
    return render_template("cases/index.html", **ctx)


@bp.route("/cases/new", methods=["GET", "POST"])
@require(Perm.HANDLE_CASES)
def new():
    form = CaseForm()
    done = submit(form, lambda: services.open_case(
        title=form.title.data, description=form.description.data,
        incident_at=form.incident_at.utc(current_user.timezone), user=current_user),
        lambda case: _("Case %(n)s opened.", n=case.number))
    if done.ok:
        return redirect(url_for("cases.detail", case_id=done.result.id))
    return render_template("cases/form.html", form=form)


@bp.get("/cases/<int:case_id>")
@require(Perm.VIEW_CASES)
def detail(case_id: int, violation_form=None, ruling_form=None, decline_form=None,
           appeal_form=None, decide_form=None):
    case = _case_or_404(case_id)
    scope = party_scope(current_user)
    ctx = {"case": case, "total": services.case_total(case), "scope": scope,
           "violations": case.violations_for(scope), "penalties": case.penalties_for(scope),
           "appeals": appeals.appeals_of(case, scope)}
    if scope is not None and allowed(current_user, Perm.APPEAL):
        ctx["appeal_window"] = appeals.window(case, scope)
        if ctx["appeal_window"]:
            ctx["appeal_form"] = appeal_form or AppealForm()
    if allowed(current_user, Perm.HANDLE_CASES) and case.ruling and \
            case.ruling.officer_id != current_user.id:
        ctx["decide_form"] = decide_form or DecideAppealForm()
    if scope is None:     # CS and auditors: what each party knew of the clauses
        parties = sorted({v.party_id for v in case.violations} | {
            s.party_id for r in case.rulings for s in r.shares})
        ctx["standing"] = rulings.standing(case, parties)
        ctx["parties"] = {p.id: p for p in db.session.scalars(
            select(Party).where(Party.id.in_(parties)))}
    if allowed(current_user, Perm.HANDLE_CASES):
        ctx["violation_form"] = _violation_form(violation_form)
        ruling_form = _ruling_form(ruling_form)
        if not ruling_form.is_submitted():
            ruling_form.case_version.data = case.version
        ctx["ruling_form"] = ruling_form
        pending = case.pending_ruling
        if pending is not None and pending.officer_id != current_user.id and \
                rulings.may_sign(current_user, Role(pending.required_role)):
            ctx["decline_form"] = decline_form or DeclineForm()
            ctx["confirm"] = ConfirmForm()
    return render_template("cases/detail.html", **ctx)


@bp.post("/cases/<int:case_id>/violations")
@require(Perm.HANDLE_CASES)
def add_violation(case_id: int):
    case = _case_or_404(case_id)
    form = _violation_form()
    done = submit(form, lambda: services.record_violation(
        case, clause=db.session.get(Clause, form.clause_id.data),
        party=db.session.get(Party, form.party_id.data), occurrences=form.occurrences.data,
        evidence=form.evidence.data, user=current_user), _("Violation recorded."))
    if done.ok:
        return redirect(url_for("cases.detail", case_id=case.id))
    return detail(case_id, violation_form=form), 400


@bp.post("/cases/<int:case_id>/ruling")
@require(Perm.HANDLE_CASES)
def rule(case_id: int):
    case = _case_or_404(case_id)
    form = _ruling_form()

    def shares():
        return [rulings.ShareInput(party_id=r.party_id.data, percent=r.percent.data or 0,
                                   employee_no=r.employee_no.data or "",
                                   employee_name=r.employee_name.data or "",
                                   override_reason=r.override_reason.data or "")
                for r in (row.form for row in form.shares) if r.party_id.data]

    def version():
        try:
            return int(form.case_version.data)
        except (TypeError, ValueError):
            return None

    def message(ruling):
        if ruling.status is RulingStatus.PENDING:
            return _("Ruling %(r)s on %(n)s for %(amount)s waits for the signature of a "
                     "%(role)s.", r=ruling.number, n=case.number,
                     amount=format_yuan(ruling.total_amount),
                     role=rulings.role_label(Role(ruling.required_role)))
        return _("Ruling issued on %(n)s.", n=case.number)

    done = submit(form, lambda: rulings.issue_ruling(
        case, officer=current_user, rationale=form.rationale.data, shares=shares(),
        case_version=version(), supersede_reason=form.supersede_reason.data or ""), message)
    if done.ok:
        return redirect(url_for("cases.detail", case_id=case.id))
    return detail(case_id, ruling_form=form), 400


@bp.post("/cases/<int:case_id>/appeals")
@require(Perm.APPEAL)
def file_appeal(case_id: int):
    case = _case_or_404(case_id)
    form = AppealForm()
    done = submit(form, lambda: appeals.file_appeal(case, party_scope(current_user),
                                                    form.statement.data, current_user),
                  _("Appeal filed. Customer service decides it; follow it on this page."))
    if done.ok:
        return redirect(url_for("cases.detail", case_id=case.id))
    return detail(case_id, appeal_form=form), 400


@bp.post("/cases/<int:case_id>/appeals/<int:appeal_id>/decide")
@require(Perm.HANDLE_CASES)
def decide_appeal(case_id: int, appeal_id: int):
    appeal = _of_case_or_404(Appeal, case_id, appeal_id)
    form = DecideAppealForm()
    done = submit(form, lambda: appeals.decide_appeal(
        appeal, current_user, AppealStatus(form.outcome.data), form.reason.data,
        fine=form.fine.data, compensation=form.compensation.data, points=form.points.data),
        _("Appeal %(a)s decided; the party sees the outcome and your reasons.",
          a=appeal.number))
    if done.ok:
        return redirect(url_for("cases.detail", case_id=case_id))
    return detail(case_id, decide_form=form), 400


def _of_case_or_404(model, case_id: int, object_id: int):
    """A ruling or appeal of a case the user may see, or 404 (also for another case's)."""
    case = _case_or_404(case_id)
    found = db.session.get(model, object_id)
    if found is None or found.case_id != case.id:
        abort(404)
    return found


@bp.post("/cases/<int:case_id>/rulings/<int:ruling_id>/approve")
@require(Perm.HANDLE_CASES)
def approve(case_id: int, ruling_id: int):
    ruling = _of_case_or_404(Ruling, case_id, ruling_id)
    return one_click(lambda: rulings.approve_ruling(ruling, current_user),
                     _("You signed ruling %(r)s: it is in effect.", r=ruling.number),
                     url_for("cases.detail", case_id=case_id))


@bp.post("/cases/<int:case_id>/rulings/<int:ruling_id>/decline")
@require(Perm.HANDLE_CASES)
def decline(case_id: int, ruling_id: int):
    ruling = _of_case_or_404(Ruling, case_id, ruling_id)
    form = DeclineForm()
    done = submit(form, lambda: rulings.decline_ruling(ruling, current_user, form.reason.data),
                  _("Ruling %(r)s declined; the officer sees your reason.", r=ruling.number))
    if done.ok:
        return redirect(url_for("cases.detail", case_id=case_id))
    return detail(case_id, decline_form=form), 400


def _ledger_filters(args, tz) -> tuple[services.LedgerFilters, dict[str, str]]:
    f, errors = services.LedgerFilters(), {}
    f.kind = filters.party_kind(args, errors)
    f.party = filters.text(args, "party")
    period = filters.month(args, errors, "month", tz)
    if period:
        f.since, f.until = period
    else:
        f.since = filters.local_day(args, errors, "from", tz)
        f.until = filters.local_day(args, errors, "to", tz, end=True)
    try:
        f.status = services.LedgerStatus(args.get("status") or services.LedgerStatus.STANDING)
    except ValueError:
        errors["status"] = _("Unknown status.")
    case = filters.text(args, "case", 20)
    if case:
        number = services.CASE_NO.match(case)
        if number:
            f.case_no = int(number.group(1))
        else:
            errors["case"] = _("Enter a case number, e.g. CASE-000123.")
    return f, errors


@bp.get("/penalties")
@require(Perm.VIEW_PENALTIES)
def penalties():
    """The penalty ledger: per party (filter), with the totals of everything that matches."""
    scope = party_scope(current_user)
    f, errors = _ledger_filters(request.args, zone(current_user.timezone))
    if request.args.get("format") == "csv":
        return _ledger_csv(f)
    ctx = {"page": services.ledger_page(current_user, f, page_arg(request)),
           "totals": services.ledger_totals(current_user, f), "filters": f, "errors": errors,
           "scope": scope, "statuses": list(services.LedgerStatus),
           "count_cap": services.COUNT_CAP}
    if scope is None:
        ctx["kinds"] = list(PartyKind)
    return render_template("cases/penalties.html", **ctx)


LEDGER_CSV_MAX = 100_000


def _ledger_csv(f: services.LedgerFilters):
    """The matching penalties as CSV, read as plain columns (no objects) to stay quick."""
    from portal.cases.models import ResponsibilityShare

    matching = services.visible_penalties_query(current_user, f).limit(LEDGER_CSV_MAX).subquery()
    q = (select(matching.c.id, matching.c.case_id, matching.c.ruling_id, Party.code,
                Party.name_zh, ResponsibilityShare.percent, matching.c.created_at,
                matching.c.withdrawn_at, matching.c.fine, matching.c.compensation,
                matching.c.amount, matching.c.points)
         .join(Party, Party.id == matching.c.party_id)
         .join(ResponsibilityShare, ResponsibilityShare.id == matching.c.share_id)
         .order_by(matching.c.created_at.desc(), matching.c.id.desc()))
    tz = zone(current_user.timezone)

    def when(moment):
        return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M") if moment else ""

    rows = ([f"P-{r.id:06d}", f"CASE-{r.case_id:06d}", f"R-{r.ruling_id:06d}", r.code, r.name_zh,
             r.percent, when(r.created_at), when(r.withdrawn_at), r.fine, r.compensation,
             r.amount, r.points] for r in db.session.execute(q))
    return csv_response("penalties.csv", [
        _("Penalty"), _("Case"), _("Ruling"), _("Party code"), _("Party"), _("Share %"),
        _("Standing from"), _("Withdrawn on"), _("Fine"), _("Compensation recovered"),
        _("Amount"), _("Points")], rows)


from portal.cases import evidence_views, statement_views  # noqa: F401  (their routes on bp)
