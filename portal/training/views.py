"""The training blueprint (/training): CS's side here (courses, lessons, question banks,
assignments, sessions, attendance, revoking certificates); the learner's side in ``learn.py``;
dashboards in ``dashboards.py``."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload, undefer

from portal.accounts.models import User
from portal.core.db import utcnow
from portal.core.errors import ServiceError
from portal.core.i18n import select_timezone
from portal.core.permissions import Perm, require, require_any
from portal.core.richtext import render
from portal.core.timeutil import local_today
from portal.core.uploads import Upload, store_image, uploads_of
from portal.core.web import ActionFailed, ConfirmForm, action, csv_response, one_click, submit
from portal.extensions import db
from portal.training import assignments, certificates, courses, quiz, reports, sessions
from portal.training.forms import (
    AssignForm,
    AttendanceImportForm,
    CancelSessionForm,
    CourseEditForm,
    CourseForm,
    EnrolForm,
    ImageForm,
    LessonForm,
    QuestionForm,
    RevokeForm,
    SessionForm,
)
from portal.training.models import (
    AssignmentAudience,
    Certificate,
    Course,
    CourseAssignment,
    CourseStandard,
    CourseStatus,
    Enrolment,
    Lesson,
    Question,
    TrainingSession,
    TrainingTask,
)

bp = Blueprint("training", __name__, url_prefix="/training")
# Uploaded files live at /files/<key> (``Upload.url``; lesson images may only point there).
files_bp = Blueprint("files", __name__)


def _status() -> int:
    """A form page shown again after a POST was refused answers 400."""
    return 400 if request.method == "POST" else 200


# The course pages: CS who manage training, or who only read its reports (read-only).
READERS = (Perm.MANAGE_TRAINING, Perm.VIEW_TRAINING_REPORTS)


def _back_or(default: str) -> str:
    """The page the request came from, if it is one of ours, else ``default``."""
    ref = urlsplit(request.referrer or "")
    if ref.netloc == request.host and ref.path.startswith("/"):
        return ref.path + (f"?{ref.query}" if ref.query else "")
    return default


def _course_url(course_id: int) -> str:
    return url_for("training.course", course_id=course_id)


# --- courses ------------------------------------------------------------------------------

@bp.get("/courses", endpoint="courses")
@require_any(*READERS)
def course_list():
    rows = db.session.scalars(
        select(Course).options(selectinload(Course.links)
                               .selectinload(CourseStandard.standard_version))
        .order_by(Course.status == CourseStatus.ARCHIVED, Course.code)).all()
    return render_template("training/courses.html", courses=rows,
                           totals=reports.totals_by_course())


@bp.route("/courses/new", methods=["GET", "POST"])
@require(Perm.MANAGE_TRAINING)
def new_course():
    form = CourseForm()
    done = submit(form, lambda: courses.create_course(code=form.code.data, author=current_user,
                                                      **form.settings()),
                  lambda c: _("Course %(code)s created as a draft. Add its lessons and "
                              "questions, then publish it.", code=c.code))
    if done.ok:
        return redirect(_course_url(done.result.id))
    return render_template("training/course_form.html", form=form, course=None), _status()


@bp.route("/courses/<int:course_id>/edit", methods=["GET", "POST"])
@require(Perm.MANAGE_TRAINING)
def edit_course(course_id: int):
    course = db.get_or_404(Course, course_id)
    form = CourseEditForm(obj=course if request.method == "GET" else None)
    if request.method == "GET":
        form.kind.data, form.mode.data = course.kind.value, course.mode.value
        form.standard_codes.data = ", ".join(link.standard.code for link in course.links)
        form.lock.data = course.version
    done = submit(form, lambda: courses.update_course(course, expected=form.expected(),
                                                      **form.settings()),
                  _("Course %(code)s saved.", code=course.code))
    if done.ok:
        return redirect(_course_url(course.id))
    return render_template("training/course_form.html", form=form, course=course), _status()


def _readiness(course: Course) -> str | None:
    """Why the course cannot be published yet (the publishing service's own words)."""
    try:
        courses.check_ready(course)
    except ServiceError as err:
        return err.message
    return None


@bp.get("/courses/<int:course_id>", endpoint="course")
@require_any(*READERS)
def course_detail(course_id: int):
    course = db.get_or_404(Course, course_id)
    history = db.session.scalars(
        select(CourseAssignment).where(CourseAssignment.course_id == course.id)
        .options(selectinload(CourseAssignment.audiences).selectinload(AssignmentAudience.party),
                 selectinload(CourseAssignment.created_by))
        .order_by(CourseAssignment.active.desc(), CourseAssignment.id.desc())).all()
    return render_template(
        "training/course.html", course=course, assignments=history,
        totals=reports.totals_by_course(course_id=course.id).get(course.id),
        problem=_readiness(course) if course.status is CourseStatus.DRAFT else None,
        confirm=ConfirmForm(), now=utcnow())


@bp.post("/courses/<int:course_id>/publish")
@require(Perm.MANAGE_TRAINING)
def publish_course(course_id: int):
    course = db.get_or_404(Course, course_id)
    return one_click(lambda: courses.publish_course(course, current_user),
                     _("Course %(code)s published: it can now be assigned.", code=course.code),
                     _course_url(course.id))


@bp.post("/courses/<int:course_id>/archive")
@require(Perm.MANAGE_TRAINING)
def archive_course(course_id: int):
    course = db.get_or_404(Course, course_id)
    return one_click(lambda: courses.archive_course(course, current_user),
                     _("Course %(code)s archived; its open training tasks were cancelled.",
                       code=course.code), _course_url(course.id))


# --- lessons and their images -------------------------------------------------------------

@bp.route("/courses/<int:course_id>/lessons/new", methods=["GET", "POST"])
@require(Perm.MANAGE_TRAINING)
def new_lesson(course_id: int):
    return _lesson_page(db.get_or_404(Course, course_id), None)


@bp.route("/lessons/<int:lesson_id>/edit", methods=["GET", "POST"])
@require(Perm.MANAGE_TRAINING)
def edit_lesson(lesson_id: int):
    lesson = db.get_or_404(Lesson, lesson_id)
    return _lesson_page(lesson.course, lesson)


def _lesson_page(course: Course, lesson: Lesson | None):
    """One form, three buttons: save the lesson; preview the text as readers will see it;
    upload an image (kept with the course at once, its Markdown line added to the text, which
    stays unsaved until "Save lesson")."""
    form = LessonForm(obj=lesson if request.method == "GET" else None)
    image_form = ImageForm()
    preview = render(lesson.body) if lesson is not None and request.method == "GET" else None
    status = 200
    if form.is_submitted() and form.upload.data:
        if _upload_image(course, form, image_form):
            preview = render(form.body.data)
        else:
            status = 400
    elif form.is_submitted() and form.preview.data:
        preview = render(form.body.data)
    else:
        done = submit(form, lambda: courses.save_lesson(
            course, title_zh=form.title_zh.data, title_en=form.title_en.data,
            body=form.body.data, lesson=lesson),
            lambda saved: _("Lesson %(title)s saved.", title=saved.title_zh))
        if done.ok:
            return redirect(url_for("training.edit_lesson", lesson_id=done.result.id))
        status = _status()
    images = [(u, _snippet(u)) for u in uploads_of(course)]
    return render_template("training/lesson_form.html", form=form, image_form=image_form,
                           course=course, lesson=lesson, preview=preview,
                           images=images), status


def _upload_image(course: Course, form: LessonForm, image_form: ImageForm) -> bool:
    if not image_form.validate_on_submit():
        return False
    file = image_form.image.data
    try:
        with action(image_form) as done:
            upload = store_image(file.filename, file.read(), owner=course, user=current_user)
            done.message = _("Image %(name)s uploaded and its line added at the end of the "
                             "text. Move it where it belongs, then save the lesson.",
                             name=upload.filename)
    except ActionFailed:
        return False
    form.body.data = (form.body.data or "").rstrip() + "\n\n" + _snippet(upload) + "\n"
    return True


def _snippet(upload: Upload) -> str:
    """The Markdown that shows ``upload`` in a lesson, described by its file name."""
    alt = upload.filename.rsplit(".", 1)[0].replace("[", "").replace("]", "") or "image"
    return f"![{alt}]({upload.url})"


@bp.post("/lessons/<int:lesson_id>/delete")
@require(Perm.MANAGE_TRAINING)
def delete_lesson(lesson_id: int):
    lesson = db.get_or_404(Lesson, lesson_id)
    return one_click(lambda: courses.delete_lesson(lesson),
                     _("Lesson %(title)s deleted.", title=lesson.title_zh),
                     _course_url(lesson.course_id))


@bp.post("/lessons/<int:lesson_id>/move/<any(up, down):direction>")
@require(Perm.MANAGE_TRAINING)
def move_lesson(lesson_id: int, direction: str):
    lesson = db.get_or_404(Lesson, lesson_id)
    return one_click(lambda: courses.move_lesson(lesson, -1 if direction == "up" else 1),
                     None, _course_url(lesson.course_id) + "#lessons")


@files_bp.get("/files/<key>")
@login_required
def serve(key: str):
    """An uploaded image, to anyone signed in. Its key is random and its bytes never change,
    so the browser may keep it (privately) for a year."""
    upload = db.session.scalar(select(Upload).where(Upload.key == key)
                               .options(undefer(Upload.data)))
    if upload is None:
        abort(404)
    resp = Response(upload.data, mimetype=upload.content_type)
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Content-Disposition"] = "inline"
    resp.cache_control.private = True
    resp.cache_control.max_age = 365 * 24 * 3600
    resp.cache_control.immutable = True
    resp.set_etag(upload.sha256)
    return resp.make_conditional(request)


# --- question bank ------------------------------------------------------------------------

@bp.get("/courses/<int:course_id>/questions")
@require(Perm.MANAGE_TRAINING)
def questions(course_id: int):
    course = db.get_or_404(Course, course_id)
    bank = sorted(course.questions, key=lambda q: (not q.active, q.id))
    return render_template("training/questions.html", course=course, questions=bank,
                           confirm=ConfirmForm())


@bp.route("/courses/<int:course_id>/questions/new", methods=["GET", "POST"])
@require(Perm.MANAGE_TRAINING)
def new_question(course_id: int):
    return _question_page(db.get_or_404(Course, course_id), None)


@bp.route("/questions/<int:question_id>/edit", methods=["GET", "POST"])
@require(Perm.MANAGE_TRAINING)
def edit_question(question_id: int):
    question = db.get_or_404(Question, question_id)
    if not question.active:
        abort(404)  # withdrawn questions stay as they were, for the attempts that drew them
    return _question_page(question.course, question)


def _question_page(course: Course, question: Question | None):
    form = QuestionForm()
    if request.method == "GET" and question is not None:
        form.fill(question)

    def saved(q: Question) -> str:
        if question is not None and q.id != question.id:
            return _("This question had already been drawn in a quiz: it was withdrawn as it "
                     "was and your version was added as a new question.")
        return _("Question saved.")

    done = submit(form, lambda: courses.save_question(
        course, kind=form.kind.data, text_zh=form.text_zh.data, text_en=form.text_en.data,
        options=form.option_rows(), question=question), saved)
    if done.ok:
        if question is None and form.another.data:
            return redirect(url_for("training.new_question", course_id=course.id))
        return redirect(url_for("training.questions", course_id=course.id))
    return render_template("training/question_form.html", form=form, course=course,
                           question=question), _status()


@bp.post("/questions/<int:question_id>/withdraw")
@require(Perm.MANAGE_TRAINING)
def withdraw_question(question_id: int):
    question = db.get_or_404(Question, question_id)
    return one_click(lambda: courses.withdraw_question(question),
                     _("Question withdrawn: new quizzes no longer draw it."),
                     url_for("training.questions", course_id=question.course_id))


# --- assignments --------------------------------------------------------------------------

@bp.route("/courses/<int:course_id>/assign", methods=["GET", "POST"])
@require(Perm.MANAGE_TRAINING)
def assign(course_id: int):
    course = db.get_or_404(Course, course_id)
    form = AssignForm()
    if request.method == "GET":
        form.due_on.data = local_today() + timedelta(days=course.due_days)

    def assigned(result) -> str:
        _assignment, made = result
        if not made:
            return _("Course assigned, but no one new got it: everyone this audience covers "
                     "already has this course, or no one matches yet.")
        return ngettext("Course assigned: %(num)d person must complete it by %(date)s.",
                        "Course assigned: %(num)d people must complete it by %(date)s.",
                        made, date=form.due_on.data.isoformat())

    done = submit(form, lambda: assignments.assign_course(
        course, due_on=form.due_on.data, kinds=form.kinds.data,
        party_codes=form.party_codes.data, roles=form.roles.data, note=form.note.data,
        user=current_user), assigned)
    if done.ok:
        return redirect(_course_url(course.id) + "#assignments")
    return render_template("training/assign.html", form=form, course=course), _status()


@bp.post("/assignments/<int:assignment_id>/withdraw")
@require(Perm.MANAGE_TRAINING)
def withdraw_assignment(assignment_id: int):
    assignment = db.get_or_404(CourseAssignment, assignment_id)
    submit(ConfirmForm(), lambda: assignments.withdraw_assignment(assignment, current_user),
           lambda n: ngettext("Assignment withdrawn; %(num)d open training task was cancelled.",
                              "Assignment withdrawn; %(num)d open training tasks were "
                              "cancelled.", n))
    return redirect(_course_url(assignment.course_id) + "#assignments")


# --- offline sessions and attendance ------------------------------------------------------

@bp.route("/courses/<int:course_id>/sessions/new", methods=["GET", "POST"])
@require(Perm.MANAGE_TRAINING)
def new_session(course_id: int):
    course = db.get_or_404(Course, course_id)
    form = SessionForm()
    tz = select_timezone()
    done = submit(form, lambda: sessions.schedule_session(
        course, starts_at=form.starts_at.utc(tz), ends_at=form.ends_at.utc(tz),
        place=form.place.data, capacity=form.capacity.data, trainer=form.trainer.data),
        _("Session scheduled."))
    if done.ok:
        return redirect(url_for("training.session", session_id=done.result.id))
    return render_template("training/session_form.html", form=form, course=course,
                           tz=tz), _status()


@bp.get("/sessions/<int:session_id>", endpoint="session")
@require(Perm.RECORD_ATTENDANCE)
def session_detail(session_id: int, enrol_form=None, import_form=None, cancel_form=None,
                   report=None):
    sitting = db.get_or_404(TrainingSession, session_id)
    enrolments = db.session.scalars(
        select(Enrolment).where(Enrolment.session_id == sitting.id)
        .options(selectinload(Enrolment.user), selectinload(Enrolment.party))
        .order_by(Enrolment.active.desc(), Enrolment.id)).all()
    now = utcnow()
    return render_template(
        "training/session.html", sitting=sitting, enrolments=enrolments, now=now,
        started=sitting.starts_at <= now,
        recorded=any(e.attended is not None for e in enrolments),
        enrol_form=enrol_form or EnrolForm(), import_form=import_form or AttendanceImportForm(),
        cancel_form=cancel_form or CancelSessionForm(), report=report, confirm=ConfirmForm())


def _user_named(username: str) -> User:
    name = (username or "").strip().lower()
    user = db.session.scalar(select(User).where(func.lower(User.username) == name))
    if user is None or not user.active:
        raise ServiceError(_("No active user with the username %(name)s.", name=name),
                           "username")
    return user


@bp.post("/sessions/<int:session_id>/enrol")
@require(Perm.RECORD_ATTENDANCE)
def enrol(session_id: int):
    sitting = db.get_or_404(TrainingSession, session_id)
    form = EnrolForm()
    done = submit(form, lambda: sessions.enrol(sitting, _user_named(form.username.data),
                                               by=current_user),
                  lambda e: _("%(name)s has a seat in this session.", name=e.user.display_name))
    if done.ok:
        return redirect(url_for("training.session", session_id=session_id))
    return session_detail(session_id, enrol_form=form), 400


@bp.post("/enrolments/<int:enrolment_id>/attendance/<any(yes, no):mark>")
@require(Perm.RECORD_ATTENDANCE)
def mark_attendance(enrolment_id: int, mark: str):
    e = db.get_or_404(Enrolment, enrolment_id)
    attended = mark == "yes"
    message = (_("%(name)s attended.", name=e.user.display_name) if attended
               else _("%(name)s was absent.", name=e.user.display_name))
    return one_click(lambda: sessions.record_attendance(e.session, e.user, attended,
                                                        by=current_user),
                     message, url_for("training.session", session_id=e.session_id))


@bp.post("/sessions/<int:session_id>/attendance")
@require(Perm.RECORD_ATTENDANCE)
def import_attendance(session_id: int):
    """Good rows are kept and committed; each bad row is listed with its line number. A file
    that cannot be read at all changes nothing."""
    sitting = db.get_or_404(TrainingSession, session_id)
    form = AttendanceImportForm()
    if not form.validate_on_submit():
        return session_detail(session_id, import_form=form), 400
    try:
        with action(form) as done:
            report = sessions.import_attendance(sitting, form.file.data.read(),
                                                by=current_user)
            done.message = ngettext("Attendance recorded for %(num)d person.",
                                    "Attendance recorded for %(num)d people.", report.recorded)
    except ActionFailed:
        return session_detail(session_id, import_form=form), 400
    return session_detail(session_id, report=report)


ATTENDANCE_COLUMNS = ["username", "employee_no", "attended"]  # what import_attendance reads


@bp.get("/sessions/<int:session_id>/attendance.csv")
@require(Perm.RECORD_ATTENDANCE)
def attendance_template(session_id: int):
    """The file to fill in: everyone enrolled, with the attended column left for yes/no."""
    sitting = db.get_or_404(TrainingSession, session_id)
    rows = [[e.user.username, e.user.employee_no, ""] for e in sitting.enrolments if e.active]
    if not rows:
        rows = [["zhang.san", "", "yes"], ["", "E0001", "no"]]
    return csv_response(f"attendance-{sitting.course.code}-{sitting.id}.csv",
                        ATTENDANCE_COLUMNS, rows)


@bp.post("/sessions/<int:session_id>/cancel")
@require(Perm.MANAGE_TRAINING)
def cancel_session(session_id: int):
    sitting = db.get_or_404(TrainingSession, session_id)
    form = CancelSessionForm()
    done = submit(form, lambda: sessions.cancel_session(sitting, form.reason.data),
                  _("Session cancelled; its seats were released."))
    if done.ok:
        return redirect(url_for("training.session", session_id=session_id))
    return session_detail(session_id, cancel_form=form), 400


# --- certificates and quiz attempts -------------------------------------------------------

@bp.route("/certificates/<int:certificate_id>/revoke", methods=["GET", "POST"])
@require(Perm.MANAGE_TRAINING)
def revoke_certificate(certificate_id: int):
    cert = db.get_or_404(Certificate, certificate_id)
    form = RevokeForm()
    done = submit(form, lambda: certificates.revoke(cert, form.reason.data, current_user),
                  _("Certificate %(code)s revoked; %(name)s must complete the course again.",
                    code=cert.code, name=cert.holder_name))
    if done.ok:
        return redirect(_course_url(cert.course_id))
    return render_template("training/certificate_revoke.html", form=form, cert=cert), _status()


@bp.post("/tasks/<int:task_id>/grant-attempt")
@require(Perm.MANAGE_TRAINING)
def grant_attempt(task_id: int):
    task = db.get_or_404(TrainingTask, task_id)
    return one_click(lambda: quiz.grant_attempt(task, current_user),
                     _("%(name)s may try the quiz of %(code)s once more.",
                       name=task.user.display_name, code=task.course.code),
                     _back_or(_course_url(task.course_id)))


from portal.training import dashboards, learn  # noqa: F401  (routes on the same blueprint)
