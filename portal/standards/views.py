from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.core.i18n import select_locale
from portal.core.permissions import Perm, allowed, require
from portal.core.web import ConfirmForm, one_click, submit
from portal.extensions import db
from portal.standards import services
from portal.standards.forms import (
    ClauseForm,
    LockedForm,
    NewDraftForm,
    RejectForm,
    StandardForm,
)
from portal.standards.diff import diff_versions
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
    done = submit(form, lambda: services.create_standard(
        code=form.code.data, title_zh=form.title_zh.data, title_en=form.title_en.data,
        category=form.category.data, summary=form.summary.data, audience=form.audience.data,
        effective_from=form.effective_from.data, author=current_user),
        lambda std: _("Standard %(code)s created with a draft version 1.", code=std.code))
    if done.ok:
        return redirect(url_for("standards.version", version_id=done.result.versions[0].id))
    return render_template("standards/form.html", form=form)


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
            reject_form: RejectForm | None = None):
    v = _version_or_404(version_id)
    ack = services.acknowledgement_of(v, current_user)
    return render_template("standards/version.html", version=v, ack=ack,
                           clause_form=clause_form or ClauseForm(), confirm=ConfirmForm(),
                           locked=LockedForm(lock=v.version),
                           reject_form=reject_form or RejectForm(lock=v.version))


@bp.post("/versions/<int:version_id>/clauses")
@require(Perm.AUTHOR_STANDARDS)
def add_clause(version_id: int):
    v = _version_or_404(version_id)
    form = ClauseForm()
    done = submit(form, lambda: services.add_clause(
        v, number=form.number.data, title_zh=form.title_zh.data, title_en=form.title_en.data,
        body=form.body.data, fine=form.fine.data, rules=form.rule_items()),
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


@bp.post("/versions/<int:version_id>/reject")
@require(Perm.APPROVE_STANDARDS)
def reject(version_id: int):
    v = _version_or_404(version_id)
    form = RejectForm()
    done = submit(form, lambda: services.reject_version(v, current_user, form.reason.data,
                                                        form.expected()),
                  _("%(label)s sent back to its author.", label=v.label))
    if done.ok:
        return redirect(url_for("standards.version", version_id=v.id))
    return version(version_id, reject_form=form), 400


@bp.post("/versions/<int:version_id>/publish")
@require(Perm.PUBLISH_STANDARDS)
def publish(version_id: int):
    return _workflow(version_id, services.publish_version, _("%(label)s published."))


@bp.post("/versions/<int:version_id>/acknowledge")
@require(Perm.ACKNOWLEDGE)
def acknowledge(version_id: int):
    v = _version_or_404(version_id)
    return one_click(lambda: services.acknowledge(v, current_user, ip=request.remote_addr or "",
                                                  user_agent=request.user_agent.string),
                     _("You acknowledged %(label)s.", label=v.label),
                     url_for("standards.version", version_id=v.id))


@bp.get("/versions/<int:version_id>/coverage")
@require(Perm.VIEW_ACK_COVERAGE)
def coverage(version_id: int):
    v = _version_or_404(version_id)
    return render_template("standards/coverage.html", version=v, cov=services.coverage(v))
