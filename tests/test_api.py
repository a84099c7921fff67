"""The integration API: tokens (issued once, kept as a hash, revocable), importing tickets as
JSON with per-item rejections, reading violations with filters and keyset pages, the OpenAPI
document; the token admin page and the ``flask tokens`` commands."""
from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event, func, select

from portal.api import services
from portal.cases.models import Violation, ViolationStatus
from portal.core.audit import AuditEvent
from portal.core.errors import ServiceError
from portal.core.timeutil import frozen_time
from portal.extensions import db
from portal.intake.fields import TICKET_FIELDS
from portal.intake.models import ApiToken, BatchSource, ImportBatch, Ticket
from tests.factories import PASSWORD, build_world, username
from tests.helpers import english
from tests.test_intake import rulebook, ticket
from tests.test_training import _user

TICKETS = "/api/v1/tickets"
VIOLATIONS = "/api/v1/violations"


# --- set-up ------------------------------------------------------------------------------------

@pytest.fixture
def world(app):
    """build_world (with its ruled case: a confirmed manual violation of CAR-DLV §1 by C001),
    the CAR-TKT rulebook for tickets, and an active API token."""
    with app.test_request_context():
        build_world()
        rulebook()
        admin = _user("cs_admin")
        _token, plaintext = services.issue_token("Ticketing system", admin)
        db.session.commit()
    return {"token": plaintext}


@pytest.fixture
def client(app):
    return app.test_client()


def auth(token: str, lang: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    if lang:
        headers["Accept-Language"] = lang
    return headers


def post_tickets(client, token, items, lang=None):
    return client.post(TICKETS, json={"tickets": items}, headers=auth(token, lang))


def get_violations(client, token, lang=None, **params):
    return client.get(VIOLATIONS, query_string=params, headers=auth(token, lang))


def issue(app, name="Reporting", who="cs_admin") -> tuple[int, str]:
    with app.test_request_context():
        token, plaintext = services.issue_token(name, _user(who))
        db.session.commit()
        return token.id, plaintext


# --- tokens ------------------------------------------------------------------------------------

def test_an_issued_token_is_stored_only_as_its_hash(app):
    with app.test_request_context():
        build_world(with_case=False)
        token, plaintext = services.issue_token("ERP", _user("cs_admin"))
        db.session.commit()
        assert re.fullmatch(r"ssp_[A-Za-z0-9_-]{43}", plaintext)
        assert token.token_hash == hashlib.sha256(plaintext.encode()).hexdigest()
        assert token.prefix == plaintext[:12] and token.created_by.username == "cs.admin"
        row = db.session.execute(select(ApiToken.__table__)).one()
        assert all(plaintext not in str(value) for value in row)
        secret = plaintext[12:]                       # not even the part after the prefix
        for ev in db.session.scalars(select(AuditEvent)):
            assert secret not in f"{ev.before} {ev.after} {ev.actor_name}"
        (issued,) = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "api_token.issued"))
        assert issued.after_dict() == {"name": "ERP", "prefix": token.prefix, "revoked": False}


@pytest.mark.parametrize(("name", "message"), [
    ("  ", "needs a name"),
    ("x" * 81, "at most 80"),
    ("ticketing SYSTEM", "already named"),
])
def test_a_token_needs_a_short_name_no_active_token_has(app, world, name, message):
    with app.test_request_context():
        from flask_babel import force_locale

        with force_locale("en"), pytest.raises(ServiceError) as err:
            services.issue_token(name, _user("cs_admin"))
        assert message in err.value.message and err.value.field == "name"


def test_a_revoked_tokens_name_can_be_used_again_and_revoking_twice_is_refused(app, world):
    with app.test_request_context():
        admin = _user("cs_admin")
        token = db.session.scalar(select(ApiToken))
        services.revoke_token(token, admin)
        with pytest.raises(ServiceError, match="already revoked|已被吊销"):
            services.revoke_token(token, admin)
        services.issue_token("Ticketing system", admin)
        db.session.commit()
        assert token.revoked_by.username == "cs.admin"
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "api_token.revoked")) == 1


def test_a_request_without_a_token_is_401(client, world):
    resp = client.get(VIOLATIONS)
    assert resp.status_code == 401 and resp.json["error"] == "missing_token"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.post(TICKETS, json={"tickets": [{}]}).status_code == 401


@pytest.mark.parametrize("header", ["Bearer ssp_not-a-token", "Basic dXNlcjpwYXNz", "Bearer",
                                    "ssp_whatever"])
def test_a_wrong_token_is_401(client, world, header):
    resp = client.get(VIOLATIONS, headers={"Authorization": header})
    assert resp.status_code == 401 and resp.json["error"] == "invalid_token"
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


def test_a_revoked_token_is_401(app, client, world):
    assert get_violations(client, world["token"]).status_code == 200
    with app.test_request_context():
        services.revoke_token(db.session.scalar(select(ApiToken)), _user("cs_admin"))
        db.session.commit()
    resp = get_violations(client, world["token"])
    assert resp.status_code == 401 and resp.json["error"] == "invalid_token"


def test_last_used_is_written_at_most_once_a_minute(app, client, world):
    def last_used():
        with app.app_context():
            return db.session.scalar(select(ApiToken.last_used_at))

    start = datetime(2026, 3, 5, 2, 0, tzinfo=UTC)
    for seconds, expected in ((0, start), (59, start), (61, start + timedelta(seconds=61))):
        with frozen_time(start + timedelta(seconds=seconds)):
            assert get_violations(client, world["token"]).status_code == 200
        assert last_used() == expected


def test_a_browser_session_does_not_open_the_api(app, world, make_browser):
    browser = make_browser()
    browser.login(username("cs_admin"), PASSWORD)
    assert browser.get(VIOLATIONS).status_code == 401


# --- POST /api/v1/tickets ------------------------------------------------------------------------

def test_good_and_bad_tickets_in_one_post(app, client, world):
    items = [ticket("T1", carrier_signed=True, customer_signed=False,
                    delivered_at="2026-03-04 10:00", order_value=Decimal("199.5")),
             ticket("T2", carrier_code="C999"),
             "not a ticket",
             ticket("T3", opened_at="yesterday"),
             ticket("T4", order_value=250, promised_at=None, text=None),
             {"order_value": "1"}]
    resp = post_tickets(client, world["token"], items, lang="en")
    assert resp.status_code == 200, resp.json
    body = resp.json
    assert (body["created"], body["updated"], body["unchanged"], body["rejected"],
            body["violations"]) == (2, 0, 0, 4, 1)
    got = [(r["index"], r["ticket_no"], r["field"], r["reason"]) for r in body["rejections"]]
    assert got == [(1, "T2", "carrier_code", "unknown_party"), (2, None, None, "not_object"),
                   (3, "T3", "opened_at", "bad_time"), (5, None, "ticket_no", "required")]
    assert body["rejections"][0]["message"] == "carrier_code: no party has this code (C999)"
    assert "each ticket must be a JSON object" in body["rejections"][1]["message"]
    with app.app_context():
        batch = db.session.get(ImportBatch, body["batch_id"])
        assert batch.source is BatchSource.API and batch.token_id is not None
        assert [r.line for r in batch.rejections] == [2, 3, 4, 6]   # the index counted from 1
        t1, t4 = db.session.get(Ticket, "T1"), db.session.get(Ticket, "T4")
        assert (t1.order_value, t1.carrier_signed, t1.customer_signed) == (
            Decimal("199.50"), True, False)
        assert (t4.order_value, t4.promised_at, t4.text) == (Decimal("250.00"), None, "")
        (event_,) = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "import_batch.finished"))
        assert event_.actor_name.startswith("api:ssp_") and "Ticketing system" in \
            event_.actor_name


def test_messages_follow_accept_language(client, world):
    items = [ticket("T2", carrier_code="C999")]
    zh = post_tickets(client, world["token"], items, lang="zh-CN,zh;q=0.9,en;q=0.5").json
    assert "没有此编码的责任主体" in zh["rejections"][0]["message"]
    en = post_tickets(client, world["token"], items, lang="fr").json
    assert "no party has this code" in en["rejections"][0]["message"]
    assert "not valid" in get_violations(client, "ssp_x").json["message"]


def test_posting_the_same_tickets_again_changes_nothing(app, client, world):
    items = [ticket("T1", carrier_signed="1", customer_signed="0",
                    delivered_at="2026-03-04 10:00"),
             ticket("T2", promised_at="2026-03-02 18:00", delivered_at="2026-03-04 09:12")]
    first = post_tickets(client, world["token"], items).json
    again = post_tickets(client, world["token"], items).json
    assert (first["created"], first["violations"]) == (2, 2)
    assert (again["created"], again["updated"], again["unchanged"], again["violations"]) == \
        (0, 0, 2, 0)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Violation).where(
            Violation.ticket_no.is_not(None))) == 2


def test_more_than_ten_thousand_tickets_is_413(app, client, world):
    items = [{"ticket_no": f"T{i}"} for i in range(10_001)]
    resp = post_tickets(client, world["token"], items)
    assert resp.status_code == 413
    assert resp.json["error"] == "too_many_tickets"
    assert (resp.json["limit"], resp.json["count"]) == (10_000, 10_001)
    assert "10000" in resp.json["message"] and "10001" in resp.json["message"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ImportBatch)) == 0


@pytest.mark.parametrize(("body", "content_type", "status", "code"), [
    ('{"tickets": [', "application/json", 400, "malformed_json"),
    ("", "application/json", 400, "malformed_json"),
    ('{"tickets": [{"order_value": NaN}]}', "application/json", 400, "malformed_json"),
    ("[1, 2]", "application/json", 400, "not_an_object"),
    ('{"rows": []}', "application/json", 400, "tickets_missing"),
    ('{"tickets": {"ticket_no": "T1"}}', "application/json", 400, "tickets_not_array"),
    ('{"tickets": []}', "application/json", 400, "tickets_empty"),
    ('{"tickets": [{"ticket_no": "T1"}]}', "text/plain", 415, "unsupported_media_type"),
])
def test_a_body_that_is_not_a_batch_of_tickets_is_refused(app, client, world, body,
                                                          content_type, status, code):
    resp = client.post(TICKETS, data=body, content_type=content_type,
                       headers=auth(world["token"]))
    assert resp.status_code == status and resp.json["error"] == code
    assert resp.json["message"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ImportBatch)) == 0


def test_a_body_over_the_size_limit_is_413_in_json(app, client, world):
    saved = app.config["MAX_CONTENT_LENGTH"]
    app.config["MAX_CONTENT_LENGTH"] = 200
    try:
        resp = post_tickets(client, world["token"], [ticket(f"T{i}") for i in range(10)])
    finally:
        app.config["MAX_CONTENT_LENGTH"] = saved
    assert resp.status_code == 413 and resp.json["error"] == "body_too_large"
    assert "200" in resp.json["message"]


def test_a_failure_inside_the_import_rolls_everything_back(app, client, world, monkeypatch):
    from portal.intake import importer

    def broken(*args, **kwargs):
        raise RuntimeError("engine down")

    monkeypatch.setattr(importer, "evaluate_batch", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    try:
        resp = post_tickets(client, world["token"], [ticket("T1")])
    finally:
        app.config["PROPAGATE_EXCEPTIONS"] = None
    assert resp.status_code == 500 and resp.json["error"] == "server_error"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Ticket)) == 0
        assert db.session.scalar(select(func.count()).select_from(ImportBatch)) == 0


# --- GET /api/v1/violations --------------------------------------------------------------------

@pytest.fixture
def violations(app, client, world):
    """Four proposals from tickets besides the ruled case's confirmed one:
    T1 C001 CAR-TKT §1 false feedback, incident 2026-03-04 (then dismissed);
    T2 C002 CAR-TKT §3 days late, incident 2026-03-02;
    T3 C001 CAR-TKT §2 answered late, incident 2026-03-10;
    T4 C001 CAR-TKT §2 unanswered, requested 2026-03-12 00:30 Shanghai (the 11th in UTC)."""
    body = post_tickets(client, world["token"], [
        ticket("T1", carrier_signed="1", customer_signed="0", delivered_at="2026-03-04 10:00"),
        ticket("T2", carrier_code="C002", promised_at="2026-03-02 18:00",
               delivered_at="2026-03-04 09:12"),
        ticket("T3", cs_request_at="2026-03-10 09:00", responded_at="2026-03-10 12:00"),
        ticket("T4", opened_at="2026-03-12 08:00", cs_request_at="2026-03-12 00:30"),
    ]).json
    assert body["violations"] == 4, body
    with app.app_context():
        ids = {v.ticket_no or "case": v.id for v in db.session.scalars(select(Violation))}
        db.session.get(Violation, ids["T1"]).status = ViolationStatus.DISMISSED
        db.session.commit()
    return ids


def listed(client, world, **params) -> list[str]:
    resp = get_violations(client, world["token"], **params)
    assert resp.status_code == 200, resp.json
    return [item["ticket_no"] or "case" for item in resp.json["items"]]


@pytest.mark.parametrize(("params", "expected"), [
    ({}, ["case", "T1", "T2", "T3", "T4"]),
    ({"party": "C002"}, ["T2"]),
    ({"party": "c001"}, ["case", "T1", "T3", "T4"]),
    ({"clause": "CAR-TKT §2"}, ["T3", "T4"]),
    ({"clause": "CAR-TKT v1 §2"}, ["T3", "T4"]),
    ({"clause": "CAR-DLV §1"}, ["case"]),
    ({"status": "proposed"}, ["T2", "T3", "T4"]),
    ({"status": "dismissed"}, ["T1"]),
    ({"status": "confirmed"}, ["case"]),
    ({"ticket": "T3"}, ["T3"]),
    ({"ticket": "T9"}, []),
    ({"from": "2026-03-02", "to": "2026-03-04"}, ["T1", "T2"]),
    ({"from": "2026-03-12", "to": "2026-03-12"}, ["T4"]),       # the day in Shanghai
    ({"to": "2026-03-11"}, ["T1", "T2", "T3"]),
    ({"from": "2026-03-05"}, ["case", "T3", "T4"]),
    ({"party": "C001", "clause": "CAR-TKT §2", "status": "proposed", "from": "2026-03-11"},
     ["T4"]),
])
def test_violations_filter(client, world, violations, params, expected):
    assert sorted(listed(client, world, **params)) == sorted(expected)


def test_a_violation_as_the_api_gives_it(client, world, violations):
    items = get_violations(client, world["token"], lang="en").json["items"]
    by_ticket = {i["ticket_no"] or "case": i for i in items}
    t2 = by_ticket["T2"]
    assert t2 == {
        "id": violations["T2"], "ticket_no": "T2", "order_no": "OT2", "party": {"code": "C002", "kind": "carrier"},
        "clause": {"code": "CAR-TKT §3", "label": "CAR-TKT v1 §3", "standard": "CAR-TKT",
                   "number": "3", "version": 1},
        "status": "proposed", "source": "rule", "customer_compensation": "10.00",
        "party_fine": "0.00", "points": 0, "case_number": None,
        "incident_at": "2026-03-02T10:00:00Z",
        "facts": {"check": "days_late", "from": "2026-03-02T10:00:00Z",
                  "to": "2026-03-04T01:12:00Z", "value": 2, "limit": None, "tier": 2,
                  "repeat_no": 1, "multiplier": "1.00", "order_value": "199.00",
                  "text": "promised 2026-03-02 18:00, delivered 2026-03-04 09:12: 2 days late"
                          " → tier 2; compensation ¥10.00"}}
    assert by_ticket["T1"]["party_fine"] == "500.00" and by_ticket["T1"]["points"] == 6
    assert "no answer as of" in by_ticket["T4"]["facts"]["text"]
    assert "answered 2026-03-10 12:00" in by_ticket["T3"]["facts"]["text"]
    case = by_ticket["case"]
    assert case["case_number"].startswith("CASE-") and case["source"] == "manual"
    assert case["order_no"] is None   # recorded by hand, no ticket
    assert case["clause"]["code"] == "CAR-DLV §1" and case["status"] == "confirmed"
    assert case["facts"]["text"] == "recorded by hand" and case["facts"]["check"] is None


def test_pages_follow_each_other_and_give_every_violation_once(app, client, world, violations):
    with app.app_context():
        db.session.add_all([Violation(**{**_copy_of(violations["T3"]), "ticket_no": None,
                                         "clause_number": f"x{i}"}) for i in range(6)])
        db.session.commit()
        every = db.session.scalars(select(Violation.id).order_by(Violation.id)).all()
        carrier_a = db.session.scalars(select(Violation.id).join(Violation.party).where(
            Violation.party.has(code="C001")).order_by(Violation.id)).all()
    seen, after, pages = [], None, 0
    while True:
        params = {"limit": 3} | ({"after": after} if after else {})
        body = get_violations(client, world["token"], **params).json
        seen += [item["id"] for item in body["items"]]
        pages += 1
        after = body["next"]
        if after is None:
            break
        assert len(body["items"]) == 3
    assert seen == every and len(every) == 11 and pages == 4
    second = get_violations(client, world["token"], party="C001", limit=2,
                            after=_cursor_after(client, world, party="C001", limit=2)).json
    assert [item["id"] for item in second["items"]] == carrier_a[2:4]


def _copy_of(violation_id: int) -> dict:
    v = db.session.get(Violation, violation_id)
    return {c.key: getattr(v, c.key) for c in Violation.__table__.columns if c.key != "id"}


def _cursor_after(client, world, **params) -> str:
    return get_violations(client, world["token"], **params).json["next"]


def test_a_page_is_read_in_a_fixed_number_of_queries(app, client, world, violations):
    statements = []

    def count(*args):
        statements.append(args[2])

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert len(get_violations(client, world["token"]).json["items"]) == 5
    finally:
        event.remove(engine, "before_cursor_execute", count)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) <= 3, selects       # the token, the page, the tickets


@pytest.mark.parametrize(("params", "parameter"), [
    ({"party": "C999"}, "party"),
    ({"clause": "CAR-TKT/2"}, "clause"),
    ({"clause": "CAR-TKT §9"}, "clause"),
    ({"clause": "CAR-TKT v2 §1"}, "clause"),
    ({"clause": "CAR-TKT version1 §1"}, "clause"),
    ({"status": "open"}, "status"),
    ({"from": "2026-02-30"}, "from"),
    ({"to": "March"}, "to"),
    ({"from": "2026-03-05", "to": "2026-03-01"}, "to"),
    ({"limit": "0"}, "limit"),
    ({"limit": "1001"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"after": "garbage!"}, "after"),
    ({"after": "djE6eA"}, "after"),               # "v1:x"
])
def test_a_bad_filter_is_400_naming_it(client, world, params, parameter):
    resp = get_violations(client, world["token"], lang="en", **params)
    assert resp.status_code == 400
    assert resp.json["error"] == "bad_parameter" and resp.json["parameter"] == parameter
    assert resp.json["message"].startswith(parameter)


# --- the OpenAPI document ----------------------------------------------------------------------

def test_the_openapi_document_is_valid_and_lists_every_ticket_field(client):
    from openapi_spec_validator import validate

    resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    doc = resp.json
    validate(doc)
    item = doc["components"]["schemas"]["TicketItem"]
    assert list(item["properties"]) == [f.name for f in TICKET_FIELDS]
    assert item["required"] == [f.name for f in TICKET_FIELDS if f.required]
    assert item["properties"]["order_value"]["description"].startswith(
        "Order value in yuan, not negative")
    assert item["properties"]["customer_signed"]["type"] == "boolean"
    assert set(doc["paths"]) == {"/tickets", "/violations", "/parties", "/openapi.json"}
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    zh = client.get("/api/v1/openapi.json", headers={"Accept-Language": "zh-CN"}).json
    validate(zh)
    assert zh["components"]["schemas"]["TicketItem"]["properties"]["ticket_no"][
        "description"] != item["properties"]["ticket_no"]["description"]


# --- the CLI -----------------------------------------------------------------------------------

def test_the_cli_issues_a_token_that_opens_the_api_lists_and_revokes_it(app, client):
    with app.test_request_context():
        build_world(with_case=False)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["tokens", "issue", "Data warehouse", "--user", "cs.admin",
                                 "--lang", "en"])
    assert result.exit_code == 0, result.output
    plaintext = result.stdout.strip()
    assert plaintext.startswith("ssp_") and "\n" not in plaintext
    assert "will not be shown again" in result.stderr and plaintext not in result.stderr
    assert get_violations(client, plaintext).status_code == 200
    listing = runner.invoke(args=["tokens", "list", "--lang", "en"]).stdout
    assert plaintext[:12] in listing and "Data warehouse" in listing and "active" in listing
    assert plaintext not in listing
    again = runner.invoke(args=["tokens", "issue", "Data warehouse", "--lang", "en"])
    assert again.exit_code != 0 and "already named" in again.output
    nobody = runner.invoke(args=["tokens", "issue", "X", "--user", "nobody", "--lang", "en"])
    assert nobody.exit_code != 0 and "nobody" in nobody.output
    revoked = runner.invoke(args=["tokens", "revoke", plaintext[:12], "--lang", "en"])
    assert revoked.exit_code == 0 and "revoked" in revoked.stdout
    assert get_violations(client, plaintext).status_code == 401
    twice = runner.invoke(args=["tokens", "revoke", plaintext[:12], "--lang", "en"])
    assert twice.exit_code != 0 and "already revoked" in twice.output
    with app.app_context():
        (ev,) = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "api_token.issued"))
        assert ev.actor_name == "cs.admin"


# --- the admin page ----------------------------------------------------------------------------

def admin_browser(make_browser):
    browser = make_browser()
    browser.login(username("cs_admin"), PASSWORD)
    english(browser)
    return browser


def test_the_admin_page_shows_a_new_token_once(app, world, make_browser):
    browser = admin_browser(make_browser)
    browser.get("/admin/api-tokens/")
    resp = browser.post("/admin/api-tokens/", {"name": "Reporting"})
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    plaintext = re.search(r"ssp_[A-Za-z0-9_-]{43}", page).group(0)
    assert page.count(plaintext) == 1 and "will not be shown again" in page
    assert "no-store" in resp.headers["Cache-Control"]
    with browser.client.session_transaction() as session:
        assert plaintext not in json.dumps(dict(session), default=str)
    later = browser.get("/admin/api-tokens/").get_data(as_text=True)
    assert plaintext not in later and plaintext[:12] in later and "Reporting" in later
    with app.app_context():
        assert db.session.scalar(select(ApiToken).where(ApiToken.name == "Reporting")) \
            .token_hash == hashlib.sha256(plaintext.encode()).hexdigest()


def test_the_admin_page_refuses_a_duplicate_name_beside_the_field(app, world, make_browser):
    browser = admin_browser(make_browser)
    browser.get("/admin/api-tokens/")
    resp = browser.post("/admin/api-tokens/", {"name": "Ticketing system"})
    assert resp.status_code == 400
    assert "already named Ticketing system" in resp.get_data(as_text=True)
    assert "ssp_" not in re.sub(r"<code>ssp_[\w-]{8}…</code>", "", resp.get_data(as_text=True))


def test_revoking_on_the_admin_page(app, client, world, make_browser):
    token_id, plaintext = issue(app)
    browser = admin_browser(make_browser)
    browser.get("/admin/api-tokens/")
    resp = browser.post(f"/admin/api-tokens/{token_id}/revoke")
    assert resp.status_code == 302
    page = browser.get("/admin/api-tokens/").get_data(as_text=True)
    assert "revoked: it no longer opens the API" in page and "Revoked" in page
    assert get_violations(client, plaintext).status_code == 401
    assert get_violations(client, world["token"]).status_code == 200
    browser.post(f"/admin/api-tokens/{token_id}/revoke")
    assert "already revoked" in browser.get("/admin/api-tokens/").get_data(as_text=True)


@pytest.mark.parametrize("who", ["cs_supervisor", "cs_officer", "auditor", "staff_a"])
def test_only_a_cs_admin_manages_tokens(app, world, make_browser, who):
    token_id, _plaintext = issue(app)
    browser = make_browser()
    browser.login(username(who), PASSWORD)
    assert browser.get("/admin/api-tokens/").status_code == 403
    assert browser.post("/admin/api-tokens/", {"name": "Sneaky"}).status_code == 403
    assert browser.post(f"/admin/api-tokens/{token_id}/revoke").status_code == 403
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ApiToken)) == 2
        assert db.session.scalar(select(func.count()).select_from(ApiToken).where(
            ApiToken.revoked_at.is_not(None))) == 0
