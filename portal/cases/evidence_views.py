"""Evidence files of a case: upload, list, download (routes on the cases blueprint).

The case page (``cases/detail.html``) includes ``cases/_evidence.html``, which gets what it
needs from this blueprint's context processor: the files the viewer may see and, for those who
may add one, an upload form.
"""
from __future__ import annotations

import base64
from pathlib import PurePath
from urllib.parse import quote

from flask import abort, current_app, flash, redirect, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge

from portal.cases import evidence as service
from portal.cases.evidence_forms import KIND_LABELS, EvidenceForm
from portal.cases.views import _case_or_404, bp
from portal.core.permissions import Perm, party_scope, require
from portal.core.storage import storage
from portal.core.web import ActionFailed, action, allow_large_body
from portal.extensions import csrf

# The upload form's request may be larger than MAX_CONTENT_LENGTH: the file, plus this much
# for the other fields and the multipart framing.
FORM_OVERHEAD = 1_000_000


@bp.context_processor
def _evidence_context():
    def evidence_form():
        return EvidenceForm(formdata=None)

    return {"evidence_of": lambda case: service.evidence_of(case, party_scope(current_user)),
            "may_add_evidence": lambda case: service.may_add_evidence(current_user, case),
            "evidence_form": evidence_form, "evidence_kinds": KIND_LABELS,
            "evidence_max_mb": service.megabytes(current_app.config["EVIDENCE_MAX_BYTES"])}


@bp.post("/cases/<int:case_id>/evidence")
@csrf.exempt  # checked below, once the request may be as large as an evidence file
@require(Perm.VIEW_CASES)
def upload_evidence(case_id: int):
    case = _case_or_404(case_id)
    if not service.may_add_evidence(current_user, case):
        abort(403)
    back = redirect(url_for("cases.detail", case_id=case.id, _anchor="evidence"), 303)
    try:
        allow_large_body(current_app.config["EVIDENCE_MAX_BYTES"] + FORM_OVERHEAD)
        form = EvidenceForm()
        valid = form.validate_on_submit()
    except RequestEntityTooLarge:
        flash(_("The file is larger than %(mb)s MB.", mb=service.megabytes(
            current_app.config["EVIDENCE_MAX_BYTES"])), "error@evidence")
        return back
    if not valid:
        for errors in form.errors.values():
            for message in errors:
                flash(message, "error@evidence")
        return back
    upload = form.file.data
    try:   # the outcome is shown beside the upload form, where the page opens again
        with action(place="evidence") as done:
            added = service.add_evidence(case, upload.filename, upload.stream,
                                         current_user._get_current_object(),
                                         note=form.note.data or "")
            done.message = _("Evidence %(name)s added to %(n)s.", name=added.filename,
                             n=case.number)
    except ActionFailed:
        pass  # rolled back, and the reason flashed
    return back


@bp.get("/cases/<int:case_id>/evidence/<int:evidence_id>")
@require(Perm.VIEW_CASES)
def download_evidence(case_id: int, evidence_id: int):
    """The file, as what it was found to be: a download (images may show in the browser), with
    its SHA-256 (RFC 9530 ``Repr-Digest``) so the receiver can check it."""
    case = _case_or_404(case_id)
    evidence = service.find_evidence(case, party_scope(current_user), evidence_id)
    if evidence is None:
        abort(404)
    try:
        stream = storage().open(evidence.storage_key)
    except FileNotFoundError:
        current_app.logger.error("evidence %s: file %s is missing from storage", evidence.id,
                                 evidence.storage_key)
        abort(404)
    response = send_file(stream, mimetype=evidence.content_type, etag=evidence.sha256,
                         conditional=True, max_age=0)
    response.headers["Content-Disposition"] = _disposition(evidence)
    digest = base64.b64encode(bytes.fromhex(evidence.sha256)).decode()
    response.headers["Repr-Digest"] = f"sha-256=:{digest}:"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.cache_control.private = True
    response.cache_control.no_cache = True
    return response


def _disposition(evidence) -> str:
    """``attachment`` (``inline`` for images) with the file's name: as UTF-8 (RFC 6266), and
    as plain ASCII for old clients: the name itself if it is ASCII, else one made of the id."""
    name = evidence.download_name
    if name.isascii() and name.isprintable():
        fallback = name.replace("\\", "_").replace('"', "_")
    else:
        fallback = f"evidence-{evidence.id}" + PurePath(name).suffix
    kind = "inline" if evidence.inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
