from __future__ import annotations

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash

from portal.core.db import Base, CreatedAtMixin, enum_column
from portal.core.permissions import Role
from portal.parties.models import Party


class User(UserMixin, CreatedAtMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str] = mapped_column(String(254), default="")
    employee_no: Mapped[str] = mapped_column(String(32), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[Role] = mapped_column(enum_column(Role), index=True)
    party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"), index=True)
    locale: Mapped[str] = mapped_column(String(10), default="zh_CN")  # the pages' language
    # the emails' language, chosen on the settings page; None: the pages' language
    email_locale: Mapped[str | None] = mapped_column(String(10))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    active: Mapped[bool] = mapped_column(default=True)

    party: Mapped[Party | None] = relationship()

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def snapshot(self) -> dict:
        return {"username": self.username, "display_name": self.display_name,
                "role": self.role, "party_id": self.party_id, "active": self.active,
                "email": self.email, "employee_no": self.employee_no}
