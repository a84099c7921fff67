from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.db import Base, CreatedAtMixin, enum_column


class CaseStatus(enum.StrEnum):
    OPEN = "open"
    AWAITING_APPROVAL = "awaiting_approval"   # a ruling waits for its approver's signature
    RULED = "ruled"


class ViolationStatus(enum.StrEnum):
    PROPOSED = "proposed"      # by the rule engine, waiting in the review queue
    CONFIRMED = "confirmed"    # in a case (recorded there by CS, or a proposal confirmed)
    DISMISSED = "dismissed"    # CS said no, with a reason


class ViolationSource(enum.StrEnum):
    RULE = "rule"
    MANUAL = "manual"


class RulingStatus(enum.StrEnum):
    PENDING = "pending"          # above the officer's limit: waits for the approver
    EFFECTIVE = "effective"
    DECLINED = "declined"        # the approver refused to sign; the case is open again
    SUPERSEDED = "superseded"    # a later ruling corrected it


class RulingArithmetic(enum.StrEnum):
    """How a ruling's amounts were worked out; a ruling keeps the one it was issued under."""

    # each share's percent taken of the whole case: every fine, compensation and point of
    # every party's violations (the arithmetic of every ruling issued so far)
    WHOLE_CASE = "whole_case_v1"
    # each fine and its points to the party that broke the clause, in full; only the loss
    # (compensation, goodwill, costs) split by the blame shares (``cases.pricing``)
    BREACH_AND_LOSS = "breach_loss_v2"


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

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012  (SQLAlchemy reads it)

    @property
    def number(self) -> str:
        return f"CASE-{self.id:06d}"

    @property
    def ruling(self) -> Ruling | None:
        """The ruling in effect (the latest that took effect and was not superseded)."""
        effective = [r for r in self.rulings if r.status is RulingStatus.EFFECTIVE]
        return effective[-1] if effective else None

    @property
    def pending_ruling(self) -> Ruling | None:
        pending = [r for r in self.rulings if r.status is RulingStatus.PENDING]
        return pending[-1] if pending else None

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
        return [p for p in ruling.penalties
                if p.active and (scope is None or p.party_id == scope)]

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


class CaseParty(Base):
    """A party a case involves, through a violation or a responsibility share: what the case
    list filters on and a party's own list reads (one index instead of two joins). Kept by
    ``cases.services.involve``; the kind is the party's (it never changes)."""

    __tablename__ = "case_parties"
    __table_args__ = (
        Index("ix_case_parties_party_case", "party_id", "case_id"),
        Index("ix_case_parties_kind_case", "kind", "case_id"),
    )

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))


class Violation(Base):
    """A breach of a clause by a party (违规记录): proposed by the rule engine from a ticket, or
    recorded by CS in a case.

    A proposal is keyed by ticket, standard, clause number and party, so evaluating a ticket again
    revises it instead of adding another. The amounts are the clause's rules applied to the
    ticket: what the customer is compensated and what the party is fined are kept apart. The
    ``fact_*`` columns keep what triggered it, as it was when evaluated.
    """

    __tablename__ = "violations"
    __table_args__ = (
        CheckConstraint("occurrences > 0", name="occurrences_positive"),
        UniqueConstraint("ticket_no", "standard_id", "clause_number", "party_id",
                         name="uq_violations_ticket_clause_party"),
        Index("ix_violations_status_party", "status", "party_id", "id"),
        # also the index of party_id alone (its first column)
        Index("ix_violations_party_clause_incident", "party_id", "standard_id", "clause_number",
              "incident_at"),
        # proposals have no case: the rule engine's hundreds of thousands stay out of it
        Index("ix_violations_case_id", "case_id", postgresql_where=text("case_id IS NOT NULL"),
              sqlite_where=text("case_id IS NOT NULL")),
        Index("ix_violations_order_no", "order_no", postgresql_where=text("order_no <> ''"),
              sqlite_where=text("order_no <> ''")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # On PostgreSQL the references of a violation are checked by statement-level triggers, not
    # FOREIGN KEY constraints (migration c4f1a2b3d5e6: one set-based check per statement instead
    # of seven queries per row); SQLite keeps the constraints declared here.
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    clause_id: Mapped[int] = mapped_column(ForeignKey("clauses.id"), index=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    occurrences: Mapped[int] = mapped_column(default=1)
    evidence: Mapped[str] = mapped_column(Text, default="")
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime]
    status: Mapped[ViolationStatus] = mapped_column(enum_column(ViolationStatus),
                                                   default=ViolationStatus.CONFIRMED)
    source: Mapped[ViolationSource] = mapped_column(enum_column(ViolationSource),
                                                   default=ViolationSource.MANUAL)
    ticket_no: Mapped[str | None] = mapped_column(ForeignKey("tickets.ticket_no"))
    # the ticket's order number, kept here by the rule engine whenever the ticket changes:
    # the review queue looks violations up by order (search; one compensation per order), and
    # an index here holds the few tickets that have violations instead of every ticket
    order_no: Mapped[str] = mapped_column(String(40), default="", server_default="")
    standard_id: Mapped[int | None] = mapped_column(ForeignKey("standards.id"))
    clause_number: Mapped[str] = mapped_column(String(20), default="")
    check: Mapped[str] = mapped_column(String(20), default="")
    incident_at: Mapped[datetime | None]
    customer_compensation: Mapped[Decimal] = mapped_column(default=Decimal("0.00"))
    party_fine: Mapped[Decimal] = mapped_column(default=Decimal("0.00"))
    points: Mapped[int] = mapped_column(default=0)
    repeat_no: Mapped[int] = mapped_column(default=1)         # nth breach within the window
    multiplier: Mapped[Decimal] = mapped_column(Numeric(6, 2), default=Decimal("1.00"))
    tier_no: Mapped[int | None]
    fact_from: Mapped[datetime | None]     # promised / requested
    fact_to: Mapped[datetime | None]       # delivered / answered (or as of) / reported signed
    fact_value: Mapped[int | None]         # days late / seconds to answer
    fact_limit: Mapped[int | None]         # the limit in seconds
    order_value: Mapped[Decimal | None]
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None]
    dismiss_reason: Mapped[str] = mapped_column(Text, default="")

    case: Mapped[Case | None] = relationship(back_populates="violations")
    clause = relationship("Clause")
    party = relationship("Party")
    standard = relationship("Standard")
    recorded_by = relationship("User", foreign_keys=[recorded_by_id])
    reviewed_by = relationship("User", foreign_keys=[reviewed_by_id])

    @property
    def fine(self) -> Decimal:
        return self.party_fine

    def snapshot(self) -> dict:
        return {"case_id": self.case_id, "clause_id": self.clause_id, "party_id": self.party_id,
                "occurrences": self.occurrences, "evidence": self.evidence,
                "status": self.status, "ticket_no": self.ticket_no,
                "customer_compensation": self.customer_compensation,
                "party_fine": self.party_fine, "points": self.points}


class Ruling(Base):
    """The CS decision on a case (裁定), with its rationale and the blame split."""

    __tablename__ = "rulings"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    rationale: Mapped[str] = mapped_column(Text)
    total_amount: Mapped[Decimal]          # what the parties owe: fines + compensation recovered
    fine_total: Mapped[Decimal] = mapped_column(default=Decimal("0.00"))
    compensation_total: Mapped[Decimal] = mapped_column(default=Decimal("0.00"))
    points_total: Mapped[int] = mapped_column(default=0)
    ruled_at: Mapped[datetime]
    status: Mapped[RulingStatus] = mapped_column(enum_column(RulingStatus),
                                                 default=RulingStatus.EFFECTIVE)
    required_role: Mapped[str] = mapped_column(String(32), default="")   # who must sign
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[datetime | None]
    approval_meaning: Mapped[str] = mapped_column(Text, default="")  # what the signer signed
    declined_reason: Mapped[str] = mapped_column(Text, default="")
    effective_at: Mapped[datetime | None]
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("rulings.id"))
    supersede_reason: Mapped[str] = mapped_column(Text, default="")
    arithmetic: Mapped[RulingArithmetic] = mapped_column(
        enum_column(RulingArithmetic), default=RulingArithmetic.WHOLE_CASE,
        server_default=RulingArithmetic.WHOLE_CASE.value)

    case: Mapped[Case] = relationship(back_populates="rulings")
    officer = relationship("User", foreign_keys=[officer_id])
    approved_by = relationship("User", foreign_keys=[approved_by_id])
    supersedes = relationship("Ruling", remote_side=[id])

    @property
    def number(self) -> str:
        return f"R-{self.id:06d}"
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
    # the share's part of the case's fines, compensation recovered and points
    fine: Mapped[Decimal] = mapped_column(default=Decimal("0.00"))
    compensation: Mapped[Decimal] = mapped_column(default=Decimal("0.00"))
    points: Mapped[int] = mapped_column(default=0)
    # the part of ``points`` from serious clauses (kept past the yearly reset, see sanctions)
    serious_points: Mapped[int] = mapped_column(default=0, server_default="0")
    # why the party is fined on a clause none of its staff had acknowledged
    override_reason: Mapped[str] = mapped_column(Text, default="")

    ruling: Mapped[Ruling] = relationship(back_populates="shares")
    party = relationship("Party")


class Penalty(CreatedAtMixin, Base):
    """What one party owes for one ruling (罚单): the ruled amount times its share.

    ``created_at`` is when it began to stand (its ruling took effect, or an appeal replaced the
    earlier one); ``withdrawn_at`` when it stopped (its ruling was superseded, or an appeal
    replaced it). A monthly statement charges a penalty in the month it began and reverses it
    in the month it was withdrawn, so a statement once issued never changes.
    """

    __tablename__ = "penalties"
    __table_args__ = (
        Index("ix_penalties_party_created", "party_id", "created_at"),
        Index("ix_penalties_created", "created_at", "id"),
        Index("ix_penalties_party_withdrawn", "party_id", "withdrawn_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ruling_id: Mapped[int] = mapped_column(ForeignKey("rulings.id"), index=True)
    # a share's penalty, or the one an appeal replaced it with (the earlier one then inactive)
    share_id: Mapped[int] = mapped_column(ForeignKey("responsibility_shares.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"), index=True)
    amount: Mapped[Decimal]                # fine + compensation recovered
    fine: Mapped[Decimal] = mapped_column(default=Decimal("0.00"))
    compensation: Mapped[Decimal] = mapped_column(default=Decimal("0.00"))
    points: Mapped[int] = mapped_column(default=0)
    serious_points: Mapped[int] = mapped_column(default=0, server_default="0")
    active: Mapped[bool] = mapped_column(default=True)     # False once its ruling is superseded
    withdrawn_at: Mapped[datetime | None]

    def withdraw(self, when: datetime) -> None:
        """Stop this penalty standing (superseded ruling, appeal replaced it)."""
        self.active, self.withdrawn_at = False, when

    ruling: Mapped[Ruling] = relationship(back_populates="penalties")
    share: Mapped[ResponsibilityShare] = relationship()
    case: Mapped[Case] = relationship()
    party = relationship("Party")


class AppealStatus(enum.StrEnum):
    OPEN = "open"                # filed, waiting for an officer's decision
    UPHELD = "upheld"            # the ruling stands for this party
    REDUCED = "reduced"          # the party's penalty is lowered
    OVERTURNED = "overturned"    # the party owes nothing for this case


class Appeal(Base):
    """A party's appeal (申诉) against its share of a ruling: round 1 or 2, a statement (with
    evidence files, ``Evidence.appeal_id``), decided by an officer other than the one who
    ruled. A reduced or overturned appeal replaces the party's penalty."""

    __tablename__ = "appeals"
    __table_args__ = (
        UniqueConstraint("ruling_id", "party_id", "round"),
        CheckConstraint("round IN (1, 2)", name="round_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    ruling_id: Mapped[int] = mapped_column(ForeignKey("rulings.id"), index=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"), index=True)
    round: Mapped[int]
    statement: Mapped[str] = mapped_column(Text)
    filed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    filed_at: Mapped[datetime]
    status: Mapped[AppealStatus] = mapped_column(enum_column(AppealStatus),
                                                 default=AppealStatus.OPEN, index=True)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    # the penalty before and, when reduced or overturned, after the decision
    penalty_id: Mapped[int] = mapped_column(ForeignKey("penalties.id"))
    new_penalty_id: Mapped[int | None] = mapped_column(ForeignKey("penalties.id"))

    case: Mapped[Case] = relationship()
    ruling: Mapped[Ruling] = relationship()
    party = relationship("Party")
    filed_by = relationship("User", foreign_keys=[filed_by_id])
    decided_by = relationship("User", foreign_keys=[decided_by_id])
    penalty = relationship("Penalty", foreign_keys=[penalty_id])
    new_penalty = relationship("Penalty", foreign_keys=[new_penalty_id])

    @property
    def number(self) -> str:
        return f"A-{self.id:06d}"

    def snapshot(self) -> dict:
        return {"case": self.case_id, "ruling": self.ruling_id, "party": self.party_id,
                "round": self.round, "status": self.status}


class StatementStatus(enum.StrEnum):
    ISSUED = "issued"                # frozen by CS, waiting for the party's countersignature
    COUNTERSIGNED = "countersigned"  # the party's manager signed the text with this hash


class Statement(Base):
    """A party's monthly statement (对账单): its penalties charged and reversed in one calendar
    month (portal time zone), frozen when CS issues it. ``lines_json`` keeps the lines as
    issued and ``text_hash`` is the SHA-256 of their canonical text; the party's manager
    countersigns that hash (name typed, time)."""

    __tablename__ = "statements"
    __table_args__ = (UniqueConstraint("party_id", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"), index=True)
    period: Mapped[str] = mapped_column(String(7))            # "2026-11"
    status: Mapped[StatementStatus] = mapped_column(enum_column(StatementStatus),
                                                    default=StatementStatus.ISSUED, index=True)
    issued_at: Mapped[datetime]
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    lines_json: Mapped[str] = mapped_column(Text)
    fine_total: Mapped[Decimal]
    compensation_total: Mapped[Decimal]
    amount_total: Mapped[Decimal]
    points_total: Mapped[int]
    text_hash: Mapped[str] = mapped_column(String(64))
    countersigned_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    countersigned_name: Mapped[str] = mapped_column(String(120), default="")
    countersigned_at: Mapped[datetime | None]
    countersigned_hash: Mapped[str] = mapped_column(String(64), default="")

    party = relationship("Party")
    issued_by = relationship("User", foreign_keys=[issued_by_id])
    countersigned_by = relationship("User", foreign_keys=[countersigned_by_id])

    @property
    def number(self) -> str:
        return f"ST-{self.period}-{self.id:06d}"

    def snapshot(self) -> dict:
        return {"party": self.party_id, "period": self.period, "status": self.status,
                "amount": self.amount_total, "points": self.points_total,
                "text_hash": self.text_hash}


class SanctionLevel(enum.StrEnum):
    WARNING = "warning"            # 警告
    RETRAINING = "retraining"      # 强制复训
    SUSPENSION = "suspension"      # 暂停新业务: staff still see and appeal
    TERMINATION = "termination"    # 终止合作


class Sanction(CreatedAtMixin, Base):
    """A sanction a party's points for a year triggered (at most one per level and year).
    It stands until lifted: by CS with a reason, or by the portal when the points that
    triggered it are taken back on appeal or correction."""

    __tablename__ = "sanctions"
    __table_args__ = (UniqueConstraint("party_id", "year", "level"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"), index=True)
    year: Mapped[int]
    level: Mapped[SanctionLevel] = mapped_column(enum_column(SanctionLevel))
    threshold: Mapped[int]
    points: Mapped[int]                      # the party's points for the year when triggered
    triggered_at: Mapped[datetime]
    lifted_at: Mapped[datetime | None]
    lifted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    lift_reason: Mapped[str] = mapped_column(Text, default="")

    party = relationship("Party")
    lifted_by = relationship("User", foreign_keys=[lifted_by_id])

    @property
    def active(self) -> bool:
        return self.lifted_at is None

    def snapshot(self) -> dict:
        return {"party": self.party_id, "year": self.year, "level": self.level,
                "threshold": self.threshold, "points": self.points,
                "lifted_at": self.lifted_at, "lift_reason": self.lift_reason}
