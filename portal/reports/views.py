from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, make_response, render_template, request
from flask_login import current_user

from portal.core.db import utcnow
from portal.core.pdf import render_pdf
from portal.core.permissions import Perm, require
from portal.core.timeutil import zone
from portal.reports.forms import PeriodForm
from portal.reports.services import build_audit_report

bp = Blueprint("reports", __name__, url_prefix="/reports")


@bp.get("/")
@require(Perm.PRINT_REPORTS)
def index():
    form = PeriodForm(request.args)
    if not request.args:
        today = utcnow().astimezone(zone(current_user.timezone)).date()
        form.start.data, form.end.data = today - timedelta(days=90), today
    return render_template("reports/index.html", form=form)


@bp.get("/audit.pdf")
@require(Perm.PRINT_REPORTS)
def audit_pdf():
    form = PeriodForm(request.args)
    if not form.validate():
        return render_template("reports/index.html", form=form), 400
    now = utcnow()
    report = build_audit_report(form.start.data, form.end.data, current_user.timezone, now)
    report_id = f"AR-{now:%Y%m%d%H%M%S}-{current_user.id}"
    html = render_template("reports/audit_pdf.html", r=report, report_id=report_id)
    response = make_response(render_pdf(html))
    response.headers["Content-Type"] = "application/pdf"
    filename = f"audit-report-{form.start.data}-{form.end.data}.pdf"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
