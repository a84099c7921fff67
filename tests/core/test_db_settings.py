import pytest
import sqlalchemy as sa

from portal.core.db import pg_settings
from portal.extensions import db


def _setting(conn, name):
    return conn.exec_driver_sql(f"SELECT current_setting('{name}')").scalar()


def test_settings_hold_inside_the_block_and_are_put_back_after(app):
    with app.app_context():
        conn = db.session.connection()
        if conn.dialect.name != "postgresql":
            with pg_settings(conn, work_mem="7MB"):   # nothing to set: a no-op
                pass
            return
        before = (_setting(conn, "work_mem"), _setting(conn, "TimeZone"))
        with pg_settings(conn, work_mem="7MB", timezone="Asia/Shanghai"):
            assert (_setting(conn, "work_mem"), _setting(conn, "TimeZone")) == (
                "7MB", "Asia/Shanghai")
        assert (_setting(conn, "work_mem"), _setting(conn, "TimeZone")) == before
        db.session.rollback()


def test_a_failed_statement_takes_the_settings_back_with_its_savepoint(app):
    with app.app_context():
        conn = db.session.connection()
        if conn.dialect.name != "postgresql":
            pytest.skip("PostgreSQL settings")
        before = _setting(conn, "work_mem")
        savepoint = conn.begin_nested()
        with pytest.raises(sa.exc.DataError), pg_settings(conn, work_mem="7MB"):
            conn.exec_driver_sql("SELECT 'x'::int")
        savepoint.rollback()
        assert _setting(conn, "work_mem") == before
        db.session.rollback()
