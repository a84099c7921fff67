"""服务标准治理平台 — the Service Standards Portal."""
from __future__ import annotations

from pathlib import Path

from flask import Flask

from portal import config as portal_config

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict | None = None) -> Flask:
    """Assemble the app: defaults, then ``instance/config.py``, then ``test_config``."""
    app = Flask(
        __name__,
        instance_relative_config=True,
        instance_path=str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
    )
    instance = Path(app.instance_path)
    app.config.update(portal_config.defaults(instance))
    app.config.from_pyfile("config.py", silent=True)
    if test_config:
        app.config.update(test_config)
    portal_config.settle_cookies(app.config)

    from portal.core import i18n, sqlite, web_setup
    from portal.extensions import babel, csrf, db, login_manager, migrate

    db.init_app(app)
    sqlite.enable_foreign_keys(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=i18n.select_locale,
                   timezone_selector=i18n.select_timezone)
    login_manager.init_app(app)
    web_setup.init_app(app)

    import portal.models  # noqa: F401  (register every table)
    from portal.accounts.cli import accounts_cli
    from portal.accounts.views import bp as accounts_bp
    from portal.api.cli import tokens_cli
    from portal.api.views import api_bp, tokens_bp
    from portal.audit.cli import audit_cli
    from portal.audit.views import bp as audit_bp
    from portal.cases.cli import statements_cli
    from portal.cases.views import bp as cases_bp
    from portal.demo.cli import demo_cli
    from portal.hr.views import bp as hr_bp
    from portal.intake.cli import intake_cli
    from portal.intake.views import bp as intake_bp
    from portal.main.views import bp as main_bp
    from portal.notifications.views import bp as notifications_bp
    from portal.parties.views import bp as parties_bp
    from portal.reports.views import bp as reports_bp
    from portal.standards.cli import standards_cli
    from portal.standards.views import bp as standards_bp
    from portal.training.learn import verify_bp
    from portal.training.views import bp as training_bp
    from portal.training.views import files_bp
    from portal.worker.cli import worker_cli

    for bp in (main_bp, accounts_bp, parties_bp, standards_bp, training_bp, cases_bp, hr_bp,
               reports_bp, audit_bp, verify_bp, files_bp, intake_bp, api_bp, tokens_bp,
               notifications_bp):
        app.register_blueprint(bp)
    csrf.exempt(api_bp)  # token-authenticated JSON, no session: no CSRF token to send
    for group in (audit_cli, standards_cli, demo_cli, worker_cli, intake_cli,
                  tokens_cli, statements_cli, accounts_cli):
        app.cli.add_command(group)
    return app
