"""The learner's side of training: my courses, a course's lessons, the quiz, offline session
seats, my certificates (PDF), and the public page that checks a certificate's code."""
from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.core.db import utcnow
from portal.core.permissions import Perm, allowed, allowed_any, party_scope, require
from portal.core.richtext import render
from portal.core.timeutil import local_today
from portal.core.web import ActionFailed, ConfirmForm, action, one_click
from portal.extensions import db
from portal.training import assignments, certificates, quiz, sessions
from portal.training.models import (
    AttemptStatus,
    Certificate,
    Course,
    CourseKind,
    CourseStatus,
    Enrolment,
    QuizAttempt,
    SessionStatus,
    TrainingSession,
    TrainingStatus,
)
from portal.training.views import READERS, bp

verify_bp = Blueprint("verify", __name__)


def _course_for_learner(course_id: int) -> tuple[Course, object]:
    """The course and the user's task; 404 unless assigned to them, open to all, or CS."""
    course = db.session.get(Course, course_id)
    if course is None:
        abort(404)
    task = assignments.task_of(course, current_user)
    if allowed_any(current_user, *READERS):
        return course, task
    if course.status is not CourseStatus.PUBLISHED:
        abort(404)
    if (task is None or task.status is TrainingStatus.CANCELLED) and \
            course.kind is not CourseKind.OPEN:
        abort(404)
    return course, task


@bp.get("/mine")
@require(Perm.TAKE_TRAINING)
def mine():
    from portal.training.reports import tasks_of

    tasks = tasks_of(current_user)
    taken = {t.course_id for t in tasks}
    open_courses = [c for c in db.session.scalars(
        db.select(Course).where(Course.status == CourseStatus.PUBLISHED,
                                Course.kind == CourseKind.OPEN).order_by(Course.code))
        if c.id not in taken]
    return render_template("training/learn_mine.html",
                           open_tasks=[t for t in tasks if t.status is TrainingStatus.OPEN],
                           done=[t for t in tasks if t.status is TrainingStatus.DONE],
                           open_courses=open_courses,
                           certs=certificates.certificates_of(current_user),
                           today=local_today())


@bp.get("/courses/<int:course_id>/learn")
@require(Perm.TAKE_TRAINING)
def learn(course_id: int):
    course, task = _course_for_learner(course_id)
    st = quiz.standing(course, task, current_user) if course.has_quiz else None
    needs = certificates.requirements(course, task) if task is not None and \
        task.status is TrainingStatus.OPEN else {}
    my_seat = None
    if task is not None:
        my_seat = db.session.scalar(
            db.select(Enrolment).join(TrainingSession)
            .where(TrainingSession.course_id == course.id, Enrolment.user_id == current_user.id,
                   Enrolment.active.is_(True)).order_by(Enrolment.id.desc()))
    upcoming = [s for s in course.sessions if s.status is SessionStatus.SCHEDULED
                and s.starts_at > utcnow()]
    return render_template("training/learn_course.html", course=course, task=task, st=st,
                           needs=needs, lessons=[(le, render(le.body)) for le in course.lessons],
                           attempts=quiz.attempts_of(course, current_user),
                           upcoming=upcoming, my_seat=my_seat,
                           confirm=ConfirmForm(), today=local_today(), now=utcnow())


@bp.post("/courses/<int:course_id>/take")
@require(Perm.TAKE_TRAINING)
def take(course_id: int):
    course, _task = _course_for_learner(course_id)
    return one_click(lambda: assignments.enrol_by_choice(course, current_user),
                     _("%(code)s added to your courses.", code=course.code),
                     url_for("training.learn", course_id=course.id))


@bp.post("/courses/<int:course_id>/quiz")
@require(Perm.TAKE_TRAINING)
def start_quiz(course_id: int):
    course, task = _course_for_learner(course_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        with action() as _done:
            attempt = quiz.start_attempt(course, task, current_user)
    except ActionFailed:
        return redirect(url_for("training.learn", course_id=course.id))
    return redirect(url_for("training.attempt", attempt_id=attempt.id))


def _my_attempt(attempt_id: int) -> QuizAttempt:
    attempt = db.session.get(QuizAttempt, attempt_id)
    if attempt is None or attempt.user_id != current_user.id:
        abort(404)
    return attempt


@bp.get("/attempts/<int:attempt_id>")
@require(Perm.TAKE_TRAINING)
def attempt(attempt_id: int):
    attempt = _my_attempt(attempt_id)
    if attempt.status is AttemptStatus.SUBMITTED:
        return redirect(url_for("training.result", attempt_id=attempt.id))
    return render_template("training/learn_quiz.html", attempt=attempt, course=attempt.course,
                           items=quiz.paper_items(attempt), form=ConfirmForm())


@bp.post("/attempts/<int:attempt_id>")
@require(Perm.TAKE_TRAINING)
def submit_attempt(attempt_id: int):
    attempt = _my_attempt(attempt_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        with action() as done:
            quiz.submit_attempt(attempt, quiz.parse_answers(attempt, request.form),
                                current_user)
            done.message = (_("Passed with %(score)d%%.", score=attempt.score) if attempt.passed
                            else _("Not passed: %(score)d%%, the pass mark is %(mark)d%%.",
                                   score=attempt.score, mark=attempt.course.pass_mark))
            done.category = "success" if attempt.passed else "warning"
    except ActionFailed:
        return redirect(url_for("training.attempt", attempt_id=attempt.id))
    return redirect(url_for("training.result", attempt_id=attempt.id))


@bp.get("/attempts/<int:attempt_id>/result")
@require(Perm.TAKE_TRAINING)
def result(attempt_id: int):
    attempt = _my_attempt(attempt_id)
    if attempt.status is not AttemptStatus.SUBMITTED:
        return redirect(url_for("training.attempt", attempt_id=attempt.id))
    course = attempt.course
    task = assignments.task_of(course, current_user)
    # which answers were right is shown once the course is done: a failed attempt shows only
    # which questions were missed, so the next paper is not answered from a crib
    reveal = task is not None and task.status is TrainingStatus.DONE
    return render_template("training/learn_result.html", attempt=attempt, course=course,
                           items=quiz.paper_items(attempt, reveal=True), reveal=reveal,
                           task=task)


@bp.post("/sessions/<int:session_id>/take-seat")
@require(Perm.TAKE_TRAINING)
def take_seat(session_id: int):
    session = db.session.get(TrainingSession, session_id)
    if session is None:
        abort(404)
    _course_for_learner(session.course_id)
    return one_click(lambda: sessions.enrol(session, current_user, by=current_user),
                     _("You have a seat in this session."),
                     url_for("training.learn", course_id=session.course_id))


@bp.post("/enrolments/<int:enrolment_id>/give-up")
@require(Perm.TAKE_TRAINING)
def give_up_seat(enrolment_id: int):
    enrolment = db.session.get(Enrolment, enrolment_id)
    if enrolment is None or enrolment.user_id != current_user.id:
        abort(404)
    return one_click(lambda: sessions.withdraw(enrolment), _("You gave up your seat."),
                     url_for("training.learn", course_id=enrolment.session.course_id))


# --- certificates -------------------------------------------------------------------------


def _certificate_or_404(cert_id: int) -> Certificate:
    """The holder, CS and auditors, and the holder's party manager may see a certificate."""
    cert = db.session.get(Certificate, cert_id)
    if cert is None:
        abort(404)
    if cert.user_id == current_user.id or allowed_any(current_user, *READERS):
        return cert
    if allowed(current_user, Perm.VIEW_TEAM_TRAINING) and cert.party_id is not None and \
            party_scope(current_user) == cert.party_id:
        return cert
    abort(404)


@bp.get("/certificates/<int:cert_id>.pdf")
@require()  # signed in; who may see it is checked on the certificate
def certificate_pdf(cert_id: int):
    cert = _certificate_or_404(cert_id)
    pdf = certificates.render_certificate(cert)
    name = f"certificate-{cert.code}.pdf"
    return Response(pdf, mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{name}"'})


@verify_bp.route("/verify", methods=["GET"])
def verify_form():
    code = (request.args.get("code") or "").strip()
    if code:
        normal = certificates.normalise_code(code)
        if normal:
            return redirect(url_for("verify.verify", code=normal))
        return render_template("training/verify.html", code=code, cert=None,
                               error=_("A certificate code has 12 letters and digits, like "
                                       "ABCD-EFGH-JK23.")), 400
    return render_template("training/verify.html", code="", cert=None, error=None)


@verify_bp.get("/verify/<code>")
def verify(code: str):
    """Public: confirms a code and shows only what is printed on the certificate, with the
    holder's name partly masked."""
    cert = certificates.by_code(code)
    if cert is None:
        return render_template("training/verify.html", code=code, cert=None,
                               error=_("No certificate has this code. Check it against the "
                                       "printed certificate.")), 404
    return render_template("training/verify.html", code=cert.code, cert=cert, error=None,
                           state=cert.state(local_today()),
                           holder=certificates.masked_name(cert.holder_name))
