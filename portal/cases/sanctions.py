"""Points per party per year and the sanctions they trigger (to be completed)."""
from __future__ import annotations


def review_sanctions(party_ids: set[int]) -> None:
    """Re-check the sanctions of ``party_ids`` after their penalties changed."""
