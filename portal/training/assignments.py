"""Who must take which course by when: assignments, training tasks, renewal and retraining.

An assignment names its audience in up to three dimensions (party kinds, named parties or
departments, roles): entries within a dimension add up, dimensions narrow each other. Everyone
active in the audience gets one task per course (made in bulk, as acknowledgement campaigns
are); newcomers inherit the tasks of every active assignment that covers them. A done task
reopens when its certificate is about to expire (``reopen_expiring``) or when a new material
version of a standard the course teaches is published (``retrain``). The caller commits.
"""
from __future__ import annotations

from datetime import date, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import and_, insert, or_, select, update

from portal.accounts.models import User
from portal.core.audit import record
from portal.core.db import utcnow
from portal.core.errors import ServiceError
from portal.core.notify import email_locale
from portal.core.permissions import Role
from portal.core.reminders import queue_grouped
from portal.core.timeutil import local_today
from portal.extensions import db
from portal.parties.models import Party, PartyKind
from portal.training.models import (
    AssignmentAudience,
    Certificate,
    Course,
    CourseAssignment,
    CourseStatus,
    TrainingStatus,
    TrainingTask,
)

# --- the audience -------------------------------------------------------------------------


def _audience_condition(kinds, party_ids, roles):
    """SQL condition on ``User`` (outer-joined to ``Party``) for an audience."""
    conds = [User.active.is_(True), or_(User.party_id.is_(None), Party.active.is_(True))]
    org = []
    if kinds:
        org.append(Party.kind.in_(list(kinds)))
    if party_ids:
        org.append(User.party_id.in_(list(party_ids)))
    if org:
        conds.append(or_(*org))
    if roles:
        conds.append(User.role.in_(list(roles)))
    return and_(*conds)


def audience_people(assignment: CourseAssignment, user_id: int | None = None):
    """(user id, party id) of everyone active the assignment covers."""
    q = (select(User.id, User.party_id).outerjoin(Party, User.party_id == Party.id)
         .where(_audience_condition(assignment.kinds, assignment.party_ids, assignment.roles)))
    if user_id is not None:
        q = q.where(User.id == user_id)
    return db.session.execute(q).all()


def parse_audience(kinds, party_codes, roles) -> tuple[list, list, list]:
    """Form values -> (party kinds, parties, roles), refusing what does not exist."""
    from portal.standards.services import parse_party_codes

    try:
        kinds = [PartyKind(k) for k in kinds or []]
    except ValueError:
        raise ServiceError(_("Unknown party kind."), "kinds") from None
    try:
        roles = [Role(r) for r in roles or []]
    except ValueError:
        raise ServiceError(_("Unknown role."), "roles") from None
    parties = parse_party_codes(party_codes or "")
    if not kinds and not parties and not roles:
        raise ServiceError(_("Choose who must take the course: kinds of party, named parties "
                             "or departments, or roles."), "kinds")
    return kinds, [p for p in parties if p.kind not in kinds], roles


# --- tasks --------------------------------------------------------------------------------


def newcomer_due_on(course: Course, due_on: date | None, today: date | None = None) -> date:
    """Never less time than the course gives (``due_days``), nor earlier than ``due_on``."""
    today = today or local_today()
    least = today + timedelta(days=course.due_days)
    return max(due_on, least) if due_on else least


def _make_tasks(course: Course, assignment: CourseAssignment | None, due_on: date, people,
                now) -> int:
    """Insert tasks for ``people`` (user id, party id) who have none for the course; a
    cancelled task of theirs is opened again. Returns how many were made or reopened."""
    if not people:
        return 0
    existing = {uid: (status, due) for uid, status, due in db.session.execute(
        select(TrainingTask.user_id, TrainingTask.status, TrainingTask.due_on)
        .where(TrainingTask.course_id == course.id))}
    assignment_id = assignment.id if assignment else None
    rows = [{"course_id": course.id, "user_id": uid, "party_id": pid,
             "assignment_id": assignment_id, "status": TrainingStatus.OPEN, "due_on": due_on,
             "opened_at": now, "created_at": now, "reopened_reason": "", "extra_attempts": 0,
             "cancelled_reason": ""}
            for uid, pid in people if uid not in existing]
    if rows:
        db.session.execute(insert(TrainingTask), rows)
    again = [uid for uid, _pid in people
             if uid in existing and existing[uid][0] is TrainingStatus.CANCELLED]
    if again:
        db.session.execute(
            update(TrainingTask).where(TrainingTask.course_id == course.id,
                                       TrainingTask.user_id.in_(again))
            .values(status=TrainingStatus.OPEN, due_on=due_on, opened_at=now,
                    cancelled_reason="", reopened_reason="reassigned",
                    assignment_id=assignment_id, reminded_before_at=None,
                    reminded_overdue_at=None)
            .execution_options(synchronize_session=False))
    # people who took an open course by choice now have a date to keep
    chosen = [uid for uid, _pid in people if uid in existing
              and existing[uid] == (TrainingStatus.OPEN, None)]
    if chosen:
        db.session.execute(
            update(TrainingTask).where(TrainingTask.course_id == course.id,
                                       TrainingTask.user_id.in_(chosen))
            .values(due_on=due_on, assignment_id=assignment_id)
            .execution_options(synchronize_session=False))
    return len(rows) + len(again)


def assign_course(course: Course, *, due_on: date | None, kinds=(), party_codes="", roles=(),
                  note: str = "", user=None) -> tuple[CourseAssignment, int]:
    """Assign a published course to an audience; returns the assignment and how many tasks
    were made (people already holding a task for the course keep theirs)."""
    if course.status is not CourseStatus.PUBLISHED:
        raise ServiceError(_("Only a published course can be assigned."))
    if due_on is None:
        raise ServiceError(_("Choose the date by which the course must be completed."), "due_on")
    if due_on < local_today():
        raise ServiceError(_("The due date cannot be in the past."), "due_on")
    kinds, parties, roles = parse_audience(kinds, party_codes, roles)
    assignment = CourseAssignment(
        course=course, due_on=due_on, note=(note or "").strip(),
        created_by_id=getattr(user, "id", None),
        audiences=[AssignmentAudience(party_kind=k) for k in kinds]
        + [AssignmentAudience(party_id=p.id) for p in parties]
        + [AssignmentAudience(role=r) for r in roles])
    db.session.add(assignment)
    db.session.flush()
    made = _make_tasks(course, assignment, due_on, audience_people(assignment), utcnow())
    record("course_assignment.created", assignment, after={
        "course": course.code, **assignment.describe(), "tasks": made})
    return assignment, made


def withdraw_assignment(assignment: CourseAssignment, user=None) -> int:
    """Stop an assignment: open tasks it alone gave are cancelled (people another active
    assignment covers keep theirs). Returns how many were cancelled."""
    if not assignment.active:
        raise ServiceError(_("This assignment is already withdrawn."))
    assignment.active = False
    assignment.withdrawn_at = utcnow()
    db.session.flush()
    still = set()
    for other in active_assignments(assignment.course):
        still |= {uid for uid, _pid in audience_people(other)}
    gone = [uid for uid, _pid in audience_people(assignment) if uid not in still]
    cancelled = 0
    for chunk in range(0, len(gone), 5000):
        cancelled += db.session.execute(
            update(TrainingTask).where(TrainingTask.course_id == assignment.course_id,
                                       TrainingTask.status == TrainingStatus.OPEN,
                                       TrainingTask.user_id.in_(gone[chunk:chunk + 5000]))
            .values(status=TrainingStatus.CANCELLED, cancelled_reason="assignment_withdrawn")
            .execution_options(synchronize_session=False)).rowcount or 0
    record("course_assignment.withdrawn", assignment, before={"active": True},
           after={"active": False, "open_tasks_cancelled": cancelled})
    return cancelled


def active_assignments(course: Course) -> list[CourseAssignment]:
    return db.session.scalars(select(CourseAssignment).where(
        CourseAssignment.course_id == course.id, CourseAssignment.active.is_(True))
        .order_by(CourseAssignment.id)).all()


def cancel_tasks(course: Course, reason: str) -> int:
    return db.session.execute(
        update(TrainingTask).where(TrainingTask.course_id == course.id,
                                   TrainingTask.status == TrainingStatus.OPEN)
        .values(status=TrainingStatus.CANCELLED, cancelled_reason=reason)
        .execution_options(synchronize_session=False)).rowcount or 0


def inherit_assignments(user) -> int:
    """Someone joined (or was created): the tasks of every active assignment covering them."""
    if not user.active:
        return 0
    made = 0
    now = utcnow()
    for assignment in db.session.scalars(
            select(CourseAssignment).join(Course)
            .where(CourseAssignment.active.is_(True), Course.status == CourseStatus.PUBLISHED)
            .order_by(CourseAssignment.id)):
        people = audience_people(assignment, user_id=user.id)
        if people:
            made += _make_tasks(assignment.course, assignment,
                                newcomer_due_on(assignment.course, assignment.due_on), people, now)
    if made:
        record("training_tasks.inherited", user, after={"user": user.username, "tasks": made})
    return made


def enrol_by_choice(course: Course, user) -> TrainingTask:
    """Take an open course (公开课) without being assigned it."""
    from portal.training.models import CourseKind

    if course.status is not CourseStatus.PUBLISHED:
        raise ServiceError(_("This course is not open for taking."))
    task = task_of(course, user)
    if task is not None and task.status is not TrainingStatus.CANCELLED:
        return task
    if course.kind is not CourseKind.OPEN:
        raise ServiceError(_("This course is taken when it is assigned to you."))
    now = utcnow()
    if task is None:
        task = TrainingTask(course=course, user_id=user.id, party_id=user.party_id,
                            opened_at=now)
        db.session.add(task)
    task.status, task.opened_at, task.cancelled_reason = TrainingStatus.OPEN, now, ""
    db.session.flush()
    record("training_task.taken_by_choice", task, after={"course": course.code,
                                                         "user": user.username})
    return task


def task_of(course: Course, user) -> TrainingTask | None:
    return db.session.scalar(select(TrainingTask).where(TrainingTask.course_id == course.id,
                                                        TrainingTask.user_id == user.id))


def reopen(task: TrainingTask, reason: str, due_on: date) -> None:
    task.status, task.reopened_reason, task.due_on = TrainingStatus.OPEN, reason, due_on
    task.opened_at, task.extra_attempts = utcnow(), 0
    task.reminded_before_at = task.reminded_overdue_at = None


def retrain(version) -> int:
    """A material version of a standard was published: holders of courses teaching it must
    train again, due when the new version's acknowledgement is (or the course's own time)."""
    from portal.training.courses import advance_links

    courses = advance_links(version)
    if not version.material:
        return 0
    count = 0
    for course in courses:
        due = newcomer_due_on(course, version.ack_due_on)
        tasks = db.session.scalars(select(TrainingTask).where(
            TrainingTask.course_id == course.id, TrainingTask.status == TrainingStatus.DONE))
        n = 0
        for task in tasks:
            reopen(task, "retraining", due)
            n += 1
        if n:
            record("training_tasks.reopened", course, after={
                "course": course.code, "reason": "retraining", "version": version.label,
                "tasks": n, "due_on": due})
        count += n
    return count


def reopen_expiring(today: date | None = None) -> int:
    """Done tasks whose certificate expires within CERTIFICATE_RENEW_DAYS_BEFORE days open
    again, due on the expiry date (or the course's time, if that has passed). Run daily by
    the worker; idempotent."""
    today = today or local_today()
    horizon = today + timedelta(days=current_app.config["CERTIFICATE_RENEW_DAYS_BEFORE"])
    tasks = db.session.scalars(
        select(TrainingTask).join(Certificate, TrainingTask.certificate_id == Certificate.id)
        .join(Course, TrainingTask.course_id == Course.id)
        .where(TrainingTask.status == TrainingStatus.DONE, Certificate.expires_on.is_not(None),
               Certificate.expires_on <= horizon, Course.status == CourseStatus.PUBLISHED)).all()
    for task in tasks:
        expires = task.certificate.expires_on
        due = expires if expires >= today else today + timedelta(days=task.course.due_days)
        reopen(task, "expiring", due)
        record("training_task.reopened", task, after={
            "course": task.course.code, "user": task.user.username, "reason": "expiring",
            "certificate": task.certificate.code, "expires_on": expires, "due_on": due})
    return len(tasks)


# --- reminders ----------------------------------------------------------------------------


def schedule_reminders(today: date | None = None) -> dict[str, int]:
    """Training tasks due soon or overdue: one email per person, through the outbox."""
    today = today or local_today()
    before = current_app.config["TRAINING_REMIND_DAYS_BEFORE"]
    base = (select(TrainingTask).join(User, TrainingTask.user_id == User.id)
            .join(Course, TrainingTask.course_id == Course.id)
            .where(TrainingTask.status == TrainingStatus.OPEN, User.active.is_(True),
                   User.email != "", Course.status == CourseStatus.PUBLISHED,
                   TrainingTask.due_on.is_not(None))
            .order_by(TrainingTask.user_id, TrainingTask.due_on, TrainingTask.id))
    due_soon = db.session.scalars(base.where(
        TrainingTask.reminded_before_at.is_(None), TrainingTask.due_on >= today,
        TrainingTask.due_on <= today + timedelta(days=before))).all()
    overdue = db.session.scalars(base.where(
        TrainingTask.reminded_overdue_at.is_(None), TrainingTask.due_on < today)).all()
    return {"training_due_soon": queue_grouped(
                due_soon, prefix="training", kind="due_soon", mark="reminded_before_at",
                text=lambda u, g: _reminder_text(u, g, "due_soon")),
            "training_overdue": queue_grouped(
                overdue, prefix="training", kind="overdue", mark="reminded_overdue_at",
                text=lambda u, g: _reminder_text(u, g, "overdue"))}


def _reminder_text(user, tasks: list[TrainingTask], kind: str) -> tuple[str, str]:
    base_url = current_app.config["PORTAL_BASE_URL"].rstrip("/")
    locale = email_locale(user)
    if kind == "overdue":
        subject = _("Overdue: %(n)d training course(s) still to complete", n=len(tasks))
        intro = _("The following courses were due to be completed and are now overdue:")
    else:
        subject = _("Reminder: %(n)d training course(s) to complete by %(date)s",
                    n=len(tasks), date=min(t.due_on for t in tasks).isoformat())
        intro = _("Please complete the following courses before their due date:")
    lines = [_("Hello %(name)s,", name=user.display_name), "", intro, ""]
    for t in tasks:
        lines.append(f"- {t.course.code} {t.course.title(locale)} · "
                     + _("due %(date)s", date=t.due_on.isoformat()))
    lines += ["", _("Open your courses: %(url)s", url=f"{base_url}/training/mine"),
              "", _("Service Standards Portal")]
    return f"[{current_app.config['PORTAL_NAME']}] {subject}", "\n".join(lines)
