"""Wiring shared by every page: sign-in, template filters, error pages, response headers."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from flask import render_template, request, url_for
from flask_babel import format_date, format_datetime
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from portal.core import i18n
from portal.core.money import format_yuan
from portal.core.permissions import Perm, Role, allowed
from portal.core.timeutil import local_today
from portal.extensions import db, login_manager


def init_app(app):
    login_manager.login_view = "accounts.login"
    login_manager.login_message = _l("Please sign in to see this page.")
    login_manager.login_message_category = "info"

    @login_manager.user_loader
    def load_user(user_id: str):
        from portal.accounts.models import User

        try:
            return db.session.get(User, int(user_id))
        except (TypeError, ValueError):
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

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'")
        return response


def _error_page(code: int):
    def handler(error):
        if code == 500:
            db.session.rollback()
        if request.path.startswith("/api/"):
            return {"error": getattr(error, "description", str(error))}, code
        return render_template("errors/error.html", code=code, error=error), code
    return handler
