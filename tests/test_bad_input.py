"""Bad input gets a clear message and changes nothing in the database."""
from __future__ import annotations

import pytest

from tests.factories import PASSWORD, build_world, username
from tests.helpers import english, row_counts


@pytest.fixture
def world(app):
    with app.test_request_context():
        return build_world()


def signed_in(make_browser, who):
    b = make_browser()
    b.login(username(who), PASSWORD)
    english(b)
    return b


def test_wrong_password_is_refused_with_a_message(app, world, make_browser):
    b = make_browser()
    english(b)
    before = row_counts(app)
    resp = b.post("/login", {"username": "cs.officer", "password": "not-the-password"})
    assert resp.status_code == 200
    assert "Wrong username or password." in resp.get_data(as_text=True)
    assert b.get("/").status_code == 302  # still signed out
    after = row_counts(app)
    # a failed sign-in is counted (throttling) and audited; nothing else changes
    assert after.pop("login_attempts") == before.pop("login_attempts") + 1
    assert after.pop("audit_events") == before.pop("audit_events") + 1
    assert after == before


def test_chinese_is_the_default_language(app, world, make_browser):
    b = make_browser()
    resp = b.post("/login", {"username": "cs.officer", "password": "nope-nope-nope"})
    assert "用户名或密码错误" in resp.get_data(as_text=True)


@pytest.mark.parametrize("form, message", [
    ({"code": "", "name_zh": "某公司", "kind": "carrier"}, "This field is required."),
    ({"code": "bad code!", "name_zh": "某公司", "kind": "carrier"}, "Code must be"),
    ({"code": "C001", "name_zh": "重复", "kind": "carrier"}, "already exists"),
    ({"code": "C777", "name_zh": "某公司", "kind": "spaceship"}, "Not a valid choice"),
])
def test_party_form_errors(app, world, make_browser, form, message):
    b = signed_in(make_browser, "cs_admin")
    before = row_counts(app)
    resp = b.post("/parties/new", form)
    assert resp.status_code == 200
    assert message in resp.get_data(as_text=True)
    assert row_counts(app) == before


def test_malformed_fine_on_a_clause_is_refused(app, world, make_browser):
    b = signed_in(make_browser, "cs_admin")
    resp = b.post("/standards/new", {"code": "MER-SVC", "title_zh": "商家服务标准",
                                     "audience": ["merchant"], "effective_from": "2026-01-01"})
    vid = int(resp.headers["Location"].rsplit("/", 1)[1])
    before = row_counts(app)
    resp = b.post(f"/standards/versions/{vid}/clauses", {
        "number": "1", "title_zh": "发货时限", "body": "48 小时内发货。", "fine": "五百"})
    assert resp.status_code == 400
    assert "Fine must be an amount in yuan" in resp.get_data(as_text=True)
    assert row_counts(app) == before


def test_missing_incident_time_is_refused(app, world, make_browser):
    b = signed_in(make_browser, "cs_officer")
    before = row_counts(app)
    resp = b.post("/cases/new", {"title": "某投诉", "incident_at": "yesterday"})
    assert resp.status_code == 200
    assert "Not a valid datetime value." in resp.get_data(as_text=True)
    assert row_counts(app) == before


def _open_case_with_violation(b, world):
    resp = b.post("/cases/new", {"title": "虚假签收", "incident_at": "2026-11-01T10:00"})
    case_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    resp = b.post(f"/cases/{case_id}/violations", {
        "clause_id": world.clause, "party_id": world.carrier_a, "occurrences": 1,
        "evidence": "录音"})
    assert resp.status_code == 302
    return case_id


@pytest.mark.parametrize("shares, message", [
    ([("carrier_a", 70), ("warehouse", 20)], "must add up to 100% (they add up to 90%)"),
    ([("carrier_a", 70), ("carrier_a", 30)], "only once"),
    ([("carrier_a", 50), ("dept", 50)], "must name the responsible employee"),
    ([], "at least one party"),
])
def test_bad_responsibility_split_is_refused(app, world, make_browser, shares, message):
    b = signed_in(make_browser, "cs_officer")
    case_id = _open_case_with_violation(b, world)
    before = row_counts(app)
    data = {"rationale": "理由"}
    for i in range(4):
        key, pct = shares[i] if i < len(shares) else (None, None)
        data[f"shares-{i}-party_id"] = getattr(world, key) if key else 0
        if pct is not None:
            data[f"shares-{i}-percent"] = pct
    resp = b.post(f"/cases/{case_id}/ruling", data)
    assert resp.status_code == 400
    assert message in resp.get_data(as_text=True)
    assert row_counts(app) == before


def test_acknowledging_twice_is_refused(app, world, make_browser):
    b = signed_in(make_browser, "staff_a")
    assert b.post(f"/standards/versions/{world.version}/acknowledge").status_code == 302
    before = row_counts(app)
    resp = b.post(f"/standards/versions/{world.version}/acknowledge", follow_redirects=True)
    assert "You already acknowledged CAR-DLV v1." in resp.get_data(as_text=True)
    assert row_counts(app) == before


def test_ruling_again_without_a_correction_reason_is_refused(app, world, make_browser):
    b = signed_in(make_browser, "cs_officer")
    before = row_counts(app)
    resp = b.post(f"/cases/{world.case}/ruling", {
        "rationale": "再判一次", "shares-0-party_id": world.carrier_a, "shares-0-percent": 100,
        "shares-0-override_reason": "线下培训"})
    assert resp.status_code == 400
    assert "is already ruled. A correction is a new ruling" in resp.get_data(as_text=True)
    assert row_counts(app) == before


def test_hr_action_before_acknowledging_is_refused(app, world, make_browser):
    b = signed_in(make_browser, "hr_officer")
    before = row_counts(app)
    resp = b.post(f"/hr/notices/{world.notice}/action", {"action_taken": "警告"})
    assert resp.status_code == 400
    assert "Acknowledge receipt of the notice before recording the action." in \
        resp.get_data(as_text=True)
    assert row_counts(app) == before
