from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.core.permissions import Perm, allowed, require
from portal.core.web import ActionFailed, action
from portal.extensions import db
from portal.parties.forms import KIND_LABELS
from portal.standards import services
from portal.standards.forms import ClauseForm, ConfirmForm, NewDraftForm, StandardForm
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
    return render_template("standards/index.html", standards=standards, acked=acked,
                           kind_labels=KIND_LABELS)


@bp.route("/new", methods=["GET", "POST"])
@require(Perm.AUTHOR_STANDARDS)
def new():
    form = StandardForm()
    if form.validate_on_submit():
        try:
            with action(form, success=_("Standard %(code)s created with a draft version 1.",
                                        code=form.code.data.upper())):
                std = services.create_standard(
                    code=form.code.data, title_zh=form.title_zh.data, title_en=form.title_en.data,
                    category=form.category.data, summary=form.summary.data,
                    audience=form.audience.data, effective_from=form.effective_from.data)
            return redirect(url_for("standards.version", version_id=std.versions[0].id))
        except ActionFailed:
            pass
    return render_template("standards/form.html", form=form)


@bp.get("/<int:standard_id>")
@require(Perm.VIEW_STANDARDS)
def detail(standard_id: int):
    std = _standard_or_404(standard_id)
    versions = [v for v in std.versions if services.may_see_version(current_user, v)]
    return render_template("standards/detail.html", standard=std, versions=versions,
                           draft_form=NewDraftForm(), kind_labels=KIND_LABELS)


@bp.post("/<int:standard_id>/drafts")
@require(Perm.AUTHOR_STANDARDS)
def new_draft(standard_id: int):
    std = _standard_or_404(standard_id)
    form = NewDraftForm()
    if not form.validate_on_submit():
        return render_template("standards/detail.html", standard=std, versions=std.versions,
                               draft_form=form, kind_labels=KIND_LABELS), 400
    try:
        with action(form, success=_("New draft created.")):
            draft = services.new_draft(std, form.effective_from.data, form.change_note.data)
        return redirect(url_for("standards.version", version_id=draft.id))
    except ActionFailed:
        return redirect(url_for("standards.detail", standard_id=std.id))


@bp.get("/versions/<int:version_id>")
@require(Perm.VIEW_STANDARDS)
def version(version_id: int, clause_form: ClauseForm | None = None):
    v = _version_or_404(version_id)
    ack = services.acknowledgement_of(v, current_user)
    return render_template("standards/version.html", version=v, ack=ack,
                           clause_form=clause_form or ClauseForm(), confirm=ConfirmForm(),
                           kind_labels=KIND_LABELS)


@bp.post("/versions/<int:version_id>/clauses")
@require(Perm.AUTHOR_STANDARDS)
def add_clause(version_id: int):
    v = _version_or_404(version_id)
    form = ClauseForm()
    if form.validate_on_submit():
        try:
            with action(form, success=_("Clause %(n)s added.", n=form.number.data)):
                services.add_clause(v, number=form.number.data, title_zh=form.title_zh.data,
                                    title_en=form.title_en.data, body=form.body.data,
                                    fine=form.fine.data)
            return redirect(url_for("standards.version", version_id=v.id))
        except ActionFailed:
            pass
    return version(version_id, clause_form=form), 400


@bp.post("/versions/<int:version_id>/publish")
@require(Perm.PUBLISH_STANDARDS)
def publish(version_id: int):
    v = _version_or_404(version_id)
    if ConfirmForm().validate_on_submit():
        try:
            with action(success=_("%(label)s published.", label=v.label)):
                services.publish_version(v, current_user)
        except ActionFailed:
            pass
    return redirect(url_for("standards.version", version_id=v.id))


@bp.post("/versions/<int:version_id>/acknowledge")
@require(Perm.ACKNOWLEDGE)
def acknowledge(version_id: int):
    v = _version_or_404(version_id)
    if ConfirmForm().validate_on_submit():
        try:
            with action(success=_("You acknowledged %(label)s.", label=v.label)):
                services.acknowledge(v, current_user, ip=request.remote_addr or "",
                                     user_agent=request.user_agent.string)
        except ActionFailed:
            pass
    return redirect(url_for("standards.version", version_id=v.id))


@bp.get("/versions/<int:version_id>/coverage")
@require(Perm.VIEW_ACK_COVERAGE)
def coverage(version_id: int):
    v = _version_or_404(version_id)
    return render_template("standards/coverage.html", version=v, cov=services.coverage(v))
