"""Settings, read from environment variables.

Defaults give the embedded set-up: a SQLite database under ``instance/`` and a secret key
generated once and kept in ``instance/secret_key`` (never committed).
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path


def _secret_key(instance_path: Path) -> str:
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    key_file = instance_path / "secret_key"
    if not key_file.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def database_url(instance_path: Path) -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        # Accept the common postgres:// spellings and route them to psycopg 3.
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix):]
        return url
    return f"sqlite:///{instance_path / 'portal.db'}"


def defaults(instance_path: Path) -> dict:
    return {
        "SECRET_KEY": _secret_key(instance_path),
        "SQLALCHEMY_DATABASE_URI": database_url(instance_path),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "BABEL_DEFAULT_LOCALE": "zh_CN",
        "BABEL_DEFAULT_TIMEZONE": "UTC",
        "PORTAL_LANGUAGES": ["zh_CN", "en"],
        "PORTAL_DEFAULT_TIMEZONE": os.environ.get("PORTAL_TIMEZONE", "Asia/Shanghai"),
        "PORTAL_NAME": "服务标准治理平台",
        # Hash method for new passwords (Werkzeug): scrypt by default.
        "PASSWORD_HASH_METHOD": os.environ.get("PASSWORD_HASH_METHOD", "scrypt"),
        "WTF_CSRF_TIME_LIMIT": None,  # token lives as long as the session
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "PAGE_SIZE": 25,
    }
