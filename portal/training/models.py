"""Training on the standards (培训): courses, quizzes, assignments, certificates, sessions.

A *course* teaches one or more standards (each link names the version it teaches). People are
*assigned* a course by audience (party kind, named party or department, role); each person then
has one *training task* per course, which is done when they complete the course (pass its quiz
and, for an offline course, attend a session) and which reopens when their certificate is about
to expire or when a new material version of a linked standard is published.
"""
from __future__ import annotations

import enum
import json
from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.db import Base, CreatedAtMixin, enum_column
from portal.core.permissions import Role
from portal.parties.models import PartyKind


class CourseKind(enum.StrEnum):
    MANDATORY = "mandatory"   # 必培: assigned, with a due date
    OPEN = "open"             # 公开课: anyone may take it


class CourseMode(enum.StrEnum):
    ONLINE = "online"         # 线上: lessons and quiz in the portal
    OFFLINE = "offline"       # 线下: a session with a date, place and capacity (and the quiz)


class CourseStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    ARCHIVED = "archived"


class Course(CreatedAtMixin, Base):
    __tablename__ = "courses"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    title_zh: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200), default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[CourseKind] = mapped_column(enum_column(CourseKind))
    mode: Mapped[CourseMode] = mapped_column(enum_column(CourseMode))
    status: Mapped[CourseStatus] = mapped_column(enum_column(CourseStatus),
                                                 default=CourseStatus.DRAFT)
    questions_per_attempt: Mapped[int] = mapped_column(default=10)   # 0: no quiz
    pass_mark: Mapped[int] = mapped_column(default=80)               # percent
    max_attempts: Mapped[int] = mapped_column(default=3)             # per training cycle
    cooldown_minutes: Mapped[int] = mapped_column(default=30)        # after a failed attempt
    validity_months: Mapped[int | None]                              # None: never expires
    due_days: Mapped[int] = mapped_column(default=30)   # newcomers' and retraining's time
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    published_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=1)

    links: Mapped[list[CourseStandard]] = relationship(
        back_populates="course", cascade="all, delete-orphan", order_by="CourseStandard.id")
    lessons: Mapped[list[Lesson]] = relationship(
        back_populates="course", cascade="all, delete-orphan", order_by="Lesson.position")
    questions: Mapped[list[Question]] = relationship(
        back_populates="course", cascade="all, delete-orphan", order_by="Question.id")
    sessions: Mapped[list[TrainingSession]] = relationship(
        back_populates="course", order_by="TrainingSession.starts_at")
    created_by = relationship("User")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012  (SQLAlchemy reads it)

    def title(self, locale: str) -> str:
        return self.title_en if locale.startswith("en") and self.title_en else self.title_zh

    @property
    def has_quiz(self) -> bool:
        return self.questions_per_attempt > 0

    @property
    def active_questions(self) -> list[Question]:
        return [q for q in self.questions if q.active]

    def snapshot(self) -> dict:
        return {"code": self.code, "title_zh": self.title_zh, "title_en": self.title_en,
                "kind": self.kind, "mode": self.mode, "status": self.status,
                "questions_per_attempt": self.questions_per_attempt,
                "pass_mark": self.pass_mark, "max_attempts": self.max_attempts,
                "cooldown_minutes": self.cooldown_minutes,
                "validity_months": self.validity_months, "due_days": self.due_days,
                "standards": [link.standard_version.label for link in self.links]}


class CourseStandard(Base):
    """A course teaches a standard, as of one version (advanced when a new one is published)."""

    __tablename__ = "course_standards"
    __table_args__ = (UniqueConstraint("course_id", "standard_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"), index=True)
    standard_id: Mapped[int] = mapped_column(ForeignKey("standards.id"), index=True)
    standard_version_id: Mapped[int] = mapped_column(ForeignKey("standard_versions.id"))

    course: Mapped[Course] = relationship(back_populates="links")
    standard = relationship("Standard")
    standard_version = relationship("StandardVersion")


class Lesson(Base):
    """One lesson of a course; its body is Markdown (headings, lists, images uploaded here)."""

    __tablename__ = "lessons"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    title_zh: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text, default="")

    course: Mapped[Course] = relationship(back_populates="lessons")

    def title(self, locale: str) -> str:
        return self.title_en if locale.startswith("en") and self.title_en else self.title_zh


class QuestionKind(enum.StrEnum):
    SINGLE = "single"           # 单选
    MULTIPLE = "multiple"       # 多选: all and only the right options
    TRUE_FALSE = "true_false"   # 判断


class Question(CreatedAtMixin, Base):
    __tablename__ = "questions"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"), index=True)
    kind: Mapped[QuestionKind] = mapped_column(enum_column(QuestionKind))
    text_zh: Mapped[str] = mapped_column(Text)
    text_en: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(default=True)  # withdrawn questions stay for history

    course: Mapped[Course] = relationship(back_populates="questions")
    options: Mapped[list[QuestionOption]] = relationship(
        back_populates="question", cascade="all, delete-orphan", order_by="QuestionOption.position")

    def text(self, locale: str) -> str:
        return self.text_en if locale.startswith("en") and self.text_en else self.text_zh

    @property
    def correct_ids(self) -> set[int]:
        return {o.id for o in self.options if o.correct}


class QuestionOption(Base):
    __tablename__ = "question_options"

    id: Mapped[int] = mapped_column(primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    text_zh: Mapped[str] = mapped_column(String(500))
    text_en: Mapped[str] = mapped_column(String(500), default="")
    correct: Mapped[bool] = mapped_column(default=False)

    question: Mapped[Question] = relationship(back_populates="options")

    def text(self, locale: str) -> str:
        return self.text_en if locale.startswith("en") and self.text_en else self.text_zh


class CourseAssignment(CreatedAtMixin, Base):
    """CS assigns a course to an audience with a due date; everyone in it gets a task.

    Within a dimension the entries add up (carriers *or* merchants); across dimensions they
    narrow (carriers' *party managers*). No organisation entry means any organisation."""

    __tablename__ = "course_assignments"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"), index=True)
    due_on: Mapped[date]
    note: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    withdrawn_at: Mapped[datetime | None]

    course: Mapped[Course] = relationship()
    audiences: Mapped[list[AssignmentAudience]] = relationship(
        back_populates="assignment", cascade="all, delete-orphan")
    created_by = relationship("User")

    @property
    def kinds(self) -> list[PartyKind]:
        return [a.party_kind for a in self.audiences if a.party_kind is not None]

    @property
    def party_ids(self) -> list[int]:
        return [a.party_id for a in self.audiences if a.party_id is not None]

    @property
    def roles(self) -> list[Role]:
        return [a.role for a in self.audiences if a.role is not None]

    def describe(self) -> dict:
        return {"kinds": self.kinds, "parties": sorted(a.party.code for a in self.audiences
                                                       if a.party_id is not None),
                "roles": self.roles, "due_on": self.due_on}


class AssignmentAudience(Base):
    __tablename__ = "assignment_audiences"
    __table_args__ = (
        CheckConstraint("(CASE WHEN party_kind IS NULL THEN 0 ELSE 1 END)"
                        " + (CASE WHEN party_id IS NULL THEN 0 ELSE 1 END)"
                        " + (CASE WHEN role IS NULL THEN 0 ELSE 1 END) = 1", name="one_of"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("course_assignments.id"), index=True)
    party_kind: Mapped[PartyKind | None] = mapped_column(enum_column(PartyKind))
    party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"))
    role: Mapped[Role | None] = mapped_column(enum_column(Role))

    assignment: Mapped[CourseAssignment] = relationship(back_populates="audiences")
    party = relationship("Party")


class TrainingStatus(enum.StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class TrainingTask(CreatedAtMixin, Base):
    """One person's duty to complete one course (培训任务); one row per course and person.

    ``opened_at`` starts the current cycle: attempts before it do not count against the limit.
    """

    __tablename__ = "training_tasks"
    __table_args__ = (
        UniqueConstraint("course_id", "user_id"),
        Index("ix_training_tasks_course_party_status", "course_id", "party_id", "status"),
        Index("ix_training_tasks_user_status", "user_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"))
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("course_assignments.id"))
    status: Mapped[TrainingStatus] = mapped_column(enum_column(TrainingStatus),
                                                   default=TrainingStatus.OPEN)
    due_on: Mapped[date | None]            # None: taken by choice (open course)
    opened_at: Mapped[datetime]
    reopened_reason: Mapped[str] = mapped_column(String(40), default="")
    done_at: Mapped[datetime | None]
    certificate_id: Mapped[int | None] = mapped_column(ForeignKey("certificates.id"))
    extra_attempts: Mapped[int] = mapped_column(default=0)
    cancelled_reason: Mapped[str] = mapped_column(String(40), default="")
    reminded_before_at: Mapped[datetime | None]
    reminded_overdue_at: Mapped[datetime | None]

    course: Mapped[Course] = relationship()
    user = relationship("User")
    party = relationship("Party")
    assignment: Mapped[CourseAssignment | None] = relationship()
    certificate: Mapped[Certificate | None] = relationship(foreign_keys=[certificate_id])

    def is_overdue(self, today: date) -> bool:
        return (self.status is TrainingStatus.OPEN and self.due_on is not None
                and self.due_on < today)


class AttemptStatus(enum.StrEnum):
    IN_PROGRESS = "in_progress"
    SUBMITTED = "submitted"


class QuizAttempt(CreatedAtMixin, Base):
    """One sitting of a course's quiz. The paper (questions drawn, options in the order shown)
    is fixed when the attempt starts; answers refer to positions on the paper, never to ids, so
    nothing the browser sees says which option is right."""

    __tablename__ = "quiz_attempts"
    __table_args__ = (Index("ix_quiz_attempts_course_user", "course_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"), index=True)
    status: Mapped[AttemptStatus] = mapped_column(enum_column(AttemptStatus),
                                                  default=AttemptStatus.IN_PROGRESS)
    started_at: Mapped[datetime]
    submitted_at: Mapped[datetime | None]
    paper_json: Mapped[str] = mapped_column(Text)      # [{"q": id, "o": [option ids]}]
    answers_json: Mapped[str] = mapped_column(Text, default="{}")  # {"0": [1, 3]} positions
    correct: Mapped[int | None]
    score: Mapped[int | None]                           # percent
    passed: Mapped[bool | None]

    course: Mapped[Course] = relationship()
    user = relationship("User")

    @property
    def paper(self) -> list[dict]:
        return json.loads(self.paper_json)

    @property
    def answers(self) -> dict[str, list[int]]:
        return json.loads(self.answers_json or "{}")


class Certificate(CreatedAtMixin, Base):
    """Proof that a person completed a course (培训证书), checkable by its code."""

    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"))
    attempt_id: Mapped[int | None] = mapped_column(ForeignKey("quiz_attempts.id"))
    issued_at: Mapped[datetime]
    issued_on: Mapped[date]                   # in the portal's zone, as printed
    expires_on: Mapped[date | None]
    holder_name: Mapped[str] = mapped_column(String(120))
    score: Mapped[int | None]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str] = mapped_column(Text, default="")

    course: Mapped[Course] = relationship()
    user = relationship("User")
    party = relationship("Party")
    versions = relationship("StandardVersion", secondary="certificate_versions", viewonly=True,
                            order_by="StandardVersion.id")

    def state(self, today: date) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_on is not None and self.expires_on < today:
            return "expired"
        return "valid"


class CertificateVersion(Base):
    """The standard versions a certificate covers (what the course taught when it was passed)."""

    __tablename__ = "certificate_versions"

    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), primary_key=True)
    standard_version_id: Mapped[int] = mapped_column(ForeignKey("standard_versions.id"),
                                                     primary_key=True, index=True)


class SessionStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


class TrainingSession(CreatedAtMixin, Base):
    """An offline (线下) sitting of a course: a date, a place and a number of seats."""

    __tablename__ = "training_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"), index=True)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    place: Mapped[str] = mapped_column(String(200))
    capacity: Mapped[int]
    trainer: Mapped[str] = mapped_column(String(120), default="")
    status: Mapped[SessionStatus] = mapped_column(enum_column(SessionStatus),
                                                  default=SessionStatus.SCHEDULED)
    version: Mapped[int] = mapped_column(default=1)

    course: Mapped[Course] = relationship(back_populates="sessions")
    enrolments: Mapped[list[Enrolment]] = relationship(
        back_populates="session", order_by="Enrolment.id")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012  (SQLAlchemy reads it)

    @property
    def seats_taken(self) -> int:
        return sum(1 for e in self.enrolments if e.active)


class Enrolment(CreatedAtMixin, Base):
    __tablename__ = "enrolments"
    __table_args__ = (UniqueConstraint("session_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("training_sessions.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"))
    active: Mapped[bool] = mapped_column(default=True)   # False: withdrew
    attended: Mapped[bool | None]
    recorded_at: Mapped[datetime | None]
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    session: Mapped[TrainingSession] = relationship(back_populates="enrolments")
    user = relationship("User", foreign_keys=[user_id])
    party = relationship("Party")
