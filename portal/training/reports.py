"""Training dashboards: completion and pass rates per course, per party (departments are
parties too), overdue staff, a party's own team; all counted in SQL.

Completion counts the non-cancelled tasks of active people; the pass rate is the share of
submitted quiz attempts that passed (first-attempt pass rate beside it).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from portal.accounts.models import User
from portal.accounts.services import active_staff
from portal.core.tasks import Totals, per_party, totals_by
from portal.core.timeutil import local_today
from portal.extensions import db
from portal.parties.models import Party
from portal.training.models import (
    AttemptStatus,
    Course,
    CourseStatus,
    QuizAttempt,
    TrainingStatus,
    TrainingTask,
)


def totals_by_course(today: date | None = None, *, party_id: int | None = None,
                     course_id: int | None = None) -> dict[int, Totals]:
    scope = []
    if party_id is not None:
        scope.append(TrainingTask.party_id == party_id)
    if course_id is not None:
        scope.append(TrainingTask.course_id == course_id)
    return totals_by(TrainingTask, TrainingTask.course_id, scope, today or local_today())


def _passed():
    """How many of the grouped attempts passed."""
    return func.coalesce(func.sum(func.cast(QuizAttempt.passed, db.Integer)), 0)


@dataclass
class Rates:
    submitted: int = 0
    passed: int = 0
    people: int = 0
    first_try_passed: int = 0

    @property
    def pass_rate(self) -> float:
        return round(100 * self.passed / self.submitted, 1) if self.submitted else 0.0

    @property
    def first_try_rate(self) -> float:
        return round(100 * self.first_try_passed / self.people, 1) if self.people else 0.0


def rates_by_course(*, party_id: int | None = None, course_id: int | None = None
                    ) -> dict[int, Rates]:
    """Pass rates per course: all submitted attempts, and people's first attempts."""
    scope = [QuizAttempt.status == AttemptStatus.SUBMITTED]
    if party_id is not None:
        scope.append(QuizAttempt.party_id == party_id)
    if course_id is not None:
        scope.append(QuizAttempt.course_id == course_id)
    rates = {cid: Rates(n, p) for cid, n, p in db.session.execute(
        select(QuizAttempt.course_id, func.count(QuizAttempt.id), _passed())
        .where(*scope).group_by(QuizAttempt.course_id))}
    first = (select(QuizAttempt.course_id, QuizAttempt.user_id,
                    func.min(QuizAttempt.id).label("first_id"))
             .where(*scope).group_by(QuizAttempt.course_id, QuizAttempt.user_id).subquery())
    for cid, people, ok in db.session.execute(
            select(first.c.course_id, func.count(), _passed())
            .join(QuizAttempt, QuizAttempt.id == first.c.first_id)
            .group_by(first.c.course_id)):
        r = rates.setdefault(cid, Rates())
        r.people, r.first_try_passed = people, ok
    return rates


@dataclass
class PartyRow:
    party: Party | None        # None: internal CS staff without a party
    totals: Totals
    rates: Rates


def by_party(course: Course, today: date | None = None, *, kind: str | None = None,
             search: str = "", only_incomplete: bool = False, page: int = 1,
             per_page: int = 50) -> tuple[list[PartyRow], int]:
    """One row per party with people assigned the course, least complete first."""
    rows, count = per_party(TrainingTask, [TrainingTask.course_id == course.id],
                            today or local_today(), kind=kind, search=search,
                            only_incomplete=only_incomplete, page=page, per_page=per_page)
    ids = [party.id for party, _t in rows if party is not None]
    rates = {pid: Rates(n, p) for pid, n, p in db.session.execute(
        select(QuizAttempt.party_id, func.count(QuizAttempt.id), _passed())
        .where(QuizAttempt.course_id == course.id,
               QuizAttempt.status == AttemptStatus.SUBMITTED,
               or_(QuizAttempt.party_id.in_(ids), QuizAttempt.party_id.is_(None)))
        .group_by(QuizAttempt.party_id))}
    return ([PartyRow(party, t, rates.get(party.id if party else None, Rates()))
             for party, t in rows], count)


def overdue(today: date | None = None, *, course_id: int | None = None,
            party_id: int | None = None, page: int = 1, per_page: int = 50
            ) -> tuple[list[TrainingTask], int]:
    today = today or local_today()
    q = (select(TrainingTask).join(User, TrainingTask.user_id == User.id)
         .join(Course, TrainingTask.course_id == Course.id)
         .where(TrainingTask.status == TrainingStatus.OPEN, TrainingTask.due_on < today,
                User.active.is_(True), Course.status == CourseStatus.PUBLISHED))
    if course_id is not None:
        q = q.where(TrainingTask.course_id == course_id)
    if party_id is not None:
        q = q.where(TrainingTask.party_id == party_id)
    count = db.session.scalar(select(func.count()).select_from(q.subquery()))
    tasks = db.session.scalars(
        q.options(selectinload(TrainingTask.user), selectinload(TrainingTask.party),
                  selectinload(TrainingTask.course))
        .order_by(TrainingTask.due_on, Course.code, User.username)
        .limit(per_page).offset((page - 1) * per_page)).all()
    return tasks, count


def export_rows(*, course_id: int | None = None, party_id: int | None = None,
                overdue_only: bool = False, today: date | None = None):
    """Every non-cancelled task with person, party, course and certificate, for CSV."""
    today = today or local_today()
    q = (select(TrainingTask).join(User, TrainingTask.user_id == User.id)
         .join(Course, TrainingTask.course_id == Course.id)
         .outerjoin(Party, TrainingTask.party_id == Party.id)
         .where(TrainingTask.status != TrainingStatus.CANCELLED, User.active.is_(True))
         .options(selectinload(TrainingTask.user), selectinload(TrainingTask.party),
                  selectinload(TrainingTask.course), selectinload(TrainingTask.certificate))
         .order_by(Course.code, Party.code, User.username))
    if course_id is not None:
        q = q.where(TrainingTask.course_id == course_id)
    if party_id is not None:
        q = q.where(TrainingTask.party_id == party_id)
    if overdue_only:
        q = q.where(TrainingTask.status == TrainingStatus.OPEN, TrainingTask.due_on < today)
    return db.session.execute(q.execution_options(yield_per=1000)).scalars()


def team(party_id: int):
    """A party's active staff, the courses they hold tasks for, and each task."""
    staff = active_staff(party_id)
    tasks = db.session.scalars(
        select(TrainingTask).where(TrainingTask.party_id == party_id,
                                   TrainingTask.status != TrainingStatus.CANCELLED)
        .options(selectinload(TrainingTask.course), selectinload(TrainingTask.certificate))
    ).all()
    courses = sorted({t.course for t in tasks}, key=lambda c: c.code)
    cells = {(t.user_id, t.course_id): t for t in tasks}
    return staff, courses, cells


def tasks_of(user, statuses=(TrainingStatus.OPEN, TrainingStatus.DONE)) -> list[TrainingTask]:
    return db.session.scalars(
        select(TrainingTask).join(Course).where(TrainingTask.user_id == user.id,
                                                TrainingTask.status.in_(statuses),
                                                Course.status == CourseStatus.PUBLISHED)
        .options(selectinload(TrainingTask.course), selectinload(TrainingTask.certificate))
        .order_by(TrainingTask.status.desc(), TrainingTask.due_on, TrainingTask.id)).all()


@dataclass
class LearnerRow:
    task: TrainingTask
    attempts: int                 # submitted in the current cycle

    @property
    def allowed(self) -> int:
        return self.task.course.max_attempts + self.task.extra_attempts

    @property
    def out_of_attempts(self) -> bool:
        return (self.task.status is TrainingStatus.OPEN and self.task.course.has_quiz
                and self.attempts >= self.allowed)


LEARNER_FILTERS = ("open", "overdue", "done", "out_of_attempts")


def learners(course: Course, today: date | None = None, *, search: str = "",
             state: str = "", page: int = 1, per_page: int = 50
             ) -> tuple[list[LearnerRow], int]:
    """The people holding a task for ``course``, with the attempts used in their current cycle,
    for CS to grant another attempt or revoke a certificate; filtered and paged in SQL."""
    today = today or local_today()
    used = (select(func.count(QuizAttempt.id))
            .where(QuizAttempt.course_id == TrainingTask.course_id,
                   QuizAttempt.user_id == TrainingTask.user_id,
                   QuizAttempt.status == AttemptStatus.SUBMITTED,
                   QuizAttempt.started_at >= TrainingTask.opened_at)
            .correlate(TrainingTask).scalar_subquery())
    q = (select(TrainingTask, used.label("used")).join(User, TrainingTask.user_id == User.id)
         .outerjoin(Party, TrainingTask.party_id == Party.id)
         .where(TrainingTask.course_id == course.id,
                TrainingTask.status != TrainingStatus.CANCELLED, User.active.is_(True)))
    if search:
        like = f"%{search}%"
        q = q.where(or_(User.username.ilike(like), User.display_name.ilike(like),
                        User.employee_no.ilike(like), Party.code.ilike(like),
                        Party.name_zh.ilike(like)))
    if state == "open":
        q = q.where(TrainingTask.status == TrainingStatus.OPEN)
    elif state == "overdue":
        q = q.where(TrainingTask.status == TrainingStatus.OPEN, TrainingTask.due_on < today)
    elif state == "done":
        q = q.where(TrainingTask.status == TrainingStatus.DONE)
    elif state == "out_of_attempts":
        q = q.where(TrainingTask.status == TrainingStatus.OPEN,
                    used >= course.max_attempts + TrainingTask.extra_attempts)
    count = db.session.scalar(select(func.count()).select_from(q.subquery()))
    rows = db.session.execute(
        q.options(selectinload(TrainingTask.user), selectinload(TrainingTask.party),
                  selectinload(TrainingTask.course), selectinload(TrainingTask.certificate))
        .order_by(Party.code, User.username)
        .limit(per_page).offset((page - 1) * per_page)).all()
    return [LearnerRow(task, n) for task, n in rows], count
