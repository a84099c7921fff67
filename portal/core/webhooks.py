"""Webhooks: portal events POSTed, signed, to the systems CS admins register (the HR system...).

An endpoint is a URL, the events it subscribed to and a secret the portal generates. The
secret is shown once, when the endpoint is created or its secret rotated, and kept to sign
with: never shown again, never in the audit trail. Endpoints are URLs CS admins trust (the
portal POSTs wherever they say, inside the network too); only ``http://`` and ``https://``
URLs are accepted.

``notify.webhook(event=, key=, payload=)`` queues one outbox row per active endpoint
subscribed to ``event`` (in the caller's transaction); the worker POSTs it:

* body: ``{"event": ..., "occurred_at": ISO time, "data": payload}`` as UTF-8 JSON, written
  once when queued, so every retry sends the same bytes. ``payload`` is the caller's.
* headers: ``X-Portal-Event``, ``X-Portal-Delivery`` (the outbox id: the same on every retry,
  so a receiver can drop a copy), ``X-Portal-Timestamp`` (unix seconds, at this try) and
  ``X-Portal-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the secret>``.
* 2xx is delivered; 4xx other than 408 and 429 is a permanent refusal; anything else
  (408, 429, 5xx, a redirect, a timeout, no connection) is tried again with back-off.

Sent with the standard library (``urllib.request``): httpx is installed in this environment
but is not a dependency of the portal, and one POST with a timeout needs nothing more.
Redirects are not followed (a POST must not turn into a GET, nor go elsewhere than the URL a
CS admin registered).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.audit import _jsonable, record
from portal.core.db import Base, CreatedAtMixin, utcnow
from portal.core.errors import ConflictError, ServiceError
from portal.extensions import db

# The events the portal dispatches, and what they mean (shown when subscribing).
EVENTS = {
    "hr_notice.created": _l("An HR notice was sent to HR"),
    "hr_notice.amended": _l("An HR notice was amended"),
    "hr_notice.withdrawn": _l("An HR notice was withdrawn"),
    "hr_notice.escalated": _l("An HR notice was escalated (no answer in time)"),
    "case.ruled": _l("A ruling took effect (the parties' shares and amounts)"),
    "appeal.filed": _l("A party appealed a ruling"),
    "appeal.decided": _l("An appeal was decided"),
}


class WebhookEndpoint(CreatedAtMixin, Base):
    """A URL of a recipient system (e.g. the HR system), the secret its deliveries are signed
    with and the events it subscribed to."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(128))  # shown once; kept to sign with
    events: Mapped[str] = mapped_column(Text, default="")  # event names, one per line
    active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012  (SQLAlchemy reads it)

    @property
    def event_list(self) -> list[str]:
        return [e for e in self.events.split() if e]

    def snapshot(self) -> dict:  # never the secret
        return {"name": self.name, "url": self.url, "events": self.event_list,
                "active": self.active}


# --- signing -------------------------------------------------------------------------------

def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``b"<timestamp>." + body`` with ``secret``."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, headers, body: bytes, *, tolerance: int = 300,
           now: float | None = None) -> bool:
    """What a receiver does (shown in the README): the signature matches and the timestamp
    is recent (a replayed old delivery is refused)."""
    timestamp = headers.get("X-Portal-Timestamp", "")
    if not timestamp.isdigit() or abs((now or time.time()) - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body),
                               headers.get("X-Portal-Signature", ""))


# --- managing endpoints (CS admins) --------------------------------------------------------

def new_secret() -> str:
    return "whsec_" + secrets.token_hex(32)


def _clean(name: str, url: str, events: list[str]) -> tuple[str, str, str]:
    name, url = (name or "").strip(), (url or "").strip()
    if not name:
        raise ServiceError(_("Give the endpoint a name."), "name")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ServiceError(_("Only http:// and https:// URLs can receive webhooks."), "url")
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise ServiceError(_("Unknown event: %(events)s.", events=", ".join(unknown)),
                           "events")
    return name, url, "\n".join(e for e in EVENTS if e in events)


def _name_taken(name: str, endpoint_id: int | None = None) -> bool:
    q = select(WebhookEndpoint.id).where(WebhookEndpoint.name == name)
    if endpoint_id is not None:
        q = q.where(WebhookEndpoint.id != endpoint_id)
    return db.session.scalar(q) is not None


def create_endpoint(*, name: str, url: str, events: list[str], active: bool = True
                    ) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret (to show once)."""
    name, url, events_text = _clean(name, url, events)
    if _name_taken(name):
        raise ServiceError(_("An endpoint is already called %(name)s.", name=name), "name")
    secret = new_secret()
    endpoint = WebhookEndpoint(name=name, url=url, events=events_text, active=active,
                               secret=secret)
    db.session.add(endpoint)
    record("webhook_endpoint.created", endpoint, after=endpoint.snapshot())
    return endpoint, secret


def update_endpoint(endpoint: WebhookEndpoint, *, name: str, url: str, events: list[str],
                    active: bool, expected: int | None = None) -> None:
    """Change what the endpoint is; ``expected`` is the row version the form showed."""
    if expected is not None and expected != endpoint.version:
        raise ConflictError(_("Someone else changed this endpoint while you were editing it. "
                              "Reload the page to see their change, then try again."))
    name, url, events_text = _clean(name, url, events)
    if _name_taken(name, endpoint.id):
        raise ServiceError(_("An endpoint is already called %(name)s.", name=name), "name")
    before = endpoint.snapshot()
    endpoint.name, endpoint.url, endpoint.events, endpoint.active = name, url, events_text, active
    if endpoint.snapshot() != before:
        record("webhook_endpoint.updated", endpoint, before=before, after=endpoint.snapshot())


def set_active(endpoint: WebhookEndpoint, active: bool) -> None:
    if endpoint.active == active:
        return
    endpoint.active = active
    record("webhook_endpoint.enabled" if active else "webhook_endpoint.disabled", endpoint,
           before={"active": not active}, after={"active": active})


def rotate_secret(endpoint: WebhookEndpoint) -> str:
    """A new secret (to show once); deliveries from now on are signed with it, retries of
    older ones too."""
    endpoint.secret = new_secret()
    endpoint.updated_at = utcnow()
    record("webhook_endpoint.secret_rotated", endpoint, after={"name": endpoint.name})
    return endpoint.secret


def list_endpoints() -> list[WebhookEndpoint]:
    return db.session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.name)).all()


def subscribers(event: str) -> list[WebhookEndpoint]:
    """The active endpoints subscribed to ``event``."""
    return [e for e in db.session.scalars(select(WebhookEndpoint)
                                          .where(WebhookEndpoint.active.is_(True))
                                          .order_by(WebhookEndpoint.id))
            if event in e.event_list]


def body_of(event: str, payload: dict) -> str:
    return json.dumps({"event": event, "occurred_at": utcnow().isoformat(), "data": payload},
                      ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      default=_jsonable)


# --- delivering (the worker) ---------------------------------------------------------------

class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # the 3xx surfaces as an HTTPError: tried again, never followed


_opener = urllib.request.build_opener(_NoRedirects)


@dataclass(frozen=True)
class Target:
    url: str
    secret: str
    active: bool


def targets(endpoint_ids: set[int]) -> dict[int, Target]:
    """What the worker needs of these endpoints to deliver to them."""
    rows = db.session.execute(select(WebhookEndpoint.id, WebhookEndpoint.url,
                                     WebhookEndpoint.secret, WebhookEndpoint.active)
                              .where(WebhookEndpoint.id.in_(endpoint_ids)))
    return {r.id: Target(r.url, r.secret, r.active) for r in rows}


def post(target: Target, row) -> None:
    """POST one outbox row to its endpoint; raises ``transports.DeliveryError`` if not 2xx."""
    from portal.core.transports import DeliveryError

    body = row.body.encode("utf-8")
    timestamp = int(time.time())
    request = urllib.request.Request(target.url, data=body, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "ServiceStandardsPortal-Webhooks/1",
        "X-Portal-Event": row.event,
        "X-Portal-Delivery": str(row.id),
        "X-Portal-Timestamp": str(timestamp),
        "X-Portal-Signature": signature(target.secret, timestamp, body),
    })
    timeout = float(current_app.config.get("WEBHOOK_TIMEOUT", 10))
    try:
        with _opener.open(request, timeout=timeout) as resp:
            resp.read(1024)
    except urllib.error.HTTPError as exc:
        text = exc.read(300).decode("utf-8", errors="replace").strip()
        exc.close()
        permanent = 400 <= exc.code < 500 and exc.code not in (408, 429)
        raise DeliveryError(f"HTTP {exc.code} {exc.reason}" + (f": {text}" if text else ""),
                            permanent=permanent) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"POST {target.url}: {type(reason).__name__}: {reason}") from None
