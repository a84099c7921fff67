"""HR penalty notices (HR 处罚通知): one per employee a ruling names on an internal department.

A notice carries only what HR needs to act (employee, department, case number, clauses, CS's
rationale, the department's amount and the sanction proposed by the department standard); HR
never opens the case itself. Its life::

    new -> acknowledged -> action recorded -> closed
      (any of these) -> withdrawn      its ruling was corrected without this employee, or the
                                       department's penalty was overturned on appeal
      (any of these) -> new again      amended: a correcting ruling or a reduced appeal changed
                                       its facts; the earlier values stay in its history

``HrNoticeEvent`` is that history as HR and the department see it (the audit chain keeps the
same events for auditors).
"""
from __future__ import annotations

import enum
import json
from datetime import datetime
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.db import Base, CreatedAtMixin, enum_column
from portal.standards.rules import SANCTION_LABELS, HrSanction


class NoticeStatus(enum.StrEnum):
    NEW = "new"                          # sent to HR, receipt not acknowledged yet
    ACKNOWLEDGED = "acknowledged"        # 确认收到
    ACTIONED = "action_recorded"         # 已记录处理结果
    CLOSED = "closed"                    # 已关闭
    WITHDRAWN = "withdrawn"              # 已撤回


OPEN_STATUSES = (NoticeStatus.NEW, NoticeStatus.ACKNOWLEDGED, NoticeStatus.ACTIONED)

STATUS_LABELS = {
    NoticeStatus.NEW: _l("New"),
    NoticeStatus.ACKNOWLEDGED: _l("Receipt acknowledged"),
    NoticeStatus.ACTIONED: _l("Action recorded"),
    NoticeStatus.CLOSED: _l("Notice closed"),
    NoticeStatus.WITHDRAWN: _l("Withdrawn by CS"),
}


class ActionKind(enum.StrEnum):
    """What HR actually did: one of the sanctions CS may propose, none, or something else."""

    VERBAL_WARNING = HrSanction.VERBAL_WARNING.value
    TRAINING = HrSanction.TRAINING.value
    WRITTEN_WARNING = HrSanction.WRITTEN_WARNING.value
    FINE = HrSanction.FINE.value
    DEMOTION = HrSanction.DEMOTION.value
    DISMISSAL = HrSanction.DISMISSAL.value
    NO_ACTION = "no_action"
    OTHER = "other"


ACTION_LABELS = {
    **{ActionKind(k.value): label for k, label in SANCTION_LABELS.items()},
    ActionKind.NO_ACTION: _l("No sanction"),
    ActionKind.OTHER: _l("Other action"),
}


class HrNotice(CreatedAtMixin, Base):
    """A penalty notice on a named internal employee, for HR to acknowledge and act on.

    ``penalty_id`` is the department's penalty the notice carries out now: after an appeal
    reduced it, or a correcting ruling replaced it, the notice follows the new one."""

    __tablename__ = "hr_notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    penalty_id: Mapped[int] = mapped_column(ForeignKey("penalties.id"), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("parties.id"), index=True)
    employee_no: Mapped[str] = mapped_column(String(32))
    employee_name: Mapped[str] = mapped_column(String(120))
    amount: Mapped[Decimal]
    percent: Mapped[int] = mapped_column(default=100, server_default="100")
    rationale: Mapped[str] = mapped_column(Text)
    # the clauses breached, as they read when the notice was written: [{label, title_zh,
    # title_en}] (HR has no access to the standards' internal pages)
    clauses_json: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")
    proposal: Mapped[HrSanction | None] = mapped_column(enum_column(HrSanction))
    proposal_text: Mapped[str] = mapped_column(Text, default="", server_default="")
    status: Mapped[NoticeStatus] = mapped_column(enum_column(NoticeStatus),
                                                 default=NoticeStatus.NEW, index=True)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action_kind: Mapped[ActionKind | None] = mapped_column(enum_column(ActionKind))
    action_taken: Mapped[str] = mapped_column(Text, default="")
    action_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    actioned_at: Mapped[datetime | None]
    actioned_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[datetime | None]
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    withdrawn_at: Mapped[datetime | None]
    amended_at: Mapped[datetime | None]
    amendments: Mapped[int] = mapped_column(default=0, server_default="0")
    escalated_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=1)

    penalty = relationship("Penalty")
    case = relationship("Case")
    department = relationship("Party")
    acknowledged_by = relationship("User", foreign_keys=[acknowledged_by_id])
    actioned_by = relationship("User", foreign_keys=[actioned_by_id])
    closed_by = relationship("User", foreign_keys=[closed_by_id])
    events: Mapped[list[HrNoticeEvent]] = relationship(back_populates="notice",
                                                       order_by="HrNoticeEvent.id")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012  (SQLAlchemy reads it)

    @property
    def number(self) -> str:
        return f"HR-{self.id:06d}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def sent_at(self) -> datetime:
        """When HR was last asked to acknowledge it: written, or amended since."""
        return self.amended_at or self.created_at

    @property
    def clauses(self) -> list[dict]:
        return json.loads(self.clauses_json or "[]")

    @property
    def status_label(self) -> str:
        return str(STATUS_LABELS[self.status])

    @property
    def proposal_label(self) -> str:
        return str(SANCTION_LABELS[self.proposal]) if self.proposal else ""

    @property
    def action_label(self) -> str:
        return str(ACTION_LABELS[self.action_kind]) if self.action_kind else ""

    def facts(self) -> dict:
        """What an amendment compares and the history keeps."""
        return {"amount": str(self.amount), "percent": self.percent,
                "rationale": self.rationale, "clauses": self.clauses,
                "proposal": self.proposal.value if self.proposal else None,
                "proposal_text": self.proposal_text}

    def snapshot(self) -> dict:
        return {"number": self.number, "status": self.status, "employee_no": self.employee_no,
                "department_id": self.department_id, "penalty_id": self.penalty_id,
                "amount": self.amount, "proposal": self.proposal,
                "action_kind": self.action_kind, "action_taken": self.action_taken,
                "action_reason": self.action_reason, "escalated_at": self.escalated_at,
                "amendments": self.amendments}


class EventKind(enum.StrEnum):
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    ACTION_RECORDED = "action_recorded"
    CLOSED = "closed"
    AMENDED = "amended"              # facts changed; back to new
    CARRIED_OVER = "carried_over"    # a correcting ruling left its facts as they were
    WITHDRAWN = "withdrawn"
    ESCALATED = "escalated"


class HrNoticeEvent(CreatedAtMixin, Base):
    """One step in a notice's history. ``ref`` names what caused it (a ruling or appeal
    number), ``reason`` is the text CS or HR gave, ``details_json`` keeps the earlier values
    of an amendment (``{"before": facts, "after": facts, "previous": HR's steps}``)."""

    __tablename__ = "hr_notice_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("hr_notices.id"), index=True)
    kind: Mapped[EventKind] = mapped_column(enum_column(EventKind))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_name: Mapped[str] = mapped_column(String(120), default="")
    ref: Mapped[str] = mapped_column(String(40), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    details_json: Mapped[str] = mapped_column(Text, default="{}")

    notice: Mapped[HrNotice] = relationship(back_populates="events")

    @property
    def details(self) -> dict:
        return json.loads(self.details_json or "{}")
