"""Every route, walked as every role, another party's staff, and anonymous.

The expected status of each (route, user) pair is written out below. A route added to the app
without an entry here fails ``test_every_route_is_in_the_matrix``.
"""
from __future__ import annotations

import io
import re
from urllib.parse import urlencode

import pytest

from tests.factories import PASSWORD, build_training, build_world, username

USERS = ["cs_admin", "cs_supervisor", "cs_officer", "cs_director", "auditor", "hr_officer",
         "staff_a", "carrier_manager", "staff_b", "merchant_staff", "dept_manager", "dept_b_manager",
         "anonymous"]
CS = {"cs_admin", "cs_supervisor", "cs_officer", "cs_director"}
READ = CS | {"auditor"}
PARTY = {"staff_a", "carrier_manager", "staff_b", "merchant_staff", "dept_manager",
         "dept_b_manager"}
MANAGERS = {"carrier_manager", "dept_manager", "dept_b_manager"}
LOGGED_IN = set(USERS) - {"anonymous"}
TAKE = LOGGED_IN - {"auditor"}
CARRIERS = {"staff_a", "staff_b", "carrier_manager"}
TRAINERS = {"cs_admin", "cs_supervisor"}  # Perm.MANAGE_TRAINING


def expect(ok: set, not_found: set = frozenset(), ok_code: int = 200) -> dict:
    """ok -> ok_code, not_found -> 404 (object of another party), anonymous -> login, else 403."""
    out = {}
    for u in USERS:
        if u in ok:
            out[u] = ok_code
        elif u in not_found:
            out[u] = 404
        elif u == "anonymous":
            out[u] = 302
        else:
            out[u] = 403
    return out


# (method, endpoint) -> (url template, expected status per user)
MATRIX = {
    ("GET", "main.home"): ("/", expect(LOGGED_IN)),
    ("POST", "main.set_language"): ("/lang", {u: 302 for u in USERS}),
    ("GET", "accounts.login"): ("/login", {**{u: 302 for u in LOGGED_IN}, "anonymous": 200}),
    ("POST", "accounts.login"): ("/login", {**{u: 302 for u in LOGGED_IN}, "anonymous": 200}),
    ("POST", "accounts.logout"): ("/logout", expect(LOGGED_IN, ok_code=302)),
    ("GET", "accounts.users"): ("/users", expect({"cs_admin"})),
    ("GET", "accounts.new_user"): ("/users/new", expect({"cs_admin"})),
    ("POST", "accounts.new_user"): ("/users/new", expect({"cs_admin"})),
    ("GET", "parties.index"): ("/parties/", expect(READ)),
    ("GET", "parties.new"): ("/parties/new", expect({"cs_admin"})),
    ("POST", "parties.new"): ("/parties/new", expect({"cs_admin"})),
    ("GET", "parties.detail"): ("/parties/{carrier_a}", expect(READ)),
    ("GET", "parties.standing"): ("/parties/standing", {**expect(PARTY),
                                                         **{u: 302 for u in READ}}),
    ("POST", "parties.lift_sanction"): ("/parties/{carrier_a}/sanctions/0/lift", expect(
        set(), not_found={"cs_admin", "cs_supervisor", "cs_director"})),
    ("GET", "standards.index"): ("/standards/", expect(READ | PARTY)),
    ("GET", "standards.new"): ("/standards/new", expect({"cs_admin", "cs_supervisor"})),
    ("POST", "standards.new"): ("/standards/new", expect({"cs_admin", "cs_supervisor"})),
    ("GET", "standards.detail"): ("/standards/{standard}", expect(
        READ | {"staff_a", "staff_b", "carrier_manager"}, not_found={"merchant_staff", "dept_manager",
                                                  "dept_b_manager"})),
    ("GET", "standards.diff"): ("/standards/{standard}/diff", expect(
        READ | {"staff_a", "staff_b", "carrier_manager"}, not_found={"merchant_staff", "dept_manager",
                                                  "dept_b_manager"})),
    ("POST", "standards.new_draft"): ("/standards/{standard}/drafts", expect(
        {"cs_admin", "cs_supervisor"}, ok_code=400)),
    ("GET", "standards.version"): ("/standards/versions/{version}", expect(
        READ | {"staff_a", "staff_b", "carrier_manager"}, not_found={"merchant_staff", "dept_manager",
                                                  "dept_b_manager"})),
    ("POST", "standards.add_clause"): ("/standards/versions/{version}/clauses", expect(
        {"cs_admin", "cs_supervisor"}, ok_code=400)),
    ("POST", "standards.publish"): ("/standards/versions/{version}/publish", expect(
        {"cs_admin", "cs_supervisor"}, ok_code=400)),
    ("POST", "standards.retire"): ("/standards/versions/{version}/retire", expect(
        {"cs_admin", "cs_supervisor"}, ok_code=400)),
    ("GET", "standards.edit"): ("/standards/{standard}/edit", expect(
        {"cs_admin", "cs_supervisor"})),
    ("POST", "standards.edit"): ("/standards/{standard}/edit", expect(
        {"cs_admin", "cs_supervisor"}, ok_code=400)),
    ("GET", "standards.to_read"): ("/standards/to-read", expect(PARTY)),
    ("GET", "standards.team"): ("/standards/team", expect(MANAGERS)),
    ("GET", "standards.overview"): ("/standards/coverage", expect(READ)),
    ("GET", "standards.impact"): ("/standards/versions/{version}/impact", expect(READ)),
    ("POST", "standards.submit_for_review"): ("/standards/versions/{version}/submit", expect(
        {"cs_admin", "cs_supervisor"}, ok_code=302)),
    ("POST", "standards.approve"): ("/standards/versions/{version}/approve", expect(
        {"cs_admin", "cs_supervisor"}, ok_code=302)),
    ("POST", "standards.reject"): ("/standards/versions/{version}/reject", expect(
        {"cs_admin", "cs_supervisor"}, ok_code=400)),
    ("POST", "standards.acknowledge"): ("/standards/versions/{version}/acknowledge", expect(
        {"staff_a", "staff_b", "carrier_manager"}, not_found={"merchant_staff", "dept_manager", "dept_b_manager"},
        ok_code=302)),
    ("GET", "standards.coverage"): ("/standards/versions/{version}/coverage", expect(READ)),
    ("GET", "cases.index"): ("/cases", expect(READ | PARTY)),
    ("GET", "cases.new"): ("/cases/new", expect(CS)),
    ("POST", "cases.new"): ("/cases/new", expect(CS)),
    ("GET", "cases.detail"): ("/cases/{case}", expect(
        READ | {"staff_a", "carrier_manager", "dept_manager"},
        not_found={"staff_b", "merchant_staff", "dept_b_manager"})),
    ("POST", "cases.add_violation"): ("/cases/{case}/violations", expect(CS, ok_code=400)),
    ("POST", "cases.rule"): ("/cases/{case}/ruling", expect(CS, ok_code=400)),
    ("POST", "cases.approve"): ("/cases/{case}/rulings/{ruling}/approve",
                                expect(CS, ok_code=302)),
    ("POST", "cases.decline"): ("/cases/{case}/rulings/{ruling}/decline",
                                expect(CS, ok_code=400)),
    ("POST", "cases.file_appeal"): ("/cases/{case}/appeals", expect(
        {"staff_a", "carrier_manager", "dept_manager"}, ok_code=400,
        not_found={"staff_b", "merchant_staff", "dept_b_manager"})),
    ("POST", "cases.decide_appeal"): ("/cases/{case}/appeals/0/decide", expect(
        set(), not_found=CS)),
    ("GET", "cases.penalties"): ("/penalties", expect(READ | PARTY)),
    ("GET", "hr.inbox"): ("/hr/notices", expect(
        READ | {"hr_officer", "dept_manager", "dept_b_manager"})),
    ("GET", "hr.detail"): ("/hr/notices/{notice}", expect(
        READ | {"hr_officer", "dept_manager"}, not_found={"dept_b_manager"})),
    ("POST", "hr.acknowledge"): ("/hr/notices/{notice}/acknowledge", expect(
        {"hr_officer"}, ok_code=302)),
    ("POST", "hr.record_action"): ("/hr/notices/{notice}/action", expect(
        {"hr_officer"}, ok_code=400)),
    # closing a notice whose action is not recorded: refused, back to the notice (302); the PDF
    # for whoever may read the notice
    ("POST", "hr.close"): ("/hr/notices/{notice}/close", expect({"hr_officer"}, ok_code=302)),
    ("GET", "hr.notice_pdf"): ("/hr/notices/{notice}.pdf", expect(
        READ | {"hr_officer", "dept_manager"}, not_found={"dept_b_manager"})),
    ("GET", "reports.index"): ("/reports/", expect(READ | PARTY)),
    ("GET", "reports.audit_pdf"): ("/reports/audit.pdf?start=2026-01-01&end=2026-12-31",
                                   expect(READ)),
    # report jobs: the empty forms answer 400 (nothing is made); a dossier of the world's case
    # for whoever may see the case (another party's: 404), made within the request (see the
    # world); job 0 does not exist (the permission check comes first)
    ("POST", "reports.new_audit"): ("/reports/audit", expect(READ, ok_code=400)),
    ("POST", "reports.new_scorecard"): ("/reports/scorecard", expect(READ | PARTY,
                                                                     ok_code=400)),
    ("POST", "reports.new_dossier"): ("/reports/cases/{case}/dossier", expect(
        READ | {"staff_a", "carrier_manager", "dept_manager"}, ok_code=303,
        not_found={"staff_b", "merchant_staff", "dept_b_manager"})),
    ("GET", "reports.job"): ("/reports/jobs/0", expect(set(), not_found=READ | PARTY)),
    ("GET", "reports.job_progress"): ("/reports/jobs/0/progress", expect(
        set(), not_found=READ | PARTY)),
    ("GET", "reports.job_pdf"): ("/reports/jobs/0/report.pdf", expect(
        set(), not_found=READ | PARTY)),
    ("GET", "reports.job_snapshot"): ("/reports/jobs/0/snapshot.json", expect(
        set(), not_found=READ | PARTY)),
    ("POST", "reports.reprint"): ("/reports/jobs/0/reprint", expect(
        set(), not_found=READ | PARTY)),
    ("GET", "reports.dashboard"): ("/reports/dashboard", expect(READ)),
    # a party's own scorecard; CS and auditors without ?party= are sent to the dashboard
    ("GET", "reports.scorecard"): ("/reports/scorecard", {**expect(PARTY),
                                                          **{u: 302 for u in READ}}),
    ("GET", "audit.index"): ("/audit/", expect({"cs_admin", "auditor"})),
    ("GET", "audit.verify"): ("/audit/verify", expect({"cs_admin", "auditor"})),
    # training, CS's side (ids from _training_world; one-click actions on the draft course)
    ("GET", "training.courses"): ("/training/courses", expect(READ)),
    ("GET", "training.new_course"): ("/training/courses/new", expect(TRAINERS)),
    ("POST", "training.new_course"): ("/training/courses/new", expect(TRAINERS, ok_code=400)),
    ("GET", "training.course"): ("/training/courses/{course}", expect(READ)),
    ("GET", "training.edit_course"): ("/training/courses/{course}/edit", expect(TRAINERS)),
    ("POST", "training.edit_course"): ("/training/courses/{course}/edit", expect(
        TRAINERS, ok_code=400)),
    ("GET", "training.new_lesson"): ("/training/courses/{course}/lessons/new", expect(TRAINERS)),
    ("POST", "training.new_lesson"): ("/training/courses/{course}/lessons/new", expect(
        TRAINERS, ok_code=400)),
    ("GET", "training.edit_lesson"): ("/training/lessons/{lesson}/edit", expect(TRAINERS)),
    ("POST", "training.edit_lesson"): ("/training/lessons/{lesson}/edit", expect(
        TRAINERS, ok_code=400)),
    ("POST", "training.move_lesson"): ("/training/lessons/{lesson}/move/down", expect(
        TRAINERS, ok_code=302)),
    ("GET", "files.serve"): ("/files/{upload}", expect(LOGGED_IN)),
    ("GET", "training.questions"): ("/training/courses/{course}/questions", expect(TRAINERS)),
    ("GET", "training.new_question"): ("/training/courses/{course}/questions/new", expect(
        TRAINERS)),
    ("POST", "training.new_question"): ("/training/courses/{course}/questions/new", expect(
        TRAINERS, ok_code=400)),
    ("GET", "training.edit_question"): ("/training/questions/{question}/edit", expect(
        TRAINERS)),
    ("POST", "training.edit_question"): ("/training/questions/{question}/edit", expect(
        TRAINERS, ok_code=400)),
    ("GET", "training.assign"): ("/training/courses/{course}/assign", expect(TRAINERS)),
    ("POST", "training.assign"): ("/training/courses/{course}/assign", expect(
        TRAINERS, ok_code=400)),
    ("GET", "training.new_session"): ("/training/courses/{offline_course}/sessions/new", expect(
        TRAINERS)),
    ("POST", "training.new_session"): ("/training/courses/{offline_course}/sessions/new",
                                       expect(TRAINERS, ok_code=400)),
    ("GET", "training.session"): ("/training/sessions/{session}", expect(CS)),
    ("GET", "training.attendance_template"): ("/training/sessions/{session}/attendance.csv",
                                              expect(CS)),
    ("POST", "training.enrol"): ("/training/sessions/{session}/enrol", expect(CS, ok_code=400)),
    ("POST", "training.import_attendance"): ("/training/sessions/{session}/attendance", expect(
        CS, ok_code=400)),
    ("POST", "training.mark_attendance"): ("/training/enrolments/{enrolment}/attendance/yes",
                                           expect(CS, ok_code=302)),
    ("POST", "training.cancel_session"): ("/training/sessions/{session}/cancel", expect(
        TRAINERS, ok_code=400)),
    ("GET", "training.revoke_certificate"): ("/training/certificates/{certificate}/revoke",
                                             expect(TRAINERS)),
    ("POST", "training.revoke_certificate"): ("/training/certificates/{certificate}/revoke",
                                              expect(TRAINERS, ok_code=400)),
    ("POST", "training.grant_attempt"): ("/training/tasks/{task}/grant-attempt", expect(
        TRAINERS, ok_code=302)),
    ("POST", "training.withdraw_question"): ("/training/questions/{draft_question}/withdraw",
                                             expect(TRAINERS, ok_code=302)),
    ("POST", "training.publish_course"): ("/training/courses/{draft_course}/publish", expect(
        TRAINERS, ok_code=302)),
    ("POST", "training.archive_course"): ("/training/courses/{draft_course}/archive", expect(
        TRAINERS, ok_code=302)),
    ("POST", "training.delete_lesson"): ("/training/lessons/{draft_lesson}/delete", expect(
        TRAINERS, ok_code=302)),
    ("POST", "training.withdraw_assignment"): ("/training/assignments/{assignment}/withdraw",
                                               expect(TRAINERS, ok_code=302)),
    # training, the learner's side: TAKE = everyone who may take courses (not the auditor);
    # a course or attempt not theirs is 404
    ("GET", "training.mine"): ("/training/mine", expect(TAKE)),
    ("GET", "training.learn"): ("/training/courses/{course}/learn", expect(
        CS | CARRIERS, not_found=TAKE - CS - CARRIERS)),
    ("POST", "training.take"): ("/training/courses/{course}/take", expect(
        CS | CARRIERS, not_found=TAKE - CS - CARRIERS, ok_code=302)),
    ("POST", "training.start_quiz"): ("/training/courses/{course}/quiz", expect(
        CS | CARRIERS, not_found=TAKE - CS - CARRIERS, ok_code=302)),
    ("GET", "training.attempt"): ("/training/attempts/{attempt}", expect(
        {"staff_b"}, not_found=TAKE - {"staff_b"}, ok_code=302)),
    ("POST", "training.submit_attempt"): ("/training/attempts/{attempt}", expect(
        {"staff_b"}, not_found=TAKE - {"staff_b"}, ok_code=302)),
    ("GET", "training.result"): ("/training/attempts/{attempt}/result", expect(
        {"staff_b"}, not_found=TAKE - {"staff_b"})),
    ("POST", "training.take_seat"): ("/training/sessions/{session}/take-seat", expect(
        CS | CARRIERS, not_found=TAKE - CS - CARRIERS, ok_code=302)),
    ("POST", "training.give_up_seat"): ("/training/enrolments/{enrolment}/give-up", expect(
        {"staff_a"}, not_found=TAKE - {"staff_a"}, ok_code=302)),
    ("GET", "training.certificate_pdf"): ("/training/certificates/{certificate}.pdf", expect(
        READ | {"staff_b"}, not_found=LOGGED_IN - READ - {"staff_b"})),
    ("GET", "training.reports_overview"): ("/training/reports", expect(READ)),
    ("GET", "training.course_report"): ("/training/reports/courses/{course}", expect(READ)),
    ("GET", "training.team"): ("/training/team", expect(MANAGERS)),
    ("GET", "verify.verify_form"): ("/verify", {u: 200 for u in USERS}),
    ("GET", "verify.verify"): ("/verify/{cert_code}", {u: 200 for u in USERS}),
    # --- case evidence ---
    # the upload sends no file: back to the case page with the reason (303); the file to
    # download is one CS added, which every party in the case may open
    ("POST", "cases.upload_evidence"): ("/cases/{case}/evidence", expect(
        CS | {"staff_a", "carrier_manager", "dept_manager"},
        not_found={"staff_b", "merchant_staff", "dept_b_manager"}, ok_code=303)),
    ("GET", "cases.download_evidence"): ("/cases/{case}/evidence/{evidence}", expect(
        READ | {"staff_a", "carrier_manager", "dept_manager"},
        not_found={"staff_b", "merchant_staff", "dept_b_manager"})),
    # --- intake: upload and import batches ---
    ("GET", "intake.index"): ("/intake/", expect(READ)),
    ("POST", "intake.index"): ("/intake/", expect(CS)),   # no file: the form again
    ("GET", "intake.batch"): ("/intake/batches/{batch}", expect(READ)),
    ("GET", "intake.progress"): ("/intake/batches/{batch}/progress", expect(READ)),
    ("GET", "intake.rejections_csv"): ("/intake/batches/{batch}/rejections.csv", expect(READ)),
    # --- intake: review and follow-up queues ---
    ("GET", "intake.review_queue"): ("/intake/review", expect(READ)),
    ("POST", "intake.review_confirm"): ("/intake/review/confirm", expect(CS, ok_code=400)),
    ("POST", "intake.review_merge"): ("/intake/review/merge", expect(CS, ok_code=400)),
    ("POST", "intake.review_dismiss"): ("/intake/review/dismiss", expect(CS, ok_code=400)),
    ("GET", "intake.follow_up"): ("/intake/follow-up", expect(READ)),
    ("GET", "intake.follow_up_carrier"): ("/intake/follow-up/{carrier_a}", expect(READ)),
    ("POST", "intake.chase"): ("/intake/follow-up/{carrier_a}/chase", expect(CS, ok_code=400)),
    # --- api tokens (HTML) and the JSON API ---
    # the empty issue form answers 400; revoking token 0 (none) shows the check comes first;
    # the JSON API ignores the session: no token, 401 for everyone
    ("GET", "tokens.index"): ("/admin/api-tokens/", expect({"cs_admin"})),
    ("POST", "tokens.index"): ("/admin/api-tokens/", expect({"cs_admin"}, ok_code=400)),
    ("POST", "tokens.revoke"): ("/admin/api-tokens/0/revoke", expect({"cs_admin"},
                                                                     ok_code=404)),
    ("POST", "api.import_tickets"): ("/api/v1/tickets", {u: 401 for u in USERS}),
    ("GET", "api.violations"): ("/api/v1/violations", {u: 401 for u in USERS}),
    ("GET", "api.parties"): ("/api/v1/parties", {u: 401 for u in USERS}),
    ("GET", "api.openapi_document"): ("/api/v1/openapi.json", {u: 200 for u in USERS}),
    # --- monthly statements: {statement} is carrier A's (C001); another party's is 404; the
    # issue form sent empty answers 400; countersigning: managers only, of C001 only (the
    # empty form answers 400)
    ("GET", "cases.statements"): ("/statements", expect(READ | PARTY)),
    ("POST", "cases.issue_statements"): ("/statements/issue", expect(CS, ok_code=400)),
    ("GET", "cases.statement"): ("/statements/{statement}", expect(
        READ | {"staff_a", "carrier_manager"}, not_found=PARTY - {"staff_a", "carrier_manager"})),
    ("POST", "cases.countersign_statement"): ("/statements/{statement}/countersign", expect(
        {"carrier_manager"}, not_found={"dept_manager", "dept_b_manager"}, ok_code=400)),
    ("GET", "cases.statement_csv"): ("/statements/{statement}.csv", expect(
        READ | {"staff_a", "carrier_manager"}, not_found=PARTY - {"staff_a", "carrier_manager"})),
    ("GET", "cases.statement_xlsx"): ("/statements/{statement}.xlsx", expect(
        READ | {"staff_a", "carrier_manager"}, not_found=PARTY - {"staff_a", "carrier_manager"})),
    ("GET", "cases.statement_pdf"): ("/statements/{statement}.pdf", expect(
        READ | {"staff_a", "carrier_manager"}, not_found=PARTY - {"staff_a", "carrier_manager"})),
    ("GET", "cases.statement_preview"): ("/statements/preview?party=C001&period=2026-11", expect(
        READ | {"staff_a", "carrier_manager"}, not_found=PARTY - {"staff_a", "carrier_manager"})),
    # --- notifications: one's own settings and history; the outbox and webhook endpoints for
    # CS admins (message and endpoint 0 do not exist: the permission check comes first; the
    # empty settings form keeps "the language of my pages"; the empty endpoint form is 400)
    ("GET", "accounts.settings"): ("/account/settings", expect(LOGGED_IN)),
    # the second step of signing in: only between the password and the code, else to /login
    # (or home when signed in already)
    ("GET", "accounts.two_factor"): ("/login/2fa", {u: 302 for u in USERS}),
    ("POST", "accounts.two_factor"): ("/login/2fa", {u: 302 for u in USERS}),
    ("GET", "accounts.two_factor_setup"): ("/account/2fa/setup", expect(LOGGED_IN)),
    ("POST", "accounts.two_factor_setup"): ("/account/2fa/setup",
                                            expect(LOGGED_IN, ok_code=400)),
    ("POST", "accounts.two_factor_disable"): ("/account/2fa/disable",
                                              expect(LOGGED_IN, ok_code=302)),
    ("POST", "accounts.recovery_codes"): ("/account/2fa/recovery-codes",
                                          expect(LOGGED_IN, ok_code=302)),
    ("GET", "accounts.change_password"): ("/account/password", expect(LOGGED_IN)),
    ("POST", "accounts.change_password"): ("/account/password",
                                           expect(LOGGED_IN, ok_code=400)),
    ("POST", "accounts.end_all_sessions"): ("/account/sessions/end",
                                            expect(LOGGED_IN, ok_code=302)),
    ("POST", "accounts.disable_user"): ("/users/{user_dept_b_manager}/disable",
                                        expect({"cs_admin"}, ok_code=302)),
    ("POST", "accounts.enable_user"): ("/users/{user_dept_b_manager}/enable",
                                       expect({"cs_admin"}, ok_code=302)),
    ("POST", "accounts.reset_two_factor"): ("/users/{user_staff_b}/2fa/reset",
                                            expect({"cs_admin"}, ok_code=302)),
    ("POST", "accounts.settings"): ("/account/settings", expect(LOGGED_IN, ok_code=302)),
    ("GET", "notifications.mine"): ("/account/notifications", expect(LOGGED_IN)),
    ("GET", "notifications.overview"): ("/admin/notifications/", expect({"cs_admin"})),
    ("GET", "notifications.failures"): ("/admin/notifications/failures", expect({"cs_admin"})),
    ("GET", "notifications.message"): ("/admin/notifications/messages/0", expect(
        {"cs_admin"}, ok_code=404)),
    ("POST", "notifications.retry"): ("/admin/notifications/messages/0/retry", expect(
        {"cs_admin"}, ok_code=404)),
    ("GET", "notifications.endpoints"): ("/admin/webhooks/", expect({"cs_admin"})),
    ("POST", "notifications.endpoints"): ("/admin/webhooks/", expect({"cs_admin"},
                                                                      ok_code=400)),
    ("GET", "notifications.edit_endpoint"): ("/admin/webhooks/0/edit", expect(
        {"cs_admin"}, ok_code=404)),
    ("POST", "notifications.edit_endpoint"): ("/admin/webhooks/0/edit", expect(
        {"cs_admin"}, ok_code=404)),
    ("POST", "notifications.disable_endpoint"): ("/admin/webhooks/0/disable", expect(
        {"cs_admin"}, ok_code=404)),
    ("POST", "notifications.enable_endpoint"): ("/admin/webhooks/0/enable", expect(
        {"cs_admin"}, ok_code=404)),
    ("POST", "notifications.rotate_secret"): ("/admin/webhooks/0/rotate", expect(
        {"cs_admin"}, ok_code=404)),
}


def test_every_route_is_in_the_matrix(app):
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((method, rule.endpoint))
    assert routes == set(MATRIX), "update MATRIX for new or removed routes"


@pytest.fixture
def world(app, tmp_path):
    app.config.update(REPORTS_DIR=str(tmp_path / "reports"), REPORTS_RUN_INLINE=True)
    with app.test_request_context():
        world = build_world()
        world.ids.update(build_training())
        world.ids.update(_course_writing(world.ids))
        world.ids["batch"] = _import_batch()
        world.ids["evidence"] = _evidence(world.ids["case"])
        world.ids["statement"] = _statement(world.ids["carrier_a"])
    yield world
    app.config.pop("REPORTS_DIR"), app.config.pop("REPORTS_RUN_INLINE")


def _evidence(case_id: int) -> int:
    """A PDF CS added to the case."""
    from portal.cases.evidence import add_evidence
    from portal.cases.models import Case
    from portal.core.audit import acting_as
    from portal.extensions import db
    from tests.test_training import _user

    officer = _user("cs_officer")
    with acting_as(officer):
        evidence = add_evidence(db.session.get(Case, case_id), "签收单.pdf",
                                b"%PDF-1.4\n%%EOF\n", officer)
    db.session.commit()
    return evidence.id


def _statement(party_id: int) -> int:
    """Carrier A's statement of this month (the world's case), issued once the month is over."""
    from datetime import timedelta

    from portal.cases.statements import current_period, issue_statement
    from portal.core.timeutil import frozen_time
    from portal.extensions import db
    from portal.parties.models import Party
    from tests.test_training import _user

    period = current_period()
    with frozen_time(period.end + timedelta(hours=1)):
        statement = issue_statement(db.session.get(Party, party_id), period, _user("cs_officer"))
    db.session.commit()
    return statement.id


def _import_batch() -> int:
    from portal.extensions import db
    from portal.intake.models import BatchKind, BatchSource, BatchStatus, ImportBatch

    batch = ImportBatch(kind=BatchKind.TICKETS, source=BatchSource.CLI, filename="t.csv",
                        status=BatchStatus.DONE)
    db.session.add(batch)
    db.session.commit()
    return batch.id


def _course_writing(ids: dict) -> dict:
    """What CS's course pages act on, besides ``build_training``'s: the online course's lesson,
    question, assignment, an open task and an uploaded image; and a draft course to publish,
    archive and cut (so the one-click actions leave the other courses as they were)."""
    import io

    from PIL import Image

    from portal.core.audit import acting_as
    from portal.core.uploads import store_image
    from portal.extensions import db
    from portal.training import assignments, courses
    from portal.training.models import Course
    from tests.test_training import _user

    course = db.session.get(Course, ids["course"])
    admin = _user("cs_admin")
    png = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(png, "PNG")
    with acting_as(admin):
        upload = store_image("dot.png", png.getvalue(), owner=course, user=admin)
        draft = courses.create_course(code="TRN-DRAFT", title_zh="草稿课程", kind="mandatory",
                                      mode="online", questions_per_attempt=1, author=admin)
        lesson = courses.save_lesson(draft, title_zh="草稿第一课", body="# 要点")
        question = courses.save_question(draft, kind="true_false", text_zh="不得虚假签收",
                                         options=[("", "", True)])
    db.session.commit()
    return {"lesson": course.lessons[0].id, "question": course.questions[0].id,
            "assignment": assignments.active_assignments(course)[0].id,
            "task": assignments.task_of(course, _user("staff_a")).id, "upload": upload.key,
            "draft_course": draft.id, "draft_lesson": lesson.id, "draft_question": question.id}


@pytest.mark.parametrize("who", USERS)
def test_route_matrix(app, world, make_browser, who):
    failures = []
    for (method, endpoint), (template, expected) in MATRIX.items():
        if method == "POST" and endpoint == "accounts.logout":
            continue  # checked last: it ends the session the walk depends on
        browser = make_browser()
        if who != "anonymous":
            browser.login(username(who), PASSWORD)
        url = template.format(**world.ids)
        if method == "GET":
            resp = browser.get(url)
        else:
            data = {"lang": "en"} if endpoint == "main.set_language" else {}
            if endpoint == "accounts.login":
                data = {"username": "nobody", "password": "wrong"}
            resp = browser.post(url, data)
        if resp.status_code != expected[who]:
            failures.append(f"{method} {url}: {resp.status_code}, expected {expected[who]}")
        if expected[who] == 302 and who == "anonymous" and endpoint not in (
                "main.set_language",):
            assert "/login" in resp.headers["Location"], f"{method} {url}"
    browser = make_browser()
    if who != "anonymous":
        browser.login(username(who), PASSWORD)
    resp = browser.post("/logout")
    if resp.status_code != MATRIX[("POST", "accounts.logout")][1][who]:
        failures.append(f"POST /logout: {resp.status_code}")
    assert not failures, "\n".join(failures)


def test_post_without_csrf_token_is_refused(app, world, make_browser):
    browser = make_browser()
    browser.login(username("cs_admin"), PASSWORD)
    resp = browser.post("/parties/new", {"code": "X9", "name_zh": "某", "kind": "carrier"},
                        csrf=False)
    assert resp.status_code == 400


# --- list filters (issue 20): a party's filters narrow within its own rows ------------------

PARTY_CODES = {"carrier_a": "C001", "carrier_b": "C002", "merchant": "M001",
               "warehouse": "W001", "dept": "D001", "dept_b": "D002"}
OWN_PARTY = {"staff_a": "carrier_a", "carrier_manager": "carrier_a", "staff_b": "carrier_b",
             "merchant_staff": "merchant", "dept_manager": "dept", "dept_b_manager": "dept_b"}
# every list a party's people can open that takes filters, and its exports
PARTY_LISTS = ["/cases", "/penalties", "/penalties?format=csv", "/statements",
               "/reports/scorecard"] + [
    f"/reports/scorecard?export={t}&format={fmt}"
    for t in ("parties", "kinds", "trend", "clauses", "appeals", "coverage", "hr", "tickets")
    for fmt in ("csv", "xlsx")]


@pytest.fixture
def shared_world(app, tmp_path):
    """build_world's case shared by C001 (70 %) and D001 (30 %), with an appeal of C001 still
    open and a ticket behind C001's violation; an open case of C002 with a ticket of its own;
    both tickets this month; statements of C001 and D001."""
    from decimal import Decimal

    from portal.cases import services
    from portal.cases.appeals import file_appeal
    from portal.cases.models import Case, Violation
    from portal.core.audit import acting_as
    from portal.core.db import utcnow
    from portal.extensions import db
    from portal.intake.models import Ticket
    from portal.parties.models import Party
    from portal.standards.models import Clause
    from tests.test_training import _user

    with app.test_request_context():
        w = build_world()
        now = utcnow()
        for no, carrier in (("TK-9001", w.carrier_a), ("TK-9002", w.carrier_b)):
            db.session.add(Ticket(ticket_no=no, order_no="O" + no, order_value=Decimal("99.00"),
                                  opened_at=now, captured_at=now, carrier_id=carrier,
                                  merchant_id=w.merchant))
        db.session.flush()
        shared = db.session.get(Case, w.case)
        shared.violations[0].ticket_no = "TK-9001"
        officer = _user("cs_officer")
        clause2 = db.session.scalar(db.select(Clause).where(
            Clause.standard_version_id == w.version, Clause.number == "2"))
        with acting_as(officer):
            other = services.open_case(title="中通两小时未回复", description="",
                                       incident_at=now, user=officer)
            v = services.record_violation(other, clause=clause2,
                                          party=db.session.get(Party, w.carrier_b),
                                          occurrences=1, evidence="工单记录", user=officer)
            v.ticket_no = "TK-9002"
        with acting_as(_user("staff_a")):
            file_appeal(shared, w.carrier_a, "有取件码短信为证", _user("staff_a"))
        db.session.commit()
        assert db.session.scalar(db.select(Violation.ticket_no).where(
            Violation.case_id == other.id)) == "TK-9002"
        w.ids.update(other_case=other.id, clause2=clause2.id,
                     statement_a=_statement(w.carrier_a), statement_d=_statement(w.dept))
        return w


def _rows(resp) -> str:
    """What a list shows as its rows: the tables' bodies of a page (not the filter boxes that
    echo what was typed), the whole of a CSV, or every cell of a workbook."""
    if resp.mimetype == "text/html":
        return "\n".join(re.findall(r"<tbody>(.*?)</tbody>", resp.get_data(as_text=True),
                                     re.DOTALL))
    if resp.mimetype.endswith("spreadsheetml.sheet"):
        from openpyxl import load_workbook

        book = load_workbook(io.BytesIO(resp.data), read_only=True)
        return "\n".join(str(c) for ws in book.worksheets for row in ws.iter_rows(values_only=True)
                         for c in row if c is not None)
    return resp.get_data(as_text=True)


def _filters_naming_others(w, own: str) -> list[dict]:
    """The query arguments a curious party might try: every other party's code and names,
    every other kind, another party's ticket and case number, a clause only another party
    broke, an appeal only another party filed, an amount only the case as a whole reaches."""
    from portal.extensions import db
    from portal.parties.models import Party

    own_kind = db.session.get(Party, w.ids[own]).kind
    out = []
    for key, code in PARTY_CODES.items():
        if key == own:
            continue
        party = db.session.get(Party, w.ids[key])
        out += [{"party": code}, {"party": code.lower()}, {"party": party.name_zh},
                {"party": party.name_en}]
    out += [{"kind": k} for k in ("carrier", "merchant", "warehouse", "department")
            if k != own_kind.value]
    out += [{"q": "TK-9002"}, {"q": "TK-9001"}, {"q": f"CASE-{w.other_case:06d}"},
            {"clause": f"{w.standard}:2"}, {"appeal": "open"}, {"min": "400"}]
    return out


def _leaks(text: str, own: str, visible_cases: set[int]) -> list[str]:
    from portal.extensions import db
    from portal.parties.models import Party

    found = []
    for key, code in PARTY_CODES.items():
        if key == own:
            continue
        party = db.session.scalar(db.select(Party).where(Party.code == code))
        found += [n for n in (code, party.name_zh, party.name_en) if n in text]
    found += [f"CASE-{n}" for n in re.findall(r"CASE-0*(\d+)", text)
              if int(n) not in visible_cases]
    return found


@pytest.mark.parametrize("who", sorted(OWN_PARTY))
def test_a_partys_list_filters_never_reach_other_parties(app, shared_world, make_browser, who):
    """As each party role: every list and export, filtered by another party's code or name,
    another kind, another party's ticket, clause or appeal, shows only the caller's own rows:
    never a row the unfiltered list does not show, never another party's code or name, and no
    case at all for a filter naming another party or kind."""
    from portal.cases.services import visible_cases_query
    from portal.extensions import db
    from tests.test_training import _user

    w, own = shared_world, OWN_PARTY[who]
    b = make_browser()
    b.login(username(who), PASSWORD)
    problems = []
    with app.test_request_context():
        visible = set(db.session.scalars(visible_cases_query(_user(who)).with_only_columns(
            db.text("cases.id"))).all())
        variants = _filters_naming_others(w, own)
    lists = PARTY_LISTS
    if who in MANAGERS - {"carrier_manager"}:     # a department's own HR notices
        lists = [*lists, "/hr/notices?status=all"]
        variants = [*variants, {"department": str(w.dept)}, {"department": str(w.dept_b)}]
    for url in lists:
        base = b.get(url)
        assert base.status_code == 200, url
        unfiltered = _rows(base)
        for args in variants:
            sep = "&" if "?" in url else "?"
            full = url + sep + urlencode(args)
            resp = b.get(full)
            if resp.status_code != 200:
                problems.append(f"{full}: {resp.status_code}")
                continue
            rows = _rows(resp)
            with app.test_request_context():
                leaked = _leaks(rows, own, visible)
            if leaked:
                problems.append(f"{full}: shows {leaked}")
            extra = set(rows.split()) - set(unfiltered.split())
            if ("party" in args or "kind" in args or "department" in args) and \
                    rows != unfiltered:
                problems.append(f"{full}: not the rows of the unfiltered list")
            if extra and ("format=" in url or url == "/cases"):
                cases = {t for t in extra if re.match(r"CASE-\d+", t)}
                if cases:
                    problems.append(f"{full}: rows not in the unfiltered list: {cases}")
    assert not problems, "\n".join(problems)


def test_the_probe_of_a_shared_case_finds_nothing(app, shared_world, make_browser):
    """The probe as it was tried: promo.mgr (D001) asking for C001's cases, and the reverse,
    gets its own list as it is; a filter on what only the other party did finds nothing."""
    w = shared_world
    for who, other in (("dept_manager", ("party=C001", "kind=carrier", "party=顺丰")),
                       ("staff_a", ("party=D001", "kind=department", "party=促销部"))):
        b = make_browser()
        b.login(username(who), PASSWORD)
        own = _rows(b.get("/cases"))
        assert f"CASE-{w.case:06d}" in own, who      # the case itself is theirs to see
        for args in other:
            assert _rows(b.get(f"/cases?{args}")) == own, (who, args)
    b = make_browser()
    b.login(username("dept_manager"), PASSWORD)
    for args in ("q=TK-9001", "appeal=open", f"clause={w.standard}:1"):   # C001's, not D001's
        assert f"CASE-{w.case:06d}" not in _rows(b.get(f"/cases?{args}")), args


def _case_page_in_english(make_browser, who: str, case_id: int) -> str:
    from tests.helpers import english

    b = make_browser()
    b.login(username(who), PASSWORD)
    english(b)
    return b.get(f"/cases/{case_id}").get_data(as_text=True)


def test_a_shared_case_tells_a_party_what_it_does_not_see(app, shared_world, make_browser):
    """D001 carries a share of the ruling but broke no clause itself: its case page says that
    other parties' records are not shown, rather than that none were recorded."""
    page = _case_page_in_english(make_browser, "dept_manager", shared_world.case)
    assert "No violation of your party is recorded on this case (what other parties did is " \
           "not shown to you)." in page
    assert "C001" not in page and "顺丰" not in page


def test_a_party_sees_how_its_amount_was_worked_out_and_that_the_rest_lies_elsewhere(
        app, shared_world, make_browser):
    """staff_a's carrier carries 70 % of a ruling priced as the whole case × share: its page
    says so, with the case's totals, and that 30 % lies with others (never who)."""
    page = _case_page_in_english(make_browser, "staff_a", shared_world.case)
    assert "Whole case × share: each party's fine, compensation recovered and points are its " \
           "share of the case's fines ¥500.00, compensation ¥0.00 and 0 points." in page
    assert "The other 30% of the blame lies with other parties." in page
    assert "D001" not in page and "促销部" not in page
