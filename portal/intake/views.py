"""Intake pages: uploading ticket and volume files, import batches and their results; the
review and follow-up queues live in ``intake.queues`` on the same blueprint."""
from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge

from portal.core.permissions import Perm, allowed, require
from portal.core.web import ActionFailed, action, allow_large_body, csv_response, page_arg
from portal.extensions import csrf, db
from portal.intake import services
from portal.intake.fields import TICKET_FIELDS, VOLUME_FIELDS, reasons
from portal.intake.forms import UploadForm
from portal.intake.models import BatchKind, BatchStatus, ImportBatch, ImportRejection

bp = Blueprint("intake", __name__, url_prefix="/intake")

REJECTIONS_PER_PAGE = 100


def _batch_or_404(batch_id: int) -> ImportBatch:
    return db.session.get(ImportBatch, batch_id) or abort(404)


@bp.route("/", methods=["GET", "POST"])
@csrf.exempt   # checked below, once the request may be as large as a ticket file
@require(Perm.VIEW_INTAKE)
def index():
    if request.method == "POST":
        if not allowed(current_user, Perm.IMPORT_TICKETS):
            abort(403)
        try:
            allow_large_body(current_app.config["IMPORT_MAX_BYTES"])
        except RequestEntityTooLarge:
            flash(_("The file is larger than %(mb)s MB.",
                    mb=current_app.config["IMPORT_MAX_BYTES"] // 1_000_000), "error")
            return redirect(url_for("intake.index"), 303)
    form = UploadForm()
    if form.validate_on_submit():
        try:
            with action(form):
                batch, path = services.accept_upload(
                    form.file.data, BatchKind(form.kind.data), current_user._get_current_object())
        except ActionFailed:
            pass
        else:
            services.start_upload(batch.id, path)
            return redirect(url_for("intake.batch", batch_id=batch.id))
    page = db.paginate(select(ImportBatch).order_by(ImportBatch.id.desc()),
                       page=page_arg(request), per_page=25, error_out=False)
    return render_template("intake/upload.html", form=form, page=page,
                           ticket_fields=TICKET_FIELDS, volume_fields=VOLUME_FIELDS)


@bp.route("/batches/<int:batch_id>")
@require(Perm.VIEW_INTAKE)
def batch(batch_id: int):
    b = _batch_or_404(batch_id)
    q = select(ImportRejection).where(ImportRejection.batch_id == b.id).order_by(
        ImportRejection.line)
    rejections = db.paginate(q, page=page_arg(request), per_page=REJECTIONS_PER_PAGE,
                             error_out=False)
    return render_template("intake/batch.html", batch=b, rejections=rejections,
                           reasons=reasons(), problem=services.batch_problem(b),
                           read=services.progress_of(b), BatchStatus=BatchStatus)


@bp.route("/batches/<int:batch_id>/progress")
@require(Perm.VIEW_INTAKE)
def progress(batch_id: int):
    """What the progress bar polls: how far, and whether it is over."""
    b = _batch_or_404(batch_id)
    read = services.progress_of(b)
    finished = b.status in (BatchStatus.DONE, BatchStatus.FAILED)
    percent = 100 if finished else (min(99, read * 100 // b.size_bytes) if b.size_bytes else 0)
    return jsonify({"status": b.status.value, "percent": percent, "bytes_read": read,
                    "size_bytes": b.size_bytes, "finished": finished,
                    "reading": not finished and read < b.size_bytes})


@bp.route("/batches/<int:batch_id>/rejections.csv")
@require(Perm.VIEW_INTAKE)
def rejections_csv(batch_id: int):
    b = _batch_or_404(batch_id)
    text = reasons()
    rows = ((r.line, r.ticket_no, r.field, r.reason, text.get(r.reason, r.reason), r.value)
            for r in db.session.scalars(select(ImportRejection).where(
                ImportRejection.batch_id == b.id).order_by(ImportRejection.line)))
    return csv_response(f"batch-{b.id}-rejected.csv",
                        [_("Line"), _("Ticket number"), _("Field"), _("Reason code"),
                         _("Reason"), _("Value")], rows)


from portal.intake import queues  # noqa: F401  (registers the queue routes on bp)
