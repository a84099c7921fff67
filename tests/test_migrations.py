"""Migrations: one head, upgrade from empty, down to base and up again, models match (no drift).

Runs on the backend the suite runs on (SQLite or PostgreSQL), each test on its own empty
database. The checks come from pytest-alembic.
"""
from __future__ import annotations

import pytest
from pytest_alembic.tests import (  # noqa: F401  (collected as tests here)
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from sqlalchemy import create_engine, inspect

from portal import ROOT
from tests.conftest import make_database


@pytest.fixture
def alembic_config():
    from pytest_alembic.config import Config

    return Config(config_options={
        "file": str(ROOT / "migrations" / "alembic.ini"),
        "script_location": str(ROOT / "migrations"),
    }, at_revision_data={})


@pytest.fixture
def alembic_engine(tmp_path_factory):
    database = make_database(tmp_path_factory, "migrations")
    engine = create_engine(database.url)
    yield engine
    engine.dispose()
    database.drop()


def test_downgrade_to_base_and_up_again(alembic_runner, alembic_engine):
    alembic_runner.migrate_up_to("heads")
    assert "cases" in inspect(alembic_engine).get_table_names()
    alembic_runner.migrate_down_to("base")
    assert set(inspect(alembic_engine).get_table_names()) <= {"alembic_version"}
    alembic_runner.migrate_up_to("heads")
    assert "hr_notices" in inspect(alembic_engine).get_table_names()
