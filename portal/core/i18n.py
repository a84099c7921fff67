"""Language and time zone of the current user: Chinese first, English second."""
from __future__ import annotations

from flask import current_app, g, has_app_context, has_request_context, session
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
    """The zone times are shown in: one set for the work at hand (``use_timezone``: a report
    printed again shows its times in the zone it was first printed in), else the user's, else
    the portal's."""
    if has_app_context() and g.get("display_timezone"):
        return g.display_timezone
    if has_request_context() and current_user and current_user.is_authenticated and current_user.timezone:
        return current_user.timezone
    return current_app.config["PORTAL_DEFAULT_TIMEZONE"]


def current_locale() -> str:
    from flask_babel import get_locale

    loc = get_locale()
    return str(loc) if loc else "zh_CN"


def use_timezone(name: str) -> None:
    """Show times in zone ``name`` for the rest of this application context."""
    from flask_babel import refresh

    g.display_timezone = name
    refresh()   # Flask-Babel caches the zone it was given last
