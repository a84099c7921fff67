from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.db import Base, CreatedAtMixin, enum_column


class CaseStatus(enum.StrEnum):
    OPEN = "open"
    RULED = "ruled"


class RulingStatus(enum.StrEnum):
    EFFECTIVE = "effective"


class Case(CreatedAtMixin, Base):
    """One incident CS rules on: its violations, evidence and ruling."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    incident_at: Mapped[datetime]
    status: Mapped[CaseStatus] = mapped_column(enum_column(CaseStatus), default=CaseStatus.OPEN,
                                               index=True)
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    version: Mapped[int] = mapped_column(default=1)

    violations: Mapped[list[Violation]] = relationship(back_populates="case",
                                                       order_by="Violation.id")
    rulings: Mapped[list[Ruling]] = relationship(back_populates="case", order_by="Ruling.id")
    opened_by = relationship("User")

    __mapper_args__ = {"version_id_col": version}

    @property
    def number(self) -> str:
        return f"CASE-{self.id:06d}"

    @property
    def ruling(self) -> Ruling | None:
        return self.rulings[-1] if self.rulings else None

    def party_ids(self) -> set[int]:
        ids = {v.party_id for v in self.violations}
        for r in self.rulings:
            ids |= {s.party_id for s in r.shares}
        return ids

    def violations_for(self, scope: int | None) -> list[Violation]:
        """The violations a viewer with party ``scope`` may see (all when ``scope`` is None)."""
        return [v for v in self.violations if scope is None or v.party_id == scope]

    def penalties_for(self, scope: int | None) -> list[Penalty]:
        ruling = self.ruling
        if ruling is None:
            return []
        return [p for p in ruling.penalties if scope is None or p.party_id == scope]

    def party_codes(self, scope: int | None) -> list[str]:
        codes = {v.party.code for v in self.violations_for(scope)}
        codes |= {p.party.code for p in self.penalties_for(scope)}
        return sorted(codes)

    def amount_for(self, scope: int | None) -> Decimal:
        if scope is None and self.ruling:
            return self.ruling.total_amount
        return sum((p.amount for p in self.penalties_for(scope)), Decimal("0.00"))

    def snapshot(self) -> dict:
        return {"number": self.number, "title": self.title, "status": self.status,
                "incident_at": self.incident_at}


class Violation(Base):
    """A breach of a clause by a party, recorded by CS with its evidence."""

    __tablename__ = "violations"
    __table_args__ = (CheckConstraint("occurrences > 0", name="occurrences_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    clause_id: Mapped[int] = mapped_column(ForeignKey("clauses.id"), index=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"), index=True)
    occurrences: Mapped[int] = mapped_column(default=1)
    evidence: Mapped[str] = mapped_column(Text)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime]

    case: Mapped[Case] = relationship(back_populates="violations")
    clause = relationship("Clause")
    party = relationship("Party")
    recorded_by = relationship("User")

    @property
    def fine(self) -> Decimal:
        """The clause's fixed fine times the occurrences (zero for an unpriced clause)."""
        return (self.clause.fine_per_occurrence or Decimal("0.00")) * self.occurrences

    def snapshot(self) -> dict:
        return {"case_id": self.case_id, "clause_id": self.clause_id, "party_id": self.party_id,
                "occurrences": self.occurrences, "evidence": self.evidence}


class Ruling(Base):
    """The CS decision on a case (裁定), with its rationale and the blame split."""

    __tablename__ = "rulings"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    rationale: Mapped[str] = mapped_column(Text)
    total_amount: Mapped[Decimal]
    ruled_at: Mapped[datetime]
    status: Mapped[RulingStatus] = mapped_column(enum_column(RulingStatus),
                                                 default=RulingStatus.EFFECTIVE)

    case: Mapped[Case] = relationship(back_populates="rulings")
    officer = relationship("User")
    shares: Mapped[list[ResponsibilityShare]] = relationship(
        back_populates="ruling", order_by="ResponsibilityShare.id")
    penalties: Mapped[list[Penalty]] = relationship(back_populates="ruling",
                                                    order_by="Penalty.id")


class ResponsibilityShare(Base):
    """A party's (or internal department's) whole-percent share of the blame in a ruling."""

    __tablename__ = "responsibility_shares"
    __table_args__ = (
        UniqueConstraint("ruling_id", "party_id"),
        CheckConstraint("percent > 0 AND percent <= 100", name="percent_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ruling_id: Mapped[int] = mapped_column(ForeignKey("rulings.id"), index=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"), index=True)
    percent: Mapped[int]
    employee_no: Mapped[str] = mapped_column(String(32), default="")
    employee_name: Mapped[str] = mapped_column(String(120), default="")

    ruling: Mapped[Ruling] = relationship(back_populates="shares")
    party = relationship("Party")


class Penalty(CreatedAtMixin, Base):
    """What one party owes for one ruling (罚单): the ruled amount times its share."""

    __tablename__ = "penalties"

    id: Mapped[int] = mapped_column(primary_key=True)
    ruling_id: Mapped[int] = mapped_column(ForeignKey("rulings.id"), index=True)
    share_id: Mapped[int] = mapped_column(ForeignKey("responsibility_shares.id"), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"), index=True)
    amount: Mapped[Decimal]

    ruling: Mapped[Ruling] = relationship(back_populates="penalties")
    share: Mapped[ResponsibilityShare] = relationship()
    case: Mapped[Case] = relationship()
    party = relationship("Party")
