"""Appeals: within the window, two rounds at most, decided by another officer; a reduction or
an overturn replaces the party's penalty; a party never sees another party's appeal."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.cases.appeals import decide_appeal, file_appeal, standing_penalty, window
from portal.cases.models import AppealStatus, Case, Penalty
from portal.core.audit import AuditEvent, acting_as
from portal.core.db import utcnow
from portal.core.errors import ServiceError
from portal.core.timeutil import frozen_time
from portal.extensions import db
from tests.factories import PASSWORD, build_world, username
from tests.helpers import english
from tests.test_rulings import user


@pytest.fixture
def world(ctx):
    return build_world()      # case: carrier C001 70 % (¥350), department D001 30 % (¥150)


@pytest.fixture
def page_world(app):
    """The same world, built outside any open request (the pages run their own requests)."""
    with app.test_request_context():
        return build_world()


def case_of(world) -> Case:
    return db.session.get(Case, world.case)


def appeal(world, text="配送员已按约定放置快递柜,有取件码短信为证", who="staff_a"):
    with acting_as(user(who)):
        return file_appeal(case_of(world), world.carrier_a, text, user(who))


def decide(a, outcome, who="cs_supervisor", **kw):
    with acting_as(user(who)):
        return decide_appeal(a, user(who), outcome, "复核录音后的结论", **kw)


def test_a_party_appeals_within_the_window_and_not_after(world):
    case = case_of(world)
    assert window(case, world.carrier_a)[0] == 1
    with frozen_time(case.ruling.effective_at + timedelta(days=7, seconds=1)):
        assert window(case, world.carrier_a) is None
        with pytest.raises(ServiceError):
            appeal(world)
    a = appeal(world)
    assert a.round == 1 and a.status is AppealStatus.OPEN
    assert "appeal.filed" in db.session.scalars(select(AuditEvent.action)).all()
    with pytest.raises(ServiceError):
        appeal(world)                                   # one open appeal at a time


def test_the_officer_who_ruled_does_not_decide_the_appeal(world):
    a = appeal(world)
    with pytest.raises(ServiceError):
        decide(a, AppealStatus.UPHELD, who="cs_officer")
    with pytest.raises(ServiceError):
        decide_appeal(a, user("cs_supervisor"), AppealStatus.UPHELD, " ")   # no reason
    decide(a, AppealStatus.UPHELD)
    assert a.status is AppealStatus.UPHELD and a.decided_at
    assert standing_penalty(case_of(world).ruling, world.carrier_a).amount == Decimal("350.00")


def test_two_rounds_at_most_the_second_counted_from_the_first_decision(world):
    a = appeal(world)
    with frozen_time(utcnow() + timedelta(days=5)):
        decide(a, AppealStatus.UPHELD)
    with frozen_time(utcnow() + timedelta(days=11)):   # 6 days after the decision
        second = appeal(world)
        assert second.round == 2
        decide(second, AppealStatus.UPHELD)
        assert window(case_of(world), world.carrier_a) is None


def test_a_reduction_replaces_the_penalty_with_a_lower_one(world):
    a = appeal(world)
    with pytest.raises(ServiceError):
        decide(a, AppealStatus.REDUCED, fine="400.00")           # higher than ¥350
    with pytest.raises(ServiceError):
        decide(a, AppealStatus.REDUCED, fine="350.00")           # nothing lower
    decide(a, AppealStatus.REDUCED, fine="200.00")
    standing = standing_penalty(case_of(world).ruling, world.carrier_a)
    assert standing.id == a.new_penalty_id and standing.amount == Decimal("200.00")
    assert db.session.get(Penalty, a.penalty_id).active is False


def test_an_overturned_appeal_leaves_nothing_owed_and_ends_the_appeals(world):
    a = appeal(world)
    decide(a, AppealStatus.OVERTURNED)
    assert standing_penalty(case_of(world).ruling, world.carrier_a) is None
    assert window(case_of(world), world.carrier_a) is None


def test_a_party_sees_its_appeal_and_not_another_partys(app, page_world, make_browser):
    world = page_world
    with app.test_request_context():
        appeal(world, text="快递柜取件码短信为证")
        db.session.commit()
    mine = make_browser()
    mine.login(username("carrier_manager"), PASSWORD)
    english(mine)
    page = mine.get(f"/cases/{world.case}").get_data(as_text=True)
    assert "快递柜取件码短信为证" in page and "Waiting for a decision" in page
    other = make_browser()
    other.login(username("staff_b"), PASSWORD)
    assert other.get(f"/cases/{world.case}").status_code == 404
    dept = make_browser()
    dept.login(username("dept_manager"), PASSWORD)
    assert "快递柜取件码短信为证" not in dept.get(f"/cases/{world.case}").get_data(as_text=True)


def test_filing_and_deciding_through_the_pages(app, page_world, make_browser):
    world = page_world
    staff = make_browser()
    staff.login(username("staff_a"), PASSWORD)
    staff.get(f"/cases/{world.case}")
    resp = staff.post(f"/cases/{world.case}/appeals", {"statement": "客户已取件,见取件记录"})
    assert resp.status_code == 302
    officer = make_browser()
    officer.login(username("cs_supervisor"), PASSWORD)
    english(officer)
    page = officer.get(f"/cases/{world.case}").get_data(as_text=True)
    assert "客户已取件,见取件记录" in page and "Decide the appeal" in page
    with app.app_context():
        a_id = db.session.scalar(select(AuditEvent.object_id).where(
            AuditEvent.action == "appeal.filed"))
    resp = officer.post(f"/cases/{world.case}/appeals/{a_id}/decide",
                        {"outcome": "reduced", "reason": "部分责任在客户", "fine": "100.00"})
    assert resp.status_code == 302
    with app.app_context():
        assert standing_penalty(case_of(world).ruling, world.carrier_a).amount == \
            Decimal("100.00")
    assert staff.post(f"/cases/{world.case}/appeals/{a_id}/decide",
                      {"outcome": "overturned", "reason": "x"}).status_code == 403


def test_a_file_added_while_the_appeal_waits_belongs_to_it(world):
    import io

    from PIL import Image

    from portal.cases.evidence import add_evidence

    a = appeal(world)
    png = io.BytesIO()
    Image.new("RGB", (4, 4), "blue").save(png, "PNG")
    with acting_as(user("staff_a")):
        e = add_evidence(case_of(world), "取件码短信.png", png.getvalue(), user("staff_a"))
    assert e.appeal_id == a.id
