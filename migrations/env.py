"""Alembic environment: one linear history for SQLite and PostgreSQL.

The database comes from (in order) a connection handed in by the caller (the migration tests),
the Flask app when run through ``flask db``, or ``DATABASE_URL``. ``render_as_batch`` lets the
same migrations ALTER tables on SQLite.
"""
from __future__ import annotations

import logging
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine

import portal.models  # noqa: F401  (every table on the metadata)
from portal.core.db import Base

config = context.config
if config.config_file_name is not None and not config.attributes.get("skip_logging"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)
log = logging.getLogger("alembic.env")

target_metadata = Base.metadata


def _url() -> str:
    try:
        from flask import current_app

        return current_app.config["SQLALCHEMY_DATABASE_URI"]
    except RuntimeError:
        from pathlib import Path

        from portal import ROOT
        from portal.config import database_url

        return database_url(Path(ROOT / "instance"))


def _configure(connection) -> None:
    postgresql = connection.dialect.name == "postgresql"

    def include_object(obj, name, type_, reflected, compare_to):
        # on PostgreSQL the references of a violation are checked by statement-level triggers
        # (migration c4f1a2b3d5e6), not by the FOREIGN KEY constraints the model declares
        return not (postgresql and type_ == "foreign_key_constraint"
                    and obj.table.name == "violations")

    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        include_object=include_object,
    )


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    given = config.attributes.get("connection")  # a Connection or an Engine from the caller
    if isinstance(given, Connection):
        _configure(given)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = given if isinstance(given, Engine) else create_engine(_url())
    with engine.connect() as connection:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    if given is None:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
