"""The CS review queue of proposed violations and the follow-up queue (跟单) of late shipments:
filters, confirm / merge / dismiss (one transaction, refused if someone acted first), one
compensation per order, who may see and act, chasing late shipments; the clause form's check."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select, update

from portal.cases.models import Case, CaseParty, CaseStatus, Violation, ViolationStatus
from portal.cases.services import open_case
from portal.core.audit import AuditEvent, acting_as
from portal.core.db import utcnow
from portal.core.errors import ServiceError
from portal.extensions import db
from portal.intake import followup, review
from portal.intake.models import Chase
from portal.standards.models import Clause
from tests.factories import PASSWORD, build_world, username
from tests.helpers import english, row_counts
from tests.test_intake import proposals, rulebook, run, ticket
from tests.test_training import _user


def _tickets():
    return [
        # false feedback on C001: fine ¥500 + 6 points
        ticket("T1", carrier_signed="1", customer_signed="0", delivered_at="2026-03-04 10:00"),
        # two tickets of one order, both late: C001 2 days (¥10), C002 1 day (¥5)
        ticket("T2", order_no="OX", promised_at="2026-03-02 18:00",
               delivered_at="2026-03-04 09:12"),
        ticket("T3", order_no="OX", carrier_code="C002", promised_at="2026-03-02 18:00",
               delivered_at="2026-03-03 09:00"),
        # a CS request to C002 answered after 3 hours: fine ¥50
        ticket("T4", carrier_code="C002", cs_request_at="2026-03-03 09:00",
               responded_at="2026-03-03 12:00"),
    ]


@pytest.fixture
def queue(app):
    """build_world (with its ruled case) + the CAR-TKT rulebook + four tickets proposing four
    violations; T1 and T4 have waited five days."""
    with app.test_request_context():
        world = build_world()
        std = rulebook()
        db.session.commit()
        run(_tickets())
        v = {p.ticket_no: p.id for p in proposals()}
        db.session.execute(update(Violation).where(Violation.id.in_([v["T1"], v["T4"]]))
                           .values(recorded_at=utcnow() - timedelta(days=5)))
        db.session.commit()
        return SimpleNamespace(world=world, v=v, std=std.id)


def officer(make_browser, who="cs_officer"):
    b = make_browser()
    b.login(username(who), PASSWORD)
    english(b)
    return b


def listed(b, query="") -> list[str]:
    """The tickets the queue lists, in order (read from the selection boxes)."""
    page = b.get("/intake/review" + query).get_data(as_text=True)
    ids = [int(i) for i in re.findall(r'name="ids" value="(\d+)"', page)]
    with b.app.app_context():
        by_id = dict(db.session.execute(select(Violation.id, Violation.ticket_no)).all())
    return [by_id[i] for i in ids]


def violation(app, vid) -> Violation:
    with app.app_context():
        v = db.session.get(Violation, vid)
        db.session.expunge(v)
        return v


def events(app, action) -> list[AuditEvent]:
    with app.app_context():
        return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                  .order_by(AuditEvent.id)).all()


# --- the queue and its filters -------------------------------------------------------------

def test_the_queue_lists_proposals_oldest_first_with_their_facts(queue, make_browser):
    b = officer(make_browser)
    assert listed(b) == ["T1", "T4", "T2", "T3"]
    page = b.get("/intake/review").get_data(as_text=True)
    assert "promised 2026-03-02 18:00, delivered 2026-03-04 09:12: 2 days late → tier 2" in page
    assert "CAR-TKT §1" in page and "¥500.00" in page and "5 days" in page


@pytest.mark.parametrize(("query", "expected"), [
    ("?kind=carrier", ["T1", "T4", "T2", "T3"]),
    ("?kind=merchant", []),
    ("?party=C002", ["T4", "T3"]),
    ("?party=顺丰", ["T1", "T2"]),                          # part of C001's name
    ("?clause={std}:3", ["T2", "T3"]),                     # CAR-TKT §3, days late
    ("?clause={std}:1", ["T1"]),
    ("?min=10", ["T1", "T4", "T2"]),                       # fine + compensation >= ¥10
    ("?min=50.01", ["T1"]),
    ("?age=3", ["T1", "T4"]),                              # waiting more than 3 days
    ("?q=T3", ["T3"]),                                     # a ticket number
    ("?q=OX", ["T2", "T3"]),                               # an order number
    ("?sort=amount", ["T1", "T4", "T2", "T3"]),
    ("?sort=amount&party=C002&min=1", ["T4", "T3"]),
])
def test_the_queue_filters(queue, make_browser, query, expected):
    assert listed(officer(make_browser), query.format(std=queue.std)) == expected


def test_a_filter_that_cannot_be_read_is_said_and_ignored(queue, make_browser):
    b = officer(make_browser)
    resp = b.get("/intake/review?min=lots&age=-2")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "Enter an amount in yuan" in page and "Enter a whole number of days" in page
    assert len(listed(b, "?min=lots")) == 4


def test_the_count_stops_at_the_cap(queue, monkeypatch, ctx):
    monkeypatch.setattr(review, "COUNT_CAP", 2)
    page = review.queue_page(review.QueueFilters(), 1, UTC, per_page=1)
    assert page.has_next and page.capped and page.pages == 2
    assert [r.violation.ticket_no for r in page.items] == ["T1"]


def test_the_queue_flags_another_compensation_on_the_same_order(queue, make_browser):
    page = officer(make_browser).get("/intake/review?q=OX").get_data(as_text=True)
    assert page.count("Another compensation on this order") == 2
    assert "T3 (proposed, ¥5.00)" in page and "T2 (proposed, ¥10.00)" in page


# --- confirm, merge, dismiss ---------------------------------------------------------------

def test_confirm_opens_a_case_with_the_violation(app, queue, make_browser):
    b = officer(make_browser)
    resp = b.post("/intake/review/confirm?party=C001", {"one": queue.v["T2"]})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/intake/review?party=C001")
    v = violation(app, queue.v["T2"])
    assert v.status is ViolationStatus.CONFIRMED and v.reviewed_at is not None
    with app.app_context():
        case = db.session.get(Case, v.case_id)
        assert case.status is CaseStatus.OPEN and [x.id for x in case.violations] == [v.id]
        assert case.incident_at == v.incident_at                  # the promised time
        assert "T2" in case.title and "CAR-TKT §3" in case.title
        assert "2 days late" in case.description
        assert v.reviewed_by_id == _user("cs_officer").id
        assert [p.party_id for p in db.session.scalars(select(CaseParty).where(
            CaseParty.case_id == case.id))] == [v.party_id]     # the party now sees the case
    assert f"Case {case.number} opened with 1 violation." in b.get("/intake/review").get_data(
        as_text=True)
    assert listed(b) == ["T1", "T4", "T3"]
    assert [e.object_id for e in events(app, "violation.confirmed")] == [str(v.id)]
    assert events(app, "case.opened")[-1].object_id == str(case.id)


def test_confirming_several_opens_one_case(app, queue, make_browser):
    b = officer(make_browser)
    with app.app_context():
        cases_before = db.session.scalar(select(func.count()).select_from(Case))
    resp = b.post("/intake/review/confirm", {"ids": [queue.v["T1"], queue.v["T4"]]})
    assert resp.status_code == 302
    t1, t4 = violation(app, queue.v["T1"]), violation(app, queue.v["T4"])
    assert t1.case_id == t4.case_id is not None
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Case)) == cases_before + 1
        case = db.session.get(Case, t1.case_id)
        assert case.incident_at == min(t1.incident_at, t4.incident_at)
        assert "T1" in case.title and "T4" in case.title
    assert len(events(app, "violation.confirmed")) == 2


def test_merge_into_an_open_case(app, queue, make_browser):
    with app.test_request_context():
        officer_user = _user("cs_officer")
        with acting_as(officer_user):
            case = open_case(title="同一订单投诉", description="", user=officer_user,
                             incident_at=datetime(2026, 3, 3, tzinfo=UTC))
        db.session.commit()
        case_id, number, version = case.id, case.number, case.version
    b = officer(make_browser)
    resp = b.post("/intake/review/merge", {"ids": [queue.v["T2"], queue.v["T3"]],
                                           "case_no": number.lower()})
    assert resp.status_code == 302
    for t in ("T2", "T3"):
        v = violation(app, queue.v[t])
        assert (v.case_id, v.status) == (case_id, ViolationStatus.CONFIRMED)
    with app.app_context():
        assert db.session.get(Case, case_id).version > version   # a ruling in flight fails
        assert set(db.session.scalars(select(CaseParty.party_id).where(
            CaseParty.case_id == case_id))) == {violation(app, queue.v[t]).party_id
                                                for t in ("T2", "T3")}
    merged = events(app, "violation.merged")
    assert len(merged) == 2 and number in merged[0].after
    assert "2 violations merged into case" in b.get("/intake/review").get_data(as_text=True)


@pytest.mark.parametrize("which", ["ruled", "unknown"])
def test_merge_into_a_ruled_or_unknown_case_is_refused(app, queue, make_browser, which):
    b = officer(make_browser)
    before = row_counts(app)
    number = f"CASE-{queue.world.case:06d}" if which == "ruled" else "CASE-999999"
    resp = b.post("/intake/review/merge", {"ids": [queue.v["T1"]], "case_no": number})
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert ("is already ruled" if which == "ruled" else "No case has the number") in page
    assert row_counts(app) == before
    assert violation(app, queue.v["T1"]).status is ViolationStatus.PROPOSED


def test_dismiss_needs_a_reason(app, queue, make_browser):
    b = officer(make_browser)
    before = row_counts(app)
    resp = b.post("/intake/review/dismiss", {"ids": [queue.v["T4"]], "reason": "  "})
    assert resp.status_code == 400 and "Give the reason for dismissing" in resp.get_data(
        as_text=True)
    assert row_counts(app) == before
    resp = b.post("/intake/review/dismiss", {"ids": [queue.v["T4"]],
                                             "reason": "请求在系统故障期间发出,已核实"})
    assert resp.status_code == 302
    v = violation(app, queue.v["T4"])
    assert v.status is ViolationStatus.DISMISSED and v.dismiss_reason.startswith("请求在系统故障")
    assert v.case_id is None
    (event,) = events(app, "violation.dismissed")
    assert "系统故障" in event.after


def test_nothing_selected_is_refused(queue, make_browser):
    resp = officer(make_browser).post("/intake/review/confirm", {})
    assert resp.status_code == 400
    assert "Select at least one proposed violation." in resp.get_data(as_text=True)


def test_acting_on_an_already_reviewed_violation_is_refused_and_changes_nothing(
        app, queue, make_browser):
    first, second = officer(make_browser), officer(make_browser, "cs_supervisor")
    assert first.post("/intake/review/dismiss", {"ids": [queue.v["T1"]],
                                                 "reason": "重复投诉"}).status_code == 302
    before = row_counts(app)
    for url, data in [("/intake/review/confirm", {}),
                      ("/intake/review/dismiss", {"reason": "另一理由"}),
                      ("/intake/review/merge", {"case_no": "1"})]:
        resp = second.post(url, {"ids": [queue.v["T1"], queue.v["T2"]], **data})
        assert resp.status_code == 400, url
        assert "Already reviewed or withdrawn meanwhile: T1" in resp.get_data(as_text=True)
    assert row_counts(app) == before
    assert violation(app, queue.v["T2"]).status is ViolationStatus.PROPOSED
    assert violation(app, queue.v["T1"]).dismiss_reason == "重复投诉"


def test_a_proposal_withdrawn_by_a_re_import_is_refused(app, queue, make_browser):
    b = officer(make_browser)
    b.get("/intake/review")
    with app.test_request_context():                  # T3 delivered on time after all
        run([ticket("T3", order_no="OX", carrier_code="C002", promised_at="2026-03-02 18:00",
                    delivered_at="2026-03-02 17:00")])
    before = row_counts(app)
    resp = b.post("/intake/review/confirm", {"ids": [queue.v["T2"], queue.v["T3"]]})
    assert resp.status_code == 400
    assert "1 withdrawn by a re-import" in resp.get_data(as_text=True)
    assert row_counts(app) == before


def test_the_claim_itself_refuses_a_row_reviewed_after_it_was_read(queue, ctx):
    """The last guard, for a race the row lock cannot cover (SQLite): the UPDATE only takes
    rows still proposed."""
    vs = db.session.scalars(select(Violation).where(Violation.id == queue.v["T1"])).all()
    db.session.execute(update(Violation).where(Violation.id == queue.v["T1"])
                       .values(status=ViolationStatus.DISMISSED))
    with pytest.raises(ServiceError, match="Already reviewed|已被他人处理"):
        review._claim(vs, status=ViolationStatus.DISMISSED)


def test_a_second_compensation_on_the_same_order_is_zeroed(app, queue, make_browser):
    b = officer(make_browser)
    assert b.post("/intake/review/confirm", {"one": queue.v["T2"]}).status_code == 302
    assert b.post("/intake/review/confirm", {"one": queue.v["T3"]}).status_code == 302
    page = b.get("/intake/review").get_data(as_text=True)
    assert ("Order OX is already compensated on ticket T2: the compensation of ¥5.00 on ticket "
            "T3 was set to ¥0.00 (one compensation per order).") in page
    assert violation(app, queue.v["T2"]).customer_compensation == Decimal("10.00")
    assert violation(app, queue.v["T3"]).customer_compensation == Decimal("0.00")
    last = events(app, "violation.confirmed")[-1]
    assert '"compensation_withheld": "5.00"' in last.after and '"compensated_on": "T2"' in last.after


def test_in_one_selection_the_first_compensation_of_an_order_is_kept(app, queue, make_browser):
    b = officer(make_browser)
    assert b.post("/intake/review/confirm", {"ids": [queue.v["T3"], queue.v["T2"]]}
                  ).status_code == 302
    assert violation(app, queue.v["T2"]).customer_compensation == Decimal("10.00")
    assert violation(app, queue.v["T3"]).customer_compensation == Decimal("0.00")


def _in_parallel(app, first, second):
    """Run ``first`` and, once it holds its locks, ``second``, each in its own transaction;
    ``first`` commits a moment later. Returns what each returned or raised."""
    import threading

    held, out = threading.Event(), {}

    def run(name, action, after=None):
        with app.test_request_context():
            try:
                with acting_as(_user("cs_officer")):
                    out[name] = action()
                if after:
                    after()
                db.session.commit()
            except ServiceError as err:
                out[name] = err
                db.session.rollback()
            finally:
                held.set()
                db.session.remove()

    def hold():
        held.set()
        threading.Event().wait(0.5)

    a = threading.Thread(target=run, args=("first", first, hold))
    a.start()
    held.wait(10)
    held.clear()
    b = threading.Thread(target=run, args=("second", second))
    b.start()
    a.join(10)
    b.join(10)
    return out["first"], out["second"]


needs_postgresql = pytest.mark.skipif(
    __import__("tests.conftest", fromlist=["BACKEND"]).BACKEND != "postgresql",
    reason="concurrent writers: SQLite has one writer at a time")


@needs_postgresql
def test_two_officers_confirming_one_proposal_at_once_succeed_once(app, queue):
    def confirm():
        return review.confirm([queue.v["T1"]], user=_user("cs_officer"), tz=UTC)

    first, second = _in_parallel(app, confirm, confirm)
    assert isinstance(first, review.Reviewed) and isinstance(second, ServiceError)
    assert "已被他人处理" in second.message or "Already reviewed" in second.message
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Case)) == 2   # world's + 1


@needs_postgresql
@pytest.mark.parametrize("verb", ["confirm", "merge"])
def test_two_tickets_of_one_order_confirmed_at_once_pay_once(app, queue, verb):
    with app.test_request_context():                  # merge: each into its own open case
        cases = [open_case(title=f"案件{n}", description="", user=_user("cs_officer"),
                           incident_at=datetime(2026, 3, 3, tzinfo=UTC)).number
                 for n in (1, 2)]
        db.session.commit()

    def act(ticket_no, case_no):
        if verb == "confirm":
            return lambda: review.confirm([queue.v[ticket_no]], user=_user("cs_officer"),
                                          tz=UTC)
        return lambda: review.merge([queue.v[ticket_no]], case_no, user=_user("cs_officer"))

    first, second = _in_parallel(app, act("T2", cases[0]), act("T3", cases[1]))
    assert not first.zeroed and [z.paid_on for z in second.zeroed] == ["T2"]
    assert violation(app, queue.v["T3"]).customer_compensation == Decimal("0.00")


# --- who may see and act ---------------------------------------------------------------------

@pytest.mark.parametrize("who", ["staff_a", "carrier_manager", "merchant_staff", "dept_manager",
                                 "hr_officer"])
def test_party_staff_and_hr_get_403(queue, make_browser, who):
    b = officer(make_browser, who)
    for url in ("/intake/review", "/intake/follow-up",
                f"/intake/follow-up/{queue.world.carrier_a}"):
        assert b.get(url).status_code == 403, url
    assert b.post("/intake/review/confirm", {"one": queue.v["T1"]}).status_code == 403
    assert b.post(f"/intake/follow-up/{queue.world.carrier_a}/chase",
                  {"ticket_no": "T1", "note": "x"}).status_code == 403


def test_auditors_see_the_queues_without_buttons(app, queue, make_browser):
    b = officer(make_browser, "auditor")
    page = b.get("/intake/review").get_data(as_text=True)
    assert "T1" in page and "¥500.00" in page
    assert 'name="ids"' not in page and "formaction" not in page and 'method="post" action="/intake' not in page
    assert b.post("/intake/review/confirm", {"one": queue.v["T1"]}).status_code == 403
    carrier_page = b.get(f"/intake/follow-up/{queue.world.carrier_a}").get_data(as_text=True)
    assert "/chase" not in carrier_page
    assert violation(app, queue.v["T1"]).status is ViolationStatus.PROPOSED


# --- the follow-up queue (跟单) ----------------------------------------------------------------

def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def late(app):
    """C001: L1 promised 3 days ago and L2 2 hours ago, not delivered; F1 promised tomorrow;
    D1 late but delivered; N1 promised nothing. C002: L3 promised a day ago."""
    now = utcnow()
    with app.test_request_context():
        world = build_world(with_case=False)
        rulebook()
        db.session.commit()
        run([ticket("L1", promised_at=_iso(now - timedelta(days=3))),
             ticket("L2", promised_at=_iso(now - timedelta(hours=2))),
             ticket("F1", promised_at=_iso(now + timedelta(days=1))),
             ticket("D1", promised_at=_iso(now - timedelta(days=3)),
                    delivered_at=_iso(now - timedelta(days=1))),
             ticket("N1"),
             ticket("L3", carrier_code="C002", promised_at=_iso(now - timedelta(days=1, hours=1)))])
    return world


def test_follow_up_lists_only_undelivered_past_promise_tickets_per_carrier(late, make_browser):
    b = officer(make_browser)
    summary = b.get("/intake/follow-up").get_data(as_text=True)
    rows = re.findall(r'<tr><td><a href="/intake/follow-up/(\d+)">(C\d+)</a>.*?</td>\s*'
                      r'<td class="num">(\d+)</td>', summary, re.DOTALL)
    assert [(code, int(n)) for _id, code, n in rows] == [("C001", 2), ("C002", 1)]
    assert "3 days" in summary
    page = b.get(f"/intake/follow-up/{late.carrier_a}").get_data(as_text=True)
    listed_here = re.findall(r'<tr id="t-(\w+)">', page)
    assert listed_here == ["L1", "L2"]                     # oldest promise first
    # L2 was promised two hours ago: 0 days late, or 1 when local midnight fell in between
    from zoneinfo import ZoneInfo

    shanghai = ZoneInfo("Asia/Shanghai")
    now = utcnow()
    l2_days = ((now.astimezone(shanghai).date()
                - (now - timedelta(hours=2)).astimezone(shanghai).date()).days)
    assert "Not chased yet" in page and "3 days" in page
    assert (f"{l2_days} days" if l2_days != 1 else "1 day") in page
    csv = b.get(f"/intake/follow-up/{late.carrier_a}?format=csv").get_data(as_text=True)
    assert csv.splitlines()[1].startswith("L1,OL1,") and len(csv.splitlines()) == 3
    assert "C001" in b.get("/intake/follow-up?format=csv").get_data(as_text=True)


def test_a_chase_is_recorded_with_an_audit_event(app, late, make_browser):
    b = officer(make_browser)
    url = f"/intake/follow-up/{late.carrier_a}/chase"
    resp = b.post(url, {"ticket_no": "L1", "note": "已电话联系配送站,承诺今日送达"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("#t-L1")
    with app.app_context():
        (chase,) = db.session.scalars(select(Chase)).all()
        assert (chase.ticket_no, chase.user.username) == ("L1", "cs.officer")
    (event,) = events(app, "ticket.chased")
    assert "承诺今日送达" in event.after and event.actor_name == "cs.officer"
    page = b.get(f"/intake/follow-up/{late.carrier_a}").get_data(as_text=True)
    assert "Chase recorded for ticket L1." in page and "承诺今日送达" in page
    assert b.post(url, {"ticket_no": "L1", "note": "再次催办"}).status_code == 302
    page = b.get(f"/intake/follow-up/{late.carrier_a}").get_data(as_text=True)
    assert "再次催办" in page and "(2 chases in all)" in page and "承诺今日送达" not in page
    summary = b.get("/intake/follow-up").get_data(as_text=True)
    chased_today = r'>C001</a>.*?<td class="num">1</td></tr>'
    assert re.search(chased_today, summary, re.DOTALL)


def test_a_chase_needs_a_note_and_a_late_ticket_of_that_carrier(app, late, make_browser):
    b = officer(make_browser)
    url = f"/intake/follow-up/{late.carrier_a}/chase"
    before = row_counts(app)
    resp = b.post(url, {"ticket_no": "L1", "note": ""})
    assert resp.status_code == 400 and "Say what was done" in resp.get_data(as_text=True)
    assert b.post(url, {"ticket_no": "L1", "note": "x" * 501}).status_code == 400
    resp = b.post(url, {"ticket_no": "D1", "note": "催"})
    assert resp.status_code == 400 and "delivered meanwhile" in resp.get_data(as_text=True)
    assert b.post(url, {"ticket_no": "L3", "note": "催"}).status_code == 404   # C002's
    assert row_counts(app) == before


def test_days_late_of_a_late_shipment_count_in_the_customers_zone():
    promised = datetime(2026, 3, 2, 17, 30, tzinfo=UTC)   # 23:30 on the 2nd in Urumqi (UTC+6)
    now = datetime(2026, 3, 2, 19, 0, tzinfo=UTC)         # 01:00 on the 3rd in Urumqi
    assert followup.lateness(promised, "Asia/Urumqi", now).days == 1
    assert followup.lateness(promised, "", now).days == 0   # Shanghai: 01:30 to 03:00 on the 3rd
    assert followup.lateness(promised, "", now).hours == 1


# --- the clause form's rule-engine check -------------------------------------------------------

def _draft_version(b) -> int:
    resp = b.post("/standards/new", {"code": "CAR-NEW", "title_zh": "配送新标准",
                                     "audience": ["carrier"], "effective_from": "2026-01-01"})
    return int(resp.headers["Location"].rsplit("/", 1)[1])


TIERS = ('[[rules]]\nkind = "tiered"\nmeasure = "days_late"\n[[rules.tiers]]\nfrom = 1\n'
         'compensation = "5.00"\n')


@pytest.mark.parametrize(("check", "fine", "rules", "saved"), [
    ("false_feedback", "500", "", "false_feedback"),
    ("", "", TIERS, "days_late"),                 # blank: what the rules imply
    ("none", "", TIERS, ""),                      # explicitly not checked
    ("", "20", "", ""),
])
def test_the_clause_form_saves_the_check(app, make_browser, check, fine, rules, saved):
    with app.test_request_context():
        build_world(with_case=False)
    b = officer(make_browser, "cs_admin")
    vid = _draft_version(b)
    form = b.get(f"/standards/versions/{vid}").get_data(as_text=True)
    assert '<option value="days_late">Days late: delivered after the promised day</option>' in form
    resp = b.post(f"/standards/versions/{vid}/clauses", {
        "number": "1", "title_zh": "条款", "body": "正文", "fine": fine, "rules": rules,
        "check": check})
    assert resp.status_code == 302
    with app.app_context():
        assert db.session.scalar(select(Clause.check).where(
            Clause.standard_version_id == vid)) == saved


def test_a_check_the_rules_cannot_serve_is_refused(app, make_browser):
    with app.test_request_context():
        build_world(with_case=False)
    b = officer(make_browser, "cs_admin")
    vid = _draft_version(b)
    before = row_counts(app)
    resp = b.post(f"/standards/versions/{vid}/clauses", {
        "number": "1", "title_zh": "条款", "body": "正文", "fine": "50", "check": "days_late"})
    assert resp.status_code == 400
    assert "The days-late check needs a tiered rule" in resp.get_data(as_text=True)
    assert row_counts(app) == before
