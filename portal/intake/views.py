"""Intake pages: uploading ticket and volume files, import batches and their results; the
review and follow-up queues live in ``intake.queues`` on the same blueprint."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("intake", __name__, url_prefix="/intake")

from portal.intake import queues  # noqa: F401  (registers the queue routes on bp)
