"""Training and certification: assignments, quizzes scored on the server, certificates,
expiry and retraining, offline sessions, and acknowledgement gated on training."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.accounts.models import User
from portal.accounts.services import create_user
from portal.core.audit import acting_as
from portal.core.db import utcnow
from portal.core.errors import ServiceError
from portal.core.permissions import Role
from portal.core.timeutil import frozen_time, local_today
from portal.extensions import db
from portal.parties.models import Party
from portal.standards.models import Standard
from portal.training import assignments, certificates, courses, quiz, sessions
from portal.training.models import (
    Certificate,
    CourseStatus,
    Enrolment,
    TrainingStatus,
    TrainingTask,
)
from tests.factories import PASSWORD, build_world, publish_reviewed


@pytest.fixture(autouse=True)
def _english(ctx):
    """Messages are matched in English here (the catalogue would give them in Chinese)."""
    from flask_babel import force_locale

    with force_locale("en"):
        yield


def _user(key: str) -> User:
    return db.session.scalar(select(User).where(User.username == key.replace("_", ".")))


def make_course(code="TRN-DLV", *, questions=4, draw=3, mode="online", kind="mandatory",
                validity_months=12, publish=True, **settings):
    """A published course on CAR-DLV: one lesson, ``questions`` single-choice questions whose
    right answer is the option "对" (written first)."""
    admin = _user("cs_admin")
    with acting_as(admin):
        course = courses.create_course(
            code=code, title_zh="配送标准培训", title_en="Delivery standard training",
            kind=kind, mode=mode, standard_codes="CAR-DLV", validity_months=validity_months,
            author=admin, questions_per_attempt=draw, pass_mark=settings.pop("pass_mark", 60),
            max_attempts=settings.pop("max_attempts", 3),
            cooldown_minutes=settings.pop("cooldown_minutes", 0),
            due_days=settings.pop("due_days", 30))
        courses.save_lesson(course, title_zh="第一课", body="# 虚假签收\n\n- 不得虚假反馈")
        for i in range(questions):
            courses.save_question(course, kind="single", text_zh=f"问题{i}", options=[
                ("对", "right", True), ("错", "wrong", False), ("不知道", "unsure", False)])
        if publish:
            courses.publish_course(course, admin)
    db.session.flush()
    return course


def answer_all(attempt, right: bool) -> dict:
    """Answers by position: the right option (or a wrong one) of every question."""
    answers = {}
    for i, item in enumerate(quiz.paper_items(attempt, reveal=True)):
        pos = item.right[0] if right else next(j for j in range(len(item.options))
                                                if j not in item.right)
        answers[str(i)] = [pos]
    return answers


def assign_carriers(course, due_in=10):
    with acting_as(_user("cs_admin")):
        return assignments.assign_course(course, due_on=local_today() + timedelta(days=due_in),
                                         kinds=["carrier"], user=_user("cs_admin"))


# --- assignments --------------------------------------------------------------------------


def test_an_assignment_gives_everyone_in_the_audience_one_task(ctx):
    build_world(with_case=False)
    course = make_course()
    _assignment, made = assign_carriers(course)
    people = {t.user.username for t in db.session.scalars(select(TrainingTask))}
    assert people == {"staff.a", "staff.b", "carrier.manager"} and made == 3
    # a second assignment covering the same people makes no second task
    with acting_as(_user("cs_admin")):
        _a, again = assignments.assign_course(course, due_on=local_today() + timedelta(days=5),
                                              party_codes="C001", user=_user("cs_admin"))
    assert again == 0 and db.session.scalar(select(func.count(TrainingTask.id))) == 3


def test_dimensions_narrow_each_other_and_roles_reach_internal_staff(ctx):
    build_world(with_case=False)
    course = make_course()
    admin = _user("cs_admin")
    with acting_as(admin):
        _a, made = assignments.assign_course(course, due_on=local_today() + timedelta(days=9),
                                             kinds=["carrier"], roles=["party_manager"],
                                             user=admin)
        _b, officers = assignments.assign_course(course, due_on=local_today(),
                                                 roles=["cs_officer"], user=admin)
    assert made == 1 and officers == 1
    assert {t.user.username for t in db.session.scalars(select(TrainingTask))} == \
        {"carrier.manager", "cs.officer"}


def test_an_assignment_needs_an_audience_and_a_date_not_in_the_past(ctx):
    build_world(with_case=False)
    course = make_course()
    with pytest.raises(ServiceError, match="Choose who"):
        assignments.assign_course(course, due_on=local_today(), user=_user("cs_admin"))
    with pytest.raises(ServiceError) as err:
        assignments.assign_course(course, due_on=local_today() - timedelta(days=1),
                                  kinds=["carrier"], user=_user("cs_admin"))
    assert err.value.field == "due_on"
    with pytest.raises(ServiceError, match="X99"):
        assignments.assign_course(course, due_on=local_today(), party_codes="C001, X99",
                                  user=_user("cs_admin"))


def test_new_staff_inherit_assignments_with_at_least_the_courses_time(ctx):
    build_world(with_case=False)
    course = make_course(due_days=20)
    assign_carriers(course, due_in=3)
    with acting_as(_user("cs_admin")):
        newbie = create_user(username="sf.newbie", display_name="新人", password=PASSWORD,
                             role=Role.PARTY_STAFF,
                             party=db.session.scalar(select(Party).where(Party.code == "C001")))
        merchant = create_user(username="m.newbie", display_name="商家新人", password=PASSWORD,
                               role=Role.PARTY_STAFF,
                               party=db.session.scalar(select(Party).where(Party.code == "M001")))
    task = assignments.task_of(course, newbie)
    assert task is not None and task.due_on == local_today() + timedelta(days=20)
    assert assignments.task_of(course, merchant) is None


def test_withdrawing_keeps_tasks_another_assignment_still_gives(ctx):
    build_world(with_case=False)
    course = make_course()
    first, _n = assign_carriers(course)
    with acting_as(_user("cs_admin")):
        assignments.assign_course(course, due_on=local_today() + timedelta(days=5),
                                  party_codes="C002", user=_user("cs_admin"))
        cancelled = assignments.withdraw_assignment(first)
    assert cancelled == 2  # staff.a and the manager of C001; staff.b is still assigned by C002
    assert assignments.task_of(course, _user("staff_b")).status is TrainingStatus.OPEN


# --- the quiz -----------------------------------------------------------------------------


def test_a_paper_draws_n_questions_and_passing_issues_a_certificate(ctx):
    build_world(with_case=False)
    course = make_course(questions=5, draw=3)
    assign_carriers(course)
    staff = _user("staff_a")
    task = assignments.task_of(course, staff)
    attempt = quiz.start_attempt(course, task, staff)
    assert len(attempt.paper) == 3 and len({p["q"] for p in attempt.paper}) == 3
    assert quiz.start_attempt(course, task, staff) is attempt  # resumed, not redrawn
    quiz.submit_attempt(attempt, answer_all(attempt, right=True), staff)
    assert attempt.score == 100 and attempt.passed
    assert task.status is TrainingStatus.DONE and task.certificate is not None
    cert = task.certificate
    assert cert.expires_on.year == cert.issued_on.year + 1 or cert.issued_on.month == 2
    assert [v.label for v in cert.versions] == ["CAR-DLV v1"]
    assert certificates.normalise_code(cert.code.lower().replace("-", " ")) == cert.code


def test_the_score_is_computed_on_the_server_from_positions_on_the_paper(ctx):
    build_world(with_case=False)
    course = make_course(questions=4, draw=4, pass_mark=75)
    assign_carriers(course)
    staff = _user("staff_a")
    attempt = quiz.start_attempt(course, assignments.task_of(course, staff), staff)
    answers = answer_all(attempt, right=True)
    answers["0"] = [p for p in range(3) if p not in answers["0"]][:1]  # one wrong
    answers.pop("1")                                                  # one unanswered
    quiz.submit_attempt(attempt, answers, staff)
    assert (attempt.correct, attempt.score, attempt.passed) == (2, 50, False)
    with pytest.raises(ServiceError, match="already submitted"):
        quiz.submit_attempt(attempt, answers, staff)


def test_a_multiple_choice_question_needs_all_and_only_the_right_options(ctx):
    build_world(with_case=False)
    course = make_course(questions=0, draw=1, publish=False)
    with acting_as(_user("cs_admin")):
        courses.save_question(course, kind="multiple", text_zh="哪些需要上报?", options=[
            ("甲", "", True), ("乙", "", True), ("丙", "", False)])
        courses.publish_course(course, _user("cs_admin"))
    assign_carriers(course)
    staff = _user("staff_a")
    task = assignments.task_of(course, staff)
    attempt = quiz.start_attempt(course, task, staff)
    right = quiz.paper_items(attempt, reveal=True)[0].right
    quiz.submit_attempt(attempt, {"0": right[:1]}, staff)
    assert attempt.score == 0
    second = quiz.start_attempt(course, task, staff)
    quiz.submit_attempt(second, {"0": quiz.paper_items(second, reveal=True)[0].right}, staff)
    assert second.score == 100 and task.status is TrainingStatus.DONE


def test_answers_that_are_not_positions_on_the_paper_are_refused(ctx):
    build_world(with_case=False)
    course = make_course()
    assign_carriers(course)
    staff = _user("staff_a")
    attempt = quiz.start_attempt(course, assignments.task_of(course, staff), staff)
    for bad in ("7", "-1", "x"):
        with pytest.raises(ServiceError, match="Question 1"):
            quiz.parse_answers(attempt, {"q0": [bad]})


def test_attempts_are_limited_cooled_down_and_cs_can_grant_one_more(ctx):
    build_world(with_case=False)
    course = make_course(max_attempts=2, cooldown_minutes=30)
    assign_carriers(course)
    staff = _user("staff_a")
    task = assignments.task_of(course, staff)
    start = utcnow()
    with frozen_time(start):
        first = quiz.start_attempt(course, task, staff)
        quiz.submit_attempt(first, answer_all(first, right=False), staff)
        with pytest.raises(ServiceError, match="cool-down"):
            quiz.start_attempt(course, task, staff)
    with frozen_time(start + timedelta(minutes=31)):
        second = quiz.start_attempt(course, task, staff)
        quiz.submit_attempt(second, answer_all(second, right=False), staff)
    with frozen_time(start + timedelta(minutes=70)):
        with pytest.raises(ServiceError, match="all 2 attempts"):
            quiz.start_attempt(course, task, staff)
        quiz.grant_attempt(task, _user("cs_admin"))
        third = quiz.start_attempt(course, task, staff)
        quiz.submit_attempt(third, answer_all(third, right=True), staff)
    assert task.status is TrainingStatus.DONE


# --- expiry, retraining, revocation -------------------------------------------------------


def _pass(course, user):
    task = assignments.task_of(course, user)
    attempt = quiz.start_attempt(course, task, user)
    quiz.submit_attempt(attempt, answer_all(attempt, right=True), user)
    return task


def test_a_certificate_about_to_expire_reopens_the_task_due_on_the_expiry_date(app, ctx):
    build_world(with_case=False)
    course = make_course(validity_months=12)
    assign_carriers(course)
    staff = _user("staff_a")
    task = _pass(course, staff)
    cert = task.certificate
    renew = app.config["CERTIFICATE_RENEW_DAYS_BEFORE"]
    assert assignments.reopen_expiring(cert.expires_on - timedelta(days=renew + 1)) == 0
    assert assignments.reopen_expiring(cert.expires_on - timedelta(days=renew)) == 1
    assert (task.status, task.reopened_reason, task.due_on) == \
        (TrainingStatus.OPEN, "expiring", cert.expires_on)
    assert assignments.reopen_expiring(cert.expires_on) == 0  # idempotent
    assert cert.state(cert.expires_on) == "valid" and \
        cert.state(cert.expires_on + timedelta(days=1)) == "expired"


def test_a_material_version_of_the_standard_sends_holders_back_to_training(ctx):
    from portal.standards.services import new_draft

    build_world(with_case=False)
    course = make_course()
    assign_carriers(course)
    task = _pass(course, _user("staff_a"))
    old_cert = task.certificate
    std = db.session.scalar(select(Standard).where(Standard.code == "CAR-DLV"))
    admin, sup = _user("cs_admin"), _user("cs_supervisor")
    with acting_as(admin):
        draft = new_draft(std, local_today(), change_note="typo", author=admin)
        draft.material = False
    publish_reviewed(draft, admin, sup)
    assert task.status is TrainingStatus.DONE  # a typo does not retrain
    assert course.links[0].standard_version_id == draft.id
    assert certificates.qualified_for(_user("staff_a"), draft)
    with acting_as(admin):
        material = new_draft(std, local_today(), change_note="新罚则", author=admin)
    publish_reviewed(material, admin, sup)
    assert (task.status, task.reopened_reason) == (TrainingStatus.OPEN, "retraining")
    assert old_cert.state(local_today()) == "valid"  # still true of what it certifies...
    assert not certificates.qualified_for(_user("staff_a"), material)  # ...but not the new text
    new_task = _pass(course, _user("staff_a"))
    assert [v.label for v in new_task.certificate.versions] == ["CAR-DLV v3"]


def test_revoking_a_certificate_needs_a_reason_and_reopens_the_task(ctx):
    build_world(with_case=False)
    course = make_course()
    assign_carriers(course)
    task = _pass(course, _user("staff_a"))
    with pytest.raises(ServiceError) as err:
        certificates.revoke(task.certificate, " ", _user("cs_admin"))
    assert err.value.field == "reason"
    cert = task.certificate
    certificates.revoke(cert, "代考", _user("cs_admin"))
    assert cert.state(local_today()) == "revoked" and task.status is TrainingStatus.OPEN


# --- acknowledgement gated on training ----------------------------------------------------


def test_a_standard_can_require_the_course_before_acknowledgement(ctx):
    from portal.standards.services import acknowledge

    build_world(with_case=False)
    course = make_course()
    assign_carriers(course)
    std = db.session.scalar(select(Standard).where(Standard.code == "CAR-DLV"))
    std.ack_requires_training = True
    version = std.current_version
    staff = _user("staff_a")
    with pytest.raises(ServiceError, match="TRN-DLV"):
        acknowledge(version, staff, ip="", user_agent="")
    _pass(course, staff)
    assert acknowledge(version, staff, ip="", user_agent="") is not None


# --- offline sessions ---------------------------------------------------------------------


def _offline(capacity=2):
    course = make_course(code="TRN-OFF", mode="offline", questions=0, draw=0)
    assign_carriers(course)
    with acting_as(_user("cs_admin")):
        session = sessions.schedule_session(
            course, starts_at=utcnow() + timedelta(days=1),
            ends_at=utcnow() + timedelta(days=1, hours=2), place="北京培训中心 3F",
            capacity=capacity)
    return course, session


def test_enrolment_stops_at_capacity_and_one_seat_per_course(ctx):
    build_world(with_case=False)
    course, session = _offline(capacity=2)
    sessions.enrol(session, _user("staff_a"))
    sessions.enrol(session, _user("staff_b"))
    with pytest.raises(ServiceError, match="full"):
        sessions.enrol(session, _user("carrier_manager"))
    with acting_as(_user("cs_admin")):
        other = sessions.schedule_session(
            course, starts_at=utcnow() + timedelta(days=2),
            ends_at=utcnow() + timedelta(days=2, hours=2), place="上海", capacity=5)
    with pytest.raises(ServiceError, match="another session"):
        sessions.enrol(other, _user("staff_a"))
    with pytest.raises(ServiceError, match="no training task"):
        sessions.enrol(other, _user("merchant_staff"))


def test_attendance_completes_an_offline_course(ctx):
    build_world(with_case=False)
    course, session = _offline()
    sessions.enrol(session, _user("staff_a"))
    with pytest.raises(ServiceError, match="started"):
        sessions.record_attendance(session, _user("staff_a"), True, by=_user("cs_officer"))
    with frozen_time(utcnow() + timedelta(days=1, hours=1)):
        sessions.record_attendance(session, _user("staff_a"), True, by=_user("cs_officer"))
        sessions.record_attendance(session, _user("staff_b"), False, by=_user("cs_officer"))
    assert assignments.task_of(course, _user("staff_a")).status is TrainingStatus.DONE
    assert assignments.task_of(course, _user("staff_b")).status is TrainingStatus.OPEN


def test_an_attendance_csv_keeps_good_rows_and_reports_bad_ones_by_line(ctx):
    build_world(with_case=False)
    _course, session = _offline()
    data = ("username,attended\n"
            "staff.a,出席\n"
            "nobody,yes\n"
            "staff.b,maybe\n"
            "merchant.staff,yes\n"
            "carrier.manager,0\n").encode("utf-8-sig")
    with frozen_time(utcnow() + timedelta(days=1, hours=1)):
        report = sessions.import_attendance(session, data, by=_user("cs_officer"))
    assert report.recorded == 2
    assert [line for line, _m in report.errors] == [3, 4, 5]
    assert "nobody" in report.errors[0][1] and "maybe" in report.errors[1][1]
    marks = {e.user.username: e.attended for e in db.session.scalars(select(Enrolment))}
    assert marks == {"staff.a": True, "carrier.manager": False}
    assert db.session.scalar(select(func.count(Certificate.id))) == 1


def test_an_attendance_file_without_the_columns_is_refused_whole(ctx):
    build_world(with_case=False)
    _course, session = _offline()
    for data in (b"name,present\nstaff.a,yes\n", b"username,attended\n", b"\xff\xfe\x00bad"):
        with pytest.raises(ServiceError):
            sessions.import_attendance(session, data, by=_user("cs_officer"))


# --- authoring ----------------------------------------------------------------------------


def test_a_course_is_not_published_with_fewer_questions_than_a_paper_draws(ctx):
    build_world(with_case=False)
    admin = _user("cs_admin")
    with acting_as(admin):
        course = courses.create_course(code="TRN-X", title_zh="测试", kind="mandatory",
                                       mode="online", questions_per_attempt=5, author=admin)
        courses.save_lesson(course, title_zh="课", body="正文")
        courses.save_question(course, kind="true_false", text_zh="签收前可以反馈签收",
                              options=[("", "", False)])
        with pytest.raises(ServiceError, match="only 1"):
            courses.publish_course(course, admin)
    assert course.status is CourseStatus.DRAFT
    tf = course.questions[0]
    assert [(o.text_zh, o.correct) for o in tf.options] == [("正确", False), ("错误", True)]


def test_bad_course_settings_name_the_field(ctx):
    build_world(with_case=False)
    admin = _user("cs_admin")
    for kwargs, field in (({"code": "trn x"}, "code"), ({"pass_mark": 0}, "pass_mark"),
                          ({"validity_months": 0}, "validity_months"),
                          ({"standard_codes": "NOPE-1"}, "standard_codes"),
                          ({"title_zh": " "}, "title_zh")):
        args = {"code": "TRN-Y", "title_zh": "课", "kind": "open", "mode": "online", **kwargs}
        with pytest.raises(ServiceError) as err:
            courses.create_course(author=admin, **args)
        assert err.value.field == field, kwargs


def test_a_question_already_drawn_is_withdrawn_not_rewritten(ctx):
    build_world(with_case=False)
    course = make_course(questions=4, draw=3)
    assign_carriers(course)
    staff = _user("staff_a")
    attempt = quiz.start_attempt(course, assignments.task_of(course, staff), staff)
    drawn = db.session.get(type(course.questions[0]), attempt.paper[0]["q"])
    with acting_as(_user("cs_admin")):
        new = courses.save_question(course, kind="single", text_zh="改写后的问题",
                                    options=[("甲", "", True), ("乙", "", False)],
                                    question=drawn)
    assert new.id != drawn.id and not drawn.active and drawn.text_zh.startswith("问题")
    quiz.submit_attempt(attempt, answer_all(attempt, right=True), staff)
    assert attempt.score == 100  # scored against the options it showed


def test_every_training_action_is_in_the_audit_chain(ctx):
    from portal.core.audit import AuditEvent, verify_chain

    build_world(with_case=False)
    course = make_course()
    assign_carriers(course)
    _pass(course, _user("staff_a"))
    actions = set(db.session.scalars(select(AuditEvent.action)))
    assert {"course.created", "lesson.saved", "question.saved", "course.published",
            "course_assignment.created", "quiz_attempt.started", "quiz_attempt.submitted",
            "certificate.issued"} <= actions
    assert verify_chain().intact


def test_a_certificate_pdf_has_the_holder_in_chinese_and_the_code(app, ctx):
    build_world(with_case=False)
    course = make_course()
    assign_carriers(course)
    cert = _pass(course, _user("staff_a")).certificate
    pdf = certificates.render_certificate(cert)
    assert pdf.startswith(b"%PDF")
    assert certificates.masked_name("张三丰") == "张*丰" and certificates.masked_name("Li Na") \
        == "L* N*"
