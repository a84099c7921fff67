"""Sitting a course's quiz: a random paper per attempt, scored on the server.

The paper (which questions, options in which order) is drawn with the system's random source
when the attempt starts and stored with it, so reloading the page shows the same paper and the
answers can be checked later. The browser only ever sees question texts and option texts by
their position on the paper; which option is right never leaves the server, and answers refer
to positions, which mean nothing outside this one attempt.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import select

from portal.core.audit import record
from portal.core.db import utcnow
from portal.core.errors import ServiceError
from portal.extensions import db
from portal.training.models import (
    AttemptStatus,
    Course,
    CourseStatus,
    Question,
    QuestionKind,
    QuestionOption,
    QuizAttempt,
    TrainingStatus,
    TrainingTask,
)

_rng = random.SystemRandom()


@dataclass
class Standing:
    """Where a person stands with a course's quiz in the current cycle."""

    used: int
    allowed: int
    in_progress: QuizAttempt | None
    next_at: object | None     # a failed attempt's cool-down ends then (aware UTC)
    passed: bool

    @property
    def left(self) -> int:
        return max(0, self.allowed - self.used)


def standing(course: Course, task: TrainingTask | None, user) -> Standing:
    since = task.opened_at if task is not None else None
    q = select(QuizAttempt).where(QuizAttempt.course_id == course.id,
                                  QuizAttempt.user_id == user.id)
    if since is not None:
        q = q.where(QuizAttempt.started_at >= since)
    attempts = db.session.scalars(q.order_by(QuizAttempt.started_at)).all()
    submitted = [a for a in attempts if a.status is AttemptStatus.SUBMITTED]
    in_progress = next((a for a in attempts if a.status is AttemptStatus.IN_PROGRESS), None)
    next_at = None
    if submitted and not submitted[-1].passed and course.cooldown_minutes:
        next_at = submitted[-1].submitted_at + timedelta(minutes=course.cooldown_minutes)
        if next_at <= utcnow():
            next_at = None
    allowed = course.max_attempts + (task.extra_attempts if task is not None else 0)
    return Standing(len(submitted), allowed, in_progress, next_at,
                    any(a.passed for a in submitted))


def start_attempt(course: Course, task: TrainingTask, user) -> QuizAttempt:
    """A new paper, or the one already in progress."""
    if course.status is not CourseStatus.PUBLISHED:
        raise ServiceError(_("This course is not open for taking."))
    if not course.has_quiz:
        raise ServiceError(_("This course has no quiz."))
    if task is None or task.status is TrainingStatus.CANCELLED:
        raise ServiceError(_("This course is not assigned to you."))
    st = standing(course, task, user)
    if st.in_progress is not None:
        return st.in_progress
    if task.status is TrainingStatus.DONE:
        raise ServiceError(_("You have completed this course; there is nothing to retake."))
    if st.left <= 0:
        raise ServiceError(_("You have used all %(n)d attempts. Ask CS to allow another.",
                             n=st.allowed))
    if st.next_at is not None:
        raise ServiceError(_("You can try again after the cool-down, at %(time)s.",
                             time=_local(st.next_at)))
    bank = [q for q in course.active_questions]
    if len(bank) < course.questions_per_attempt:
        raise ServiceError(_("The question bank is being revised; try again later."))
    drawn = _rng.sample(bank, course.questions_per_attempt)
    paper = []
    for q in drawn:
        ids = [o.id for o in q.options]
        if q.kind is not QuestionKind.TRUE_FALSE:  # 正确/错误 keep their order
            _rng.shuffle(ids)
        paper.append({"q": q.id, "o": ids})
    attempt = QuizAttempt(course_id=course.id, user_id=user.id, party_id=user.party_id,
                          started_at=utcnow(), paper_json=json.dumps(paper))
    db.session.add(attempt)
    db.session.flush()
    record("quiz_attempt.started", attempt, after={
        "course": course.code, "user": user.username, "questions": len(paper),
        "attempt": st.used + 1, "allowed": st.allowed})
    return attempt


@dataclass
class PaperItem:
    number: int
    question: Question
    options: list[QuestionOption]
    chosen: list[int]          # positions on the paper
    right: list[int] | None    # positions, only once submitted


def paper_items(attempt: QuizAttempt, *, reveal: bool = False) -> list[PaperItem]:
    paper = attempt.paper
    questions = {q.id: q for q in db.session.scalars(select(Question).where(
        Question.id.in_([p["q"] for p in paper])))}
    options = {o.id: o for o in db.session.scalars(select(QuestionOption).where(
        QuestionOption.question_id.in_(list(questions))))}
    answers = attempt.answers
    items = []
    for i, p in enumerate(paper):
        opts = [options[oid] for oid in p["o"]]
        right = [j for j, o in enumerate(opts) if o.correct] if reveal else None
        items.append(PaperItem(i + 1, questions[p["q"]], opts, answers.get(str(i), []), right))
    return items


def parse_answers(attempt: QuizAttempt, form) -> dict[str, list[int]]:
    """``q<i>`` fields holding option positions -> {"i": [positions]}; anything that is not
    a position on this paper is refused."""
    answers: dict[str, list[int]] = {}
    for i, p in enumerate(attempt.paper):
        raw = form.getlist(f"q{i}") if hasattr(form, "getlist") else form.get(f"q{i}", [])
        picked = set()
        for value in raw:
            try:
                pos = int(value)
            except (TypeError, ValueError):
                raise ServiceError(_("Question %(n)d: not an option of this paper.",
                                     n=i + 1)) from None
            if not 0 <= pos < len(p["o"]):
                raise ServiceError(_("Question %(n)d: not an option of this paper.", n=i + 1))
            picked.add(pos)
        if picked:
            answers[str(i)] = sorted(picked)
    return answers


def submit_attempt(attempt: QuizAttempt, answers: dict[str, list[int]], user) -> QuizAttempt:
    """Score the paper; passing completes the course (or its quiz part) and may issue the
    certificate. Unanswered questions count as wrong; a multiple-choice question is right only
    with all and only its right options."""
    from portal.training.certificates import complete_if_done

    if attempt.user_id != user.id:
        raise ServiceError(_("This is not your attempt."))
    if attempt.status is not AttemptStatus.IN_PROGRESS:
        raise ServiceError(_("This attempt was already submitted."))
    paper = attempt.paper
    correct_by_q = {}
    for q in db.session.scalars(select(Question).where(
            Question.id.in_([p["q"] for p in paper]))):
        correct_by_q[q.id] = q.correct_ids
    correct = 0
    for i, p in enumerate(paper):
        chosen = {p["o"][pos] for pos in answers.get(str(i), [])}
        if chosen and chosen == correct_by_q[p["q"]]:
            correct += 1
    course = db.session.get(Course, attempt.course_id)
    attempt.answers_json = json.dumps(answers, sort_keys=True)
    attempt.correct = correct
    attempt.score = round(100 * correct / len(paper)) if paper else 0
    attempt.passed = attempt.score >= course.pass_mark
    attempt.status, attempt.submitted_at = AttemptStatus.SUBMITTED, utcnow()
    db.session.flush()
    record("quiz_attempt.submitted", attempt, after={
        "course": course.code, "user": user.username, "correct": correct,
        "questions": len(paper), "score": attempt.score, "pass_mark": course.pass_mark,
        "passed": attempt.passed})
    if attempt.passed:
        from portal.training.assignments import task_of

        complete_if_done(course, task_of(course, user), user, attempt=attempt)
    return attempt


def grant_attempt(task: TrainingTask, user) -> None:
    """CS allows one more attempt to someone who used them all."""
    if task.status is not TrainingStatus.OPEN:
        raise ServiceError(_("Only an open training task can be given another attempt."))
    task.extra_attempts += 1
    record("training_task.attempt_granted", task, after={
        "course": task.course.code, "user": task.user.username,
        "extra_attempts": task.extra_attempts, "by": getattr(user, "username", None)})


def attempts_of(course: Course, user) -> list[QuizAttempt]:
    return db.session.scalars(select(QuizAttempt).where(
        QuizAttempt.course_id == course.id, QuizAttempt.user_id == user.id)
        .order_by(QuizAttempt.started_at.desc())).all()


def _local(moment) -> str:
    from flask_babel import format_datetime

    return format_datetime(moment, "yyyy-MM-dd HH:mm")
