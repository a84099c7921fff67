from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select

from portal.cases.models import Case, Penalty
from portal.extensions import db
from portal.hr.models import HrNotice
from tests.factories import PASSWORD, build_world, username
from tests.helpers import english


def test_incident_time_is_typed_in_local_time_and_stored_in_utc(app, make_browser):
    with app.test_request_context():
        build_world(with_case=False)
    b = make_browser()
    b.login(username("cs_officer"), PASSWORD)
    resp = b.post("/cases/new", {"title": "时区", "incident_at": "2026-11-01T10:00"})
    case_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    with app.app_context():
        case = db.session.get(Case, case_id)
        assert case.incident_at == datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
    assert "2026-11-01 10:00" in b.get(f"/cases/{case_id}").get_data(as_text=True)


def test_ruling_splits_the_fine_and_notifies_hr(app):
    with app.test_request_context():
        world = build_world()
        penalties = db.session.scalars(select(Penalty).order_by(Penalty.id)).all()
        assert [(p.party_id, p.amount) for p in penalties] == [
            (world.carrier_a, Decimal("350.00")), (world.dept, Decimal("150.00"))]
        notice = db.session.get(HrNotice, world.notice)
        assert (notice.employee_no, notice.employee_name) == ("E0137", "钱晓")
        assert notice.amount == Decimal("150.00") and notice.department_id == world.dept


def test_a_party_sees_only_its_own_share_of_a_case(app, make_browser):
    with app.test_request_context():
        world = build_world()
    carrier = make_browser()
    carrier.login(username("staff_a"), PASSWORD)
    english(carrier)
    page = carrier.get(f"/cases/{world.case}").get_data(as_text=True)
    assert "¥350.00" in page
    assert "¥150.00" not in page and "钱晓" not in page and "D001" not in page
    listing = carrier.get("/cases").get_data(as_text=True)
    assert "D001" not in listing and "¥500.00" not in listing
    other = make_browser()
    other.login(username("staff_b"), PASSWORD)
    assert other.get(f"/cases/{world.case}").status_code == 404
    assert "CASE-" not in other.get("/cases").get_data(as_text=True).split("<tbody>")[1]
    assert "¥" not in other.get("/penalties").get_data(as_text=True).split("<tbody>")[1]


def test_hr_sees_notices_but_not_cases(app, make_browser):
    with app.test_request_context():
        world = build_world()
    hr = make_browser()
    hr.login(username("hr_officer"), PASSWORD)
    assert hr.get(f"/cases/{world.case}").status_code == 403
    assert "钱晓" in hr.get(f"/hr/notices/{world.notice}").get_data(as_text=True)
