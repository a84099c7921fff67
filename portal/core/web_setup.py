"""Wiring shared by every page: sign-in, template filters, error pages, response headers."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from flask import flash, g, redirect, render_template, request, session, url_for
from flask_babel import format_date, format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import CSRFError

from portal.core import i18n
from portal.core.money import format_yuan
from portal.core.permissions import Perm, Role, allowed
from portal.core.timeutil import local_today
from portal.core.web import safe_target
from portal.extensions import db, login_manager


def init_app(app):
    login_manager.login_view = "accounts.login"
    login_manager.login_message = _l("Please sign in to see this page.")
    login_manager.login_message_category = "info"

    @login_manager.user_loader
    def load_user(user_id: str):
        """The user of the Flask session, if its server-side session record is still live
        (not ended, not idle too long, not too old): see ``accounts.security``."""
        from portal.accounts.security import SESSION_KEY, check_session

        sid = session.get(SESSION_KEY)
        result = check_session(user_id, sid)
        if result.user is None:
            lang = session.get("lang")
            session.clear()  # a dead session is forgotten, not looked up on every request
            if lang:
                session["lang"] = lang
            if result.expired:
                flash(_("Your session timed out; please sign in again."), "info")
            elif sid:
                flash(_("You were signed out; please sign in again."), "info")
        return result.user

    if app.config.get("PROXY_FIX"):
        # Behind N reverse proxies: trust their X-Forwarded-For/-Proto/-Host/-Port, so that
        # request.remote_addr (throttling, audit) and request.is_secure (HSTS) are the
        # client's. Never set it when the portal can be reached without the proxy.
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = int(app.config["PROXY_FIX"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)

    @app.before_request
    def sign_in_state():
        """Between the password and the second factor only the sign-in pages open; for
        everyone else the user (and their session record) is loaded first thing, before the
        view changes anything (the session check may commit)."""
        if request.endpoint == "static" or request.path.startswith("/api/"):
            return None
        from portal.accounts.views import PENDING, PENDING_ENDPOINTS, pending_sign_in

        if PENDING in session and request.endpoint not in PENDING_ENDPOINTS:
            note = pending_sign_in()
            if note is not None:
                return redirect(url_for("accounts.two_factor_setup" if note.get("enrol")
                                        else "accounts.two_factor"))
            session.pop(PENDING, None)
        current_user.is_authenticated  # noqa: B018  (loads the user now)
        return None

    @app.template_filter("money")
    def money(value: Decimal | None) -> str:
        return format_yuan(value)

    @app.template_filter("dt")
    def dt(value: datetime | None) -> str:
        return format_datetime(value, "yyyy-MM-dd HH:mm") if value else "—"

    @app.template_filter("d")
    def d(value: date | None) -> str:
        return format_date(value, "yyyy-MM-dd") if value else "—"

    @app.template_global()
    def url_with(**changes) -> str:
        """This page's URL with some query arguments changed (pagers, filters, CSV links)."""
        args = {**request.args.to_dict(), **changes}
        return url_for(request.endpoint, **(request.view_args or {}),
                       **{k: v for k, v in args.items() if v not in (None, "")})

    @app.context_processor
    def inject():
        locale = i18n.select_locale()  # "zh_CN" or "en", as offered in the switch
        return {
            "Perm": Perm,
            "Role": Role,
            "can": lambda perm: allowed(current_user, perm),
            "locale": locale,
            "today": local_today(),  # the portal's calendar day: due dates are counted in it
            "is_en": locale.startswith("en"),
            "languages": [("zh_CN", "中文"), ("en", "English")],
            "portal_name": app.config["PORTAL_NAME"],
        }

    for code in (400, 403, 404, 405, 409, 500):
        app.register_error_handler(code, _error_page(code))

    @app.errorhandler(CSRFError)
    def stale_form(error):
        """A form whose token is gone (the session ended while the page was open): the
        language switch, in every page's header, goes back to the page instead of an error."""
        if request.endpoint == "main.set_language":
            flash(_("The page was open too long; choose the language again."), "info")
            return redirect(safe_target(request.form.get("next")))
        return _error_page(400)(error)

    @app.after_request
    def security_headers(response):
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'; "
            "base-uri 'self'; form-action 'self'; object-src 'none'")
        headers.setdefault("Permissions-Policy",
                           "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if request.is_secure:  # HTTPS (behind a proxy: set PROXY_FIX)
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if response.mimetype == "text/html" and _signed_in_or_signing_in():
            headers["Cache-Control"] = "no-store"
        return response


def _signed_in_or_signing_in() -> bool:
    """Whether this request's pages are someone's own (never kept by caches or the back
    button). Looks only at what the request already loaded: no query here."""
    from portal.accounts.views import PENDING

    user = g.get("_login_user")
    return bool(user is not None and user.is_authenticated) or PENDING in session


def _error_page(code: int):
    def handler(error):
        if code == 500:
            db.session.rollback()
        if request.path.startswith("/api/"):
            return {"error": getattr(error, "description", str(error))}, code
        return render_template("errors/error.html", code=code, error=error), code
    return handler
