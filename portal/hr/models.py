from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.db import Base, CreatedAtMixin, enum_column


class NoticeStatus(enum.StrEnum):
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    ACTIONED = "actioned"


class HrNotice(CreatedAtMixin, Base):
    """A penalty notice on a named internal employee, for HR to acknowledge and act on."""

    __tablename__ = "hr_notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    penalty_id: Mapped[int] = mapped_column(ForeignKey("penalties.id"), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("parties.id"), index=True)
    employee_no: Mapped[str] = mapped_column(String(32))
    employee_name: Mapped[str] = mapped_column(String(120))
    amount: Mapped[Decimal]
    rationale: Mapped[str] = mapped_column(Text)
    status: Mapped[NoticeStatus] = mapped_column(enum_column(NoticeStatus),
                                                 default=NoticeStatus.SENT, index=True)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action_taken: Mapped[str] = mapped_column(Text, default="")
    actioned_at: Mapped[datetime | None]
    actioned_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    version: Mapped[int] = mapped_column(default=1)

    penalty = relationship("Penalty")
    case = relationship("Case")
    department = relationship("Party")
    acknowledged_by = relationship("User", foreign_keys=[acknowledged_by_id])
    actioned_by = relationship("User", foreign_keys=[actioned_by_id])

    __mapper_args__ = {"version_id_col": version}

    @property
    def number(self) -> str:
        return f"HR-{self.id:06d}"

    def snapshot(self) -> dict:
        return {"number": self.number, "status": self.status, "employee_no": self.employee_no,
                "amount": self.amount, "action_taken": self.action_taken}
