from __future__ import annotations

import enum

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.db import Base, CreatedAtMixin, enum_column


class PartyKind(enum.StrEnum):
    CARRIER = "carrier"
    MERCHANT = "merchant"
    WAREHOUSE = "warehouse"
    DEPARTMENT = "department"


class Party(CreatedAtMixin, Base):
    """Any organisation that can be bound by a standard and held responsible."""

    __tablename__ = "parties"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name_zh: Mapped[str] = mapped_column(String(120))
    name_en: Mapped[str] = mapped_column(String(120), default="")
    kind: Mapped[PartyKind] = mapped_column(enum_column(PartyKind), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    # the gravest sanction standing ("" none; see ``cases.models.SanctionLevel``), kept by
    # ``cases.sanctions``; suspension and termination mean: no new business
    sanction: Mapped[str] = mapped_column(String(20), default="", server_default="")
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012  (SQLAlchemy reads it)

    @property
    def is_internal(self) -> bool:
        return self.kind is PartyKind.DEPARTMENT

    @property
    def new_business(self) -> bool:
        """May the party receive new business (orders routed to it, new listings)?"""
        return self.active and self.sanction not in ("suspension", "termination")

    def name(self, locale: str) -> str:
        return self.name_en if locale.startswith("en") and self.name_en else self.name_zh

    def snapshot(self) -> dict:
        return {"code": self.code, "name_zh": self.name_zh, "name_en": self.name_en,
                "kind": self.kind, "active": self.active}
