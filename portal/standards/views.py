from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.core.i18n import select_locale
from portal.core.permissions import Perm, allowed, party_scope, require
from portal.core.timeutil import local_today
from portal.core.web import ConfirmForm, Paged, csv_response, int_arg, one_click, submit
from portal.extensions import db
from portal.standards import campaigns, services
from portal.standards.diff import diff_versions
from portal.standards.forms import (
    CHECK_LABELS,
    ClauseForm,
    LockedForm,
    NewDraftForm,
    PublishForm,
    RejectForm,
    RetireForm,
    StandardEditForm,
    StandardForm,
)
from portal.standards.models import Standard, StandardVersion

bp = Blueprint("standards", __name__, url_prefix="/standards")


def _standard_or_404(standard_id: int) -> Standard:
    std = db.session.get(Standard, standard_id)
    if std is None or not services.may_see_standard(current_user, std):
        abort(404)
    return std


def _version_or_404(version_id: int) -> StandardVersion:
    v = db.session.get(StandardVersion, version_id)
    if v is None or not services.may_see_version(current_user, v):
        abort(404)
    return v


@bp.get("/")
@require(Perm.VIEW_STANDARDS)
def index():
    standards = services.visible_standards(current_user)
    acked = {}
    if allowed(current_user, Perm.ACKNOWLEDGE):
        for s in standards:
            if s.current_version:
                acked[s.id] = services.acknowledgement_of(s.current_version, current_user)
    return render_template("standards/index.html", standards=standards, acked=acked)


@bp.route("/new", methods=["GET", "POST"])
@require(Perm.AUTHOR_STANDARDS)
def new():
    form = StandardForm()
    form.set_owner_choices(services.possible_owners())
    if request.method == "GET":
        form.owner_id.data = current_user.id
    done = submit(form, lambda: services.create_standard(
        code=form.code.data, title_zh=form.title_zh.data, title_en=form.title_en.data,
        category=form.category.data, summary=form.summary.data, audience=form.audience.data,
        party_codes=form.party_codes.data, owner=_owner(form.owner_id.data),
        effective_from=form.effective_from.data, author=current_user,
        ack_requires_training=form.ack_requires_training.data),
        lambda std: _("Standard %(code)s created with a draft version 1.", code=std.code))
    if done.ok:
        return redirect(url_for("standards.version", version_id=done.result.versions[0].id))
    return render_template("standards/form.html", form=form)


def _owner(user_id):
    from portal.accounts.models import User

    user = db.session.get(User, user_id) if user_id else None
    return user


@bp.route("/<int:standard_id>/edit", methods=["GET", "POST"])
@require(Perm.AUTHOR_STANDARDS)
def edit(standard_id: int):
    std = _standard_or_404(standard_id)
    form = StandardEditForm(obj=std if request.method == "GET" else None)
    form.set_owner_choices(services.possible_owners())
    if request.method == "GET":
        form.audience.data = [k.value for k in std.audience_kinds]
        form.party_codes.data = ", ".join(p.code for p in std.audience_parties)
        form.owner_id.data = std.owner_id
        form.lock.data = std.version
    done = submit(form, lambda: services.update_standard(
        std, title_zh=form.title_zh.data, title_en=form.title_en.data,
        category=form.category.data, summary=form.summary.data, audience=form.audience.data,
        party_codes=form.party_codes.data, owner=_owner(form.owner_id.data),
        ack_requires_training=form.ack_requires_training.data, expected=form.expected()),
        lambda r: _("Standard %(code)s saved.", code=std.code) if not r.get("created") and
        not r.get("cancelled") else _("Standard %(code)s saved: %(new)d new reading task(s), "
                                      "%(gone)d cancelled.", code=std.code,
                                      new=r.get("created", 0), gone=r.get("cancelled", 0)))
    if done.ok:
        return redirect(url_for("standards.detail", standard_id=std.id))
    return render_template("standards/edit.html", form=form, standard=std), \
        (400 if request.method == "POST" else 200)


@bp.get("/<int:standard_id>")
@require(Perm.VIEW_STANDARDS)
def detail(standard_id: int, draft_form: NewDraftForm | None = None):
    std = _standard_or_404(standard_id)
    versions = [v for v in std.versions if services.may_see_version(current_user, v)]
    return render_template("standards/detail.html", standard=std, versions=versions,
                           draft_form=draft_form or NewDraftForm())


@bp.get("/<int:standard_id>/diff")
@require(Perm.VIEW_STANDARDS)
def diff(standard_id: int):
    std = _standard_or_404(standard_id)
    versions = [v for v in std.versions if services.may_see_version(current_user, v)]
    if not versions:
        abort(404)
    by_id = {v.id: v for v in versions}
    left = by_id.get(request.args.get("a", type=int)) or versions[max(len(versions) - 2, 0)]
    right = by_id.get(request.args.get("b", type=int)) or versions[-1]
    return render_template("standards/diff.html", standard=std, versions=versions, left=left,
                           right=right, rows=diff_versions(left, right, select_locale()))


@bp.post("/<int:standard_id>/drafts")
@require(Perm.AUTHOR_STANDARDS)
def new_draft(standard_id: int):
    std = _standard_or_404(standard_id)
    form = NewDraftForm()
    done = submit(form, lambda: services.new_draft(std, form.effective_from.data,
                                                   form.change_note.data,
                                                   material=form.material.data,
                                                   author=current_user),
                  _("New draft created."))
    if done.ok:
        return redirect(url_for("standards.version", version_id=done.result.id))
    return detail(standard_id, draft_form=form), 400


@bp.get("/versions/<int:version_id>")
@require(Perm.VIEW_STANDARDS)
def version(version_id: int, clause_form: ClauseForm | None = None,
            reject_form: RejectForm | None = None, publish_form: PublishForm | None = None,
            retire_form: RetireForm | None = None):
    v = _version_or_404(version_id)
    ack = services.acknowledgement_of(v, current_user)
    task = campaigns.task_of(v, current_user) if party_scope(current_user) is not None else None
    if publish_form is None:
        publish_form = PublishForm(lock=v.version)
        if v.status.value == "approved":
            publish_form.ack_due_on.data = campaigns.default_due_on(v)
    return render_template("standards/version.html", version=v, ack=ack, task=task,
                           clause_form=clause_form or ClauseForm(), confirm=ConfirmForm(),
                           locked=LockedForm(lock=v.version),
                           reject_form=reject_form or RejectForm(lock=v.version),
                           publish_form=publish_form,
                           retire_form=retire_form or RetireForm(lock=v.version),
                           check_labels=CHECK_LABELS)


@bp.post("/versions/<int:version_id>/clauses")
@require(Perm.AUTHOR_STANDARDS)
def add_clause(version_id: int):
    v = _version_or_404(version_id)
    form = ClauseForm()
    done = submit(form, lambda: services.add_clause(
        v, number=form.number.data, title_zh=form.title_zh.data, title_en=form.title_en.data,
        body=form.body.data, fine=form.fine.data, rules=form.rule_items(),
        check=form.check.data or None),
        lambda clause: _("Clause %(n)s added.", n=clause.number))
    if done.ok:
        return redirect(url_for("standards.version", version_id=v.id))
    return version(version_id, clause_form=form), 400


def _workflow(version_id: int, run, success: str):
    """Submit / approve / publish: one click that carries the lock the page showed."""
    v = _version_or_404(version_id)
    form = LockedForm()
    submit(form, lambda: run(v, current_user, form.expected()), success % {"label": v.label})
    return redirect(url_for("standards.version", version_id=v.id))


@bp.post("/versions/<int:version_id>/submit")
@require(Perm.AUTHOR_STANDARDS)
def submit_for_review(version_id: int):
    return _workflow(version_id, services.submit_for_review, _("%(label)s sent for review."))


@bp.post("/versions/<int:version_id>/approve")
@require(Perm.APPROVE_STANDARDS)
def approve(version_id: int):
    return _workflow(version_id, services.approve_version, _("%(label)s approved."))


def _version_form(version_id: int, form, run, success, page_form: str):
    """A workflow action with a form (reason, due date): done -> back to the version page;
    refused -> the page again with the form and its message (400)."""
    v = _version_or_404(version_id)
    done = submit(form, lambda: run(v), lambda _result: success(v))
    if done.ok:
        return redirect(url_for("standards.version", version_id=v.id))
    return version(version_id, **{page_form: form}), 400


@bp.post("/versions/<int:version_id>/reject")
@require(Perm.APPROVE_STANDARDS)
def reject(version_id: int):
    form = RejectForm()
    return _version_form(
        version_id, form,
        lambda v: services.reject_version(v, current_user, form.reason.data, form.expected()),
        lambda v: _("%(label)s sent back to its author.", label=v.label), "reject_form")


@bp.post("/versions/<int:version_id>/publish")
@require(Perm.PUBLISH_STANDARDS)
def publish(version_id: int):
    form = PublishForm()
    return _version_form(
        version_id, form,
        lambda v: services.publish_version(v, current_user, form.expected(),
                                           ack_due_on=form.ack_due_on.data),
        lambda v: _("%(label)s published; reading tasks are due on %(date)s.",
                    label=v.label, date=v.ack_due_on.isoformat()), "publish_form")


@bp.post("/versions/<int:version_id>/retire")
@require(Perm.PUBLISH_STANDARDS)
def retire(version_id: int):
    form = RetireForm()
    return _version_form(
        version_id, form,
        lambda v: services.retire_version(v, current_user, form.reason.data, form.expected()),
        lambda v: _("%(label)s retired.", label=v.label), "retire_form")


@bp.post("/versions/<int:version_id>/acknowledge")
@require(Perm.ACKNOWLEDGE)
def acknowledge(version_id: int):
    v = _version_or_404(version_id)
    return one_click(lambda: services.acknowledge(v, current_user, ip=request.remote_addr or "",
                                                  user_agent=request.user_agent.string),
                     _("You acknowledged %(label)s.", label=v.label),
                     url_for("standards.version", version_id=v.id))


# --- acknowledgement campaigns ------------------------------------------------------------

@bp.get("/to-read")
@require(Perm.ACKNOWLEDGE)
def to_read():
    open_tasks = campaigns.tasks_of(current_user)
    done = campaigns.tasks_of(current_user, statuses=(campaigns.TaskStatus.DONE,))
    return render_template("standards/to_read.html", open_tasks=open_tasks, done=done)


@bp.get("/team")
@require(Perm.VIEW_TEAM_ACKS)
def team():
    staff, versions, cells = campaigns.team_matrix(current_user.party_id)
    if request.args.get("format") == "csv":
        return csv_response(f"team-{current_user.party.code}.csv", _task_header(),
                            _task_rows(campaigns.export_rows([v.id for v in versions],
                                                             party_id=current_user.party_id)))
    return render_template("standards/team.html", staff=staff, versions=versions, cells=cells)


def _task_header() -> list[str]:
    return [_("Standard"), _("Version"), _("Party code"), _("Party"), _("Username"), _("Name"),
            _("Status"), _("Due"), _("Acknowledged at (UTC)"), _("IP"), _("Text hash"),
            _("Carried over")]


def _task_rows(tasks):
    today = local_today()
    for t in tasks:
        ack = t.acknowledgement
        status = (_("overdue") if t.is_overdue(today) else
                  _("done") if t.status is campaigns.TaskStatus.DONE else _("open"))
        yield [t.standard_version.standard.code, t.standard_version.number, t.party.code,
               t.party.name_zh, t.user.username, t.user.display_name, status,
               t.due_on.isoformat(),
               ack.acknowledged_at.strftime("%Y-%m-%d %H:%M:%S") if ack else "",
               ack.ip if ack else "", ack.text_hash if ack else "",
               _("yes") if t.carried_over else ""]


@bp.get("/coverage")
@require(Perm.VIEW_ACK_COVERAGE)
def overview():
    standards = services.visible_standards(current_user)
    live = [v for s in standards for v in s.live_versions]
    counts = campaigns.totals_by_version([v.id for v in live])
    rows = [(v, counts.get(v.id, campaigns.Totals())) for v in live]
    overall = campaigns.totals([v.id for v in live])
    if request.args.get("format") == "csv":
        what = request.args.get("what")
        if what == "overdue":
            return csv_response("overdue-acknowledgements.csv", _task_header(), _task_rows(
                campaigns.export_rows([v.id for v in live], overdue_only=True)))
        return csv_response("acknowledgement-coverage.csv",
                            [_("Standard"), _("Version"), _("Effective from"), _("Due"),
                             _("Staff"), _("Acknowledged"), _("Overdue"), "%"],
                            ([v.standard.code, v.number, v.effective_from.isoformat(),
                              v.ack_due_on.isoformat() if v.ack_due_on else "", t.total,
                              t.done, t.overdue, t.percent] for v, t in rows))
    page = int_arg(request, "page")
    overdue, n_overdue = campaigns.overdue_tasks([v.id for v in live], page=page, per_page=50)
    return render_template("standards/overview.html", rows=rows, overall=overall,
                           overdue=Paged(overdue, page, 50, n_overdue))


@bp.get("/versions/<int:version_id>/coverage")
@require(Perm.VIEW_ACK_COVERAGE)
def coverage(version_id: int):
    v = _version_or_404(version_id)
    if request.args.get("format") == "csv":
        if request.args.get("what") == "parties":
            rows, _n = campaigns.coverage_by_party(v, per_page=10**9)
            return csv_response(f"{v.standard.code}-v{v.number}-parties.csv",
                                [_("Party code"), _("Party"), _("Kind"), _("Staff"),
                                 _("Acknowledged"), _("Overdue"), "%"],
                                ([r.party.code, r.party.name_zh, r.party.kind.value,
                                  r.totals.total, r.totals.done, r.totals.overdue,
                                  r.totals.percent] for r in rows))
        return csv_response(f"{v.standard.code}-v{v.number}-acknowledgements.csv",
                            _task_header(), _task_rows(campaigns.export_rows(
                                [v.id], overdue_only=request.args.get("what") == "overdue")))
    kinds = sorted({k.value for k in v.standard.audience_kinds}
                   | {p.kind.value for p in v.standard.audience_parties})
    kind = request.args.get("kind") if request.args.get("kind") in kinds else None
    search = (request.args.get("q") or "").strip()[:50]
    incomplete = request.args.get("incomplete") == "1"
    page, opage = int_arg(request, "page"), int_arg(request, "opage")
    parties, n_parties = campaigns.coverage_by_party(v, kind=kind, search=search,
                                                     only_incomplete=incomplete, page=page)
    overdue, n_overdue = campaigns.overdue_tasks([v.id], page=opage, per_page=50)
    return render_template(
        "standards/coverage.html", version=v, totals=campaigns.totals([v.id]),
        parties=Paged(parties, page, 50, n_parties), overdue=Paged(overdue, opage, 50, n_overdue),
        kind=kind, search=search, incomplete=incomplete, kinds=kinds)


@bp.get("/versions/<int:version_id>/impact")
@require(Perm.VIEW_ACK_COVERAGE)
def impact(version_id: int):
    v = _version_or_404(version_id)
    report = campaigns.change_impact(v)
    return render_template("standards/impact.html", version=v, r=report)
