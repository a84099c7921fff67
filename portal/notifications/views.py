from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import func, select

from portal.core import outbox, webhooks
from portal.core.outbox import OutboxChannel, OutboxMessage, OutboxStatus
from portal.core.permissions import Perm, require
from portal.core.web import ConfirmForm, capped_page, one_click, page_arg, safe_target, submit
from portal.core.webhooks import WebhookEndpoint
from portal.extensions import db
from portal.notifications.forms import EndpointEditForm, EndpointForm

bp = Blueprint("notifications", __name__)


# --- a user's own ----------------------------------------------------------------------------

@bp.get("/account/notifications")
@login_required
def mine():
    q = (select(OutboxMessage).where(OutboxMessage.user_id == current_user.id)
         .order_by(OutboxMessage.id.desc()))
    page = capped_page(q, OutboxMessage.id, page_arg(request), 25)
    return render_template("notifications/mine.html", page=page)


# --- the outbox (CS admins) --------------------------------------------------------------------

def _status_arg(enum_cls, name: str):
    value = request.args.get(name, "")
    try:
        return enum_cls(value) if value else None
    except ValueError:
        return None


@bp.get("/admin/notifications/")
@require(Perm.MANAGE_NOTIFICATIONS)
def overview():
    status, channel = _status_arg(OutboxStatus, "status"), _status_arg(OutboxChannel, "channel")
    q = select(OutboxMessage).order_by(OutboxMessage.id.desc())
    if status:
        q = q.where(OutboxMessage.status == status)
    if channel:
        q = q.where(OutboxMessage.channel == channel)
    stuck = db.session.scalar(select(func.count()).select_from(OutboxMessage)
                              .where(outbox.stuck_condition()))
    counts = outbox.counts_by_channel()
    totals = {}
    for (_channel, s), n in counts.items():
        totals[s] = totals.get(s, 0) + n
    return render_template("notifications/overview.html", counts=counts, totals=totals,
                           statuses=list(OutboxStatus), channels=list(OutboxChannel),
                           status=status, channel=channel, stuck=stuck,
                           page=capped_page(q, OutboxMessage.id, page_arg(request), 50))


@bp.get("/admin/notifications/failures")
@require(Perm.MANAGE_NOTIFICATIONS)
def failures():
    q = (select(OutboxMessage)
         .where((OutboxMessage.status == OutboxStatus.FAILED) | outbox.stuck_condition())
         .order_by(OutboxMessage.id.desc()))
    page = capped_page(q, OutboxMessage.id, page_arg(request), 25)
    return render_template("notifications/failures.html", page=page,
                           attempts=outbox.attempts_of(m.id for m in page.items),
                           confirm=ConfirmForm())


@bp.get("/admin/notifications/messages/<int:message_id>")
@require(Perm.MANAGE_NOTIFICATIONS)
def message(message_id: int):
    msg = db.session.get(OutboxMessage, message_id) or abort(404)
    return render_template("notifications/message.html", msg=msg,
                           attempts=outbox.attempts_of([msg.id])[msg.id], confirm=ConfirmForm())


@bp.post("/admin/notifications/messages/<int:message_id>/retry")
@require(Perm.MANAGE_NOTIFICATIONS)
def retry(message_id: int):
    msg = db.session.get(OutboxMessage, message_id) or abort(404)
    return one_click(lambda: outbox.retry(msg),
                     _("Message #%(id)d is queued again.", id=message_id),
                     safe_target(request.form.get("next"), url_for("notifications.failures")))


# --- webhook endpoints (CS admins) ---------------------------------------------------------

def _endpoints_page(form, *, issued=None, status: int = 200):
    """The endpoints and the form to add one. A new secret is in this response only (no
    flash, no session, not cached)."""
    resp = make_response(render_template(
        "notifications/webhooks.html", endpoints=webhooks.list_endpoints(), form=form,
        issued=issued, confirm=ConfirmForm(), events=webhooks.EVENTS), status)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/admin/webhooks/", methods=["GET", "POST"])
@require(Perm.MANAGE_NOTIFICATIONS)
def endpoints():
    form = EndpointForm()
    if request.method == "GET":
        return _endpoints_page(form)
    done = submit(form, lambda: webhooks.create_endpoint(
        name=form.name.data, url=form.url.data, events=form.events.data or [],
        active=form.active.data),
        lambda r: _("Endpoint %(name)s added.", name=r[0].name))
    if not done.ok:
        return _endpoints_page(form, status=400)
    endpoint, secret = done.result
    _warn_unresolved(endpoint.unresolved_host)
    return _endpoints_page(EndpointForm(formdata=None),
                           issued={"endpoint": endpoint, "secret": secret})


def _warn_unresolved(host: str | None) -> None:
    if host:
        flash(_("The portal's server cannot find the name %(host)s right now. The endpoint is "
                "saved; every delivery looks the name up again and checks its address.",
                host=host), "warning")


def _endpoint_or_404(endpoint_id: int) -> WebhookEndpoint:
    return db.session.get(WebhookEndpoint, endpoint_id) or abort(404)


@bp.route("/admin/webhooks/<int:endpoint_id>/edit", methods=["GET", "POST"])
@require(Perm.MANAGE_NOTIFICATIONS)
def edit_endpoint(endpoint_id: int):
    endpoint = _endpoint_or_404(endpoint_id)
    form = EndpointEditForm(obj=endpoint if request.method == "GET" else None)
    if request.method == "GET":
        form.events.data = endpoint.event_list
        form.lock.data = endpoint.version
    done = submit(form, lambda: webhooks.update_endpoint(
        endpoint, name=form.name.data, url=form.url.data, events=form.events.data or [],
        active=form.active.data, expected=form.expected()),
        _("Endpoint %(name)s saved.", name=form.name.data))
    if done.ok:
        _warn_unresolved(done.result)
        return redirect(url_for("notifications.endpoints"))
    return render_template("notifications/endpoint_form.html", form=form, endpoint=endpoint), \
        (400 if request.method == "POST" else 200)


@bp.post("/admin/webhooks/<int:endpoint_id>/disable")
@require(Perm.MANAGE_NOTIFICATIONS)
def disable_endpoint(endpoint_id: int):
    endpoint = _endpoint_or_404(endpoint_id)
    return one_click(lambda: webhooks.set_active(endpoint, False),
                     _("Endpoint %(name)s disabled: it receives nothing until enabled.",
                       name=endpoint.name), url_for("notifications.endpoints"))


@bp.post("/admin/webhooks/<int:endpoint_id>/enable")
@require(Perm.MANAGE_NOTIFICATIONS)
def enable_endpoint(endpoint_id: int):
    endpoint = _endpoint_or_404(endpoint_id)
    return one_click(lambda: webhooks.set_active(endpoint, True),
                     _("Endpoint %(name)s enabled.", name=endpoint.name),
                     url_for("notifications.endpoints"))


@bp.post("/admin/webhooks/<int:endpoint_id>/rotate")
@require(Perm.MANAGE_NOTIFICATIONS)
def rotate_secret(endpoint_id: int):
    endpoint = _endpoint_or_404(endpoint_id)
    done = submit(ConfirmForm(), lambda: webhooks.rotate_secret(endpoint),
                  _("Endpoint %(name)s has a new secret.", name=endpoint.name))
    if not done.ok:
        return redirect(url_for("notifications.endpoints"))
    return _endpoints_page(EndpointForm(formdata=None),
                           issued={"endpoint": endpoint, "secret": done.result})
