from __future__ import annotations

from flask import Blueprint, render_template, request
from sqlalchemy import select

from portal.core.audit import AuditEvent, verify_chain
from portal.core.permissions import Perm, require
from portal.core.web import page_arg
from portal.extensions import db

bp = Blueprint("audit", __name__, url_prefix="/audit")


@bp.get("/")
@require(Perm.VIEW_AUDIT_LOG)
def index():
    q = select(AuditEvent).order_by(AuditEvent.id.desc())
    action = request.args.get("action", "").strip()
    if action:
        q = q.where(AuditEvent.action.startswith(action))
    page = db.paginate(q, page=page_arg(request), per_page=50, error_out=False)
    return render_template("audit/index.html", page=page, action=action)


@bp.get("/verify")
@require(Perm.VIEW_AUDIT_LOG)
def verify():
    return render_template("audit/verify.html", report=verify_chain())
