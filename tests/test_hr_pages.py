"""HR notice pages: who sees what (HR never the case; a department manager only their own
department's notices, read-only), the inbox's filters and counts, HR's forms, the PDF."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from sqlalchemy import select

from portal.core.audit import acting_as
from portal.extensions import db
from portal.hr.models import HrNotice, NoticeStatus
from portal.hr.services import acknowledge_notice
from tests.factories import PASSWORD, build_world, username
from tests.helpers import english
from tests.test_rulings import user


@pytest.fixture
def world(app):
    with app.test_request_context():
        return build_world()


def signed_in(make_browser, who, lang="en"):
    b = make_browser()
    b.login(username(who), PASSWORD)
    if lang == "en":
        english(b)
    return b


def notice(app, world) -> HrNotice:
    with app.app_context():
        n = db.session.get(HrNotice, world.notice)
        db.session.expunge(n)
        return n


def test_hr_sees_the_notice_and_nothing_of_the_case(app, world, make_browser):
    hr = signed_in(make_browser, "hr_officer")
    for url in (f"/cases/{world.case}", "/cases", "/penalties", f"/parties/{world.carrier_a}",
                f"/cases/{world.case}/evidence/1", "/statements"):
        assert hr.get(url).status_code in (403, 404), url
    page = hr.get(f"/hr/notices/{world.notice}").get_data(as_text=True)
    assert "钱晓" in page and "E0137" in page and "CASE-" in page
    assert f"/cases/{world.case}" not in page          # no way into the case
    assert "C001" not in page and "¥350.00" not in page  # nothing of the other party
    assert "Acknowledge receipt" in page


def test_cs_reads_the_notice_with_a_link_to_the_case_but_no_forms(app, world, make_browser):
    for who in ("cs_officer", "auditor"):
        page = signed_in(make_browser, who).get(f"/hr/notices/{world.notice}").get_data(
            as_text=True)
        assert f"/cases/{world.case}" in page and "Acknowledge receipt" not in page
    assert signed_in(make_browser, "cs_officer").post(
        f"/hr/notices/{world.notice}/acknowledge").status_code == 403


def test_a_department_manager_sees_only_their_own_departments_notices(app, world,
                                                                     make_browser):
    own = signed_in(make_browser, "dept_manager")
    page = own.get(f"/hr/notices/{world.notice}").get_data(as_text=True)
    assert "钱晓" in page and "Acknowledge receipt" not in page
    assert own.post(f"/hr/notices/{world.notice}/acknowledge").status_code == 403
    other = signed_in(make_browser, "dept_b_manager")
    assert other.get(f"/hr/notices/{world.notice}").status_code == 404
    assert other.get(f"/hr/notices/{world.notice}.pdf").status_code == 404
    assert "钱晓" not in other.get("/hr/notices?status=all").get_data(as_text=True)
    assert "钱晓" in own.get("/hr/notices").get_data(as_text=True)


def test_hr_works_a_notice_through_the_pages(app, world, make_browser):
    hr = signed_in(make_browser, "hr_officer")
    url = f"/hr/notices/{world.notice}"
    assert hr.post(f"{url}/acknowledge", {"version": notice(app, world).version}
                   ).status_code == 302
    page = hr.get(url).get_data(as_text=True)
    assert "Record the action taken" in page and 'name="reason"' in page
    resp = hr.post(f"{url}/action", {"version": notice(app, world).version,
                                     "action_kind": "written_warning",
                                     "action_taken": "已发书面警告"})
    assert resp.status_code == 302              # nothing was proposed: no reason needed
    assert hr.post(f"{url}/close", {"version": notice(app, world).version}).status_code == 302
    n = notice(app, world)
    assert n.status is NoticeStatus.CLOSED and n.action_taken == "已发书面警告"
    page = hr.get(url).get_data(as_text=True)
    assert "Notice closed" in page and "Receipt acknowledged." in page and "Action recorded." in page


def test_a_different_action_without_a_reason_is_refused_beside_the_field(app, make_browser):
    with app.test_request_context():
        world = build_world()
        from tests.test_hr import dept_case, sanction_clauses

        fine, _training = sanction_clauses(world)
        n = dept_case(world, fine)
        with acting_as(user("hr_officer")):
            acknowledge_notice(n, user("hr_officer"))
        db.session.commit()
        notice_id, version = n.id, n.version
    hr = signed_in(make_browser, "hr_officer")
    page = hr.get(f"/hr/notices/{notice_id}").get_data(as_text=True)
    assert re.search(r'<option (selected value="fine"|value="fine" selected)', page)  # proposed
    resp = hr.post(f"/hr/notices/{notice_id}/action", {
        "version": version, "action_kind": "training", "action_taken": "参加培训"})
    assert resp.status_code == 400
    assert "differs from the sanction proposed (Fine)" in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(HrNotice, notice_id).status is NoticeStatus.ACKNOWLEDGED


def test_a_stale_page_is_refused_and_changes_nothing(app, world, make_browser):
    hr = signed_in(make_browser, "hr_officer")
    seen = notice(app, world).version
    with app.test_request_context():
        with acting_as(user("cs_admin")):
            acknowledge_notice(db.session.get(HrNotice, world.notice), user("hr_officer"))
        db.session.commit()
    resp = hr.post(f"/hr/notices/{world.notice}/action", {
        "version": seen, "action_kind": "other", "action_taken": "警告"}, follow_redirects=True)
    assert resp.status_code == 400 and "changed while you were looking at it" in \
        resp.get_data(as_text=True)
    assert notice(app, world).status is NoticeStatus.ACKNOWLEDGED


def test_the_inbox_filters_by_status_department_and_escalation(app, world, make_browser):
    with app.test_request_context():
        from portal.hr.services import escalate

        with acting_as(user("cs_officer")):
            from portal.cases.rulings import ShareInput
            from tests.test_hr import correct  # a second notice, on D001 too: E0142
            correct(world, ShareInput(world.carrier_a, 70, override_reason="线下"),
                    ShareInput(world.dept, 30, "E0142", "冯雪", override_reason="线下"))
        second = db.session.scalar(select(HrNotice).where(HrNotice.employee_no == "E0142"))
        escalate(second, 2)
        db.session.commit()
    hr = signed_in(make_browser, "hr_officer")
    inbox = hr.get("/hr/notices").get_data(as_text=True)        # open ones by default
    assert "冯雪" in inbox and "钱晓" not in inbox and "Escalated" in inbox
    assert "Withdrawn by CS (1)" in inbox and "New (1)" in inbox
    assert "Open notices (1)" in inbox
    assert "钱晓" in hr.get("/hr/notices?status=withdrawn").get_data(as_text=True)
    escalated = hr.get("/hr/notices?status=all&escalated=1").get_data(as_text=True)
    assert "冯雪" in escalated and "钱晓" not in escalated
    other_dept = hr.get(f"/hr/notices?status=all&department={world.dept_b}").get_data(
        as_text=True)
    assert "冯雪" not in other_dept and "No notices." in other_dept


def _pdf_text(pdf: bytes) -> str:
    if not shutil.which("pdftotext"):
        return pdf.decode("latin-1")
    return subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True,
                          check=True).stdout.decode("utf-8")


def test_the_printed_notice_in_chinese_and_in_english(app, world, make_browser):
    zh = signed_in(make_browser, "hr_officer", lang="zh_CN")
    resp = zh.get(f"/hr/notices/{world.notice}.pdf")
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    assert resp.data.startswith(b"%PDF")
    number = f"HR-{world.notice:06d}"
    text = _pdf_text(resp.data)
    assert number in text
    if shutil.which("pdftotext"):
        compact = text.replace(" ", "")
        assert "钱晓" in compact and "促销部" in compact and "第1页/共1页" in compact
    en = signed_in(make_browser, "auditor")
    text = _pdf_text(en.get(f"/hr/notices/{world.notice}.pdf").data)
    if shutil.which("pdftotext"):
        assert number in text and "Signatures" in text and "Page 1 of 1" in text
        assert "Promotions" in text
