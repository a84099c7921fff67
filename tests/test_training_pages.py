"""Training as people use it through the pages: the quiz never shows the key, the public
check of a certificate shows nothing else, the dashboards keep parties to their own staff."""
from __future__ import annotations

import re

from sqlalchemy import select

from portal.extensions import db
from portal.training import assignments, quiz
from portal.training.models import QuizAttempt
from tests.factories import build_world
from tests.test_training import _pass, _user, answer_all, assign_carriers, make_course


def _world(app):
    with app.test_request_context():
        build_world(with_case=False)
        course = make_course(questions=4, draw=4)
        assign_carriers(course)
        cert = _pass(course, _user("staff_b")).certificate
        db.session.commit()
        return course.id, cert.id, cert.code


def test_a_quiz_page_shows_positions_never_the_answer_key(app, browser):
    course_id, _c, _code = _world(app)
    browser.login("staff.a")
    resp = browser.post(f"/training/courses/{course_id}/quiz")
    assert resp.status_code == 302
    page = browser.get(resp.headers["Location"]).get_data(as_text=True)
    with app.app_context():
        attempt = db.session.scalar(select(QuizAttempt).where(
            QuizAttempt.user_id == _user("staff_a").id))
        option_ids = {oid for p in attempt.paper for oid in p["o"]}
    values = re.findall(r'name="q(\d+)" value="([^"]+)"', page)
    assert values and {v for _q, v in values} <= {"0", "1", "2"}  # positions only
    assert "correct" not in page and "right-answer" not in page
    assert max(option_ids) > 2  # so the ids, had they been sent, would show above
    # answering by position on the paper
    data = {f"q{i}": "0" for i in range(4)}
    resp = browser.post(f"/training/attempts/{attempt.id}", data)
    assert resp.status_code == 302 and "/result" in resp.headers["Location"]


def test_the_public_check_confirms_a_code_and_shows_nothing_else(app, browser):
    _course, _cert, code = _world(app)
    resp = browser.get(f"/verify/{code.lower()}")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and code in page
    assert "staff_b" not in page and "staff.b" not in page and "C002" not in page
    assert "s*****b" in page  # the holder's name, partly hidden
    assert browser.get("/verify/ABCD-EFGH-JK23").status_code == 404
    assert browser.get("/verify?code=nonsense").status_code == 400
    assert browser.get(f"/verify?code={code.replace('-', ' ')}").status_code == 302


def test_a_certificate_pdf_is_for_its_holder_their_manager_and_cs(app, make_browser):
    _course, cert_id, _code = _world(app)
    for who, status in (("staff.b", 200), ("cs.officer", 200), ("staff.a", 404),
                        ("carrier.manager", 404), ("merchant.staff", 404)):
        b = make_browser()
        b.login(who)
        resp = b.get(f"/training/certificates/{cert_id}.pdf")
        assert resp.status_code == status, who
        if status == 200:
            assert resp.data.startswith(b"%PDF")


def test_a_party_manager_sees_only_their_own_staff(app, browser):
    _world(app)
    browser.login("carrier.manager")
    page = browser.get("/training/team").get_data(as_text=True)
    assert "staff_a" in page and "staff_b" not in page
    csv = browser.get("/training/team?format=csv").get_data(as_text=True)
    assert "staff.a" in csv and "staff.b" not in csv


def test_the_dashboard_counts_completion_and_pass_rate(app, browser):
    course_id, _c, _code = _world(app)
    browser.login("auditor")
    page = browser.get(f"/training/reports/courses/{course_id}").get_data(as_text=True)
    assert "33.3%" in page  # 1 of 3 carriers' staff completed
    csv = browser.get("/training/reports?format=csv").get_data(as_text=True)
    assert "TRN-DLV" in csv and ",3,1," in csv


def test_an_open_task_is_on_the_home_page(app, browser):
    _world(app)
    browser.login("staff.a")
    assert "TRN-DLV" in browser.get("/").get_data(as_text=True)


def test_cs_finds_who_ran_out_of_attempts_grants_one_and_sees_certificates_to_revoke(
        app, make_browser):
    with app.test_request_context():
        build_world(with_case=False)
        course = make_course(questions=4, draw=4, max_attempts=1)
        assign_carriers(course)
        staff = _user("staff_a")
        task = assignments.task_of(course, staff)
        attempt = quiz.start_attempt(course, task, staff)
        quiz.submit_attempt(attempt, answer_all(attempt, right=False), staff)
        cert = _pass(course, _user("staff_b")).certificate
        db.session.commit()
        course_id, cert_id, task_id = course.id, cert.id, task.id
    url = f"/training/reports/courses/{course_id}"
    admin = make_browser()
    admin.login("cs.admin")
    stuck = admin.get(f"{url}?state=out_of_attempts").get_data(as_text=True)
    assert "staff.a" in stuck and "staff.b" not in stuck and "1 / 1" in stuck
    assert f"/training/tasks/{task_id}/grant-attempt" in stuck
    everyone = admin.get(url).get_data(as_text=True)
    assert f"/training/certificates/{cert_id}/revoke" in everyone
    assert "staff.b" in admin.get(f"{url}?who=staff.b").get_data(as_text=True)
    assert "staff.a" not in admin.get(f"{url}?who=staff.b").get_data(as_text=True)
    resp = admin.post(f"/training/tasks/{task_id}/grant-attempt", {},
                      headers={"Referer": f"http://localhost{url}?state=out_of_attempts"})
    assert resp.status_code == 302
    after = admin.get(f"{url}?state=out_of_attempts").get_data(as_text=True)
    assert "staff.a" not in after
    assert "1 / 2" in admin.get(f"{url}?who=staff.a").get_data(as_text=True)
    # an auditor reads the same list but is offered neither action
    auditor = make_browser()
    auditor.login("auditor")
    page = auditor.get(url).get_data(as_text=True)
    assert "staff.b" in page and "/revoke" not in page and "grant-attempt" not in page
