"""The dashboard (温度计 / 晴雨表) and a party's scorecard: the metrics as defined in
``reports.metrics``, the ranks without names, party isolation, exports and the SVG charts."""
from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from datetime import timedelta
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from portal.core.db import utcnow
from portal.core.timeutil import local_today
from portal.extensions import db
from portal.intake.models import ShipmentVolume, Ticket
from portal.reports import charts, metrics
from tests.factories import PASSWORD, build_world, username
from tests.helpers import english

SVG = "{http://www.w3.org/2000/svg}"


def _ticket(no: str, *, days_ago: int = 1, **parties) -> Ticket:
    now = utcnow()
    t = Ticket(ticket_no=no, order_no="O" + no, order_value=Decimal("99.00"),
               opened_at=now - timedelta(days=days_ago), captured_at=now, **parties)
    db.session.add(t)
    return t


def _volume(party_id: int, orders: int, *, days_ago: int = 1) -> None:
    db.session.add(ShipmentVolume(party_id=party_id, orders=orders,
                                  day=local_today() - timedelta(days=days_ago)))


@pytest.fixture
def world(app):
    """build_world plus tickets and volumes of this month: carrier A 3 complaints in 1,000
    orders, carrier B 1 in 2,000, the merchant 2 in 500, the department 1 and no volume; and
    one old ticket and volume outside the period."""
    with app.test_request_context():
        w = build_world()
        a, b, m, dept = w.carrier_a, w.carrier_b, w.merchant, w.dept
        _ticket("T1", carrier_id=a, merchant_id=m)
        _ticket("T2", carrier_id=a, merchant_id=m, request_to_id=a)   # A named twice: once
        _ticket("T3", carrier_id=a, request_to_id=dept)
        _ticket("T4", carrier_id=b)
        _ticket("T-OLD", days_ago=800, carrier_id=b)
        _volume(a, 600)
        _volume(a, 400, days_ago=0)
        _volume(b, 2000)
        _volume(m, 500)
        _volume(b, 9999, days_ago=800)
        db.session.commit()
        return w


def _filters(**kw) -> metrics.DashboardFilters:
    return metrics.DashboardFilters(metrics.Period.last_twelve_months(), **kw)


def test_complaint_rate_is_complaints_per_thousand_orders(app, world):
    with app.test_request_context():
        rates = metrics.complaint_rates(_filters())
        by_code = {p.code: p for p in rates.parties}
        assert (by_code["C001"].complaints, by_code["C001"].orders) == (3, 1000)
        assert by_code["C001"].rate == Decimal("3.00")
        assert by_code["C002"].rate == Decimal("0.50")        # the old ticket is not counted
        assert by_code["M001"].rate == Decimal("4.00")
        assert by_code["D001"].complaints == 1 and by_code["D001"].rate is None
        assert [p.code for p in rates.parties][:3] == ["M001", "C001", "C002"]
        kinds = {r.key.value: r for r in rates.by_kind}
        assert (kinds["carrier"].complaints, kinds["carrier"].orders) == (4, 3000)
        assert (rates.total.complaints, rates.total.orders) == (7, 3500)
        assert len(rates.trend) == 12
        assert sum(r.complaints for r in rates.trend) == 7


def test_filters_narrow_to_a_kind_or_a_party(app, world):
    with app.test_request_context():
        merchant = metrics.complaint_rates(_filters(kind=metrics.PartyKind.MERCHANT))
        assert [p.code for p in merchant.parties] == ["M001"]
        one = metrics.complaint_rates(_filters(party_id=world.carrier_b))
        assert (one.total.complaints, one.total.orders) == (1, 2000)


def test_violations_offenders_appeals_and_hr_notices(app, world):
    with app.test_request_context():
        d = metrics.dashboard(_filters())
        assert [(c.standard_code, c.clause_number, c.violations) for c in d.clauses] == [
            ("CAR-DLV", "1", 1)]
        assert d.clauses[0].fines == Decimal("500.00")
        assert [o.code for o in d.offenders] == ["C001", "D001"]   # 70 % and 30 % of ¥500
        assert d.offenders[0].amount == Decimal("350.00")
        assert (d.appeals.penalties, d.appeals.filed, d.appeals.decided) == (2, 0, 0)
        assert d.appeals.appeal_rate == Decimal("0.0") and d.appeals.overturn_rate is None
        assert [(h.code, h.notices, h.open, h.acted) for h in d.hr] == [("D001", 1, 1, 0)]
        other_clause = metrics.dashboard(_filters(standard_id=world.standard,
                                                  clause_number="2"))
        assert other_clause.clauses == [] and other_clause.offenders == []


def test_rank_among_peers_counts_lowest_rate_first(app, world):
    from portal.parties.models import Party

    with app.test_request_context():
        period = metrics.Period.last_twelve_months()
        a = metrics.rank_among_peers(db.session.get(Party, world.carrier_a), period)
        b = metrics.rank_among_peers(db.session.get(Party, world.carrier_b), period)
        assert (a.position, a.of, b.position, b.of) == (2, 2, 1, 2)
        dept = metrics.rank_among_peers(db.session.get(Party, world.dept), period)
        assert dept.position is None


def _signed_in(make_browser, who: str):
    b = make_browser()
    b.login(username(who), PASSWORD)
    english(b)
    return b


def test_dashboard_page_links_numbers_to_their_records(app, world, make_browser):
    page = _signed_in(make_browser, "auditor").get("/reports/dashboard")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "SF Express" in html and "ZTO" in html
    assert "/penalties?from=" in html and "party=C001" in html
    assert "/cases?from=" in html and f"clause={world.standard}:1" in html
    assert "export=tickets" in html and "<script" not in html


def test_scorecard_shows_rank_without_naming_peers(app, world, make_browser):
    b = _signed_in(make_browser, "staff_a")
    asked_for_b = b.get("/reports/scorecard?party=C002").get_data(as_text=True)
    assert "Rank 2 of 2" in asked_for_b and "ZTO" not in asked_for_b   # A's own, still
    html = b.get("/reports/scorecard")
    assert html.status_code == 200
    text = html.get_data(as_text=True)
    assert "Rank 2 of 2" in text and "SF Express" in text
    assert "C002" not in text and "ZTO" not in text and "中通" not in text
    assert "M001" not in text       # the merchant on the same tickets is not shown either


def test_party_staff_cannot_open_the_dashboard_or_anothers_numbers(app, world, make_browser):
    b = _signed_in(make_browser, "staff_a")
    assert b.get("/reports/dashboard").status_code == 403
    exported = b.get("/reports/scorecard?party=C002&export=tickets&format=csv")
    rows = list(csv.reader(io.StringIO(exported.get_data(as_text=True).lstrip("\ufeff"))))
    assert sorted(r[0] for r in rows[1:]) == ["T1", "T2", "T3"]    # carrier A's only
    trend = b.get("/reports/scorecard?export=trend&format=csv").get_data(as_text=True)
    assert sum(int(r[1]) for r in list(csv.reader(io.StringIO(trend.lstrip("\ufeff"))))[1:]) == 3


def test_csv_and_xlsx_exports_match_the_table(app, world, make_browser):
    b = _signed_in(make_browser, "cs_officer")
    resp = b.get("/reports/dashboard?export=parties&format=csv")
    assert resp.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][0] == "Party code"
    csv_rows = {r[0]: r for r in rows[1:]}
    assert csv_rows["C001"][3:] == ["3", "1000", "3.00"]
    resp = b.get("/reports/dashboard?export=parties&format=xlsx")
    sheet = load_workbook(io.BytesIO(resp.data)).active
    xlsx = {r[0]: r for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert set(xlsx) == set(csv_rows)
    assert xlsx["C001"][3:5] == (3, 1000) and Decimal(str(xlsx["C001"][5])) == Decimal(3)
    for table in ("kinds", "trend", "clauses", "offenders", "appeals", "coverage", "hr"):
        assert b.get(f"/reports/dashboard?export={table}&format=xlsx").status_code == 200
    assert b.get("/reports/dashboard?export=nope&format=csv").status_code == 404


def test_charts_are_well_formed_svg_with_escaped_labels():
    svg = charts.bar_chart("投诉率 <by party>", [("顺丰 & <b>", Decimal("3.25")), ("中通", 1)])
    root = ET.fromstring(svg)
    assert root.tag == SVG + "svg" and "Noto Sans CJK SC" in root.get("font-family")
    texts = [t.text for t in root.iter(SVG + "text")]
    assert "顺丰 & <b>" in texts and "3.25" in texts
    assert not list(root.iter(SVG + "script")) and not list(root.iter(SVG + "style"))
    line = ET.fromstring(charts.line_chart("每千单投诉", [("2026-01", Decimal("1.5")),
                                                      ("2026-02", None), ("2026-03", 2)]))
    assert "2026-02" in [t.text for t in line.iter(SVG + "text")]
    assert ET.fromstring(charts.bar_chart("空", [])) is not None


def test_period_reads_a_year_or_a_month_range(app):
    with app.test_request_context():
        year = metrics.Period.year(2026)
        assert len(year.month_starts()) == 12
        months = metrics.Period.months(year.start.replace(month=2), year.start.replace(month=3))
        assert (months.start.isoformat(), months.end.isoformat()) == ("2026-02-01",
                                                                      "2026-03-31")


def test_monthly_counts_follow_new_tickets_and_volumes(app, world):
    """The rollup is a cache: a ticket or a volume imported after a read is counted on the
    next one."""
    with app.test_request_context():
        before = metrics.complaint_rates(_filters(party_id=world.carrier_b)).total
        assert (before.complaints, before.orders) == (1, 2000)
        _ticket("T5", days_ago=0, carrier_id=world.carrier_b)
        _volume(world.carrier_b, 1000, days_ago=2)
        db.session.commit()
        after = metrics.complaint_rates(_filters(party_id=world.carrier_b)).total
        assert (after.complaints, after.orders, after.rate) == (2, 3000, Decimal("0.67"))


def test_the_same_svg_prints_in_a_pdf(app):
    from portal.core.pdf import render_pdf

    svg = charts.line_chart("每千单投诉", [("2026-01", Decimal("1.5")), ("2026-02", 2)])
    with app.test_request_context():
        pdf = render_pdf(f"<html><body><h1>晴雨表</h1>{svg}</body></html>")
    assert pdf.startswith(b"%PDF") and len(pdf) > 1000


def test_appeal_counts_link_to_the_cases_behind_them(app, world, make_browser):
    """Filed and each outcome link to the case list narrowed to appeals filed (decided) in the
    period, by the parties on the page: the list holds as many cases as the card counts."""
    import re

    from portal.cases.appeals import decide_appeal, file_appeal
    from portal.cases.models import AppealStatus, Case
    from portal.core.audit import acting_as
    from tests.test_rulings import user

    with app.test_request_context():
        case = db.session.get(Case, world.case)
        with acting_as(user("staff_a")):
            a = file_appeal(case, world.carrier_a, "有取件码短信为证", user("staff_a"))
        with acting_as(user("cs_supervisor")):
            decide_appeal(a, user("cs_supervisor"), AppealStatus.OVERTURNED, "录音证明已放柜")
        db.session.commit()
        d = metrics.dashboard(_filters())
        assert (d.appeals.filed, d.appeals.decided, d.appeals.overturned) == (1, 1, 1)
    b = _signed_in(make_browser, "auditor")
    html = b.get("/reports/dashboard").get_data(as_text=True)
    hrefs = {m: re.search(r'href="([^"]*appeal=' + m + r'[^"]*)"', html).group(1)
             .replace("&amp;", "&") for m in ("filed", "decided", "upheld", "overturned")}
    number = f"CASE-{world.case:06d}"
    for outcome, expected in (("filed", True), ("decided", True), ("overturned", True),
                              ("upheld", False)):
        body = b.get(hrefs[outcome]).get_data(as_text=True).split("<tbody>")[1]
        assert (number in body) is expected, outcome
    # a period before the appeal: the same link finds nothing
    early = hrefs["filed"].replace("appeal_to=", "appeal_to=2000-01-01&x=")
    assert number not in b.get(early).get_data(as_text=True).split("<tbody>")[1]
    # the other carrier's scorecard does not count carrier A's appeal
    other = b.get(hrefs["filed"] + "&party=C002").get_data(as_text=True).split("<tbody>")[1]
    assert number not in other
    assert "Unknown appeal filter" in b.get("/cases?appeal=maybe").get_data(as_text=True)


def test_an_import_counts_the_dashboard_months_again(app, world, tmp_path):
    """The CLI (and the background upload) recount the last twelve months once the file is in,
    so the dashboard's next reader finds no stale month."""
    from portal.reports.models import RollupMonth

    with app.test_request_context():
        metrics.complaint_rates(_filters())                      # counted once
        old_mark = metrics._data_mark()
    path = tmp_path / "volumes.csv"
    path.write_text(f"party_code,day,orders\nC002,{local_today() - timedelta(days=3)},700\n",
                    encoding="utf-8")
    result = app.test_cli_runner().invoke(
        args=["intake", "import", str(path), "--volumes", "--lang", "en"])
    assert result.exit_code == 0, result.output
    with app.test_request_context():
        mark = metrics._data_mark()
        assert mark != old_mark
        months = metrics.Period.last_twelve_months().month_starts()
        marks = dict(db.session.execute(db.select(RollupMonth.month, RollupMonth.mark)).all())
        assert all(marks.get(m) == mark for m in months)
        b = metrics.complaint_rates(_filters(party_id=world.carrier_b)).total
        assert b.orders == 2700
