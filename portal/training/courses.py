"""Writing courses: the course itself, the standards it teaches, lessons and the question bank.

Every function changes the models, writes its audit event and leaves the commit to the caller.
"""
from __future__ import annotations

import re

from flask_babel import gettext as _
from sqlalchemy import select

from portal.core.audit import record
from portal.core.db import utcnow
from portal.core.errors import ConflictError, ServiceError
from portal.extensions import db
from portal.standards.models import Standard, VersionStatus
from portal.training.models import (
    Course,
    CourseKind,
    CourseMode,
    CourseStandard,
    CourseStatus,
    Lesson,
    Question,
    QuestionKind,
    QuestionOption,
)

CODE_RE = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)*$")

# (field, lowest, highest) for the numbers a course is configured with
LIMITS = (("questions_per_attempt", 0, 200), ("pass_mark", 1, 100), ("max_attempts", 1, 50),
          ("cooldown_minutes", 0, 10_080), ("due_days", 1, 365))


_DEFAULTS = {"questions_per_attempt": 10,
             "pass_mark": 80,  # nosec B105  # a percentage, not a password
             "max_attempts": 3, "cooldown_minutes": 30, "due_days": 30}


def _settings(kind, mode, numbers: dict, validity_months) -> tuple:
    try:
        kind, mode = CourseKind(kind), CourseMode(mode)
    except ValueError:
        raise ServiceError(_("Unknown course type."), "kind") from None
    for field, lo, hi in LIMITS:
        value = numbers.get(field)
        if not isinstance(value, int) or not lo <= value <= hi:
            raise ServiceError(_("Must be a whole number from %(lo)d to %(hi)d.", lo=lo, hi=hi),
                               field)
    if validity_months is not None and not (isinstance(validity_months, int)
                                            and 1 <= validity_months <= 120):
        raise ServiceError(_("Validity must be 1 to 120 months, or empty for no expiry."),
                           "validity_months")
    return kind, mode


def _standards_of(codes) -> list[Standard]:
    """Standard codes -> standards that have a published version to teach."""
    if isinstance(codes, str):
        codes = re.split(r"[\s,,、;;]+", codes.strip().upper())
    codes = list(dict.fromkeys(c.strip().upper() for c in codes if c and c.strip()))
    found = {s.code: s for s in db.session.scalars(select(Standard).where(
        Standard.code.in_(codes)))}
    unknown = [c for c in codes if c not in found]
    if unknown:
        raise ServiceError(_("No standard with code %(codes)s.", codes=", ".join(unknown)),
                           "standard_codes")
    for std in found.values():
        if _teachable_version(std) is None:
            raise ServiceError(_("%(code)s has no published version to teach yet.",
                                 code=std.code), "standard_codes")
    return [found[c] for c in codes]


def _teachable_version(std: Standard):
    """The newest published version (scheduled before in force: train ahead of the date)."""
    return std.scheduled_version or std.current_version


def create_course(*, code: str, title_zh: str, title_en: str = "", summary: str = "",
                  kind: str, mode: str, standard_codes="", validity_months: int | None = None,
                  author=None, **numbers) -> Course:
    code = (code or "").strip().upper()
    if not CODE_RE.match(code) or len(code) > 32:
        raise ServiceError(_("Code must look like TRN-DLV: capital letters and digits in "
                             "groups joined by '-'."), "code")
    if db.session.scalar(select(Course.id).where(Course.code == code)):
        raise ServiceError(_("A course with code %(code)s already exists.", code=code), "code")
    if not (title_zh or "").strip():
        raise ServiceError(_("Chinese title is required."), "title_zh")
    numbers = {**_DEFAULTS, **numbers}
    kind, mode = _settings(kind, mode, numbers, validity_months)
    standards = _standards_of(standard_codes)
    course = Course(code=code, title_zh=title_zh.strip(), title_en=(title_en or "").strip(),
                    summary=(summary or "").strip(), kind=kind, mode=mode,
                    validity_months=validity_months, created_by_id=getattr(author, "id", None),
                    **numbers)
    db.session.add(course)
    for std in standards:
        course.links.append(CourseStandard(standard=std, standard_version=_teachable_version(std)))
    db.session.flush()
    record("course.created", course, after=course.snapshot())
    return course


def update_course(course: Course, *, title_zh: str, title_en: str = "", summary: str = "",
                  kind: str, mode: str, standard_codes="", validity_months: int | None = None,
                  expected: int | None = None, **numbers) -> Course:
    if expected is not None and expected != course.version:
        raise ConflictError(_("Someone else changed this course while you were editing it. "
                              "Reload the page to see their change, then try again."))
    if not (title_zh or "").strip():
        raise ServiceError(_("Chinese title is required."), "title_zh")
    numbers = {**_DEFAULTS, **numbers}
    kind, mode = _settings(kind, mode, numbers, validity_months)
    if course.status is not CourseStatus.DRAFT and mode is not course.mode:
        raise ServiceError(_("A published course cannot change between online and offline; "
                             "make a new course."), "mode")
    standards = _standards_of(standard_codes)
    before = course.snapshot()
    course.title_zh, course.title_en = title_zh.strip(), (title_en or "").strip()
    course.summary, course.kind, course.mode = (summary or "").strip(), kind, mode
    course.validity_months = validity_months
    for field, value in numbers.items():
        setattr(course, field, value)
    keep = {s.id for s in standards}
    for link in list(course.links):
        if link.standard_id not in keep:
            course.links.remove(link)
    have = {link.standard_id for link in course.links}
    for std in standards:
        if std.id not in have:
            course.links.append(CourseStandard(standard=std,
                                               standard_version=_teachable_version(std)))
    if course.status is CourseStatus.PUBLISHED:
        check_ready(course)
    db.session.flush()
    after = course.snapshot()
    if after != before:
        record("course.updated", course, before=before, after=after)
    return course


def check_ready(course: Course) -> None:
    """What a course needs before people can take it."""
    if course.mode is CourseMode.ONLINE and not course.lessons:
        raise ServiceError(_("An online course needs at least one lesson."))
    if course.has_quiz and len(course.active_questions) < course.questions_per_attempt:
        raise ServiceError(_("The quiz draws %(n)d questions but the bank has only %(have)d "
                             "active ones; add questions or draw fewer.",
                             n=course.questions_per_attempt, have=len(course.active_questions)),
                           "questions_per_attempt")
    if course.mode is CourseMode.ONLINE and not course.has_quiz:
        raise ServiceError(_("An online course is completed by passing its quiz: set how many "
                             "questions a paper draws."), "questions_per_attempt")


def publish_course(course: Course, user) -> Course:
    if course.status is CourseStatus.PUBLISHED:
        raise ServiceError(_("This course is already published."))
    check_ready(course)
    before = course.status
    course.status = CourseStatus.PUBLISHED
    course.published_at = course.published_at or utcnow()
    record("course.published", course, before={"status": before},
           after={"status": course.status, **course.snapshot()})
    return course


def archive_course(course: Course, user) -> Course:
    """No new assignments or attempts; open tasks are cancelled; certificates stay valid."""
    from portal.training.assignments import cancel_tasks

    if course.status is CourseStatus.ARCHIVED:
        raise ServiceError(_("This course is already archived."))
    before = course.status
    course.status = CourseStatus.ARCHIVED
    cancelled = cancel_tasks(course, "course_archived")
    record("course.archived", course, before={"status": before},
           after={"status": course.status, "open_tasks_cancelled": cancelled})
    return course


# --- lessons ------------------------------------------------------------------------------


def save_lesson(course: Course, *, title_zh: str, title_en: str = "", body: str = "",
                lesson: Lesson | None = None) -> Lesson:
    if not (title_zh or "").strip():
        raise ServiceError(_("Chinese title is required."), "title_zh")
    if len(body or "") > 100_000:
        raise ServiceError(_("A lesson can hold at most 100,000 characters."), "body")
    before = None
    if lesson is None:
        lesson = Lesson(course=course, position=len(course.lessons))
        db.session.add(lesson)
    else:
        before = {"title_zh": lesson.title_zh, "title_en": lesson.title_en,
                  "body_chars": len(lesson.body)}
    lesson.title_zh, lesson.title_en = title_zh.strip(), (title_en or "").strip()
    lesson.body = (body or "").replace("\r\n", "\n")
    db.session.flush()
    record("lesson.saved", lesson, before=before, after={
        "course": course.code, "title_zh": lesson.title_zh, "title_en": lesson.title_en,
        "body_chars": len(lesson.body)})
    return lesson


def delete_lesson(lesson: Lesson) -> None:
    course = lesson.course
    if course.status is CourseStatus.PUBLISHED and len(course.lessons) == 1 and \
            course.mode is CourseMode.ONLINE:
        raise ServiceError(_("A published online course keeps at least one lesson."))
    record("lesson.deleted", lesson, before={"course": course.code, "title_zh": lesson.title_zh})
    course.lessons.remove(lesson)
    for i, other in enumerate(course.lessons):
        other.position = i


def move_lesson(lesson: Lesson, step: int) -> None:
    lessons = lesson.course.lessons
    i = lessons.index(lesson)
    j = i + step
    if not 0 <= j < len(lessons):
        return
    lessons[i].position, lessons[j].position = j, i
    record("lesson.moved", lesson, after={"position": j})


# --- questions ----------------------------------------------------------------------------

TRUE_FALSE_OPTIONS = (("正确", "True"), ("错误", "False"))


def save_question(course: Course, *, kind: str, text_zh: str, text_en: str = "",
                  options: list[tuple[str, str, bool]], question: Question | None = None,
                  ) -> Question:
    """``options``: (text_zh, text_en, correct) in the author's order; blank rows are skipped.
    A true/false question takes just which of the two is correct."""
    try:
        kind = QuestionKind(kind)
    except ValueError:
        raise ServiceError(_("Unknown question type."), "kind") from None
    if not (text_zh or "").strip():
        raise ServiceError(_("The question needs a Chinese text."), "text_zh")
    if kind is QuestionKind.TRUE_FALSE:
        truth = any(correct for _zh, _en, correct in options[:1])
        rows = [(TRUE_FALSE_OPTIONS[0][0], TRUE_FALSE_OPTIONS[0][1], truth),
                (TRUE_FALSE_OPTIONS[1][0], TRUE_FALSE_OPTIONS[1][1], not truth)]
    else:
        rows = [((zh or "").strip(), (en or "").strip(), bool(ok)) for zh, en, ok in options
                if (zh or "").strip() or (en or "").strip()]
        if any(not zh for zh, _en, _ok in rows):
            raise ServiceError(_("Every option needs a Chinese text."), "options")
        if len(rows) < 2:
            raise ServiceError(_("A choice question needs at least two options."), "options")
        right = sum(ok for _zh, _en, ok in rows)
        if kind is QuestionKind.SINGLE and right != 1:
            raise ServiceError(_("A single-choice question has exactly one right option."),
                               "options")
        if kind is QuestionKind.MULTIPLE and right < 1:
            raise ServiceError(_("Mark at least one right option."), "options")
    before = None
    if question is None:
        question = Question(course=course)
        db.session.add(question)
    else:
        before = _question_snapshot(question)
        if _used(question):  # answers on record refer to these options: keep them, add anew
            question.active = False
            record("question.withdrawn", question, before=before,
                   after={"active": False, "replaced": True})
            question = Question(course=course)
            db.session.add(question)
            before = None
        else:
            question.options.clear()
    question.kind, question.text_zh = kind, text_zh.strip()
    question.text_en = (text_en or "").strip()
    question.options.extend(QuestionOption(position=i, text_zh=zh, text_en=en, correct=ok)
                            for i, (zh, en, ok) in enumerate(rows))
    db.session.flush()
    record("question.saved", question, before=before, after=_question_snapshot(question))
    return question


def _question_snapshot(q: Question) -> dict:
    return {"course_id": q.course_id, "kind": q.kind, "text_zh": q.text_zh,
            "options": len(q.options), "right": sorted(o.position for o in q.options
                                                       if o.correct), "active": q.active}


def _used(question: Question) -> bool:
    """Whether an attempt may have drawn it: any attempt on the course since it was written."""
    from portal.training.models import QuizAttempt

    return db.session.scalar(select(QuizAttempt.id).where(
        QuizAttempt.course_id == question.course_id,
        QuizAttempt.started_at >= question.created_at).limit(1)) is not None


def withdraw_question(question: Question) -> None:
    """Out of the bank for new papers; kept for the attempts that drew it."""
    course = question.course
    if not question.active:
        raise ServiceError(_("This question is already withdrawn."))
    if course.status is CourseStatus.PUBLISHED and course.has_quiz and \
            len(course.active_questions) - 1 < course.questions_per_attempt:
        raise ServiceError(_("The quiz draws %(n)d questions; withdrawing this one would leave "
                             "too few.", n=course.questions_per_attempt))
    question.active = False
    record("question.withdrawn", question, after={"active": False})


def linked_courses(standard: Standard) -> list[Course]:
    return db.session.scalars(select(Course).join(CourseStandard).where(
        CourseStandard.standard_id == standard.id,
        Course.status == CourseStatus.PUBLISHED).order_by(Course.code)).all()


def advance_links(version) -> list[Course]:
    """A version of a standard was published: the courses teaching the standard now teach it.
    Returns those courses (a material version makes their holders retrain)."""
    if version.status is not VersionStatus.PUBLISHED:
        return []
    links = db.session.scalars(select(CourseStandard).where(
        CourseStandard.standard_id == version.standard_id)).all()
    moved = []
    for link in links:
        if link.standard_version.number < version.number:
            old = link.standard_version.label
            link.standard_version = version
            record("course.standard_advanced", link.course,
                   after={"from": old, "to": version.label, "material": version.material})
            moved.append(link.course)
    return moved
