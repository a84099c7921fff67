"""Test set-up: one fresh database per test run, on SQLite (default) or PostgreSQL.

``TEST_DATABASE=postgresql`` runs the suite on the PostgreSQL server at ``TEST_POSTGRES_URL``
(default ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``): a database with a random
name is created for the run and dropped after it. The schema is built by the Alembic
migrations (not ``create_all``), and every test starts from empty tables. CSRF stays ON: the
``Browser`` helper sends the token the way a browser does.
"""
from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import create_engine, text

from portal import ROOT, create_app

PG_SERVER = os.environ.get("TEST_POSTGRES_URL",
                           "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
BACKEND = os.environ.get("TEST_DATABASE", "sqlite").lower()


def _compile_translations() -> None:
    """Compile the .po catalogues (the .mo files are build output, never committed)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po_path in (ROOT / "portal" / "translations").glob("*/LC_MESSAGES/messages.po"):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as f:
            catalog = read_po(f)
        with mo_path.open("wb") as f:
            write_mo(f, catalog)


class Database:
    """A fresh, empty database for this test run, and how to reach it."""

    def __init__(self, tmp_dir: Path, name: str = "portal"):
        self.backend = BACKEND
        if BACKEND == "sqlite":
            self.url = f"sqlite:///{tmp_dir / (name + '.db')}"
        elif BACKEND in ("postgresql", "postgres"):
            self.backend = "postgresql"
            self.name = f"portal_test_{name}_{uuid.uuid4().hex[:10]}"
            admin = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{self.name}"'))
            admin.dispose()
            self.url = PG_SERVER.rsplit("/", 1)[0] + "/" + self.name
        else:
            raise RuntimeError(f"TEST_DATABASE must be sqlite or postgresql, not {BACKEND!r}")

    def drop(self) -> None:
        if self.backend != "postgresql":
            return
        admin = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        admin.dispose()


def make_database(tmp_path_factory, name: str) -> Database:
    return Database(tmp_path_factory.mktemp(name), name)


@pytest.fixture(scope="session")
def database(tmp_path_factory):
    db = make_database(tmp_path_factory, "portal")
    yield db
    db.drop()


@pytest.fixture(scope="session")
def app(database, tmp_path_factory):
    _compile_translations()
    app = create_app({
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": database.url,
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",  # fast hashes: tests log in a lot
        "FILE_STORAGE_DIR": str(tmp_path_factory.mktemp("files")),  # never instance/files
        # the tests' webhook receivers listen on this machine (test_webhook_ssrf.py: refused)
        "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128",
    })
    from flask_migrate import upgrade

    with app.app_context():
        upgrade()  # the schema comes from the migrations, as in production
    yield app
    from portal.extensions import db

    with app.app_context():
        db.engine.dispose()


def _truncate_all(app) -> None:
    from portal.core.db import Base
    from portal.extensions import db

    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables)
                              + " RESTART IDENTITY CASCADE"))
        else:
            for t in tables:
                conn.execute(text(f'DELETE FROM "{t}"'))


@pytest.fixture(autouse=True)
def _clean_tables(request):
    yield
    if "app" in request.fixturenames:
        app = request.getfixturevalue("app")
        from portal.extensions import db

        with app.app_context():
            db.session.remove()
            _truncate_all(app)


@pytest.fixture
def ctx(app):
    """An application context for calling services directly (with a request for i18n)."""
    with app.test_request_context():
        yield
        from portal.extensions import db

        db.session.rollback()


CSRF_RE = re.compile(r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"')


TOTP_SECRET_RE = re.compile(r'data-totp-secret="([A-Z2-7]+)"')


def totp_code(app, username: str, secret: str | None = None) -> str:
    """The current code of ``username``'s authenticator app (its key from the database unless
    given). A code is accepted once per 30-second step, and tests sign the same person in many
    times within one step (the access matrix: once per route), so the portal is told to forget
    the last step it accepted, as if the test had waited for the next one. Replay protection
    has its own tests (test_security_two_factor.py)."""
    import pyotp
    from sqlalchemy import func, update

    from portal.accounts.models import User
    from portal.core.db import utcnow
    from portal.extensions import db

    with app.app_context():
        name = username.strip().lower()
        db.session.execute(update(User).where(func.lower(User.username) == name)
                           .values(totp_last_step=None))
        if secret is None:
            secret = db.session.scalar(db.select(User.totp_secret).where(
                func.lower(User.username) == name))
        db.session.commit()
    return pyotp.TOTP(secret).at(utcnow())


class Browser:
    """A test client that behaves like a browser: signs in through the form, sends CSRF."""

    def __init__(self, app):
        self.app = app
        self.client = app.test_client()
        self.csrf = None

    def get(self, url, **kw):
        resp = self.client.get(url, **kw)
        m = CSRF_RE.search(resp.get_data(as_text=True)) if resp.mimetype == "text/html" else None
        if m:
            self.csrf = m.group(1)
        return resp

    def post(self, url, data=None, *, csrf=True, **kw):
        data = dict(data or {})
        if csrf:
            if self.csrf is None:
                self.get("/login")
            data.setdefault("csrf_token", self.csrf)
        return self.client.post(url, data=data, **kw)

    def login(self, username, password="test-password-1"):
        """Sign in through the form, the second factor included: a role that requires it
        sets up its app on the first sign-in (from the key on the set-up page), later ones
        enter the app's current code."""
        self.get("/login")
        resp = self.post("/login", {"username": username, "password": password})
        next_page = urlsplit(resp.headers.get("Location", "")).path if resp.status_code == 302 \
            else ""
        if next_page == "/account/2fa/setup":
            page = self.get(next_page).get_data(as_text=True)
            secret = TOTP_SECRET_RE.search(page).group(1)
            self.post(next_page, {"code": totp_code(self.app, username, secret)})
        elif next_page == "/login/2fa":
            self.get(next_page)
            self.post(next_page, {"code": totp_code(self.app, username)})
        self.get("/")
        return resp

    def logout(self):
        return self.post("/logout")


@pytest.fixture
def browser(app):
    return Browser(app)


@pytest.fixture
def make_browser(app):
    return lambda: Browser(app)


class SmtpSink:
    """A real SMTP server (aiosmtpd) on a free local port that keeps what it receives.

    ``reject`` set to an SMTP reply (e.g. "550 no such user") refuses every recipient."""

    def __init__(self):
        self.messages = []
        self.reject: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject:
            return self.reject
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        import email
        from email import policy

        self.messages.append(email.message_from_bytes(envelope.original_content,
                                                      policy=policy.default))
        return "250 Message accepted for delivery"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server(app):
    """Starts an SMTP server for the test and points the portal's mail settings at it."""
    from aiosmtpd.controller import Controller

    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    saved = {k: app.config[k] for k in ("MAIL_SERVER", "MAIL_PORT")}
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=controller.port)
    sink.port = controller.port
    yield sink
    controller.stop()
    app.config.update(saved)
