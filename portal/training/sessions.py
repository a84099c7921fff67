"""Offline (线下) sessions: scheduling, enrolment up to capacity, attendance and its CSV import.

Enrolment takes a seat under a row lock on the session (``SELECT ... FOR UPDATE`` on
PostgreSQL; SQLite serialises writers anyway), so two people cannot take the last seat.
Attendance is what was seen in the room: recording it for someone who was not enrolled enrols
them, whatever the capacity. A CSV import reports each bad row with its line number and keeps
every good row; each row is applied in its own savepoint, so no row is ever half-imported.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import func, select

from portal.accounts.models import User
from portal.core.audit import record
from portal.core.db import utcnow
from portal.core.errors import ServiceError
from portal.extensions import db
from portal.training.models import (
    Course,
    CourseMode,
    CourseStatus,
    Enrolment,
    SessionStatus,
    TrainingSession,
    TrainingStatus,
)


def _lock(session: TrainingSession) -> TrainingSession:
    return db.session.scalars(select(TrainingSession).where(TrainingSession.id == session.id)
                              .with_for_update(key_share=True)           # FOR NO KEY UPDATE
                              .execution_options(populate_existing=True)).one()


def schedule_session(course: Course, *, starts_at: datetime, ends_at: datetime, place: str,
                     capacity: int, trainer: str = "") -> TrainingSession:
    if course.mode is not CourseMode.OFFLINE:
        raise ServiceError(_("Only an offline course has sessions."))
    if course.status is CourseStatus.ARCHIVED:
        raise ServiceError(_("This course is archived."))
    if starts_at is None or ends_at is None or ends_at <= starts_at:
        raise ServiceError(_("The session must end after it starts."), "ends_at")
    if starts_at < utcnow():
        raise ServiceError(_("A new session cannot start in the past."), "starts_at")
    if not (place or "").strip():
        raise ServiceError(_("Where is the session held?"), "place")
    if not isinstance(capacity, int) or not 1 <= capacity <= 10_000:
        raise ServiceError(_("Capacity must be 1 to 10,000 seats."), "capacity")
    session = TrainingSession(course=course, starts_at=starts_at, ends_at=ends_at,
                              place=place.strip(), capacity=capacity,
                              trainer=(trainer or "").strip())
    db.session.add(session)
    db.session.flush()
    record("training_session.scheduled", session, after={
        "course": course.code, "starts_at": starts_at, "ends_at": ends_at,
        "place": session.place, "capacity": capacity, "trainer": session.trainer})
    return session


def cancel_session(session: TrainingSession, reason: str) -> None:
    if session.status is SessionStatus.CANCELLED:
        raise ServiceError(_("This session is already cancelled."))
    if not (reason or "").strip():
        raise ServiceError(_("Give the reason for cancelling the session."), "reason")
    if any(e.attended is not None for e in session.enrolments):
        raise ServiceError(_("Attendance has been recorded for this session; it cannot be "
                             "cancelled."))
    session.status = SessionStatus.CANCELLED
    for e in session.enrolments:
        e.active = False
    record("training_session.cancelled", session, after={
        "reason": reason.strip(), "enrolments_released": len(session.enrolments)})


def seats_taken(session: TrainingSession) -> int:
    """Counted in SQL under the session's lock (the ``seats_taken`` property may be stale)."""
    return db.session.scalar(select(func.count(Enrolment.id)).where(
        Enrolment.session_id == session.id, Enrolment.active.is_(True))) or 0


def enrol(session: TrainingSession, user, *, by=None) -> Enrolment:
    """Take a seat for ``user`` (themselves, or CS for them). One seat per course at a time."""
    from portal.training.assignments import task_of

    if session.status is not SessionStatus.SCHEDULED:
        raise ServiceError(_("This session is cancelled."))
    if session.starts_at <= utcnow():
        raise ServiceError(_("This session has already started; enrolment is closed."))
    course = session.course
    task = task_of(course, user)
    if task is None or task.status is TrainingStatus.CANCELLED:
        raise ServiceError(_("%(name)s has no training task for this course.",
                             name=user.display_name))
    if task.status is TrainingStatus.DONE:
        raise ServiceError(_("%(name)s has already completed this course.",
                             name=user.display_name))
    session = _lock(session)
    elsewhere = db.session.scalar(
        select(TrainingSession).join(Enrolment)
        .where(TrainingSession.course_id == course.id, Enrolment.user_id == user.id,
               Enrolment.active.is_(True), Enrolment.attended.is_(None),
               TrainingSession.status == SessionStatus.SCHEDULED))
    if elsewhere is not None:
        raise ServiceError(_("%(name)s already has a seat in another session of this course; "
                             "withdraw from it first.", name=user.display_name))
    if seats_taken(session) >= session.capacity:
        raise ServiceError(_("This session is full (%(n)d seats).", n=session.capacity))
    enrolment = _enrolment(session, user)
    enrolment.active = True
    db.session.flush()
    record("enrolment.created", enrolment, after={
        "session_id": session.id, "course": course.code, "user": user.username,
        "by": getattr(by, "username", None)})
    return enrolment


def _enrolment(session: TrainingSession, user) -> Enrolment:
    enrolment = db.session.scalar(select(Enrolment).where(
        Enrolment.session_id == session.id, Enrolment.user_id == user.id))
    if enrolment is None:
        enrolment = Enrolment(session_id=session.id, user_id=user.id, party_id=user.party_id)
        db.session.add(enrolment)
    return enrolment


def withdraw(enrolment: Enrolment) -> None:
    if not enrolment.active:
        raise ServiceError(_("This seat was already given up."))
    if enrolment.attended is not None:
        raise ServiceError(_("Attendance is recorded; the enrolment stays."))
    enrolment.active = False
    record("enrolment.withdrawn", enrolment, after={"session_id": enrolment.session_id,
                                                    "user_id": enrolment.user_id})


def record_attendance(session: TrainingSession, user, attended: bool, *, by) -> Enrolment:
    """Who was (or was not) in the room. Attending may complete the course."""
    from portal.training.assignments import task_of
    from portal.training.certificates import complete_if_done

    if session.status is not SessionStatus.SCHEDULED:
        raise ServiceError(_("This session is cancelled."))
    if session.starts_at > utcnow():
        raise ServiceError(_("Attendance can be recorded once the session has started."))
    course = session.course
    task = task_of(course, user)
    if task is None or task.status is TrainingStatus.CANCELLED:
        raise ServiceError(_("%(name)s has no training task for this course.",
                             name=user.display_name))
    enrolment = _enrolment(session, user)
    before = enrolment.attended
    enrolment.active, enrolment.attended = True, attended
    enrolment.recorded_at, enrolment.recorded_by_id = utcnow(), by.id
    db.session.flush()
    record("enrolment.attendance", enrolment, before={"attended": before}, after={
        "session_id": session.id, "course": course.code, "user": user.username,
        "attended": attended})
    if attended:
        complete_if_done(course, task, user)
    return enrolment


# --- CSV import ---------------------------------------------------------------------------

YES = {"1", "y", "yes", "true", "attended", "present", "是", "出席", "到", "已到", "参加"}
NO = {"0", "n", "no", "false", "absent", "否", "缺席", "未到", "缺勤"}


@dataclass
class ImportReport:
    recorded: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)   # (line, message)


def import_attendance(session: TrainingSession, data: bytes, *, by) -> ImportReport:
    """CSV with a header: ``username`` or ``employee_no`` (either identifies the person) and
    ``attended`` (yes/no, 1/0, 出席/缺席 ...). Good rows are recorded, bad rows reported."""
    report = ImportReport()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("gb18030")  # Excel on Chinese Windows saves CSV this way
        except UnicodeDecodeError:
            raise ServiceError(_("The file is not text in UTF-8 or GB18030."), "file") from None
    reader = csv.DictReader(io.StringIO(text))
    headers = [h.strip().lower() for h in (reader.fieldnames or [])]
    if "attended" not in headers or not ({"username", "employee_no"} & set(headers)):
        raise ServiceError(_("The first line must name the columns: username (or employee_no) "
                             "and attended."), "file")
    reader.fieldnames = headers
    seen = 0
    for row in reader:
        line = reader.line_num  # the header is line 1
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue  # blank line
        seen += 1
        savepoint = db.session.begin_nested()
        try:
            attended = _attended(row.get("attended"))
            user = _person(row)
            record_attendance(session, user, attended, by=by)
        except ServiceError as err:
            savepoint.rollback()
            report.errors.append((line, err.message))
            continue
        savepoint.commit()
        report.recorded += 1
    if not seen:
        raise ServiceError(_("The file has no rows after its header."), "file")
    record("training_session.attendance_imported", session, after={
        "recorded": report.recorded, "errors": len(report.errors)})
    return report


def _person(row: dict):
    username = (row.get("username") or "").strip().lower()
    employee_no = (row.get("employee_no") or "").strip()
    if not username and not employee_no:
        raise ServiceError(_("no username or employee number"))
    cond = User.username == username if username else User.employee_no == employee_no
    found = db.session.scalars(select(User).where(cond).limit(2)).all()
    if not found:
        raise ServiceError(_("no user %(who)s", who=username or employee_no))
    if len(found) > 1:
        raise ServiceError(_("employee number %(no)s belongs to more than one user; use the "
                             "username", no=employee_no))
    user = found[0]
    if not user.active:
        raise ServiceError(_("%(who)s is deactivated", who=user.username))
    return user


def _attended(value) -> bool:
    v = (value or "").strip().lower()
    if v in YES:
        return True
    if v in NO:
        return False
    raise ServiceError(_("attended must be yes or no (是/否), not '%(value)s'", value=value or ""))
