"""The case list's filters and the penalty ledger (filters, totals, CSV), within what the user
may see: a party's filters never reach past its own rows."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from portal.accounts.models import User
from portal.cases import services
from portal.cases.appeals import decide_appeal, file_appeal
from portal.cases.models import AppealStatus, Case, CaseStatus
from portal.cases.services import CaseFilters, LedgerFilters, LedgerStatus
from portal.core.audit import acting_as
from portal.core.db import utcnow
from portal.extensions import db
from portal.parties.models import Party, PartyKind
from portal.standards.models import Clause
from tests.factories import PASSWORD, build_world, username


def user(key: str) -> User:
    return db.session.scalar(db.select(User).where(User.username == username(key)))


@pytest.fixture
def world(app):
    """build_world's ruled case (C001 70 %, D001 30 %, ¥500) and an open case on C002."""
    with app.test_request_context():
        w = build_world()
        officer = user("cs_officer")
        clause2 = db.session.scalar(db.select(Clause).where(
            Clause.standard_version_id == w.version, Clause.number == "2"))
        with acting_as(officer):
            case = services.open_case(title="中通两小时未回复", description="",
                                      incident_at=utcnow() - timedelta(days=40), user=officer)
            services.record_violation(case, clause=clause2, party=db.session.get(Party, w.carrier_b),
                                      occurrences=1, evidence="工单记录", user=officer)
        db.session.commit()
        w.ids.update(open_case=case.id, clause2=clause2.id)
        return w


def listed(who: str, f: CaseFilters) -> list[int]:
    return [c.id for c in services.cases_page(user(who), f, 1).items]


def test_each_filter_narrows_the_case_list(app, world):
    with app.test_request_context():
        ruled, other = world.case, world.open_case
        assert listed("cs_officer", CaseFilters()) == [other, ruled]
        assert listed("cs_officer", CaseFilters(status=CaseStatus.OPEN)) == [other]
        assert listed("cs_officer", CaseFilters(party="C002")) == [other]
        assert listed("cs_officer", CaseFilters(party="顺丰")) == [ruled]
        assert listed("cs_officer", CaseFilters(kind=PartyKind.DEPARTMENT)) == [ruled]
        assert listed("cs_officer", CaseFilters(kind=PartyKind.MERCHANT)) == []
        assert listed("cs_officer", CaseFilters(standard_id=world.standard,
                                                clause_number="2")) == [other]
        assert listed("cs_officer", CaseFilters(min_amount=Decimal("500.00"))) == [ruled]
        assert listed("cs_officer", CaseFilters(min_amount=Decimal("500.01"))) == []
        assert listed("cs_officer", CaseFilters(q=f"CASE-{other:06d}")) == [other]
        assert listed("cs_officer", CaseFilters(q=str(ruled))) == [ruled]
        assert listed("cs_officer", CaseFilters(q="两小时")) == [other]
        assert listed("cs_officer", CaseFilters(incident_from=utcnow() - timedelta(days=10))) == [
            ruled]
        assert listed("cs_officer", CaseFilters(incident_to=utcnow() - timedelta(days=10))) == [
            other]
        assert listed("cs_officer", CaseFilters(open_appeal=True)) == []
        case = db.session.get(Case, ruled)
        with acting_as(user("staff_a")):
            file_appeal(case, world.carrier_a, "有取件码短信为证", user("staff_a"))
        db.session.commit()
        assert listed("cs_officer", CaseFilters(open_appeal=True)) == [ruled]


def test_a_partys_filters_stay_within_its_own_cases(app, world):
    with app.test_request_context():
        assert listed("staff_b", CaseFilters()) == [world.open_case]
        assert listed("staff_b", CaseFilters(party="C001")) == [world.open_case]   # not theirs
        assert listed("staff_b", CaseFilters(q=f"CASE-{world.case:06d}")) == []
        # the shared case involves D001 too: no party or kind filter tells staff_a so
        for f in (CaseFilters(kind=PartyKind.DEPARTMENT), CaseFilters(kind=PartyKind.MERCHANT),
                  CaseFilters(party="促销部"), CaseFilters(party="C002")):
            assert listed("staff_a", f) == [world.case]
            assert listed("dept_manager", f) == [world.case]
        assert listed("dept_manager", CaseFilters(min_amount=Decimal("150.00"))) == [world.case]
        assert listed("dept_manager", CaseFilters(min_amount=Decimal("150.01"))) == []


def test_the_case_list_page_reads_its_filters_and_says_what_it_cannot(world, make_browser):
    b = make_browser()
    b.login(username("cs_officer"), PASSWORD)
    body = b.get("/cases?party=C002&status=open").get_data(as_text=True).split("<tbody>")[1]
    assert f"CASE-{world.open_case:06d}" in body and f"CASE-{world.case:06d}" not in body
    b.post("/lang", {"lang": "en"})
    resp = b.get("/cases?min=lots&from=2026-13-01&status=gone&kind=ship")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "Enter an amount in yuan" in page and "Enter a date as YYYY-MM-DD" in page
    assert "Unknown status" in page and "Unknown kind of party" in page
    assert f"CASE-{world.case:06d}" in page.split("<tbody>")[1]   # unfiltered on those


def test_the_count_stops_at_the_cap(app, world, monkeypatch):
    monkeypatch.setattr(services, "COUNT_CAP", 1)
    with app.test_request_context():
        page = services.cases_page(user("cs_officer"), CaseFilters(), 1, per_page=1)
        assert page.has_next and page.capped and page.pages == 1


def totals(who: str, f: LedgerFilters):
    return services.ledger_totals(user(who), f)


def test_the_ledger_totals_what_matches_per_party_and_status(app, world):
    with app.test_request_context():
        every = totals("cs_officer", LedgerFilters())
        assert (every.count, every.amount, every.fine) == (2, Decimal("500.00"),
                                                           Decimal("500.00"))
        assert totals("cs_officer", LedgerFilters(party="C001")).amount == Decimal("350.00")
        assert totals("cs_officer", LedgerFilters(kind=PartyKind.DEPARTMENT)).amount == \
            Decimal("150.00")
        assert totals("cs_officer", LedgerFilters(case_no=world.open_case)).count == 0
        assert totals("cs_officer", LedgerFilters(until=utcnow() - timedelta(days=1))).count == 0
        # an appeal reduces C001's penalty: the old one is withdrawn, the new one stands
        case = db.session.get(Case, world.case)
        with acting_as(user("staff_a")):
            appeal = file_appeal(case, world.carrier_a, "有取件码短信为证", user("staff_a"))
        with acting_as(user("cs_supervisor")):
            decide_appeal(appeal, user("cs_supervisor"), AppealStatus.REDUCED, "部分采纳",
                          fine="100.00")
        db.session.commit()
        assert totals("cs_officer", LedgerFilters(party="C001")).amount == Decimal("100.00")
        gone = totals("cs_officer", LedgerFilters(party="C001", status=LedgerStatus.WITHDRAWN))
        assert (gone.count, gone.amount) == (1, Decimal("350.00"))
        assert totals("cs_officer", LedgerFilters(status=LedgerStatus.ALL)).count == 3
        # a party's ledger is its own, whatever it asks for
        assert totals("staff_a", LedgerFilters()).amount == Decimal("100.00")
        assert totals("staff_a", LedgerFilters(kind=PartyKind.DEPARTMENT)).amount == \
            Decimal("100.00")          # the kind filter is not theirs: their own ledger
        assert totals("staff_b", LedgerFilters()).count == 0


def test_the_ledger_page_and_its_csv(world, make_browser):
    b = make_browser()
    b.login(username("cs_officer"), PASSWORD)
    page = b.get("/penalties?party=D001").get_data(as_text=True)
    assert "¥150.00" in page and "¥350.00" not in page.split("<tbody>")[1]
    csv = b.get("/penalties?format=csv").get_data(as_text=True)
    assert csv.startswith("\ufeff") and "C001" in csv and "D001" in csv and "350.00" in csv
    b.post("/lang", {"lang": "en"})
    bad = b.get("/penalties?month=2026-13&case=nope").get_data(as_text=True)
    assert "Enter a month as YYYY-MM" in bad and "Enter a case number" in bad
    staff = make_browser()
    staff.login(username("staff_a"), PASSWORD)
    mine = staff.get("/penalties?format=csv").get_data(as_text=True)
    assert "C001" in mine and "D001" not in mine
    assert "D001" not in staff.get("/penalties?format=csv&party=D001").get_data(as_text=True)
