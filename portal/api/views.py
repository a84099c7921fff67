"""The JSON API (``/api/v1``, token auth, no CSRF) and the API token admin page."""
from __future__ import annotations

from flask import Blueprint

api_bp = Blueprint("api", __name__, url_prefix="/api/v1")
tokens_bp = Blueprint("tokens", __name__, url_prefix="/admin/api-tokens")
