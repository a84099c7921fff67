"""The migration that names each ruling's arithmetic keeps the rulings already issued as they
were issued (the decision of record): marked ``whole_case_v1``, every amount unchanged."""
from __future__ import annotations

import pytest
from sqlalchemy import create_engine, event, text

from tests.conftest import make_database
from tests.test_hr_migration import ROWS as HR_ROWS
from tests.test_migrations import alembic_config  # noqa: F401  (fixture)

BEFORE = "d7e2b9c4a1f0"

# parties, an HR user, a case, a ruling of C001 70 % / D001 30 % of ¥500, its shares
ROWS = [sql for sql in HR_ROWS if sql.split()[2] in (
    "parties", "users", "cases", "rulings", "responsibility_shares")]


@pytest.fixture
def alembic_engine(tmp_path_factory):
    """As the portal connects (``core.sqlite``): foreign keys on, on SQLite too, so that a
    migration that rebuilt ``rulings`` (which other tables reference) would fail here as it
    failed on the demo database."""
    database = make_database(tmp_path_factory, "arithmetic")
    engine = create_engine(database.url)
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _foreign_keys_on(dbapi_connection, _record):
            dbapi_connection.execute("PRAGMA foreign_keys=ON")
    yield engine
    engine.dispose()
    database.drop()


def test_rulings_already_issued_keep_their_amounts_and_say_how_they_were_priced(
        alembic_runner, alembic_engine):
    alembic_runner.migrate_up_to(BEFORE)
    with alembic_engine.begin() as conn:
        for sql in ROWS:
            conn.execute(text(sql))
        if alembic_engine.dialect.name == "sqlite":   # as the portal runs: rulings referenced
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    alembic_runner.migrate_up_one()
    with alembic_engine.connect() as conn:
        ruling = conn.execute(text("SELECT id, arithmetic, total_amount, fine_total FROM rulings")
                              ).one()
        shares = conn.execute(text("SELECT party_id, percent, fine FROM responsibility_shares "
                                   "ORDER BY id")).all()
    assert (ruling[0], ruling[1], float(ruling[2]), float(ruling[3])) == (
        7, "whole_case_v1", 500.0, 500.0)
    assert [(r[0], r[1], float(r[2])) for r in shares] == [(1, 70, 350.0), (2, 30, 150.0)]
    with alembic_engine.begin() as conn:     # only the two arithmetics are accepted
        try:
            conn.execute(text("UPDATE rulings SET arithmetic = 'guesswork'"))
        except Exception:  # noqa: BLE001  the CHECK constraint's error, whatever the driver
            refused = True
        else:
            refused = False
    assert refused
    alembic_runner.migrate_down_one()
    with alembic_engine.connect() as conn:
        assert float(conn.execute(text("SELECT total_amount FROM rulings")).scalar()) == 500.0
