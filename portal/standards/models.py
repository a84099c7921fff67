from __future__ import annotations

import enum
import hashlib
import json
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.db import Base, CreatedAtMixin, enum_column
from portal.core.timeutil import local_today
from portal.parties.models import PartyKind
from portal.standards.rules import RuleKind, canonical, describe


class VersionStatus(enum.StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    PUBLISHED = "published"
    SUPERSEDED = "superseded"
    RETIRED = "retired"


# The text is frozen from the moment a version goes to review; these may still move it on.
EDITABLE = frozenset({VersionStatus.DRAFT})
RELEASED = frozenset({VersionStatus.PUBLISHED, VersionStatus.SUPERSEDED, VersionStatus.RETIRED})


class Standard(CreatedAtMixin, Base):
    __tablename__ = "standards"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    title_zh: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200), default="")
    category: Mapped[str] = mapped_column(String(40), default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # acknowledging needs a valid certificate of a course teaching this standard first
    ack_requires_training: Mapped[bool] = mapped_column(default=False)
    version: Mapped[int] = mapped_column(default=1)

    owner = relationship("User", foreign_keys=[owner_id])
    audiences: Mapped[list[StandardAudience]] = relationship(
        back_populates="standard", cascade="all, delete-orphan")
    versions: Mapped[list[StandardVersion]] = relationship(
        back_populates="standard", order_by="StandardVersion.number")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012  (SQLAlchemy reads it)

    def title(self, locale: str) -> str:
        return self.title_en if locale.startswith("en") and self.title_en else self.title_zh

    @property
    def audience_kinds(self) -> list[PartyKind]:
        return [a.party_kind for a in self.audiences if a.party_kind is not None]

    @property
    def audience_party_ids(self) -> set[int]:
        return {a.party_id for a in self.audiences if a.party_id is not None}

    @property
    def audience_parties(self) -> list:
        return sorted((a.party for a in self.audiences if a.party_id is not None),
                      key=lambda p: p.code)

    def addresses(self, party) -> bool:
        """Whether ``party`` is in the audience: by its kind or by name."""
        return party is not None and (party.kind in self.audience_kinds
                                      or party.id in self.audience_party_ids)

    @property
    def current_version(self) -> StandardVersion | None:
        """The version in force today: the newest published one whose date has come."""
        today = local_today()
        in_force = [v for v in self.versions
                    if v.status is VersionStatus.PUBLISHED and v.effective_from <= today]
        return in_force[-1] if in_force else None

    @property
    def scheduled_version(self) -> StandardVersion | None:
        """A published version that takes effect on a later date, if any."""
        today = local_today()
        later = [v for v in self.versions
                 if v.status is VersionStatus.PUBLISHED and v.effective_from > today]
        return later[-1] if later else None

    @property
    def live_versions(self) -> list[StandardVersion]:
        """Versions parties must read: the one in force and one scheduled to follow it."""
        return [v for v in (self.current_version, self.scheduled_version) if v is not None]

    @property
    def pending(self) -> StandardVersion | None:
        """The version on its way: draft, in review or approved (at most one at a time)."""
        on_the_way = [v for v in self.versions if v.status in (
            VersionStatus.DRAFT, VersionStatus.IN_REVIEW, VersionStatus.APPROVED)]
        return on_the_way[-1] if on_the_way else None


class StandardAudience(Base):
    """Who a standard is addressed to: every party of a kind, or one party by name."""

    __tablename__ = "standard_audiences"
    __table_args__ = (
        UniqueConstraint("standard_id", "party_kind"),
        UniqueConstraint("standard_id", "party_id"),
        CheckConstraint("(party_kind IS NULL) <> (party_id IS NULL)", name="kind_or_party"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    standard_id: Mapped[int] = mapped_column(ForeignKey("standards.id"), index=True)
    party_kind: Mapped[PartyKind | None] = mapped_column(enum_column(PartyKind))
    party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"), index=True)

    standard: Mapped[Standard] = relationship(back_populates="audiences")
    party = relationship("Party")


class StandardVersion(CreatedAtMixin, Base):
    """One text of a standard. Once published it never changes: editing means a new draft."""

    __tablename__ = "standard_versions"
    __table_args__ = (UniqueConstraint("standard_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    standard_id: Mapped[int] = mapped_column(ForeignKey("standards.id"), index=True)
    number: Mapped[int]
    status: Mapped[VersionStatus] = mapped_column(enum_column(VersionStatus),
                                                  default=VersionStatus.DRAFT, index=True)
    effective_from: Mapped[date]
    change_note: Mapped[str] = mapped_column(Text, default="")
    material: Mapped[bool] = mapped_column(default=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    submitted_at: Mapped[datetime | None]
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[datetime | None]
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    rejection_reason: Mapped[str] = mapped_column(Text, default="")
    published_at: Mapped[datetime | None]
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    text_hash: Mapped[str | None] = mapped_column(String(64))
    ack_due_on: Mapped[date | None]
    retired_at: Mapped[datetime | None]
    retired_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    retire_reason: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(default=1)

    standard: Mapped[Standard] = relationship(back_populates="versions")
    clauses: Mapped[list[Clause]] = relationship(
        back_populates="standard_version", order_by="Clause.position",
        cascade="all, delete-orphan")
    published_by = relationship("User", foreign_keys=[published_by_id])
    author = relationship("User", foreign_keys=[author_id])
    submitted_by = relationship("User", foreign_keys=[submitted_by_id])
    approved_by = relationship("User", foreign_keys=[approved_by_id])
    retired_by = relationship("User", foreign_keys=[retired_by_id])

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012  (SQLAlchemy reads it)

    @property
    def is_published(self) -> bool:
        """Published, superseded or retired: text released to the parties."""
        return self.status in RELEASED

    @property
    def is_frozen(self) -> bool:
        """In review or later: the text can no longer be edited."""
        return self.status not in EDITABLE

    @property
    def label(self) -> str:
        return f"{self.standard.code} v{self.number}"

    @property
    def in_force(self) -> bool:
        return self.status is VersionStatus.PUBLISHED and self.effective_from <= local_today()

    @property
    def is_scheduled(self) -> bool:
        return self.status is VersionStatus.PUBLISHED and self.effective_from > local_today()

    def canonical_text(self) -> str:
        """The exact text a reader acknowledges; its SHA-256 is the version's text hash."""
        lines = [f"{self.standard.code} v{self.number}", self.standard.title_zh,
                 self.standard.title_en, f"effective {self.effective_from.isoformat()}", ""]
        for c in self.clauses:
            lines.append(f"{c.number} {c.title_zh} / {c.title_en}")
            lines.append(c.body.strip())
            lines.extend(rule.describe_canonical() for rule in c.rules)
            lines.append("")
        return "\n".join(lines)

    def compute_text_hash(self) -> str:
        return hashlib.sha256(self.canonical_text().encode("utf-8")).hexdigest()


class Clause(Base):
    __tablename__ = "clauses"
    __table_args__ = (UniqueConstraint("standard_version_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    standard_version_id: Mapped[int] = mapped_column(ForeignKey("standard_versions.id"),
                                                     index=True)
    position: Mapped[int] = mapped_column(default=0)
    number: Mapped[str] = mapped_column(String(20))
    title_zh: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    # which facts of a ticket the rule engine checks against this clause ("" = none; see
    # ``intake.engine.CHECKS``); engine configuration, not part of the acknowledged text
    check: Mapped[str] = mapped_column(String(20), default="")

    standard_version: Mapped[StandardVersion] = relationship(back_populates="clauses")
    rules: Mapped[list[PenaltyRule]] = relationship(
        back_populates="clause", cascade="all, delete-orphan", order_by="PenaltyRule.id")

    def title(self, locale: str) -> str:
        return self.title_en if locale.startswith("en") and self.title_en else self.title_zh

    @property
    def label(self) -> str:
        return f"{self.standard_version.standard.code} v{self.standard_version.number} §{self.number}"

    @property
    def fine_per_occurrence(self) -> Decimal | None:
        """The party's fine for one plain breach (fixed fine or time-limit breach), if priced."""
        fines = [r.amount for r in self.rules
                 if r.kind in (RuleKind.FIXED_FINE, RuleKind.TIME_LIMIT)]
        return sum(fines, Decimal("0.00")) if fines else None

    @property
    def points_per_occurrence(self) -> int:
        return sum(r.points or 0 for r in self.rules if r.kind is RuleKind.POINTS)

    @property
    def serious(self) -> bool:
        """Are its points serious (kept past the yearly reset of a party's points)?"""
        return any(r.kind is RuleKind.POINTS and r.params.get("serious") for r in self.rules)


class PenaltyRule(Base):
    """How a breach of a clause is priced (see ``standards.rules`` for the kinds)."""

    __tablename__ = "penalty_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    clause_id: Mapped[int] = mapped_column(ForeignKey("clauses.id"), index=True)
    kind: Mapped[RuleKind] = mapped_column(enum_column(RuleKind))
    amount: Mapped[Decimal | None]
    points: Mapped[int | None]
    params_json: Mapped[str] = mapped_column(Text, default="{}")

    clause: Mapped[Clause] = relationship(back_populates="rules")

    @classmethod
    def from_parsed(cls, parsed: dict) -> PenaltyRule:
        return cls(kind=parsed["kind"], amount=parsed["amount"], points=parsed["points"],
                   params_json=json.dumps(parsed["params"], sort_keys=True, ensure_ascii=False))

    @property
    def params(self) -> dict:
        return json.loads(self.params_json or "{}")

    def copy(self) -> PenaltyRule:
        return PenaltyRule(kind=self.kind, amount=self.amount, points=self.points,
                           params_json=self.params_json)

    def describe(self) -> str:
        return describe(self.kind, self.amount, self.points, self.params)

    def describe_canonical(self) -> str:
        return canonical(self.kind, self.amount, self.points, self.params)


class Acknowledgement(Base):
    """A named person's record that they read one published version (确认签署)."""

    __tablename__ = "acknowledgements"
    __table_args__ = (UniqueConstraint("standard_version_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    standard_version_id: Mapped[int] = mapped_column(ForeignKey("standard_versions.id"),
                                                     index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"), index=True)
    acknowledged_at: Mapped[datetime]
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(400), default="")
    text_hash: Mapped[str] = mapped_column(String(64))

    standard_version: Mapped[StandardVersion] = relationship()
    user = relationship("User")
    party = relationship("Party")


class TaskStatus(enum.StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class AckTask(CreatedAtMixin, Base):
    """One person's duty to read and acknowledge one published version by a date (阅读任务).

    Made in bulk when a version is published to its audience, when a person joins a party of
    the audience, or when the audience grows. ``carried_over`` marks a task that was done before
    it was made: the person had acknowledged the text a non-material change left in force.
    """

    __tablename__ = "ack_tasks"
    __table_args__ = (
        UniqueConstraint("standard_version_id", "user_id"),
        Index("ix_ack_tasks_version_party_status", "standard_version_id", "party_id", "status"),
        Index("ix_ack_tasks_user_status", "user_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    standard_version_id: Mapped[int] = mapped_column(ForeignKey("standard_versions.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"), index=True)
    status: Mapped[TaskStatus] = mapped_column(enum_column(TaskStatus), default=TaskStatus.OPEN)
    due_on: Mapped[date]
    done_at: Mapped[datetime | None]
    acknowledgement_id: Mapped[int | None] = mapped_column(ForeignKey("acknowledgements.id"))
    carried_over: Mapped[bool] = mapped_column(default=False)
    cancelled_reason: Mapped[str] = mapped_column(String(40), default="")
    reminded_before_at: Mapped[datetime | None]
    reminded_overdue_at: Mapped[datetime | None]

    standard_version: Mapped[StandardVersion] = relationship()
    user = relationship("User")
    party = relationship("Party")
    acknowledgement: Mapped[Acknowledgement | None] = relationship()

    def is_overdue(self, today: date) -> bool:
        return self.status is TaskStatus.OPEN and self.due_on < today


class ImmutableVersionError(RuntimeError):
    pass


def _version_of(target) -> StandardVersion | None:
    if isinstance(target, StandardVersion):
        return target
    if isinstance(target, Clause):
        return target.standard_version
    if isinstance(target, PenaltyRule):
        return target.clause.standard_version if target.clause else None
    return None


@event.listens_for(Clause, "before_insert")
@event.listens_for(Clause, "before_update")
@event.listens_for(Clause, "before_delete")
@event.listens_for(PenaltyRule, "before_insert")
@event.listens_for(PenaltyRule, "before_update")
@event.listens_for(PenaltyRule, "before_delete")
def _frozen_when_published(mapper, connection, target):
    version = _version_of(target)
    if version is not None and version.is_frozen:
        raise ImmutableVersionError("a version in review or published never changes")


@event.listens_for(StandardVersion, "before_update")
def _published_text_frozen(mapper, connection, target):
    """Only the status may move on (published -> superseded); the text stays as published."""
    from sqlalchemy import inspect

    state = inspect(target)
    hist = state.attrs.status.history
    was = hist.deleted[0] if hist.deleted else target.status
    if was not in RELEASED:
        return
    for attr in ("effective_from", "change_note", "text_hash", "published_at", "number",
                 "material", "approved_by_id", "published_by_id", "ack_due_on"):
        if state.attrs[attr].history.has_changes():
            raise ImmutableVersionError("a published version never changes")
