"""The portal's main journeys in a real browser, each as the demo user who does it.

Chinese UI (the portal's first language) unless a journey says English; selectors are form
actions, field names, roles and hrefs, not translated text. Journeys run in file order on one
demo world: the appeal (e) is against the ruling the officer issues in (d).
"""
from __future__ import annotations

import re
import time
from datetime import date, timedelta

import pytest

from tests.browser.conftest import path_of, sign_in

pytestmark = pytest.mark.browser

REPORT_WAIT_S = 150          # the audit report is laid out by WeasyPrint in the background


def _open_task_links(page) -> list[str]:
    """The "Read" buttons of the To read list (open tasks only: the done list has no .btn)."""
    page.goto("/standards/to-read")
    return [a.get_attribute("href")
            for a in page.locator('a.btn.primary[href*="/standards/versions/"]').all()]


# --- a. signing in with a second factor --------------------------------------------------------

@pytest.mark.parametrize("username, lang", [("officer", None), ("officer2", "en")],
                         ids=["zh", "en"])
def test_a_cs_officer_signs_in_with_a_second_factor(page, live_server, username, lang):
    assert sign_in(page, live_server, username, lang=lang) == "totp"    # demo CS: enrolled
    assert page.get_attribute("html", "lang") == ("en" if lang == "en" else "zh-CN")
    assert page.locator('nav a[href="/cases"]').count() == 1       # an officer's menu
    # the code was used up: it cannot be used again
    assert live_server.sql("SELECT totp_last_step FROM users WHERE username = :u",
                           u=username)[0][0] is not None


def test_a_cs_supervisor_without_a_second_factor_sets_one_up_when_signing_in(page,
                                                                            live_server):
    live_server.execute("UPDATE users SET totp_secret = NULL, totp_enabled_at = NULL, "
                        "totp_last_step = NULL WHERE username = 'supervisor'")
    assert sign_in(page, live_server, "supervisor") == "enrolled"   # /account/2fa/setup
    secret, enabled = live_server.sql("SELECT totp_secret, totp_enabled_at IS NOT NULL "
                                      "FROM users WHERE username = 'supervisor'")[0]
    assert secret and enabled


# --- b. acknowledging a standard -------------------------------------------------------------

@pytest.mark.parametrize("username, lang", [("sf.new", None), ("sf.wu", "en")],
                         ids=["zh", "en"])
def test_b_carrier_staff_acknowledge_a_standard_from_their_to_read_list(page, live_server,
                                                                       username, lang):
    sign_in(page, live_server, username, lang=lang)
    before = _open_task_links(page)
    assert before, f"{username} has nothing to read"
    for href in before:
        page.goto(href)
        button = page.locator('form[action$="/acknowledge"] button')
        if button.count():          # (a standard may first need its course passed)
            break
    else:
        pytest.fail(f"none of {before} can be acknowledged by {username}")
    with page.expect_navigation():
        button.click()
    assert page.locator('form[action$="/acknowledge"]').count() == 0
    after = _open_task_links(page)
    assert href not in after and len(after) == len(before) - 1
    assert page.locator(f'table a[href="{href}"]').count() == 1      # now under Acknowledged


# --- c. a quiz --------------------------------------------------------------------------------

def test_c_carrier_staff_take_the_quiz_and_see_the_result(page, live_server):
    sign_in(page, live_server, "sf.wu", lang="zh_CN")     # (b) left sf.wu in English
    page.goto("/training/mine")
    page.locator('a.btn.primary[href$="/learn"]').first.click()
    page.wait_for_load_state()
    take = page.locator('form[action$="/take"] button')
    if take.count():
        with page.expect_navigation():
            take.click()
    resume = page.locator('a[href*="/training/attempts/"]:not([href$="/result"])')
    with page.expect_navigation():
        if resume.count():
            resume.first.click()
        else:
            page.click('form[action$="/quiz"] button')
    assert re.search(r"/training/attempts/\d+$", path_of(page)), page.url
    questions = page.locator("form.quiz fieldset.question")
    assert questions.count() > 0
    for i in range(questions.count()):
        questions.nth(i).locator("input").first.check()
    with page.expect_navigation():
        page.click("form.quiz button.primary")
    assert path_of(page).endswith("/result"), page.url
    score = page.locator(".tile strong").first.inner_text()
    assert re.fullmatch(r"\d+%", score.strip()), score
    assert page.get_attribute("html", "lang") == "zh-CN"


# --- d. and e. a ruling split over two parties, and the appeal against it --------------------

def test_d_cs_officer_rules_a_case_splitting_the_blame_over_two_parties(page, live_server):
    case_id = live_server.sql(
        "SELECT c.id FROM cases c JOIN violations v ON v.case_id = c.id "
        "JOIN parties p ON p.id = v.party_id WHERE c.status = 'open' AND p.code = 'C001' "
        "GROUP BY c.id HAVING sum(v.party_fine + v.customer_compensation) <= 1000 "
        "ORDER BY c.id LIMIT 1")[0][0]
    ids = dict(live_server.sql("SELECT code, id FROM parties WHERE code IN ('C001', 'C002')"))
    sign_in(page, live_server, "officer")
    page.goto(f"/cases/{case_id}")
    form = page.locator('form[action$="/ruling"]')
    for row, (code, percent) in enumerate([("C001", "60"), ("C002", "40")]):
        form.locator(f'select[name="shares-{row}-party_id"]').select_option(str(ids[code]))
        form.locator(f'input[name="shares-{row}-percent"]').fill(percent)
        form.locator(f'input[name="shares-{row}-override_reason"]').fill(
            "浏览器测试：条款已通知，仍按条款判责")
    form.locator('textarea[name="rationale"]').fill(
        "顺丰速运未按时回复催单，中通速运转运延误：按六四划分责任。")
    with page.expect_navigation():
        form.locator("button.primary").click()
    assert path_of(page) == f"/cases/{case_id}", page.url
    assert page.locator(".flash-error, small.error").count() == 0, page.locator(
        ".flash-error, small.error").all_inner_texts()
    status = live_server.sql("SELECT status FROM cases WHERE id = :c", c=case_id)[0][0]
    assert status == "ruled"                                  # within the officer's ¥2,000
    shares = live_server.sql(
        "SELECT p.code, s.percent FROM responsibility_shares s JOIN rulings r "
        "ON r.id = s.ruling_id JOIN parties p ON p.id = s.party_id "
        "WHERE r.case_id = :c AND r.status = 'effective' ORDER BY p.code", c=case_id)
    assert [(code, int(pct)) for code, pct in shares] == [("C001", 60), ("C002", 40)]
    live_server.state["ruled_case"] = case_id


def test_e_carrier_staff_appeal_that_ruling(page, live_server):
    case_id = live_server.state.get("ruled_case")
    if case_id is None:
        pytest.skip("needs the ruling of test_d (run the module in order)")
    sign_in(page, live_server, "sf.zhou")
    page.goto(f"/cases/{case_id}")
    form = page.locator('form[action$="/appeals"]')
    form.locator('textarea[name="statement"]').fill(
        "催单当天系统故障，附故障工单截图，请求撤销本方罚款。")
    with page.expect_navigation():
        form.locator("button.primary").click()
    assert path_of(page) == f"/cases/{case_id}", page.url
    assert page.locator('form[action$="/appeals"]').count() == 0    # one open appeal at a time
    appeals = live_server.sql(
        "SELECT a.status, p.code FROM appeals a JOIN parties p ON p.id = a.party_id "
        "WHERE a.case_id = :c", c=case_id)
    assert appeals == [("open", "C001")]


# --- f. an HR notice --------------------------------------------------------------------------

def test_f_hr_officer_acknowledges_an_hr_notice(page, live_server):
    notice_id = live_server.sql(
        "SELECT id FROM hr_notices WHERE status = 'new' ORDER BY id LIMIT 1")[0][0]
    sign_in(page, live_server, "hr.zhao")
    page.goto("/hr/notices")
    with page.expect_navigation():
        page.click(f'a[href="/hr/notices/{notice_id}"]')
    with page.expect_navigation():
        page.click('form[action$="/acknowledge"] button')
    assert page.locator('form[action$="/acknowledge"]').count() == 0
    assert page.locator('form[action$="/action"]').count() == 1      # next: record the action
    assert live_server.sql("SELECT status FROM hr_notices WHERE id = :n",
                           n=notice_id)[0][0] == "acknowledged"


# --- g. the audit report ---------------------------------------------------------------------

def test_g_auditor_requests_the_audit_report_and_downloads_the_pdf(page, live_server):
    sign_in(page, live_server, "auditor")
    page.goto("/reports/")
    form = page.locator('form[action$="/reports/audit"]')
    end = date.today()
    form.locator('input[name="start"]').fill((end - timedelta(days=14)).isoformat())
    form.locator('input[name="end"]').fill(end.isoformat())
    with page.expect_navigation():
        form.locator("button").click()
    assert re.search(r"/reports/jobs/\w+$", path_of(page)), page.url
    link = page.locator('a[href$="/report.pdf"]')
    deadline = time.monotonic() + REPORT_WAIT_S
    while not link.count():
        assert page.locator(".flash-error").count() == 0, page.locator(
            ".flash-error").inner_text()
        assert time.monotonic() < deadline, f"the report was not ready in {REPORT_WAIT_S} s"
        page.wait_for_timeout(1000)
        page.reload()
    with page.expect_download() as info:
        link.click()
    pdf = info.value.path().read_bytes()
    assert pdf.startswith(b"%PDF"), pdf[:20]
