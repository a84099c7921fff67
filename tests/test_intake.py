"""Complaint intake and the rule engine: each definition in DOMAIN.md at its boundaries, rules
in force at the incident, escalation on confirmed repeats, idempotent imports, bad rows."""
from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal.cases.models import Violation, ViolationStatus
from portal.core.audit import acting_as
from portal.extensions import db
from portal.intake import services
from portal.intake.fields import TICKET_NAMES
from portal.intake.models import BatchKind, BatchSource, ImportBatch, ShipmentVolume, Ticket
from portal.standards.services import add_clause, create_standard, new_draft
from tests.factories import build_world, publish_reviewed
from tests.test_training import _user

TIERS = [{"kind": "tiered", "measure": "days_late", "tiers": [
    {"from": 1, "to": 1, "compensation": "5.00"},
    {"from": 2, "to": 2, "compensation": "10.00"},
    {"from": 3, "compensation": "order_value", "minimum": "10.00"}]}]


def rulebook(effective=date(2026, 1, 1)):
    """CAR-TKT for carriers: false feedback ¥500 + 6 points (x2 from the 3rd in 30 days),
    2-hour answer ¥50, days-late tiers ¥5 / ¥10 / the order value (at least ¥10)."""
    admin, sup = _user("cs_admin"), _user("cs_supervisor")
    with acting_as(admin):
        std = create_standard(code="CAR-TKT", title_zh="配送工单规则", audience=["carrier"],
                              effective_from=effective, author=admin)
        v = std.versions[0]
        add_clause(v, number="1", title_zh="虚假签收", fine="500", check="false_feedback",
                   rules=[{"kind": "points", "points": 6},
                          {"kind": "escalation", "nth": 3, "window_days": 30,
                           "multiplier": "2"}])
        add_clause(v, number="2", title_zh="两小时响应",
                   rules=[{"kind": "time_limit", "limit_minutes": 120, "amount": "50"}])
        add_clause(v, number="3", title_zh="延误赔付", rules=TIERS)
        db.session.flush()
    publish_reviewed(v, admin, sup)
    return std


@pytest.fixture
def world(ctx):
    build_world(with_case=False)
    std = rulebook()
    db.session.commit()
    return std


def ticket(no, **kw) -> dict:
    row = {"ticket_no": no, "order_no": "O" + no, "carrier_code": "C001", "order_value": "199.00",
           "opened_at": "2026-03-05 10:00"}
    row.update(kw)
    return row


def run(rows: list[dict], kind=BatchKind.TICKETS) -> ImportBatch:
    out = io.StringIO()
    names = TICKET_NAMES if kind is BatchKind.TICKETS else ["party_code", "day", "orders"]
    w = csv.DictWriter(out, fieldnames=names)
    w.writeheader()
    w.writerows(rows)
    batch = services.run_import(out.getvalue().encode(), "t.csv", kind, BatchSource.CLI)
    db.session.commit()
    return batch


def proposals(no=None) -> list[Violation]:
    q = select(Violation).where(Violation.ticket_no.is_not(None)).order_by(Violation.ticket_no,
                                                                           Violation.clause_number)
    if no:
        q = q.where(Violation.ticket_no == no)
    return db.session.scalars(q).all()


# --- days late: calendar days in the customer's zone, tiers --------------------------------

@pytest.mark.parametrize(("delivered", "days", "comp"), [
    ("2026-03-02 23:59", 0, None),            # the promised day itself, one minute before midnight
    ("2026-03-03 00:01", 1, "5.00"),          # the next calendar day, two minutes later
    ("2026-03-04 09:12", 2, "10.00"),
    ("2026-03-05 08:00", 3, "199.00"),        # 3 days or more: the order value
    ("2026-03-01 12:00", 0, None),            # early
])
def test_days_late_are_calendar_days_in_the_customers_zone(world, delivered, days, comp):
    run([ticket("T1", promised_at="2026-03-02 18:00", delivered_at=delivered)])
    t = db.session.get(Ticket, "T1")
    assert t.days_late == days
    found = proposals("T1")
    if comp is None:
        assert found == []
    else:
        (v,) = found
        assert v.check == "days_late" and v.customer_compensation == Decimal(comp)
        assert v.party_fine == Decimal("0.00") and v.fact_value == days and v.tier_no == days


def test_the_free_package_tier_pays_at_least_the_minimum(world):
    run([ticket("T1", order_value="3.50", promised_at="2026-03-02 18:00",
                delivered_at="2026-03-09 10:00")])
    assert proposals("T1")[0].customer_compensation == Decimal("10.00")


def test_a_customer_in_another_zone_counts_days_in_that_zone(world):
    # 2026-03-02 23:30 in Urumqi (UTC+6) is 2026-03-03 01:30 in Shanghai: same day for the
    # customer, a day late by Shanghai's calendar
    run([ticket("T1", customer_tz="Asia/Urumqi", promised_at="2026-03-02 20:00",
                delivered_at="2026-03-02 23:30")])
    assert db.session.get(Ticket, "T1").days_late == 0
    run([ticket("T2", promised_at="2026-03-02T20:00:00+08:00",
                delivered_at="2026-03-02T18:30:00Z")])     # 02:30 on the 3rd in Shanghai
    assert db.session.get(Ticket, "T2").days_late == 1


def test_not_delivered_is_not_compensated(world):
    run([ticket("T1", promised_at="2026-03-02 18:00")])
    assert db.session.get(Ticket, "T1").days_late is None and proposals() == []


# --- response time: elapsed, more than the limit ---------------------------------------------

@pytest.mark.parametrize(("answered", "breach"), [
    ("2026-03-03 11:00", False),              # exactly 2 h
    ("2026-03-03 11:00:01", True),            # 2 h and a second
    ("2026-03-03 11:01", True),               # 2 h 1 min
])
def test_a_request_answered_after_two_hours_is_a_breach(world, answered, breach):
    run([ticket("T1", cs_request_at="2026-03-03 09:00", responded_at=answered)])
    found = proposals("T1")
    assert bool(found) is breach
    if breach:
        assert found[0].party_fine == Decimal("50.00") and found[0].fact_limit == 7200


def test_an_unanswered_request_is_judged_as_of_the_import(world):
    run([ticket("T1", cs_request_at="2026-03-03 09:00")])
    (v,) = proposals("T1")
    assert v.check == "response_time" and v.fact_value > 7200


def test_an_answer_before_the_request_is_a_bad_row(world):
    batch = run([ticket("T1", cs_request_at="2026-03-03 09:00", responded_at="2026-03-03 08:00")])
    assert batch.rejected == 1 and batch.rejections[0].reason == "response_before_request"


# --- false feedback ---------------------------------------------------------------------------

def test_false_feedback_fines_the_carrier_and_pays_the_customer_nothing(world):
    run([ticket("T1", carrier_signed="1", customer_signed="0", delivered_at="2026-03-04 10:00"),
         ticket("T2", carrier_signed="1", customer_signed="否", proxy_signed="是",
                delivered_at="2026-03-04 10:00"),
         ticket("T3", carrier_signed="1", customer_signed="1")])
    (v,) = proposals()
    assert (v.ticket_no, v.party_fine, v.customer_compensation, v.points) == \
        ("T1", Decimal("500.00"), Decimal("0.00"), 6)
    assert v.party.code == "C001" and v.status is ViolationStatus.PROPOSED


def test_the_third_confirmed_breach_in_30_days_doubles_the_fine(world):
    run([ticket(f"T{i}", carrier_signed="1", customer_signed="0",
                delivered_at=f"2026-03-{i:02d} 10:00") for i in (1, 5)])
    for v in proposals():
        v.status = ViolationStatus.CONFIRMED      # as if CS confirmed both
    db.session.commit()
    run([ticket("T9", carrier_signed="1", customer_signed="0", delivered_at="2026-03-09 10:00"),
         ticket("T8", carrier_signed="1", customer_signed="0", delivered_at="2026-04-20 10:00")])
    third, later = proposals("T9")[0], proposals("T8")[0]
    assert (third.repeat_no, third.party_fine, third.multiplier) == (3, Decimal("1000.00"),
                                                                      Decimal("2.00"))
    assert (later.repeat_no, later.party_fine) == (1, Decimal("500.00"))  # outside the window


# --- the rules in force at the incident ---------------------------------------------------------

def test_a_ticket_is_priced_by_the_version_in_force_at_the_incident(world):
    admin, sup = _user("cs_admin"), _user("cs_supervisor")
    with acting_as(admin):
        v2 = new_draft(world, date(2026, 4, 1), "1 day late now ¥8", author=admin)
        db.session.flush()
        clause = next(c for c in v2.clauses if c.number == "3")
        clause.rules[0].params_json = clause.rules[0].params_json.replace('"5.00"', '"8.00"')
        db.session.flush()
    publish_reviewed(v2, admin, sup)
    db.session.commit()
    run([ticket("OLD", promised_at="2026-03-31 18:00", delivered_at="2026-04-01 10:00"),
         ticket("NEW", promised_at="2026-04-01 18:00", delivered_at="2026-04-02 10:00")])
    assert proposals("OLD")[0].customer_compensation == Decimal("5.00")
    assert proposals("NEW")[0].customer_compensation == Decimal("8.00")
    assert proposals("NEW")[0].clause.standard_version.number == 2


def test_a_party_outside_the_standards_audience_is_not_checked(world):
    run([ticket("T1", carrier_code="", merchant_code="M001", carrier_signed="1",
                customer_signed="0")])
    assert proposals() == []


# --- idempotency and re-evaluation -------------------------------------------------------------

def test_importing_the_same_file_again_changes_nothing(world):
    rows = [ticket("T1", promised_at="2026-03-02 18:00", delivered_at="2026-03-04 09:12"),
            ticket("T2", carrier_signed="1", customer_signed="0")]
    first = run(rows)
    again = run(rows)
    assert (first.created, first.violations) == (2, 2)
    assert (again.created, again.updated, again.unchanged, again.violations) == (0, 0, 2, 0)
    assert db.session.scalar(select(func.count()).select_from(Violation)) == 2


def test_an_updated_ticket_revises_its_proposal_and_never_duplicates_it(world):
    run([ticket("T1", promised_at="2026-03-02 18:00", delivered_at="2026-03-03 09:00")])
    before = proposals("T1")[0]
    vid = before.id
    batch = run([ticket("T1", promised_at="2026-03-02 18:00", delivered_at="2026-03-04 09:00")])
    assert batch.updated == 1
    db.session.expire_all()
    (after,) = proposals("T1")
    assert after.id == vid and after.customer_compensation == Decimal("10.00")
    run([ticket("T1", promised_at="2026-03-02 18:00", delivered_at="2026-03-02 17:00")])
    assert proposals("T1") == []                  # on time after all: the proposal goes


def test_a_confirmed_violation_is_left_alone_by_re_evaluation(world):
    run([ticket("T1", promised_at="2026-03-02 18:00", delivered_at="2026-03-03 09:00")])
    v = proposals("T1")[0]
    v.status = ViolationStatus.CONFIRMED
    db.session.commit()
    run([ticket("T1", promised_at="2026-03-02 18:00", delivered_at="2026-03-02 17:00")])
    db.session.expire_all()
    assert [x.status for x in proposals("T1")] == [ViolationStatus.CONFIRMED]


def test_a_new_order_number_reaches_every_violation_of_the_ticket(world):
    # the review queue finds violations by order and pays one compensation per order from
    # the violation's copy of its ticket's order number: it must follow the ticket
    late = {"promised_at": "2026-03-02 18:00", "delivered_at": "2026-03-04 09:12"}
    run([ticket("T1", order_no="O-OLD", **late), ticket("T2", order_no="O-OLD", **late)])
    assert {v.order_no for v in proposals()} == {"O-OLD"}
    confirmed = proposals("T1")[0]
    confirmed.status = ViolationStatus.CONFIRMED
    db.session.commit()
    run([ticket("T1", order_no="O-NEW", **late), ticket("T2", order_no="O-NEW", **late)])
    db.session.expire_all()
    assert [(v.ticket_no, v.status, v.order_no) for v in proposals()] == [
        ("T1", ViolationStatus.CONFIRMED, "O-NEW"), ("T2", ViolationStatus.PROPOSED, "O-NEW")]


def test_re_evaluating_everything_twice_is_stable(world):
    run([ticket("T1", promised_at="2026-03-02 18:00", delivered_at="2026-03-04 09:12"),
         ticket("T2", cs_request_at="2026-03-03 09:00", responded_at="2026-03-03 12:00")])
    t = Ticket.__table__
    first = services.reevaluate(None, select(t.c.ticket_no))
    second = services.reevaluate(None, select(t.c.ticket_no))
    assert first == second == {"added": 0, "revised": 0, "withdrawn": 0}


# --- bad input ---------------------------------------------------------------------------------

def test_bad_rows_are_reported_by_line_and_the_good_ones_kept(world):
    batch = run([ticket("T1"),
                 ticket("T2", carrier_code="C999"),
                 ticket("T3", opened_at="2026-02-30 10:00"),
                 ticket("T4", order_value="-1"),
                 ticket("T5", carrier_signed="maybe"),
                 ticket("T1", order_value="5"),
                 ticket("", order_value="5"),
                 ticket("T6", carrier_code="M001")])
    assert (batch.created, batch.rejected) == (1, 7)
    got = [(r.line, r.field, r.reason) for r in batch.rejections]
    assert got == [(3, "carrier_code", "unknown_party"), (4, "opened_at", "bad_time"),
                   (5, "order_value", "negative"), (6, "carrier_signed", "bad_bool"),
                   (7, "ticket_no", "duplicate"), (8, "ticket_no", "required"),
                   (9, "carrier_code", "wrong_kind")]
    from flask_babel import force_locale

    with force_locale("en"):
        assert "no party has this code" in services.rejection_text(batch.rejections[0])
    with force_locale("zh_CN"):
        assert "没有此编码的责任主体" in services.rejection_text(batch.rejections[0])


def test_a_file_without_the_ticket_column_is_refused_and_nothing_stored(world):
    with pytest.raises(services.ImportRefused) as err:
        services.run_import(b"order_no,carrier_code\nO1,C001\n", "x.csv", BatchKind.TICKETS,
                            BatchSource.CLI)
    db.session.rollback()
    assert "ticket_no" in err.value.message
    assert db.session.scalar(select(func.count()).select_from(ImportBatch)) == 0


def test_an_xlsx_workbook_imports_like_a_csv(world):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(TICKET_NAMES)
    row = ticket("X1", promised_at="2026-03-02 18:00", delivered_at="2026-03-04 09:12")
    sheet.append([row.get(n, "") for n in TICKET_NAMES])
    buf = io.BytesIO()
    book.save(buf)
    batch = services.run_import(buf.getvalue(), "t.xlsx", BatchKind.TICKETS, BatchSource.UPLOAD)
    db.session.commit()
    assert batch.created == 1 and proposals("X1")[0].customer_compensation == Decimal("10.00")


def test_gb18030_csv_from_chinese_excel_is_read(world):
    text = ",".join(TICKET_NAMES) + "\n" + "T1,,C001,,,延误,10,2026-03-05 10:00" + "," * 10 + \
        "客户投诉\n"
    batch = services.run_import(text.encode("gb18030"), "t.csv", BatchKind.TICKETS,
                                BatchSource.UPLOAD)
    assert batch.created == 1 and db.session.get(Ticket, "T1").text == "客户投诉"


def test_volumes_import_and_update(world):
    first = run([{"party_code": "C001", "day": "2026-03-02", "orders": "12500"},
                 {"party_code": "C002", "day": "2026-03-02", "orders": "-3"},
                 {"party_code": "C001", "day": "2026-03-32", "orders": "1"}], BatchKind.VOLUMES)
    assert (first.created, first.rejected) == (1, 2)
    again = run([{"party_code": "C001", "day": "2026-03-02", "orders": "12600"}],
                BatchKind.VOLUMES)
    assert again.updated == 1
    assert db.session.scalar(select(ShipmentVolume.orders)) == 12600


def test_every_import_is_in_the_audit_chain(world):
    from portal.core.audit import AuditEvent

    run([ticket("T1")])
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "import_batch.finished")) == 1


def test_the_cli_reports_bad_rows_with_file_and_line(app, tmp_path):
    with app.test_request_context():
        build_world(with_case=False)
        rulebook()
        db.session.commit()
    path = tmp_path / "tickets.csv"
    bad_row = "T1,,C999,,,x,10,2026-03-05 10:00" + "," * 10
    path.write_text(",".join(TICKET_NAMES) + "\n" + bad_row + "\n", encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["intake", "import", str(path), "--lang", "en"])
    assert result.exit_code == 0
    assert "rejected 1" in result.stdout and "tickets.csv:2: carrier_code" in result.stderr


def test_a_nul_character_in_a_cell_rejects_that_row_only(app, tmp_path):
    """PostgreSQL cannot store U+0000 in text: the row is refused with its line and reason,
    on both databases and on both import paths, and the rest of the file is imported."""
    with app.test_request_context():
        build_world(with_case=False)
        rulebook()
        db.session.commit()
    path = tmp_path / "tickets.csv"
    good = "T1,O1,C001,,,x,10,2026-03-05 10:00" + "," * 10
    bad = "T2,O2,C001,,,x\x00y,10,2026-03-05 10:00" + "," * 10
    path.write_text(",".join(TICKET_NAMES) + "\n" + good + "\n" + bad + "\n", encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["intake", "import", str(path), "--lang", "en"])
    assert result.exit_code == 0, result.output
    assert "rejected 1" in result.stdout and "tickets.csv:3:" in result.stderr
    with app.app_context():
        assert db.session.scalars(select(Ticket.ticket_no)).all() == ["T1"]
