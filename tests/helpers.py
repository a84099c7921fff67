"""Small assertions shared by tests."""
from __future__ import annotations

from sqlalchemy import func, select

from portal.core.db import Base
from portal.extensions import db


def row_counts(app) -> dict[str, int]:
    """The number of rows in every table: a failed action must leave all of them as they were."""
    with app.app_context():
        db.session.remove()
        return {t.name: db.session.scalar(select(func.count()).select_from(t))
                for t in Base.metadata.sorted_tables}


def english(browser) -> None:
    """Switch the browser's session to English, so assertions can read the English text."""
    browser.post("/lang", {"lang": "en"})
