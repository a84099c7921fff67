"""The review queue of proposed violations and the follow-up queue (跟单) of late shipments."""
from __future__ import annotations

from portal.intake.views import bp  # noqa: F401
