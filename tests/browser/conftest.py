"""Real-browser journeys: the portal served from a thread, driven by Debian's Chromium.

The server is the real app (``create_app``) on its own database, built by the migrations and
filled with the demo data (``flask demo load``), served by Werkzeug from a thread of the test
process on a free port. SQLite is a file in the run's tmp dir (an in-memory database is not
shared between the server's threads); ``TEST_DATABASE=postgresql`` gives the suite its own
fresh PostgreSQL database, made and dropped like the main suite's (``tests/conftest.py``).

Playwright drives ``/usr/bin/chromium`` and never downloads a browser; without Chromium the
journeys are skipped, saying so. Each test gets a fresh browser context (its own cookies) in
the Chinese UI; a failing test leaves a screenshot under ``test-artifacts/browser/<database>/``
and prints its path. The journeys share one demo world and run in file order: later journeys
may build on earlier ones (the appeal against the ruling the officer just issued).
"""
from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pyotp
import pytest
from sqlalchemy import text

from portal import ROOT, create_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
# screenshots of failures, per database (scripts/test runs the suite on both)
ARTIFACTS = ROOT / "test-artifacts" / "browser" / os.environ.get("TEST_DATABASE", "sqlite")
TIMEOUT_MS = 30_000          # one action or navigation; the machine is shared and slow at times
DEMO_PASSWORD = "demo-pass-2026"


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: a journey in a real browser (Chromium)")


def pytest_collection_modifyitems(config, items):
    if Path(CHROMIUM).exists():
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is missing: install Debian's chromium package "
                                   "(scripts/install --test does)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


# --- screenshots of failures -------------------------------------------------------------------

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    page = item.funcargs.get("page") if hasattr(item, "funcargs") else None
    if report.failed and report.when in ("setup", "call") and page is not None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", item.nodeid.split("::", 1)[-1])[:120]
        path = ARTIFACTS / f"{name}.png"
        try:
            page.screenshot(path=str(path), full_page=True)
        except Exception as exc:  # noqa: BLE001  (a closed page must not hide the failure)
            report.sections.append(("screenshot", f"could not take one: {exc}"))
        else:
            report.sections.append(("screenshot", f"{path} (at {page.url})"))
            print(f"\nscreenshot of the failure: {path}")


@pytest.fixture(scope="session", autouse=True)
def _fresh_artifacts():
    """Only this run's screenshots."""
    import shutil

    shutil.rmtree(ARTIFACTS, ignore_errors=True)


# --- the server ----------------------------------------------------------------------------

def _user_totp(conn, username: str) -> tuple[str | None, int | None]:
    """The user's TOTP secret (base32) and the last time step accepted. The one place that
    knows the columns (accounts.models.User.totp_secret / totp_last_step)."""
    row = conn.execute(text("SELECT totp_secret, totp_last_step FROM users "
                            "WHERE username = :u"), {"u": username}).one()
    return row[0], row[1]


@dataclass
class LiveServer:
    app: object
    url: str
    state: dict = field(default_factory=dict)      # what one journey leaves for the next

    def sql(self, statement: str, **params):
        """Rows of a read-only query on the server's database (checks the journeys' effects
        where the page alone would be a weak witness)."""
        from portal.extensions import db

        with self.app.app_context(), db.engine.connect() as conn:
            return conn.execute(text(statement), params).all()

    def execute(self, statement: str, **params) -> None:
        """Change the server's data behind its back (a journey's starting point)."""
        from portal.extensions import db

        with self.app.app_context(), db.engine.begin() as conn:
            conn.execute(text(statement), params)

    def totp_code(self, username: str, secret: str | None = None) -> str:
        """A code the portal will accept now for ``username``: one of a time step later than
        the last it accepted (a code is never taken twice), waiting if need be."""
        from portal.extensions import db

        with self.app.app_context(), db.engine.connect() as conn:
            stored, last = _user_totp(conn, username)
        secret = secret or stored
        assert secret, f"{username} has no TOTP secret"
        totp = pyotp.TOTP(secret)
        while True:
            now = int(time.time()) // 30
            step = max(now, (last or 0) + 1)
            if step <= now + 1:      # the portal accepts the step before and after this one
                return totp.at(step * 30)
            time.sleep(1)


class _Quiet:
    """Werkzeug's request log off: pytest would show hundreds of lines on any failure."""

    def __enter__(self):
        import logging

        self.logger = logging.getLogger("werkzeug")
        self.level = self.logger.level
        self.logger.setLevel(logging.ERROR)

    def __exit__(self, *exc):
        self.logger.setLevel(self.level)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    from flask_migrate import upgrade
    from werkzeug.serving import make_server

    from portal.demo.data import load_demo
    from portal.extensions import db
    from tests.conftest import _compile_translations, make_database

    _compile_translations()
    database = make_database(tmp_path_factory, "browser")
    work = tmp_path_factory.mktemp("browser-files")
    app = create_app({
        "SECRET_KEY": "browser-journeys",
        "SQLALCHEMY_DATABASE_URI": database.url,
        "FILE_STORAGE_DIR": str(work / "files"),
        "REPORTS_DIR": str(work / "reports"),
        "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": 9,     # nothing is sent: no worker runs
    })
    with app.app_context():
        upgrade()
        with app.test_request_context():
            load_demo()
            db.session.commit()
        db.session.remove()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    with _Quiet():
        thread.start()
        yield LiveServer(app=app, url=f"http://127.0.0.1:{server.server_port}")
        server.shutdown()
        thread.join(timeout=10)
    with app.app_context():
        db.engine.dispose()
    database.drop()


# --- the browser -----------------------------------------------------------------------------

@pytest.fixture(scope="session")
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing")
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                    headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, live_server):
    context = chromium.new_context(base_url=live_server.url, locale="zh-CN",
                                   accept_downloads=True, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())   # "Submit your answers?" and the like
    yield page
    context.close()


# --- what every journey does -----------------------------------------------------------------

def path_of(page) -> str:
    return urlsplit(page.url).path


def switch_language(page, lang: str) -> None:
    """Press the 中文 / English button of the page header."""
    with page.expect_navigation():
        page.click(f'form[action$="/lang"] button[value="{lang}"]')
    expected = "en" if lang == "en" else "zh-CN"
    assert page.get_attribute("html", "lang") == expected


def sign_in(page, server: LiveServer, username: str, *, lang: str | None = None) -> str:
    """Sign in through the form as a browser does, with a second factor when the portal asks
    for one: a code on /login/2fa (enrolled), or enrolment on /account/2fa/setup (the role
    requires it, not yet set up: the key is on the page in data-totp-secret; the recovery codes
    shown after it are acknowledged with the page's continue link). Works whether or not the
    portal has two-factor sign-in. Returns how: "password", "totp" or "enrolled"."""
    page.goto("/login")
    if lang:
        switch_language(page, lang)
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', DEMO_PASSWORD)
    with page.expect_navigation():
        page.click('form:has(input[name="password"]) button.primary')
    how = "password"
    if path_of(page) == "/login/2fa":
        how = "totp"
        page.fill('input[name="code"]', server.totp_code(username))
        with page.expect_navigation():
            page.click('form:has(input[name="code"]) button.primary')
    elif path_of(page) == "/account/2fa/setup":
        how = "enrolled"
        secret = page.get_attribute("[data-totp-secret]", "data-totp-secret")
        page.fill('input[name="code"]', server.totp_code(username, secret))
        with page.expect_navigation():
            page.click('form:has(input[name="code"]) button.primary')
        assert page.locator(".recovery-code").count() > 0, "no recovery codes after enrolment"
        with page.expect_navigation():
            page.click('a.primary, button.primary')
    assert path_of(page) not in ("/login", "/login/2fa", "/account/2fa/setup"), (
        f"{username} is not signed in: still on {page.url}")
    assert page.locator('form[action$="/logout"]').count() > 0, f"{username}: no sign-out button"
    return how
