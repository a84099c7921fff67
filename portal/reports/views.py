"""Printed reports: the period audit report, a party's scorecard and a case dossier, made in
the background (``reports.jobs``) and kept for download; the audit PDF of a short period can
still be fetched at once (``audit_pdf``)."""
from __future__ import annotations

from datetime import timedelta

from flask import (
    Blueprint,
    abort,
    current_app,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user

from portal.core.db import utcnow
from portal.core.i18n import select_locale
from portal.core.permissions import Perm, allowed, ensure_visible, party_scope, require, require_any
from portal.core.timeutil import zone
from portal.extensions import db
from portal.reports import jobs
from portal.reports.forms import AuditJobForm, ConfirmForm, PeriodForm, ScorecardJobForm
from portal.reports.render import render_single
from portal.reports.services import build_audit_report

bp = Blueprint("reports", __name__, url_prefix="/reports")


def _default_period(form) -> None:
    today = utcnow().astimezone(zone(current_user.timezone)).date()
    form.start.data, form.end.data = today - timedelta(days=90), today


def _index(audit_form=None, scorecard_form=None, status=200):
    if audit_form is None:
        audit_form = AuditJobForm(formdata=None)
        _default_period(audit_form)
    if scorecard_form is None:
        scorecard_form = ScorecardJobForm(formdata=None)
        _default_period(scorecard_form)
    return render_template("reports/index.html", form=audit_form, scorecard_form=scorecard_form,
                           jobs=jobs.jobs_for(current_user),
                           may_print=allowed(current_user, Perm.PRINT_REPORTS),
                           scope=party_scope(current_user)), status


@bp.get("/")
@require_any(Perm.PRINT_REPORTS, Perm.VIEW_PENALTIES)
def index():
    return _index()


@bp.get("/audit.pdf")
@require(Perm.PRINT_REPORTS)
def audit_pdf():
    """The audit PDF at once (a short period); long reports go through ``new_audit``."""
    form = PeriodForm(request.args)
    if not form.validate():
        return _index(audit_form=form, status=400)
    now = utcnow()
    locale = select_locale()
    report = build_audit_report(form.start.data, form.end.data, current_user.timezone, now,
                                locale)
    report_id = f"AR-{now:%Y%m%d%H%M%S}-{current_user.id}"
    html = render_template("reports/audit_pdf.html", r=report, report_id=report_id,
                           requested_by=current_user.display_name, chunk_rows=jobs.CHUNK_ROWS)
    pdf, _stats = render_single(html, current_app.static_folder)
    response = make_response(pdf)
    response.headers["Content-Type"] = "application/pdf"
    filename = f"audit-report-{form.start.data}-{form.end.data}.pdf"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _started(job):
    return redirect(url_for("reports.job", job_id=job.id), code=303)


@bp.post("/audit")
@require(Perm.PRINT_REPORTS)
def new_audit():
    form = AuditJobForm()
    if not form.validate():
        return _index(audit_form=form, status=400)
    params = {"start": form.start.data.isoformat(), "end": form.end.data.isoformat()}
    title = f"{_('Audit report')} {form.start.data} – {form.end.data}"
    return _started(jobs.create_job("audit", params, current_user, select_locale(), title))


@bp.post("/scorecard")
@require_any(Perm.PRINT_REPORTS, Perm.VIEW_PENALTIES)
def new_scorecard():
    """CS and auditors name any party; a party's staff always get their own party's."""
    from portal.parties.models import Party

    form = ScorecardJobForm()
    if not form.validate():
        return _index(scorecard_form=form, status=400)
    scope = party_scope(current_user)
    if scope is None:
        if not allowed(current_user, Perm.PRINT_REPORTS):
            abort(403)
        code = (form.party.data or "").strip()
        party = db.session.scalar(db.select(Party).where(Party.code == code)) if code else None
        if party is None:
            form.party.errors = [_("No party has this code.")]
            return _index(scorecard_form=form, status=400)
    else:
        party = db.session.get(Party, scope) or abort(404)
        if form.party.data and form.party.data.strip() != party.code:
            abort(404)
    params = {"party_id": party.id, "start": form.start.data.isoformat(),
              "end": form.end.data.isoformat()}
    title = f"{_('Party scorecard')} {party.code} {form.start.data} – {form.end.data}"
    return _started(jobs.create_job("scorecard", params, current_user, select_locale(), title))


@bp.post("/cases/<int:case_id>/dossier")
@require_any(Perm.PRINT_REPORTS, Perm.VIEW_CASES)
def new_dossier(case_id: int):
    """A case's dossier, as the asker may see the case (another party's case: 404)."""
    from portal.cases.models import Case

    case = db.session.get(Case, case_id) or abort(404)
    ensure_visible(case.party_ids())
    if not ConfirmForm().validate():
        abort(400)
    title = f"{_('Case dossier')} {case.number}"
    return _started(jobs.create_job("dossier", {"case_id": case.id}, current_user,
                                    select_locale(), title))


def _job_or_404(job_id: str) -> jobs.Job:
    job = jobs.load_job(job_id)
    if job is None or not jobs.may_see(current_user, job):
        abort(404)
    return job


@bp.get("/jobs/<job_id>")
@require_any(Perm.PRINT_REPORTS, Perm.VIEW_PENALTIES, Perm.VIEW_CASES)
def job(job_id: str):
    job = _job_or_404(job_id)
    return render_template("reports/job.html", job=job, snapshot=jobs.load_snapshot(job),
                           form=ConfirmForm())


@bp.get("/jobs/<job_id>/progress")
@require_any(Perm.PRINT_REPORTS, Perm.VIEW_PENALTIES, Perm.VIEW_CASES)
def job_progress(job_id: str):
    """What the progress bar polls."""
    return jsonify(_job_or_404(job_id).progress())


@bp.get("/jobs/<job_id>/report.pdf")
@require_any(Perm.PRINT_REPORTS, Perm.VIEW_PENALTIES, Perm.VIEW_CASES)
def job_pdf(job_id: str):
    job = _job_or_404(job_id)
    if job.status != jobs.JobStatus.DONE:
        abort(404)
    try:
        stream = jobs.open_pdf(job)   # a stream, from local files or the bucket alike
    except FileNotFoundError:
        abort(404)
    return send_file(stream, mimetype="application/pdf", as_attachment=True,
                     download_name=f"{job.report_id or job.id}.pdf")


@bp.get("/jobs/<job_id>/snapshot.json")
@require_any(Perm.PRINT_REPORTS, Perm.VIEW_PENALTIES, Perm.VIEW_CASES)
def job_snapshot(job_id: str):
    snapshot = jobs.load_snapshot(_job_or_404(job_id))
    if snapshot is None:
        abort(404)
    return jsonify(snapshot)


@bp.post("/jobs/<job_id>/reprint")
@require_any(Perm.PRINT_REPORTS, Perm.VIEW_PENALTIES, Perm.VIEW_CASES)
def reprint(job_id: str):
    """Print again from the kept snapshot: the same document, or a refusal if the records
    changed since."""
    job = _job_or_404(job_id)
    if job.status != jobs.JobStatus.DONE or not ConfirmForm().validate():
        abort(400)
    title = f"{job.title} ({_('printed again')})"
    return _started(jobs.reprint(job, current_user, title))


from portal.reports import dashboard_views  # noqa: F401  (its routes on bp)
