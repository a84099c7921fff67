"""Webhooks: portal events POSTed, signed, to the systems CS admins register (the HR system...).

An endpoint is a URL, the events it subscribed to and a secret the portal generates. The
secret is shown once, when the endpoint is created or its secret rotated, and kept to sign
with: never shown again, never in the audit trail. Only ``http://`` and ``https://`` URLs are
accepted, and only to public addresses (see "Where deliveries may go" below).

``notify.webhook(event=, key=, payload=)`` queues one outbox row per active endpoint
subscribed to ``event`` (in the caller's transaction); the worker POSTs it:

* body: ``{"event": ..., "occurred_at": ISO time, "data": payload}`` as UTF-8 JSON, written
  once when queued, so every retry sends the same bytes. ``payload`` is the caller's.
* headers: ``X-Portal-Event``, ``X-Portal-Delivery`` (the outbox id: the same on every retry,
  so a receiver can drop a copy), ``X-Portal-Timestamp`` (unix seconds, at this try) and
  ``X-Portal-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the secret>``.
* 2xx is delivered; 4xx other than 408 and 429 is a permanent refusal; anything else
  (408, 429, 5xx, a redirect, a timeout, no connection) is tried again with back-off. What a
  failed delivery keeps of the reply (shown on the outbox pages) is a short excerpt, control
  characters removed (``reply_excerpt``).

Where deliveries may go
-----------------------
A CS admin types the URL, so without a check the portal would POST to its own machine or its
own network (its database, a metadata service at 169.254.169.254...) and show what came back:
a server-side request forgery. So a webhook goes only to **public** addresses: not loopback,
private (RFC 1918, fc00::/7), carrier-grade NAT (100.64.0.0/10), link-local, multicast,
unspecified, reserved or documentation addresses, nor IPv6 forms that carry such an IPv4
address (``::ffff:127.0.0.1``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``) - unless the address
is in ``WEBHOOK_ALLOWED_NETWORKS`` (a deployment whose receiver is inside its network).

The URL is checked when an endpoint is saved (a literal address, or the addresses its name
resolves to then), which tells the CS admin at once. The check that counts is made **at each
delivery, on the addresses actually connected to**: a name may resolve to a public address
when saved and to 127.0.0.1 later (DNS rebinding). The worker resolves the name once, checks
every address it got (one refused address refuses the delivery) and connects to a checked
address itself (``_Connection.connect``), so nothing resolves the name again between the check
and the connection; the request still carries the name in its ``Host`` header, and over
``https://`` the certificate is verified against the name (SNI too). A refused address fails
the delivery at once (permanent).

Sent with the standard library (``http.client``): httpx is installed in this environment but
is not a dependency of the portal, and one POST with a timeout needs nothing more. Redirects
are not followed (a POST must not turn into a GET, nor go elsewhere than the URL a CS admin
registered, nor to an address nobody checked). Deliveries do not go through an HTTP proxy
(``HTTP_PROXY`` and the like are not read): a proxy would connect to addresses the portal
cannot check.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import http.client
import ipaddress
import json
import re
import secrets
import socket
import ssl
import time
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from portal.config import parse_networks
from portal.core.audit import _jsonable, record
from portal.core.db import Base, CreatedAtMixin, utcnow
from portal.core.errors import ConflictError, ServiceError
from portal.core.transports import DeliveryError
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


# --- where deliveries may go -----------------------------------------------------------------

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the last 32 bits
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598: carrier-grade NAT
_PRIVATE = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))  # RFC 1918, RFC 4193

# What an address is when webhooks may not go there, in the order asked (127.0.0.1 is also
# "private" to Python: the first that fits names it): the worker's text (English, as every
# delivery error) and the form's (translated). Anything else that is not global is "not public".
_KINDS = (
    (lambda ip: ip.is_unspecified, "an unspecified address",
     _l("an unspecified address (0.0.0.0 or ::)")),
    (lambda ip: ip.is_loopback, "a loopback address", _l("a loopback address (this machine)")),
    (lambda ip: ip.is_link_local, "a link-local address", _l("a link-local address")),
    (lambda ip: ip.is_multicast, "a multicast address", _l("a multicast address")),
    (lambda ip: ip in _SHARED, "a carrier-grade NAT address", _l("a carrier-grade NAT address")),
    (lambda ip: any(ip in n for n in _PRIVATE), "a private address",
     _l("a private address (an internal network)")),
    (lambda ip: True, "not a public address", _l("not a public address")),
)


def embedded_ipv4(ip: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (IPv4-mapped ``::ffff:a.b.c.d``, NAT64
    ``64:ff9b::a.b.c.d``, 6to4 ``2002:AABB:CCDD::``): connecting to it reaches that one."""
    if ip.version != 6:
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def _public(ip: Address) -> bool:
    # is_global is False for private, shared (100.64/10), loopback... but True for multicast
    # and, in Python 3.11, for some reserved and site-local IPv6 ranges
    return (ip.is_global and not ip.is_multicast and not ip.is_reserved
            and not getattr(ip, "is_site_local", False))


def _shown(ip: Address) -> str:
    """``::ffff:7f00:1 (127.0.0.1)``: an IPv6 address with the IPv4 one it carries."""
    v4 = embedded_ipv4(ip)
    return f"{ip} ({v4})" if v4 is not None else str(ip)


@functools.lru_cache(maxsize=8)
def _networks(setting: str) -> tuple:
    return tuple(parse_networks(setting))


def allowed_networks() -> tuple:
    """``WEBHOOK_ALLOWED_NETWORKS``: the non-public networks deliveries may go to anyway."""
    setting = current_app.config.get("WEBHOOK_ALLOWED_NETWORKS") or ""
    if not isinstance(setting, str):
        setting = ",".join(str(n) for n in setting)
    return _networks(setting)


def refusal(ip: Address, allowed=()) -> tuple[str, object] | None:
    """Why a webhook may not go to ``ip`` (the worker's text and the form's), or None: it is
    public, or in one of the ``allowed`` networks. An IPv6 address carrying an IPv4 address is
    judged by that IPv4 address."""
    v4 = embedded_ipv4(ip)
    if any(ip in n or (v4 is not None and v4 in n) for n in allowed):
        return None
    if v4 is None:
        judged = (ip,)
    elif ip.ipv4_mapped is not None or ip in _NAT64:  # the IPv6 form is only a wrapper
        judged = (v4,)
    else:  # 6to4: the host behind the relay, and the relay's address
        judged = (v4, ip)
    for address in judged:
        if not _public(address):
            return next((text, label) for test, text, label in _KINDS if test(address))
    return None


def resolve(host: str, port: int) -> list[tuple]:
    """The addresses ``host`` has now (``socket.getaddrinfo``'s entries, TCP only)."""
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def _addresses(entries) -> list[tuple[Address, tuple]]:
    """Each entry's address (a link-local IPv6 one with its zone) and the entry itself."""
    return [(ipaddress.ip_address(entry[4][0]), entry) for entry in entries]


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


_LOOPBACK = ipaddress.ip_address("127.0.0.1")


def _loopback_name(host: str) -> bool:
    """``localhost``, ``localhost.`` and every name under ``.localhost`` stand for this
    machine (RFC 6761), whatever a resolver says of them."""
    name = host.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")


def _check_url_host(url: str) -> str | None:
    """Refuse (on the form's ``url``) a URL whose host is, or now resolves to, an address
    webhooks may not go to. A name that does not resolve here is accepted, and returned (the
    page says so): the worker checks every delivery anyway, and its network may know names
    this server does not."""
    parts = urlsplit(url)
    allowed = allowed_networks()
    why = refusal(_LOOPBACK, allowed) if _loopback_name(parts.hostname) else None
    if why is not None:
        raise ServiceError(_("The address %(address)s is %(kind)s. Webhooks are sent only to "
                             "public addresses; an administrator can allow an internal network "
                             "with the setting WEBHOOK_ALLOWED_NETWORKS.",
                             address=parts.hostname, kind=why[1]), "url")
    try:
        found = _addresses(resolve(parts.hostname,
                                   parts.port or (443 if parts.scheme == "https" else 80)))
    except (OSError, ValueError):  # no such name, here and now: the worker will tell
        return parts.hostname
    for ip, _entry in found:
        why = refusal(ip, allowed)
        if why is None:
            continue
        if _is_address(parts.hostname):
            message = _("The address %(address)s is %(kind)s. Webhooks are sent only to "
                        "public addresses; an administrator can allow an internal network "
                        "with the setting WEBHOOK_ALLOWED_NETWORKS.", address=parts.hostname,
                        kind=why[1])
        else:
            message = _("%(host)s resolves to %(address)s, %(kind)s. Webhooks are sent only "
                        "to public addresses; an administrator can allow an internal network "
                        "with the setting WEBHOOK_ALLOWED_NETWORKS.", host=parts.hostname,
                        address=_shown(ip), kind=why[1])
        raise ServiceError(message, "url")
    return None


# --- managing endpoints (CS admins) --------------------------------------------------------

def new_secret() -> str:
    return "whsec_" + secrets.token_hex(32)


def _http_url(url: str) -> bool:
    """An http(s) URL with a host, and a port from 1 to 65535 if one is given."""
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # "http://[::1/", a port that is not a number or out of range
        return False


def _clean(name: str, url: str, events: list[str]) -> tuple[str, str, str, str | None]:
    """The name, URL and events text to store, and the URL's host if it does not resolve
    here now."""
    name, url = (name or "").strip(), (url or "").strip()
    if not name:
        raise ServiceError(_("Give the endpoint a name."), "name")
    if not _http_url(url):
        raise ServiceError(_("Only http:// and https:// URLs can receive webhooks."), "url")
    unresolved = _check_url_host(url)
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise ServiceError(_("Unknown event: %(events)s.", events=", ".join(unknown)),
                           "events")
    return name, url, "\n".join(e for e in EVENTS if e in events), unresolved


def _name_taken(name: str, endpoint_id: int | None = None) -> bool:
    q = select(WebhookEndpoint.id).where(WebhookEndpoint.name == name)
    if endpoint_id is not None:
        q = q.where(WebhookEndpoint.id != endpoint_id)
    return db.session.scalar(q) is not None


def create_endpoint(*, name: str, url: str, events: list[str], active: bool = True
                    ) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret (to show once). ``endpoint.unresolved_host`` is the
    URL's host when it does not resolve here now (saved all the same: the page says so)."""
    name, url, events_text, unresolved = _clean(name, url, events)
    if _name_taken(name):
        raise ServiceError(_("An endpoint is already called %(name)s.", name=name), "name")
    secret = new_secret()
    endpoint = WebhookEndpoint(name=name, url=url, events=events_text, active=active,
                               secret=secret)
    db.session.add(endpoint)
    record("webhook_endpoint.created", endpoint, after=endpoint.snapshot())
    endpoint.unresolved_host = unresolved
    return endpoint, secret


def update_endpoint(endpoint: WebhookEndpoint, *, name: str, url: str, events: list[str],
                    active: bool, expected: int | None = None) -> str | None:
    """Change what the endpoint is; ``expected`` is the row version the form showed. The
    URL's host if it does not resolve here now."""
    if expected is not None and expected != endpoint.version:
        raise ConflictError(_("Someone else changed this endpoint while you were editing it. "
                              "Reload the page to see their change, then try again."))
    name, url, events_text, unresolved = _clean(name, url, events)
    if _name_taken(name, endpoint.id):
        raise ServiceError(_("An endpoint is already called %(name)s.", name=name), "name")
    before = endpoint.snapshot()
    endpoint.name, endpoint.url, endpoint.events, endpoint.active = name, url, events_text, active
    if endpoint.snapshot() != before:
        record("webhook_endpoint.updated", endpoint, before=before, after=endpoint.snapshot())
    return unresolved


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

class AddressRefused(Exception):
    """The receiver's name resolved to an address webhooks may not go to (not an ``OSError``:
    it is not tried again)."""


def connect_checked(host: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to ``host``: resolved once, every address checked, then connected to
    one of those checked addresses (the first that answers) - never resolved again."""
    allowed = allowed_networks()
    if _loopback_name(host) and refusal(_LOOPBACK, allowed) is not None:
        raise AddressRefused(f"refused: {host} names this machine, a loopback address; "
                             f"webhooks go to public addresses only (WEBHOOK_ALLOWED_NETWORKS "
                             f"lists exceptions)")
    found = _addresses(resolve(host, port))
    for ip, _entry in found:
        why = refusal(ip, allowed)
        if why is not None:
            what = (f"{host} is {why[0]}" if _is_address(host)
                    else f"{host} resolves to {_shown(ip)}, {why[0]}")
            raise AddressRefused(f"refused: {what}; webhooks go to public addresses only "
                                 f"(WEBHOOK_ALLOWED_NETWORKS lists exceptions)")
    error: OSError = OSError(f"{host}: no address")
    for _ip, (family, kind, proto, _canonical, sockaddr) in found:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        return sock
    raise error


class _Connection(http.client.HTTPConnection):
    """``http.client`` connecting through ``connect_checked``. ``self.host`` stays the name:
    the ``Host`` header carries it."""

    def connect(self):
        self.sock = connect_checked(self.host, self.port, self.timeout)


class _TLSConnection(_Connection):
    """The same over TLS: the certificate is verified against the name (SNI too)."""

    default_port = http.client.HTTPS_PORT

    def __init__(self, host: str, port: int, *, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.context = ssl.create_default_context()

    def connect(self):
        super().connect()
        self.sock = self.context.wrap_socket(self.sock, server_hostname=self.host)


REPLY_EXCERPT_CHARS = 200


def reply_excerpt(raw: bytes | str, limit: int = REPLY_EXCERPT_CHARS) -> str:
    """What a failed delivery keeps of the receiver's text: at most ``limit`` characters, on
    one line, control and format characters (NUL, terminal escapes, bidi overrides) removed.
    Enough to tell why it was refused; not a way to read a receiver's pages through the outbox
    (the pages escape it like any text). A NUL would also be refused by PostgreSQL."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    text = "".join(" " if ch.isspace() else ch for ch in text
                   if ch.isspace() or unicodedata.category(ch)[0] != "C")
    text = re.sub(r" {2,}", " ", text).strip()
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


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
    """POST one outbox row to its endpoint; raises ``DeliveryError`` if not 2xx."""
    body = row.body.encode("utf-8")
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "ServiceStandardsPortal-Webhooks/1",
        "X-Portal-Event": row.event,
        "X-Portal-Delivery": str(row.id),
        "X-Portal-Timestamp": str(timestamp),
        "X-Portal-Signature": signature(target.secret, timestamp, body),
    }
    timeout = float(current_app.config.get("WEBHOOK_TIMEOUT", 10))
    connection = None
    try:
        parts = urlsplit(target.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DeliveryError(f"POST {target.url}: not an http:// or https:// URL",
                                permanent=True)
        kind = _TLSConnection if parts.scheme == "https" else _Connection
        # the port always given: http.client would read "::1" as host ":" and port 1
        connection = kind(parts.hostname, parts.port or kind.default_port, timeout=timeout)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("POST", path, body=body, headers=headers)
        resp = connection.getresponse()
        if 200 <= resp.status < 300:
            resp.read(1024)
            return
        text = reply_excerpt(resp.read(1024))
        reason = reply_excerpt(resp.reason or "", 60)
    except AddressRefused as exc:
        raise DeliveryError(str(exc), permanent=True) from None
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise DeliveryError(f"POST {target.url}: {type(exc).__name__}: "
                            f"{reply_excerpt(str(exc), 300)}") from None
    finally:
        if connection is not None:
            connection.close()
    # a redirect is not followed: tried again (the receiver's move may be temporary)
    permanent = 400 <= resp.status < 500 and resp.status not in (408, 429)
    raise DeliveryError(f"HTTP {resp.status} {reason}" + (f": {text}" if text else ""),
                        permanent=permanent)
