"""Training dashboards: completion and pass rates per course and per party (departments are
parties), overdue staff, a party manager's own team; each with a CSV export."""
from __future__ import annotations

from flask import abort, render_template, request
from flask_babel import gettext as _
from flask_login import current_user

from portal.core.permissions import Perm, require
from portal.core.timeutil import local_today
from portal.core.web import ConfirmForm, Paged, csv_response, int_arg
from portal.extensions import db
from portal.parties.models import PartyKind
from portal.training import reports
from portal.training.models import Course, CourseStatus, TrainingStatus
from portal.training.views import bp


def _status(t, today) -> str:
    if t.is_overdue(today):
        return _("overdue")
    return _("done") if t.status is TrainingStatus.DONE else _("open")


def _task_header() -> list[str]:
    return [_("Course"), _("Party code"), _("Party"), _("Username"), _("Name"), _("Status"),
            _("Due"), _("Completed at (UTC)"), _("Certificate code"), _("Valid until")]


def _task_rows(tasks):
    today = local_today()
    for t in tasks:
        cert = t.certificate if t.status is TrainingStatus.DONE else None
        yield [t.course.code, t.party.code if t.party else "", t.party.name_zh if t.party else "",
               t.user.username, t.user.display_name, _status(t, today),
               t.due_on.isoformat() if t.due_on else "",
               t.done_at.strftime("%Y-%m-%d %H:%M:%S") if t.done_at else "",
               cert.code if cert else "",
               cert.expires_on.isoformat() if cert and cert.expires_on else ""]


@bp.get("/reports")
@require(Perm.VIEW_TRAINING_REPORTS)
def reports_overview():
    course_list = db.session.scalars(db.select(Course).where(
        Course.status != CourseStatus.DRAFT).order_by(Course.code)).all()
    totals = reports.totals_by_course()
    rates = reports.rates_by_course()
    rows = [(c, totals.get(c.id, reports.Totals()), rates.get(c.id, reports.Rates()))
            for c in course_list]
    if request.args.get("format") == "csv":
        if request.args.get("what") == "overdue":
            return csv_response("training-overdue.csv", _task_header(),
                                _task_rows(reports.export_rows(overdue_only=True)))
        if request.args.get("what") == "tasks":
            return csv_response("training-tasks.csv", _task_header(),
                                _task_rows(reports.export_rows()))
        return csv_response("training-courses.csv",
                            [_("Course"), _("Title"), _("Assigned"), _("Completed"),
                             _("Overdue"), _("Completion %"), _("Attempts"),
                             _("Pass rate %"), _("First-try pass rate %")],
                            ([c.code, c.title_zh, t.total, t.done, t.overdue, t.percent,
                              r.submitted, r.pass_rate, r.first_try_rate] for c, t, r in rows))
    overall = reports.Totals(sum(t.total for _c, t, _r in rows), sum(t.done for _c, t, _r in rows),
                             sum(t.overdue for _c, t, _r in rows))
    page = int_arg(request, "page")
    overdue, n = reports.overdue(page=page)
    return render_template("training/dash_overview.html", rows=rows, overall=overall,
                           overdue=Paged(overdue, page, 50, n))


@bp.get("/reports/courses/<int:course_id>")
@require(Perm.VIEW_TRAINING_REPORTS)
def course_report(course_id: int):
    course = db.session.get(Course, course_id)
    if course is None:
        abort(404)
    kinds = [k.value for k in PartyKind]
    kind = request.args.get("kind") if request.args.get("kind") in kinds else None
    search = (request.args.get("q") or "").strip()[:50]
    incomplete = request.args.get("incomplete") == "1"
    if request.args.get("format") == "csv":
        if request.args.get("what") == "parties":
            rows, _n = reports.by_party(course, kind=kind, search=search,
                                        only_incomplete=incomplete, per_page=10**9)
            return csv_response(f"{course.code}-parties.csv",
                                [_("Party code"), _("Party"), _("Kind"), _("Assigned"),
                                 _("Completed"), _("Overdue"), _("Completion %"),
                                 _("Attempts"), _("Pass rate %")],
                                ([r.party.code if r.party else "", r.party.name_zh if r.party
                                  else _("Internal CS staff"),
                                  r.party.kind.value if r.party else "", r.totals.total,
                                  r.totals.done, r.totals.overdue, r.totals.percent,
                                  r.rates.submitted, r.rates.pass_rate] for r in rows))
        return csv_response(f"{course.code}-staff.csv", _task_header(), _task_rows(
            reports.export_rows(course_id=course.id,
                                overdue_only=request.args.get("what") == "overdue")))
    page, opage = int_arg(request, "page"), int_arg(request, "opage")
    parties, n_parties = reports.by_party(course, kind=kind, search=search,
                                          only_incomplete=incomplete, page=page)
    overdue, n_overdue = reports.overdue(course_id=course.id, page=opage)
    totals = reports.totals_by_course(course_id=course.id).get(course.id, reports.Totals())
    rates = reports.rates_by_course(course_id=course.id).get(course.id, reports.Rates())
    who = (request.args.get("who") or "").strip()[:50]
    state = request.args.get("state") if request.args.get("state") in reports.LEARNER_FILTERS \
        else ""
    lpage = int_arg(request, "lpage")
    people, n_people = reports.learners(course, search=who, state=state, page=lpage)
    return render_template("training/dash_course.html", course=course, totals=totals,
                           rates=rates, parties=Paged(parties, page, 50, n_parties),
                           overdue=Paged(overdue, opage, 50, n_overdue), kind=kind,
                           search=search, incomplete=incomplete, kinds=kinds,
                           people=Paged(people, lpage, 50, n_people), who=who, state=state,
                           today=local_today(), confirm=ConfirmForm())


@bp.get("/team")
@require(Perm.VIEW_TEAM_TRAINING)
def team():
    party_id = current_user.party_id
    staff, courses, cells = reports.team(party_id)
    if request.args.get("format") == "csv":
        return csv_response(f"training-team-{current_user.party.code}.csv", _task_header(),
                            _task_rows(reports.export_rows(party_id=party_id)))
    totals = reports.totals_by_course(party_id=party_id)
    return render_template("training/dash_team.html", staff=staff, courses=courses,
                           cells=cells, totals=totals)
