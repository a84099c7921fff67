"""Webhooks go only to public addresses (issue 20, item 4): a CS admin cannot point an
endpoint at the portal's own machine or network, neither when saving it nor - what counts -
at delivery, on the address actually connected to (a name that resolves to 127.0.0.1 only
later is refused too). WEBHOOK_ALLOWED_NETWORKS lets an internal receiver through; the test
config allows 127.0.0.0/8 and ::1 for the other tests' receivers, these tests empty it.

Names are resolved by ``webhooks.resolve``; the tests answer for their own names
(``partner.example``) and leave every other name to the real resolver."""
from __future__ import annotations

import socket
import ssl
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from flask_babel import force_locale
from sqlalchemy import select

from portal.accounts.services import create_user
from portal.config import SettingError, defaults
from portal.core import notify, webhooks
from portal.core.db import utcnow
from portal.core.errors import ServiceError
from portal.core.outbox import (
    AttemptOutcome,
    DeliveryAttempt,
    OutboxMessage,
    OutboxStatus,
    deliver_pending,
)
from portal.core.permissions import Role
from portal.extensions import db
from tests.factories import PASSWORD
from tests.helpers import english

NAME = "hooks.partner.example"
PUBLIC = "93.184.215.14"


class Receiver:
    """A real HTTP(S) server in a thread: it counts the connections it accepts, keeps the
    requests and answers each with ``status`` and ``reply``."""

    def __init__(self, host: str = "127.0.0.1", *, tls: ssl.SSLContext | None = None,
                 status: int = 200, reply: bytes = b"ok"):
        self.status, self.reply = status, reply
        self.connections: list = []
        self.requests: list[dict] = []
        self.server_names: list[str | None] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": body,
                                          "path": self.path})
                self.send_response(receiver.status)
                self.send_header("Content-Length", str(len(receiver.reply)))
                self.end_headers()
                self.wfile.write(receiver.reply)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

            def verify_request(self, request, client_address):
                receiver.connections.append(client_address)
                return True

        self.server = Server((host, 0), Handler)
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: receiver.server_names.append(name)
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers():
    started: list[Receiver] = []

    def start(*args, **kw) -> Receiver:
        started.append(Receiver(*args, **kw))
        return started[-1]

    yield start
    for r in started:
        r.stop()


@pytest.fixture
def public_only(app, monkeypatch):
    """The default: no network allowed beyond the public ones."""
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_NETWORKS", "")


@pytest.fixture
def dns(monkeypatch):
    """What our own names resolve to (set ``dns[name] = [addresses]``); other names are
    resolved as usual."""
    answers: dict[str, list[str]] = {}
    real = webhooks.resolve

    def resolve(host, port):
        if host not in answers:
            return real(host, port)
        return [(socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, port, 0, 0))
                if ":" in ip else
                (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, port))
                for ip in answers[host]]

    monkeypatch.setattr(webhooks, "resolve", resolve)
    return answers


@pytest.fixture
def admin(app):
    with app.test_request_context():
        create_user(username="admin", display_name="admin", password=PASSWORD,
                    role=Role.CS_ADMIN)
        db.session.commit()


def _queue(url: str) -> int:
    webhooks.create_endpoint(name="Partner", url=url, events=["hr_notice.created"])
    (msg,) = notify.webhook(event="hr_notice.created", key="hr-notice-1-created",
                            payload={"notice": "HR-2026-0001"})
    db.session.commit()
    return msg.id


def _attempts(msg_id: int) -> list[DeliveryAttempt]:
    return db.session.scalars(select(DeliveryAttempt).where(
        DeliveryAttempt.message_id == msg_id).order_by(DeliveryAttempt.id)).all()


# --- saving an endpoint ------------------------------------------------------------------------

REFUSED = [
    ("http://127.0.0.1:5611/hook", "a loopback address"),
    ("http://localhost:5432/", "a loopback address"),
    ("http://[::1]:5602/", "a loopback address"),
    ("http://2130706433/hook", "a loopback address"),  # 127.0.0.1 written as one number
    ("http://10.1.2.3/hook", "a private address"),
    ("http://192.168.0.10/hook", "a private address"),
    ("http://[fd00::1]/hook", "a private address"),
    ("http://100.64.0.1/hook", "a carrier-grade NAT address"),
    ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
    ("http://[fe80::1]/hook", "a link-local address"),
    ("http://[::ffff:127.0.0.1]/hook", "a loopback address"),
    ("http://[::ffff:10.0.0.1]/hook", "a private address"),
    ("http://[64:ff9b::a9fe:a9fe]/hook", "a link-local address"),  # NAT64 169.254.169.254
    ("http://[2002:7f00:1::]/hook", "a loopback address"),  # 6to4 127.0.0.1
    ("http://0.0.0.0:8080/", "an unspecified address"),
    ("http://[::]/", "an unspecified address"),
    ("http://224.0.0.1/", "a multicast address"),
    ("http://240.0.0.1/", "not a public address"),
]


@pytest.mark.parametrize(("url", "kind"), REFUSED)
def test_an_endpoint_on_a_non_public_address_is_refused(app, public_only, url, kind):
    with app.test_request_context(), force_locale("en"), \
            pytest.raises(ServiceError) as refused:
        webhooks.create_endpoint(name="Probe", url=url, events=["hr_notice.created"])
    assert refused.value.field == "url"
    message = str(refused.value.message)
    assert kind in message and "WEBHOOK_ALLOWED_NETWORKS" in message


def test_the_message_names_the_address_a_name_resolves_to(app, public_only, dns):
    dns[NAME] = [PUBLIC, "10.20.0.7"]
    with app.test_request_context(), force_locale("en"), \
            pytest.raises(ServiceError) as refused:
        webhooks.create_endpoint(name="Probe", url=f"https://{NAME}/hook",
                                 events=["hr_notice.created"])
    assert str(refused.value.message).startswith(
        f"{NAME} resolves to 10.20.0.7, a private address (an internal network).")


def test_a_name_with_public_addresses_is_accepted(app, public_only, dns):
    dns[NAME] = [PUBLIC, "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]
    with app.test_request_context():
        ep, _secret = webhooks.create_endpoint(name="Partner", url=f"https://{NAME}/hook",
                                               events=["hr_notice.created"])
        assert ep.url == f"https://{NAME}/hook"


def test_an_endpoint_cannot_be_changed_to_a_loopback_address(app, public_only, dns):
    dns[NAME] = [PUBLIC]
    with app.test_request_context(), force_locale("en"):
        ep, _secret = webhooks.create_endpoint(name="Partner", url=f"https://{NAME}/hook",
                                               events=["hr_notice.created"])
        db.session.commit()
        with pytest.raises(ServiceError) as refused:
            webhooks.update_endpoint(ep, name="Partner", url="http://127.0.0.1:5611/",
                                     events=["hr_notice.created"], active=True)
        assert refused.value.field == "url" and "a loopback address" in refused.value.message


def test_the_page_shows_the_refusal_on_the_url_field(app, admin, browser, public_only):
    browser.login("admin")
    english(browser)
    resp = browser.post("/admin/webhooks/", {"name": "Probe", "url": "http://[::1]:5602/",
                                             "events": ["hr_notice.created"], "active": "y"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "The address ::1 is a loopback address (this machine)." in page
    with app.app_context():
        assert db.session.scalar(select(webhooks.WebhookEndpoint)) is None


@pytest.mark.parametrize("host", ["localhost.", "LOCALHOST", "hr.localhost"])
def test_names_of_this_machine_are_refused_whatever_they_resolve_to(app, public_only,
                                                                      monkeypatch, host):
    def nothing(*_args):
        raise socket.gaierror("no such name here")

    monkeypatch.setattr(webhooks, "resolve", nothing)
    with app.test_request_context(), force_locale("en"):
        with pytest.raises(ServiceError) as refused:
            webhooks.create_endpoint(name="Probe", url=f"http://{host}:5432/",
                                     events=["hr_notice.created"])
        assert "is a loopback address (this machine)" in refused.value.message
        with pytest.raises(webhooks.AddressRefused):
            webhooks.connect_checked(host, 80, 1.0)


def test_a_name_not_found_now_is_saved_with_a_warning(app, admin, browser, public_only,
                                                        monkeypatch):
    def nothing(*_args):
        raise socket.gaierror("no such name here")

    monkeypatch.setattr(webhooks, "resolve", nothing)
    browser.login("admin")
    english(browser)
    resp = browser.post("/admin/webhooks/", {"name": "HR", "url": f"https://{NAME}/hook",
                                             "events": ["hr_notice.created"], "active": "y"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert f"The portal&#39;s server cannot find the name {NAME} right now." in page
    assert "Endpoint HR added." in page


def test_an_allowed_network_can_be_registered(app, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_NETWORKS", "10.20.0.0/16")
    with app.test_request_context():
        webhooks.create_endpoint(name="Internal HR", url="http://10.20.1.5:8080/hook",
                                 events=["hr_notice.created"])
        with pytest.raises(ServiceError):
            webhooks.create_endpoint(name="Other", url="http://10.21.1.5:8080/hook",
                                     events=["hr_notice.created"])


@pytest.mark.parametrize("value", ["intranet", "10.0.0.0/33", "10.0.0.1/8"])
def test_a_bad_allowed_networks_setting_stops_start_up(monkeypatch, tmp_path, value):
    monkeypatch.setenv("WEBHOOK_ALLOWED_NETWORKS", value)
    with pytest.raises(SettingError, match="^WEBHOOK_ALLOWED_NETWORKS: "):
        defaults(tmp_path)


# --- delivering: the address connected to is what counts --------------------------------------

def test_a_name_that_resolves_to_loopback_at_delivery_is_refused(app, public_only, dns,
                                                                   receivers):
    receiver = receivers()
    dns[NAME] = [PUBLIC]  # when saved
    with app.test_request_context():
        msg_id = _queue(f"http://{NAME}:{receiver.port}/hook")
        dns[NAME] = ["127.0.0.1"]  # rebound since
        report = deliver_pending()
        msg = db.session.get(OutboxMessage, msg_id)
        assert report.failed == 1 and msg.status is OutboxStatus.FAILED  # not tried again
        assert msg.last_error.startswith(
            f"refused: {NAME} resolves to 127.0.0.1, a loopback address;")
        assert "WEBHOOK_ALLOWED_NETWORKS" in msg.last_error
        assert [a.outcome for a in _attempts(msg_id)] == [AttemptOutcome.FAILED]
    assert receiver.connections == [] and receiver.requests == []


def test_one_forbidden_address_among_several_refuses_the_delivery(app, public_only, dns,
                                                                  receivers):
    receiver = receivers()
    dns[NAME] = [PUBLIC]
    with app.test_request_context():
        msg_id = _queue(f"http://{NAME}:{receiver.port}/hook")
        dns[NAME] = [PUBLIC, "::ffff:127.0.0.1"]
        assert deliver_pending().failed == 1
        error = db.session.get(OutboxMessage, msg_id).last_error
        assert "::ffff:7f00:1 (127.0.0.1), a loopback address" in error
    assert receiver.connections == []


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]"])
def test_a_literal_address_no_longer_allowed_is_refused_at_delivery(app, monkeypatch,
                                                                     receivers, host):
    receiver = receivers(host.strip("[]"))
    with app.test_request_context():
        msg_id = _queue(f"http://{host}:{receiver.port}/hook")  # allowed when saved
        monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_NETWORKS", "")
        assert deliver_pending().failed == 1
        error = db.session.get(OutboxMessage, msg_id).last_error
        assert error.startswith(f"refused: {host.strip('[]')} is a loopback address;")
    assert receiver.connections == []


def test_an_allowed_network_is_delivered_to_the_checked_address_with_the_name_as_host(
        app, monkeypatch, dns, receivers):
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
    receiver = receivers()
    dns[NAME] = ["127.0.0.1"]  # this name exists for the portal only: nothing else resolves it
    with app.test_request_context():
        msg_id = _queue(f"http://{NAME}:{receiver.port}/hook?source=portal")
        assert deliver_pending().sent == 1
        assert db.session.get(OutboxMessage, msg_id).status is OutboxStatus.SENT
    (got,) = receiver.requests
    assert got["headers"]["Host"] == f"{NAME}:{receiver.port}"
    assert got["path"] == "/hook?source=portal"
    assert len(receiver.connections) == 1


def test_an_ipv6_receiver_in_the_allowed_networks_gets_its_delivery(app, receivers):
    """Guards the transport (http.client since the fix): an IPv6 literal and its Host."""
    receiver = receivers("::1")
    with app.test_request_context():
        msg_id = _queue(f"http://[::1]:{receiver.port}/hook")
        assert deliver_pending().sent == 1
        assert db.session.get(OutboxMessage, msg_id).status is OutboxStatus.SENT
    (got,) = receiver.requests
    assert got["headers"]["Host"] == f"[::1]:{receiver.port}"


# --- https: the certificate is checked against the name, not the address -----------------------

@pytest.fixture
def pki(tmp_path, monkeypatch):
    """A CA the portal trusts (SSL_CERT_FILE) and a server context for a certificate it
    signed for ``names``."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def cert(subject, issuer, key, signer, *, ca: bool, names=()):
        now = utcnow()
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(days=1))
                   .not_valid_after(now + timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                                  critical=False))
        if ca:
            builder = builder.add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = cert("Test CA", "Test CA", ca_key, ca_key, ca=True)
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))

    def server_context(*names: str) -> ssl.SSLContext:
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = cert(names[0], "Test CA", key, ca_key, ca=False, names=names)
        path = tmp_path / f"{names[0]}.pem"
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption())
                         + leaf.public_bytes(serialization.Encoding.PEM))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(path)
        return context

    return server_context


def test_https_is_verified_against_the_name_while_connecting_to_the_checked_address(
        app, monkeypatch, dns, receivers, pki):
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
    receiver = receivers(tls=pki(NAME))
    dns[NAME] = ["127.0.0.1"]
    with app.test_request_context():
        msg_id = _queue(f"https://{NAME}:{receiver.port}/hook")
        assert deliver_pending().sent == 1, db.session.get(OutboxMessage, msg_id).last_error
    assert receiver.server_names == [NAME]  # SNI
    (got,) = receiver.requests
    assert got["headers"]["Host"] == f"{NAME}:{receiver.port}"


def test_https_with_a_certificate_for_another_name_is_not_delivered(app, monkeypatch, dns,
                                                                    receivers, pki):
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
    receiver = receivers(tls=pki("other.partner.example"))
    dns[NAME] = ["127.0.0.1"]
    with app.test_request_context():
        msg_id = _queue(f"https://{NAME}:{receiver.port}/hook")
        assert deliver_pending().retried == 1
        assert "certificate verify failed" in db.session.get(OutboxMessage, msg_id).last_error
    assert receiver.requests == []


# --- what is kept and shown of a refusing receiver's reply -------------------------------------

REPLY = (b"<script>alert('reply')</script>\x00\x1b[31m\xe2\x80\xae" + b"x" * 1000
         + b"\r\nsecret-tail")


def test_a_long_reply_is_kept_short_and_without_control_characters(app, receivers):
    receiver = receivers(status=400, reply=REPLY)
    with app.test_request_context():
        msg_id = _queue(f"http://127.0.0.1:{receiver.port}/hook")
        assert deliver_pending().failed == 1
        msg = db.session.get(OutboxMessage, msg_id)
        prefix = "HTTP 400 Bad Request: "
        assert msg.last_error.startswith(prefix + "<script>alert('reply')</script>[31mxxx")
        excerpt = msg.last_error[len(prefix):]
        assert len(excerpt) <= webhooks.REPLY_EXCERPT_CHARS and excerpt.endswith("…")
        assert not any(c in msg.last_error for c in "\x00\x1b\u202e\r\n")
        assert "secret-tail" not in msg.last_error
        assert [a.error for a in _attempts(msg_id)] == [msg.last_error]


def test_the_outbox_pages_show_the_reply_cut_and_escaped(app, admin, browser, receivers):
    receiver = receivers(status=400, reply=REPLY)
    with app.test_request_context():
        msg_id = _queue(f"http://127.0.0.1:{receiver.port}/hook")
        deliver_pending()
    browser.login("admin")
    for url in (f"/admin/notifications/messages/{msg_id}", "/admin/notifications/failures"):
        page = browser.get(url).get_data(as_text=True)
        assert "HTTP 400 Bad Request: &lt;script&gt;alert(&#39;reply&#39;)&lt;/script&gt;" in page
        assert "<script>alert(" not in page
        assert "x" * 200 not in page and "secret-tail" not in page
