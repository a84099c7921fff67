"""Evidence files of a case: upload, list, download (routes on the cases blueprint)."""
from __future__ import annotations

from portal.cases.views import bp  # noqa: F401
