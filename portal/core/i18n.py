"""Language and time zone of the current user: Chinese first, English second."""
from __future__ import annotations

from flask import current_app, has_request_context, session
from flask_login import current_user


def select_locale() -> str:
    languages = current_app.config["PORTAL_LANGUAGES"]
    if not has_request_context():
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    chosen = session.get("lang")
    if chosen in languages:
        return chosen
    if current_user and current_user.is_authenticated and current_user.locale in languages:
        return current_user.locale
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def select_timezone() -> str:
    if has_request_context() and current_user and current_user.is_authenticated and current_user.timezone:
        return current_user.timezone
    return current_app.config["PORTAL_DEFAULT_TIMEZONE"]


def current_locale() -> str:
    from flask_babel import get_locale

    loc = get_locale()
    return str(loc) if loc else "zh_CN"
