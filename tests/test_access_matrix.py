"""Every route, walked as every role, another party's staff, and anonymous.

The expected status of each (route, user) pair is written out below. A route added to the app
without an entry here fails ``test_every_route_is_in_the_matrix``.
"""
from __future__ import annotations

import pytest

from tests.factories import PASSWORD, build_world, username

USERS = ["cs_admin", "cs_supervisor", "cs_officer", "auditor", "hr_officer", "staff_a",
         "carrier_manager", "staff_b", "merchant_staff", "dept_manager", "dept_b_manager",
         "anonymous"]
CS = {"cs_admin", "cs_supervisor", "cs_officer"}
READ = CS | {"auditor"}
PARTY = {"staff_a", "carrier_manager", "staff_b", "merchant_staff", "dept_manager",
         "dept_b_manager"}
MANAGERS = {"carrier_manager", "dept_manager", "dept_b_manager"}
LOGGED_IN = set(USERS) - {"anonymous"}


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
    ("GET", "cases.penalties"): ("/penalties", expect(READ | PARTY)),
    ("GET", "hr.inbox"): ("/hr/notices", expect(
        READ | {"hr_officer", "dept_manager", "dept_b_manager"})),
    ("GET", "hr.detail"): ("/hr/notices/{notice}", expect(
        READ | {"hr_officer", "dept_manager"}, not_found={"dept_b_manager"})),
    ("POST", "hr.acknowledge"): ("/hr/notices/{notice}/acknowledge", expect(
        {"hr_officer"}, ok_code=302)),
    ("POST", "hr.record_action"): ("/hr/notices/{notice}/action", expect(
        {"hr_officer"}, ok_code=400)),
    ("GET", "reports.index"): ("/reports/", expect(READ)),
    ("GET", "reports.audit_pdf"): ("/reports/audit.pdf?start=2026-01-01&end=2026-12-31",
                                   expect(READ)),
    ("GET", "audit.index"): ("/audit/", expect({"cs_admin", "auditor"})),
    ("GET", "audit.verify"): ("/audit/verify", expect({"cs_admin", "auditor"})),
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
def world(app):
    with app.test_request_context():
        return build_world()


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
