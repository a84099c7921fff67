"""Monthly statements (对账单): a penalty is charged in the month it began to stand and
reversed in the month it stopped; an issued statement is frozen, hashed and countersigned once
by a manager of its party; a party never sees another party's statement."""
from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from flask_babel import force_locale
from sqlalchemy import select

from portal.cases.appeals import decide_appeal, file_appeal
from portal.cases.models import AppealStatus, Case, Statement, StatementStatus
from portal.cases.rulings import ShareInput, issue_ruling
from portal.cases.services import open_case, record_violation
from portal.cases.statements import (
    CHARGE,
    REVERSAL,
    Totals,
    countersign,
    frozen_lines,
    issue_all,
    issue_statement,
    statement_lines,
    text_hash,
)
from portal.core.audit import AuditEvent, acting_as
from portal.core.errors import ConflictError, ServiceError
from portal.core.timeutil import frozen_time
from portal.extensions import db
from portal.parties.models import Party
from portal.standards.models import Clause
from tests.factories import PASSWORD, build_world, username
from tests.helpers import english, row_counts
from tests.test_rulings import user

# Times in UTC; the portal's zone is Asia/Shanghai (UTC+8).
OCT_30 = datetime(2026, 10, 30, 2, 0, tzinfo=UTC)      # 10:00 on 30 October, Shanghai
NOV_2 = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
NOV_10 = datetime(2026, 11, 10, 3, 0, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
DEC_3 = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)        # both months are over


def party(world, key="carrier_a") -> Party:
    return db.session.get(Party, getattr(world, key))


def ruled_case(world, at: datetime, shares=None) -> Case:
    """A case on carrier A's false delivery feedback (¥500), ruled at ``at``."""
    officer = user("cs_officer")
    with frozen_time(at), acting_as(officer):
        case = open_case(title="客户未签收", description="", user=officer,
                         incident_at=at - timedelta(hours=3))
        record_violation(case, clause=db.session.get(Clause, world.clause),
                         party=party(world), occurrences=1, evidence="录音已核对", user=officer)
        issue_ruling(case, officer=officer, rationale="证据充分", shares=shares or [
            ShareInput(world.carrier_a, 100, override_reason="线下培训已确认")])
    return case


def appeal_and_decide(case, world, outcome, at: datetime, **amounts):
    staff, officer = user("staff_a"), user("cs_supervisor")
    with frozen_time(at - timedelta(hours=2)), acting_as(staff):
        appeal = file_appeal(case, world.carrier_a, "快递柜取件记录为证", staff)
    with frozen_time(at), acting_as(officer):
        decide_appeal(appeal, officer, outcome, "复核录音后的结论", **amounts)
    return appeal


@pytest.fixture
def world(ctx):
    with frozen_time(OCT_30 - timedelta(days=1)):
        return build_world(with_case=False)


# --- the lines -------------------------------------------------------------------------------

def test_a_charge_reduced_on_appeal_next_month_is_reversed_there_beside_the_new_charge(world):
    case = ruled_case(world, OCT_30)
    appeal = appeal_and_decide(case, world, AppealStatus.REDUCED, NOV_2, fine="200.00")
    october = statement_lines(world.carrier_a, "2026-10")
    assert [(x.kind, x.amount) for x in october] == [(CHARGE, Decimal("500.00"))]
    assert october[0].local == "2026-10-30 10:00" and october[0].case == case.number
    assert october[0].clauses == ("CAR-DLV v1 §1",) and october[0].share == 100
    november = statement_lines(world.carrier_a, "2026-11")
    assert [(x.kind, x.penalty_id, x.amount) for x in november] == [
        (REVERSAL, october[0].penalty_id, Decimal("-500.00")),
        (CHARGE, appeal.new_penalty_id, Decimal("200.00"))]
    with force_locale("en"):
        assert november[0].note_text == f"replaced on appeal {appeal.number}"
        assert november[1].note_text == f"reduced on appeal {appeal.number}"
    assert Totals.of(november).amount == Decimal("-300.00")
    assert statement_lines(world.carrier_a, "2026-12") == []


def test_a_superseded_ruling_is_reversed_when_the_correction_takes_effect(world):
    case = ruled_case(world, OCT_30)
    first = case.ruling
    officer = user("cs_officer")
    with frozen_time(NOV_10), acting_as(officer):
        correction = issue_ruling(case, officer=officer, rationale="促销部同样有责",
                                  supersede_reason="责任划分有误", shares=[
            ShareInput(world.carrier_a, 60, override_reason="线下培训已确认"),
            ShareInput(world.dept, 40, "E0137", "钱晓", override_reason="审核责任")])
    november = statement_lines(world.carrier_a, "2026-11")
    assert [(x.kind, x.ruling, x.amount) for x in november] == [
        (REVERSAL, first.number, Decimal("-500.00")),
        (CHARGE, correction.number, Decimal("300.00"))]
    with force_locale("en"):
        assert november[0].note_text == f"superseded by {correction.number}"
        assert november[1].note_text == f"correction of {first.number}" and november[1].share == 60
    dept = statement_lines(world.dept, "2026-11")
    assert [(x.kind, x.amount) for x in dept] == [(CHARGE, Decimal("200.00"))]


def test_an_overturned_appeal_is_a_reversal_and_its_zero_replacement_is_no_charge(world):
    case = ruled_case(world, OCT_30)
    appeal = appeal_and_decide(case, world, AppealStatus.OVERTURNED, NOV_2)
    november = statement_lines(world.carrier_a, "2026-11")
    assert [(x.kind, x.amount) for x in november] == [(REVERSAL, Decimal("-500.00"))]
    with force_locale("en"):
        assert november[0].note_text == f"overturned on appeal {appeal.number}"
    assert appeal.new_penalty_id not in {x.penalty_id for x in november}


def test_a_month_is_a_calendar_month_in_the_portal_time_zone(world):
    ruled_case(world, datetime(2026, 10, 31, 16, 30, tzinfo=UTC))  # 00:30 on 1 Nov, Shanghai
    assert statement_lines(world.carrier_a, "2026-10") == []
    assert statement_lines(world.carrier_a, "2026-11")[0].local == "2026-11-01 00:30"


def test_totals_are_exact_to_the_fen(world):
    for n, fine in enumerate(("0.10", "0.20", "123.45")):
        case = ruled_case(world, NOV_2 + timedelta(days=n))
        appeal_and_decide(case, world, AppealStatus.REDUCED, NOV_2 + timedelta(days=n + 2),
                          fine=fine)
    lines = statement_lines(world.carrier_a, "2026-11")
    assert len(lines) == 9
    totals = Totals.of(lines)
    assert totals.fine == totals.amount == Decimal("123.75")
    assert str(totals.amount) == "123.75" and totals.compensation == Decimal("0.00")
    with frozen_time(DEC_3):
        st = issue_statement(party(world), "2026-11", user("cs_officer"))
    assert (st.fine_total, st.amount_total) == (Decimal("123.75"), Decimal("123.75"))
    assert sum((x.amount for x in frozen_lines(st)), Decimal(0)) == Decimal("123.75")


# --- issuing ---------------------------------------------------------------------------------

def test_issuing_freezes_the_lines_and_the_hash(world):
    case = ruled_case(world, OCT_30)
    with frozen_time(DEC_3):
        st = issue_statement(party(world), "2026-10", user("cs_officer"))
    assert st.number == f"ST-2026-10-{st.id:06d}" and st.status is StatementStatus.ISSUED
    assert len(st.text_hash) == 64 and st.amount_total == Decimal("500.00")
    before = frozen_lines(st)
    assert before == statement_lines(world.carrier_a, "2026-10")
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "statement.issued"))
    assert event.after_dict()["number"] == st.number
    # an appeal decided later changes a later month, never the issued one
    appeal_and_decide(case, world, AppealStatus.REDUCED, NOV_2, fine="100.00")
    db.session.flush()
    db.session.expire(st)
    assert frozen_lines(st) == before and st.amount_total == Decimal("500.00")


def test_the_text_hash_is_stable_and_changes_when_a_line_changes(world):
    ruled_case(world, OCT_30)
    lines = statement_lines(world.carrier_a, "2026-10")
    h = text_hash("C001", "2026-10", lines)
    assert h == text_hash("C001", "2026-10", statement_lines(world.carrier_a, "2026-10"))
    from dataclasses import replace

    changed = [replace(lines[0], fine=Decimal("499.99"))]
    assert text_hash("C001", "2026-10", changed) != h
    assert text_hash("C002", "2026-10", lines) != h
    assert text_hash("C001", "2026-09", lines) != h


def test_a_month_not_over_is_not_issued_and_nothing_is_written(app, world):
    ruled_case(world, NOV_2)
    db.session.commit()
    before = row_counts(app)
    with frozen_time(NOV_20), pytest.raises(ServiceError) as err:
        issue_statement(party(world), "2026-11", user("cs_officer"))
    assert "2026-11" in err.value.message
    with frozen_time(NOV_20), pytest.raises(ServiceError):
        issue_all("2026-11", user("cs_officer"))
    db.session.commit()           # even a caller that commits finds nothing written
    assert row_counts(app) == before


def test_a_second_statement_for_the_same_party_and_month_is_refused(world):
    ruled_case(world, OCT_30)
    with frozen_time(DEC_3):
        first = issue_statement(party(world), "2026-10", user("cs_officer"))
        with pytest.raises(ServiceError) as err:
            issue_statement(party(world), "2026-10", user("cs_officer"))
        assert first.number in err.value.message
        assert issue_all("2026-10", user("cs_officer")) == []


def test_a_statement_issued_by_someone_else_meanwhile_is_a_conflict(world, monkeypatch):
    from portal.cases import statements

    ruled_case(world, OCT_30)
    with frozen_time(DEC_3):
        issue_statement(party(world), "2026-10", user("cs_officer"))
        monkeypatch.setattr(statements, "find_statement", lambda *a: None)  # the race
        with pytest.raises(ConflictError):
            issue_statement(party(world), "2026-10", user("cs_officer"))


@pytest.mark.parametrize("text", ["2026-13", "abc", "2026-1", "", "2026-00", " 2026-11x"])
def test_a_period_that_is_not_a_month_is_refused_naming_it(world, text):
    with pytest.raises(ServiceError) as err:
        statement_lines(world.carrier_a, text)
    assert text.strip() in err.value.message and err.value.field == "period"
    with frozen_time(DEC_3), pytest.raises(ServiceError):
        issue_all(text, user("cs_officer"))


def test_issue_all_issues_for_every_party_with_a_line(world):
    ruled_case(world, OCT_30, shares=[
        ShareInput(world.carrier_a, 70, override_reason="线下培训已确认"),
        ShareInput(world.dept, 30, "E0137", "钱晓", override_reason="审核责任")])
    with frozen_time(DEC_3):
        issued = issue_all("2026-10", user("cs_officer"))
        assert sorted(st.party.code for st in issued) == ["C001", "D001"]
        assert issue_all("2026-10", user("cs_officer")) == []
        assert issue_all("2026-11", user("cs_officer")) == []


# --- countersigning --------------------------------------------------------------------------

def _issued(world) -> Statement:
    ruled_case(world, OCT_30)
    with frozen_time(DEC_3):
        return issue_statement(party(world), "2026-10", user("cs_officer"))


def test_a_manager_of_the_party_countersigns_once(world):
    st = _issued(world)
    manager = user("carrier_manager")
    with pytest.raises(ConflictError):
        countersign(st, manager, "许强", "0" * 64)
    with pytest.raises(ServiceError) as err:
        countersign(st, manager, "  ", st.text_hash)
    assert err.value.field == "name"
    with pytest.raises(ServiceError):
        countersign(st, manager, "许" * 121, st.text_hash)
    with acting_as(manager):
        countersign(st, manager, " 许强 ", st.text_hash)
    assert st.status is StatementStatus.COUNTERSIGNED and st.countersigned_name == "许强"
    assert st.countersigned_hash == st.text_hash and st.countersigned_by_id == manager.id
    assert st.countersigned_at is not None
    event = db.session.scalar(select(AuditEvent).where(
        AuditEvent.action == "statement.countersigned"))
    assert event.actor_id == manager.id and event.after_dict()["name"] == "许强"
    with pytest.raises(ServiceError):
        countersign(st, manager, "许强", st.text_hash)


def test_party_staff_and_other_managers_cannot_countersign(world):
    st = _issued(world)
    for who in ("staff_a", "dept_manager", "cs_admin"):
        with pytest.raises(ServiceError):
            countersign(st, user(who), "某人", st.text_hash)
    assert st.status is StatementStatus.ISSUED


# --- pages and files -------------------------------------------------------------------------

@pytest.fixture
def page_world(app):
    """Carrier A's (70 %) and department D001's (30 %) October statements, built outside any
    open request."""
    with app.test_request_context():
        with frozen_time(OCT_30 - timedelta(days=1)):
            world = build_world(with_case=False)
        ruled_case(world, OCT_30, shares=[
            ShareInput(world.carrier_a, 70, override_reason="线下培训已确认"),
            ShareInput(world.dept, 30, "E0137", "钱晓", override_reason="审核责任")])
        with frozen_time(DEC_3):
            issued = issue_all("2026-10", user("cs_officer"))
        db.session.commit()
        world.ids.update({f"st_{st.party.code}": st.id for st in issued})
        return world


def browse(make_browser, who):
    b = make_browser()
    b.login(username(who), PASSWORD)
    return b


def test_countersigning_through_the_page(app, page_world, make_browser):
    st_id = page_world.st_C001
    manager = browse(make_browser, "carrier_manager")
    english(manager)
    page = manager.get(f"/statements/{st_id}").get_data(as_text=True)
    with app.app_context():
        st = db.session.get(Statement, st_id)
        number, digest = st.number, st.text_hash
    assert number in page and digest in page and "Countersign" in page
    assert manager.post(f"/statements/{st_id}/countersign",
                        {"name": "", "seen_hash": digest}).status_code == 400
    resp = manager.post(f"/statements/{st_id}/countersign",
                        {"name": "许强", "seen_hash": digest})
    assert resp.status_code == 302
    page = manager.get(f"/statements/{st_id}").get_data(as_text=True)
    assert "许强" in page and "Signed at" in page
    again = manager.post(f"/statements/{st_id}/countersign", {"name": "许强", "seen_hash": digest})
    assert again.status_code == 400
    staff = browse(make_browser, "staff_a")
    assert staff.post(f"/statements/{st_id}/countersign",
                      {"name": "周强", "seen_hash": digest}).status_code == 403
    assert "seen_hash" not in staff.get(f"/statements/{st_id}").get_data(as_text=True)


def test_another_partys_manager_gets_404_on_the_page(app, page_world, make_browser):
    other = browse(make_browser, "dept_b_manager")
    st_id = page_world.st_C001
    assert other.get(f"/statements/{st_id}").status_code == 404
    assert other.post(f"/statements/{st_id}/countersign",
                      {"name": "某人", "seen_hash": "x"}).status_code == 404


@pytest.mark.parametrize("suffix", ["", ".csv", ".xlsx", ".pdf"])
def test_a_party_never_sees_another_partys_statement(app, page_world, make_browser, suffix):
    mine = browse(make_browser, "staff_a")
    assert mine.get(f"/statements/{page_world.st_C001}{suffix}").status_code == 200
    assert mine.get(f"/statements/{page_world.st_D001}{suffix}").status_code == 404
    assert mine.get(f"/statements/999999{suffix}").status_code == 404
    with app.app_context():
        theirs = db.session.get(Statement, page_world.st_D001).number
        ours = db.session.get(Statement, page_world.st_C001).number
    listing = mine.get("/statements?party=D001").get_data(as_text=True)
    assert ours in listing and theirs not in listing


def test_the_csv_holds_the_lines_and_totals(app, page_world, make_browser):
    officer = browse(make_browser, "cs_officer")
    resp = officer.get(f"/statements/{page_world.st_C001}.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    import csv

    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    assert len(rows) == 3 and rows[1][2].startswith("P-") and rows[1][9] == "350.00"
    assert rows[2][9] == "350.00" and rows[1][5] == "CAR-DLV v1 §1" and rows[1][6] == "70"


def test_text_cells_a_spreadsheet_would_run_are_made_plain(app):
    from portal.core.web import csv_response
    from portal.core.web import spreadsheet_safe as _safe

    with app.test_request_context():
        body = csv_response("x.csv", ["a"], [["=1+1", Decimal("-1.00")]]).get_data(as_text=True)
    assert "'=1+1,-1.00" in body
    assert _safe("=cmd|' /C calc'!A0") == "'=cmd|' /C calc'!A0"
    assert _safe("@SUM(A1)") == "'@SUM(A1)" and _safe("+1") == "'+1"
    assert _safe(Decimal("-350.00")) == Decimal("-350.00") and _safe("CAR-DLV") == "CAR-DLV"


def test_the_xlsx_has_numeric_money_and_a_totals_row(app, page_world, make_browser):
    from openpyxl import load_workbook

    officer = browse(make_browser, "cs_officer")
    resp = officer.get(f"/statements/{page_world.st_C001}.xlsx")
    assert resp.status_code == 200
    ws = load_workbook(io.BytesIO(resp.data)).active
    rows = list(ws.iter_rows())
    header = next(i for i, r in enumerate(rows) if r[2].value == "罚单" or r[2].value == "Penalty")
    assert all(c.font.bold for c in rows[header] if c.value)
    line, total = rows[header + 1], rows[-1]
    assert isinstance(line[9].value, (int, float)) and line[9].number_format == "0.00"
    assert Decimal(str(line[9].value)) == Decimal("350.00")
    assert Decimal(str(total[9].value)) == Decimal("350.00") and total[0].font.bold
    assert sum(Decimal(str(r[9].value)) for r in rows[header + 1:-1]) == \
        Decimal(str(total[9].value))


def test_the_pdf_is_a_pdf(app, page_world, make_browser):
    resp = browse(make_browser, "carrier_manager").get(f"/statements/{page_world.st_C001}.pdf")
    assert resp.status_code == 200 and resp.data.startswith(b"%PDF")
    assert resp.mimetype == "application/pdf"


def test_the_list_filters_and_the_party_sees_only_its_own(app, page_world, make_browser):
    officer = browse(make_browser, "auditor")
    page = officer.get("/statements?party=d001").get_data(as_text=True)
    assert "D001" in page and "顺丰速运" not in page
    assert "促销部" in officer.get("/statements?period=2026-10&status=issued").get_data(
        as_text=True)
    assert "No statements" in _en(officer, "/statements?period=2026-09")
    dept = browse(make_browser, "dept_manager")
    page = dept.get("/statements").get_data(as_text=True)
    assert "促销部" in page and "顺丰速运" not in page


def _en(b, url):
    english(b)
    return b.get(url).get_data(as_text=True)


def test_issuing_through_the_page(app, page_world, make_browser):
    officer = browse(make_browser, "cs_officer")
    english(officer)
    assert "Issue statements" in officer.get("/statements").get_data(as_text=True)
    before = row_counts(app)
    this_month = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    resp = officer.post("/statements/issue", {"period": "2026-13"})
    assert resp.status_code == 400 and "2026-13" in resp.get_data(as_text=True)
    resp = officer.post("/statements/issue", {"period": this_month})
    assert resp.status_code == 400
    assert row_counts(app) == before
    resp = officer.post("/statements/issue", {"period": "2026-10"})   # all issued already
    assert resp.status_code == 302
    assert "No statements to issue" in officer.get(resp.headers["Location"]).get_data(
        as_text=True)
    assert "Issue statements" not in _en(browse(make_browser, "auditor"), "/statements")


def test_the_preview_shows_live_lines_marked_not_issued(app, page_world, make_browser):
    with app.test_request_context():
        ruled_case(page_world, NOV_2)
        db.session.commit()
    staff = browse(make_browser, "staff_a")
    page = _en(staff, "/statements/preview?period=2026-11")
    assert "Preview, not issued" in page and "¥500.00" in page
    assert staff.get("/statements/preview?party=D001&period=2026-11").status_code == 404
    officer = browse(make_browser, "cs_officer")
    page = _en(officer, "/statements/preview?party=C001&period=2026-10")
    assert "already issued" in page
    assert officer.get("/statements/preview?party=C001&period=abc").status_code == 400
    assert officer.get("/statements/preview?party=NOPE&period=2026-10").status_code == 404


# --- command line ----------------------------------------------------------------------------

def test_the_cli_issues_a_month_and_refuses_a_bad_one(app):
    with app.test_request_context():
        with frozen_time(OCT_30 - timedelta(days=1)):
            world = build_world(with_case=False)
        ruled_case(world, OCT_30)
        db.session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["statements", "issue", "--month", "2026-10", "--lang", "en",
                                 "--user", "cs.officer"])
    assert result.exit_code == 0, result.output
    assert "1 statements issued for 2026-10" in result.output and "C001" in result.output
    again = runner.invoke(args=["statements", "issue", "--month", "2026-10", "--lang", "en"])
    assert again.exit_code == 0 and again.output.startswith("0 ")
    bad = runner.invoke(args=["statements", "issue", "--month", "2026-13", "--lang", "en"])
    assert bad.exit_code != 0 and "2026-13" in bad.output + (bad.stderr or "")
    with app.app_context():
        st = db.session.scalar(select(Statement))
        assert st.period == "2026-10" and st.issued_by.username == "cs.officer"
