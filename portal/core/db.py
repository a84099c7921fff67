"""The declarative base, column types and mixins shared by every domain's models."""
from __future__ import annotations

import enum
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import DateTime, Enum, MetaData, Numeric, TypeDecorator, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, registry

# Stable constraint names, so Alembic can alter and drop them on SQLite and PostgreSQL alike.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


_frozen_now: ContextVar[datetime | None] = ContextVar("frozen_now", default=None)


def utcnow() -> datetime:
    """The one clock of the portal (aware UTC). ``core.timeutil.frozen_time`` can pin it."""
    return _frozen_now.get() or datetime.now(UTC)


@contextmanager
def pg_settings(conn, **values: str):
    """Run a block with PostgreSQL settings changed for the transaction (``SET LOCAL``), put
    back as they were when the block ends normally (a failed statement takes them back with its
    savepoint or transaction). Nothing on other databases."""
    if conn.dialect.name != "postgresql":
        yield
        return
    names = list(values)
    before = conn.execute(text(   # set_config(..., true) is SET LOCAL with bound values
        "SELECT current_setting(n) FROM unnest(CAST(:names AS text[])) WITH ORDINALITY AS u(n, i) "
        "ORDER BY i"), {"names": names}).scalars().all()

    def put(settings):
        for name, value in settings:
            conn.execute(text("SELECT set_config(:name, :value, true)"),
                         {"name": name, "value": str(value)})

    put(values.items())
    yield
    put(zip(names, before, strict=True))


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL keeps ``timestamptz``; SQLite has no zone, so values are stored as naive UTC and
    given their zone back on load. A naive value handed in is refused: it is a bug to guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Money(TypeDecorator):
    """Yuan with two decimals (fen), ``Decimal`` in Python, ``NUMERIC(12, 2)`` in the database."""

    impl = Numeric(12, 2, asdecimal=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        from portal.core.money import to_money

        return to_money(value)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        from portal.core.money import to_money

        return to_money(value)


def enum_column(enum_cls: type[enum.Enum]) -> Enum:
    """Store an enum by its value as a plain string with a CHECK constraint (portable)."""
    return Enum(
        enum_cls,
        values_callable=lambda cls: [m.value for m in cls],
        native_enum=False,
        create_constraint=True,
        length=32,
        name=enum_cls.__name__.lower(),
        validate_strings=True,
    )


class Base(DeclarativeBase):
    registry = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={datetime: UTCDateTime(), Decimal: Money()},
    )


class CreatedAtMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
