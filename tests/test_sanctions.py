"""Points per party per year and the sanctions they trigger: thresholds crossed once, the
yearly reset (serious points carried), automatic lifts when an appeal takes points back,
manual lifts with a reason, no new business for a suspended party whose staff can still
appeal, the party's own page, the parties API."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select

from portal.accounts.models import User
from portal.api import services as api_services
from portal.cases import sanctions
from portal.cases.appeals import decide_appeal, file_appeal
from portal.cases.models import (
    Appeal,
    AppealStatus,
    Case,
    Penalty,
    Sanction,
    SanctionLevel,
)
from portal.cases.rulings import ShareInput, issue_ruling
from portal.cases.services import open_case, record_violation
from portal.config import SettingError, parse_carry_years, parse_sanction_thresholds
from portal.core.audit import AuditEvent, acting_as
from portal.core.db import utcnow
from portal.core.errors import ServiceError
from portal.core.outbox import OutboxMessage
from portal.core.timeutil import frozen_time, local_today
from portal.extensions import db
from portal.parties.models import Party
from portal.standards.models import Clause
from portal.standards.services import add_clause, create_standard
from portal.training.models import TrainingTask
from tests.factories import PASSWORD, build_world, publish_reviewed, username
from tests.helpers import english

OK = "线下培训已确认"


def user(key: str) -> User:
    return db.session.scalar(select(User).where(User.username == username(key)))


def points_world():
    """build_world (no case) plus CAR-PTS for carriers: §1 6 serious points per occurrence,
    §2 6 ordinary points, and a published course on CAR-PTS. carrier_manager has an email."""
    from portal.training import courses

    world = build_world(with_case=False)
    admin = user("cs_admin")
    with acting_as(admin):
        std = create_standard(code="CAR-PTS", title_zh="配送积分标准", title_en="Carrier points",
                              audience=["carrier"],
                              effective_from=local_today() - timedelta(days=400), author=admin)
        v = std.versions[0]
        serious = add_clause(v, number="1", title_zh="虚假签收反馈", body="不得虚假反馈签收。",
                             rules=[{"kind": "points", "points": 6, "serious": True}])
        ordinary = add_clause(v, number="2", title_zh="服务礼仪", body="礼貌用语。",
                              rules=[{"kind": "points", "points": 6}])
        db.session.flush()
        publish_reviewed(v, admin, user("cs_supervisor"))
        course = courses.create_course(code="TRN-PTS", title_zh="积分标准复训", kind="mandatory",
                                       mode="offline", standard_codes="CAR-PTS",
                                       questions_per_attempt=0, author=admin)
        courses.publish_course(course, admin)
    user("carrier_manager").email = "mgr@c001.example.com"
    world.ids.update(serious=serious.id, ordinary=ordinary.id, course=course.id)
    db.session.commit()
    return world


@pytest.fixture
def world(ctx):
    return points_world()


@pytest.fixture
def page_world(app):
    with app.test_request_context():
        return points_world()


def penalise(world, party="carrier_a", clause="ordinary", occurrences=1, shares=None) -> Case:
    """A case of ``occurrences`` breaches of CAR-PTS ``clause`` by ``party``, ruled at once
    (points only: within the officer's limit)."""
    officer = user("cs_officer")
    with acting_as(officer):
        case = open_case(title="积分测试", description="", incident_at=utcnow() - timedelta(hours=5),
                         user=officer)
        record_violation(case, clause=db.session.get(Clause, world.ids[clause]),
                         party=db.session.get(Party, world.ids[party]), occurrences=occurrences,
                         evidence="录音", user=officer)
        issue_ruling(case, officer=officer, rationale="证据充分", shares=shares or [
            ShareInput(world.ids[party], 100, override_reason=OK)])
    db.session.flush()
    return case


def party(world, key="carrier_a") -> Party:
    return db.session.get(Party, world.ids[key])


def rows(world, key="carrier_a") -> list[tuple[int, str, bool]]:
    return [(s.year, s.level.value, s.active) for s in db.session.scalars(
        select(Sanction).where(Sanction.party_id == world.ids[key]).order_by(Sanction.id))]


def actions(prefix: str) -> list[str]:
    return db.session.scalars(select(AuditEvent.action).where(
        AuditEvent.action.startswith(prefix)).order_by(AuditEvent.id)).all()


def at(year, month, day, hour=4) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


# --- thresholds ----------------------------------------------------------------------------------

def test_crossing_twelve_points_triggers_one_warning_and_reviewing_again_adds_nothing(world):
    year = local_today().year
    penalise(world)
    assert sanctions.year_points(world.carrier_a) == (6, 0)
    assert rows(world) == [] and party(world).sanction == ""
    penalise(world)
    assert sanctions.year_points(world.carrier_a) == (12, 0)
    assert rows(world) == [(year, "warning", True)]
    assert party(world).sanction == "warning" and party(world).new_business
    sanctions.review_sanctions({world.carrier_a})
    penalise(world, party="carrier_b")           # another party's points are its own
    assert rows(world) == [(year, "warning", True)] and rows(world, "carrier_b") == []
    assert actions("sanction.") == ["sanction.triggered"]
    assert actions("party.sanction") == ["party.sanction_changed"]
    mail = db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.key.startswith("sanction-"))).all()
    assert [m.to_addr for m in mail] == ["mgr@c001.example.com"]
    assert "C001" in mail[0].subject and "12" in mail[0].subject
    sanctions.review_sanctions({world.carrier_a})
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.key.startswith("sanction-"))) == 1


def test_crossing_several_thresholds_at_once_triggers_each_and_retraining_assigns_courses(world):
    penalise(world, occurrences=8)                               # 48 points in one ruling
    year = local_today().year
    assert rows(world) == [(year, lvl, True) for lvl in
                           ("warning", "retraining", "suspension", "termination")]
    p = party(world)
    assert p.sanction == "termination" and p.new_business is False
    trained = db.session.scalars(select(User.username).join(
        TrainingTask, TrainingTask.user_id == User.id).where(
        TrainingTask.course_id == world.course).order_by(User.username)).all()
    assert trained == ["carrier.manager", "staff.a"]            # C001's staff, not C002's
    due = db.session.scalar(select(TrainingTask.due_on).where(
        TrainingTask.course_id == world.course).limit(1))
    assert due == local_today() + timedelta(days=14)
    event_ = db.session.scalar(select(AuditEvent).where(
        AuditEvent.action == "sanction.triggered").order_by(AuditEvent.id).offset(1))
    assert event_.after_dict()["level"] == "retraining"
    assert event_.after_dict()["courses_assigned"][0]["course"] == "TRN-PTS"
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.key.startswith("sanction-"))) == 4


def test_retraining_without_a_course_on_the_standards_assigns_nothing(world):
    from portal.training.models import Course, CourseStatus

    db.session.get(Course, world.course).status = CourseStatus.ARCHIVED
    penalise(world, occurrences=4)                               # 24 points
    event_ = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "sanction.triggered").order_by(AuditEvent.id)).all()[-1]
    assert event_.after_dict()["level"] == "retraining"
    assert event_.after_dict()["courses_assigned"] == []


# --- the year --------------------------------------------------------------------------------------

def test_points_reset_each_year_but_serious_points_count_the_following_year(world, app):
    with frozen_time(at(2025, 5, 10)):
        penalise(world, clause="serious")
        penalise(world, clause="ordinary")
        assert sanctions.year_points(world.carrier_a) == (12, 0)
        assert rows(world) == [(2025, "warning", True)]
    with frozen_time(at(2026, 3, 1)):
        assert sanctions.year_points(world.carrier_a) == (6, 6)    # only the serious 6
        penalise(world, clause="ordinary")
        assert sanctions.year_points(world.carrier_a) == (12, 6)
        assert rows(world) == [(2025, "warning", True), (2026, "warning", True)]
    assert sanctions.year_points(world.carrier_a, 2027) == (0, 0)   # one carry year only
    app.config["SERIOUS_POINTS_CARRY_YEARS"] = 2
    try:
        assert sanctions.year_points(world.carrier_a, 2027) == (6, 6)
        app.config["SERIOUS_POINTS_CARRY_YEARS"] = 0
        assert sanctions.year_points(world.carrier_a, 2026) == (6, 0)
    finally:
        app.config["SERIOUS_POINTS_CARRY_YEARS"] = 1


def test_the_year_is_the_portal_time_zones(world):
    # 2025-12-31 17:00 UTC is already 1 January 2026 in Shanghai
    with frozen_time(datetime(2025, 12, 31, 17, 0, tzinfo=UTC)):
        penalise(world)
    assert sanctions.year_points(world.carrier_a, 2025) == (0, 0)
    assert sanctions.year_points(world.carrier_a, 2026) == (6, 0)


def test_a_reduction_decided_in_january_keeps_the_points_in_the_rulings_year(world):
    with frozen_time(at(2025, 12, 29)):
        case = penalise(world, occurrences=2)                   # 12 points in 2025
        with acting_as(user("staff_a")):
            a = file_appeal(case, world.carrier_a, "客户已签收", user("staff_a"))
    with frozen_time(at(2026, 1, 2)):
        with acting_as(user("cs_supervisor")):
            decide_appeal(a, user("cs_supervisor"), AppealStatus.REDUCED, "部分成立", points=8)
        assert sanctions.year_points(world.carrier_a, 2025) == (8, 0)
        assert sanctions.year_points(world.carrier_a, 2026) == (0, 0)
        assert rows(world) == [(2025, "warning", False)]        # 8 < 12: lifted


# --- lifting ---------------------------------------------------------------------------------------

def test_an_overturned_appeal_lifts_the_sanction_and_it_is_not_triggered_again(world):
    penalise(world)
    case = penalise(world)
    assert party(world).sanction == "warning"
    with acting_as(user("staff_a")):
        a = file_appeal(case, world.carrier_a, "并非虚假签收", user("staff_a"))
    with acting_as(user("cs_supervisor")):
        decide_appeal(a, user("cs_supervisor"), AppealStatus.OVERTURNED, "取件记录为证")
    s = db.session.scalar(select(Sanction).where(Sanction.party_id == world.carrier_a))
    assert s.lifted_at is not None and s.lifted_by_id is None
    assert "6" in s.lift_reason and "12" in s.lift_reason
    assert party(world).sanction == "" and party(world).new_business
    assert actions("sanction.") == ["sanction.triggered", "sanction.lifted"]
    lifted = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "sanction.lifted"))
    assert lifted.after_dict()["automatic"] is True and lifted.after_dict()["points_now"] == 6
    penalise(world)                                        # 12 again: lifted once, stays lifted
    assert rows(world) == [(local_today().year, "warning", False)]
    assert party(world).sanction == ""


def test_a_correction_that_removes_points_lifts_the_sanctions_it_no_longer_reaches(world):
    case = penalise(world, occurrences=4)                      # 24: warning + retraining
    officer = user("cs_officer")
    with acting_as(officer):
        case.violations[0].occurrences = 2
        case.violations[0].points = 12
        issue_ruling(case, officer=officer, rationale="更正", supersede_reason="次数有误",
                     shares=[ShareInput(world.carrier_a, 100, override_reason=OK)])
    year = local_today().year
    assert rows(world) == [(year, "warning", True), (year, "retraining", False)]
    assert party(world).sanction == "warning"


def test_a_manual_lift_needs_the_permission_and_a_reason_and_happens_once(world):
    penalise(world, occurrences=6)                             # 36: up to suspension
    suspension = db.session.scalar(select(Sanction).where(
        Sanction.level == SanctionLevel.SUSPENSION))
    with pytest.raises(ServiceError):
        sanctions.lift_sanction(suspension, user("cs_officer"), "复训已通过")
    with pytest.raises(ServiceError) as refused:
        sanctions.lift_sanction(suspension, user("cs_supervisor"), "  ")
    assert refused.value.field == "reason"
    assert suspension.active
    sanctions.lift_sanction(suspension, user("cs_supervisor"), "复训已全部通过")
    assert suspension.lift_reason == "复训已全部通过"
    assert suspension.lifted_by_id == user("cs_supervisor").id
    assert party(world).sanction == "retraining" and party(world).new_business
    with pytest.raises(ServiceError):
        sanctions.lift_sanction(suspension, user("cs_director"), "再次解除")
    sanctions.review_sanctions({world.carrier_a})             # 36 points still: stays lifted
    assert not suspension.active and party(world).sanction == "retraining"


def test_lifting_on_the_party_page(app, page_world, make_browser):
    world = page_world
    with app.test_request_context():
        penalise(world, occurrences=6)
        db.session.commit()
        sid = db.session.scalar(select(Sanction.id).where(
            Sanction.level == SanctionLevel.SUSPENSION))
    cs = make_browser()
    cs.login(username("cs_supervisor"), PASSWORD)
    english(cs)
    page = cs.get(f"/parties/{world.carrier_a}").get_data(as_text=True)
    assert "Points in" in page and "36" in page and "No new business" in page
    assert page.count("Lift sanction") == 3
    resp = cs.post(f"/parties/{world.carrier_a}/sanctions/{sid}/lift", {"reason": ""})
    assert resp.status_code == 400
    assert "Say why the sanction is lifted" in resp.get_data(as_text=True)
    resp = cs.post(f"/parties/{world.carrier_a}/sanctions/{sid}/lift",
                   {"reason": "复训已全部通过"})
    assert resp.status_code == 302
    page = cs.get(f"/parties/{world.carrier_a}").get_data(as_text=True)
    assert "复训已全部通过" in page and page.count("Lift sanction") == 2
    # a sanction of another party is not found through this party's address
    assert cs.post(f"/parties/{world.carrier_b}/sanctions/{sid}/lift",
                   {"reason": "x"}).status_code == 404
    officer = make_browser()
    officer.login(username("cs_officer"), PASSWORD)
    assert "Lift sanction" not in officer.get(f"/parties/{world.carrier_a}").get_data(
        as_text=True)


# --- no new business -------------------------------------------------------------------------------

def test_a_suspended_partys_staff_still_see_their_case_and_appeal(app, page_world, make_browser):
    world = page_world
    with app.test_request_context():
        case = penalise(world, occurrences=6)                  # 36: suspension
        db.session.commit()
        case_id = case.id
        assert party(world).sanction == "suspension" and party(world).new_business is False
    staff = make_browser()
    staff.login(username("staff_a"), PASSWORD)
    english(staff)
    assert staff.get(f"/cases/{case_id}").status_code == 200
    home = staff.get("/").get_data(as_text=True)
    assert "No new business" in home and "/parties/standing" in home
    resp = staff.post(f"/cases/{case_id}/appeals", {"statement": "客户已签收,有照片为证"})
    assert resp.status_code == 302
    with app.app_context():
        assert db.session.scalar(select(Appeal.status).where(Appeal.case_id == case_id)) \
            is AppealStatus.OPEN


def test_new_business_follows_the_gravest_standing_sanction(world):
    p = party(world)
    for level, flag in (("", True), ("warning", True), ("retraining", True),
                        ("suspension", False), ("termination", False)):
        p.sanction = level
        assert p.new_business is flag
    p.sanction, p.active = "", False
    assert p.new_business is False


# --- settings ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["12", "12:warning,x:retraining", "0:warning", "12:caution",
                                  "12:warning,24:warning", "24:warning,12:retraining",
                                  "12:warning,12:retraining", "-5:warning"])
def test_a_bad_threshold_setting_names_itself(text):
    with pytest.raises(SettingError, match="^SANCTION_THRESHOLDS: "):
        parse_sanction_thresholds(text)


def test_threshold_settings_that_read():
    assert parse_sanction_thresholds(" 36:suspension, 12:Warning ") == [
        (12, "warning"), (36, "suspension")]
    assert parse_sanction_thresholds("") == []
    assert parse_carry_years("0") == 0 and parse_carry_years(2) == 2
    for bad in ("-1", "one", "11", ""):
        with pytest.raises(SettingError, match="^SERIOUS_POINTS_CARRY_YEARS: "):
            parse_carry_years(bad)


def test_a_bad_setting_in_the_environment_stops_the_start(monkeypatch):
    from portal import create_app

    monkeypatch.setenv("SECRET_KEY", "test")
    monkeypatch.setenv("SANCTION_THRESHOLDS", "12:warnign")
    with pytest.raises(SettingError, match="SANCTION_THRESHOLDS"):
        create_app({"TESTING": True})
    monkeypatch.delenv("SANCTION_THRESHOLDS")
    monkeypatch.setenv("SERIOUS_POINTS_CARRY_YEARS", "yes")
    with pytest.raises(SettingError, match="SERIOUS_POINTS_CARRY_YEARS"):
        create_app({"TESTING": True})


def test_other_thresholds_apply_and_a_bad_override_is_named(world, app):
    saved = app.config["SANCTION_THRESHOLDS"]
    app.config["SANCTION_THRESHOLDS"] = "6:warning"
    try:
        penalise(world)
        assert rows(world) == [(local_today().year, "warning", True)]
        app.config["SANCTION_THRESHOLDS"] = "6:warning,3:termination"
        with pytest.raises(SettingError, match="SANCTION_THRESHOLDS"):
            sanctions.review_sanctions({world.carrier_a})
    finally:
        app.config["SANCTION_THRESHOLDS"] = saved


# --- serious points split over shares --------------------------------------------------------------

def test_a_serious_points_rule_splits_over_the_shares(world):
    with frozen_time(at(2025, 6, 1)):
        officer = user("cs_officer")
        with acting_as(officer):
            case = open_case(title="共同责任", description="", user=officer,
                             incident_at=utcnow() - timedelta(hours=3))
            for key in ("serious", "ordinary"):
                record_violation(case, clause=db.session.get(Clause, world.ids[key]),
                                 party=party(world), occurrences=1, evidence="录音",
                                 user=officer)
            issue_ruling(case, officer=officer, rationale="共同责任", shares=[
                ShareInput(world.carrier_a, 70, override_reason=OK),
                ShareInput(world.carrier_b, 30, override_reason=OK)])
    got = {p.party_id: (p.points, p.serious_points) for p in db.session.scalars(select(Penalty))}
    assert got == {world.carrier_a: (8, 4), world.carrier_b: (4, 2)}   # 12 and 6 by 70/30
    assert sanctions.year_points(world.carrier_a, 2026) == (4, 4)
    assert sanctions.year_points(world.carrier_b, 2026) == (2, 2)


def test_points_of_many_parties_are_read_in_one_query(world, app):
    penalise(world)
    penalise(world, party="carrier_b", clause="serious")
    statements = []
    engine = db.engine
    listener = lambda *args: statements.append(args[2])
    event.listen(engine, "before_cursor_execute", listener)
    try:
        got = sanctions.points_by_party(None, local_today().year)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert got == {world.carrier_a: (6, 0), world.carrier_b: (6, 0)}
    assert len(statements) == 1


# --- the party's own page and the party list ----------------------------------------------------

def test_a_party_user_sees_only_their_own_partys_points_and_sanctions(app, page_world,
                                                                      make_browser):
    world = page_world
    with app.test_request_context():
        penalise(world, occurrences=3)                          # C001: 18, warning
        penalise(world, party="carrier_b", clause="serious")    # C002: 6
        db.session.commit()
    mine = make_browser()
    mine.login(username("carrier_manager"), PASSWORD)
    english(mine)
    page = mine.get("/parties/standing").get_data(as_text=True)
    assert "C001" in page and "<strong>18</strong>" in page
    assert "Standing sanction:" in page and "No new business" not in page
    assert "C002" not in page
    other = make_browser()
    other.login(username("staff_b"), PASSWORD)
    english(other)
    page = other.get("/parties/standing").get_data(as_text=True)
    assert "C002" in page and "<strong>6</strong>" in page
    assert "C001" not in page and "Standing sanction:" not in page and "No sanctions." in page
    assert "/parties/standing" in other.get("/").get_data(as_text=True)
    assert other.get(f"/parties/{world.carrier_a}").status_code == 403
    cs = make_browser()
    cs.login(username("cs_officer"), PASSWORD)
    assert cs.get("/parties/standing").status_code == 302


def test_the_party_list_shows_sanctions_and_filters_by_them(app, page_world, make_browser):
    world = page_world
    with app.test_request_context():
        penalise(world, occurrences=6)                          # C001: suspension
        penalise(world, party="carrier_b", occurrences=2)       # C002: warning
        db.session.commit()
    cs = make_browser()
    cs.login(username("auditor"), PASSWORD)
    english(cs)
    page = cs.get("/parties/").get_data(as_text=True)
    assert "No new business" in page and "Warning" in page
    suspended = cs.get("/parties/?sanction=suspension").get_data(as_text=True)
    assert ">C001<" in suspended and ">C002<" not in suspended
    none = cs.get("/parties/?sanction=none").get_data(as_text=True)
    assert ">C001<" not in none and ">C002<" not in none and ">M001<" in none
    blocked = cs.get("/parties/?sanction=no_new_business").get_data(as_text=True)
    assert ">C001<" in blocked and ">M001<" not in blocked


# --- the API ---------------------------------------------------------------------------------------

@pytest.fixture
def api_world(app, page_world):
    with app.test_request_context():
        penalise(page_world, occurrences=6)                     # C001: suspension, 36
        penalise(page_world, party="carrier_b", clause="serious")   # C002: 6
        _token, plaintext = api_services.issue_token("Order routing", user("cs_admin"))
        db.session.commit()
    return page_world, {"Authorization": f"Bearer {plaintext}"}


def test_the_parties_api_gives_the_flag_and_points_and_filters(app, api_world):
    _world, headers = api_world
    client = app.test_client()
    resp = client.get("/api/v1/parties", headers=headers, query_string={"kind": "carrier"})
    assert resp.status_code == 200
    body = resp.json
    assert body["year"] == local_today().year and body["next"] is None
    by_code = {p["code"]: p for p in body["items"]}
    assert set(by_code) == {"C001", "C002"}
    assert by_code["C001"] == {"code": "C001", "kind": "carrier", "name_zh": "顺丰速运",
                               "name_en": "SF Express", "active": True,
                               "sanction": "suspension", "new_business": False, "points": 36,
                               "serious_carried": 0}
    assert by_code["C002"]["sanction"] is None and by_code["C002"]["new_business"] is True
    blocked = client.get("/api/v1/parties?new_business=false", headers=headers).json
    assert [p["code"] for p in blocked["items"]] == ["C001"]
    open_ = client.get("/api/v1/parties?new_business=true", headers=headers).json
    assert "C001" not in [p["code"] for p in open_["items"]] and len(open_["items"]) == 5
    assert [p["code"] for p in client.get("/api/v1/parties?code=c002",
                                          headers=headers).json["items"]] == ["C002"]


def test_the_parties_api_pages_and_refuses_bad_filters(app, api_world):
    _world, headers = api_world
    client = app.test_client()
    first = client.get("/api/v1/parties?limit=4", headers=headers).json
    second = client.get(f"/api/v1/parties?limit=4&after={first['next']}", headers=headers).json
    assert len(first["items"]) == 4 and len(second["items"]) == 2 and second["next"] is None
    assert {p["code"] for p in first["items"]}.isdisjoint(p["code"] for p in second["items"])
    for params, name in (({"kind": "shop"}, "kind"), ({"new_business": "yes"}, "new_business"),
                         ({"limit": "0"}, "limit"), ({"after": "nope"}, "after")):
        resp = client.get("/api/v1/parties", headers={**headers, "Accept-Language": "en"},
                          query_string=params)
        assert resp.status_code == 400 and resp.json["parameter"] == name
        assert resp.json["message"].startswith(name)
    assert client.get("/api/v1/parties").status_code == 401


def test_a_parties_page_is_read_in_a_fixed_number_of_queries(app, api_world):
    _world, headers = api_world
    statements = []
    with app.app_context():
        engine = db.engine
    listener = lambda *args: statements.append(args[2])
    event.listen(engine, "before_cursor_execute", listener)
    try:
        assert len(app.test_client().get("/api/v1/parties", headers=headers).json["items"]) == 6
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) <= 3, selects       # the token, the page, the points
