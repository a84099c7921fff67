"""Acknowledgement campaigns: tasks on publication, inheritance, scheduling, retiring, coverage."""
from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from portal.accounts.models import User
from portal.accounts.services import create_user
from portal.core.audit import AuditEvent, acting_as
from portal.core.errors import ServiceError
from portal.core.permissions import Role
from portal.core.timeutil import frozen_time, local_today
from portal.extensions import db
from portal.parties.models import Party
from portal.standards import campaigns, services
from portal.standards.models import AckTask, StandardVersion, TaskStatus, VersionStatus
from tests.factories import PASSWORD, build_world, publish_reviewed, username
from tests.helpers import english, row_counts


@pytest.fixture
def world(app):
    with app.test_request_context():
        return build_world(with_case=False)


def tasks(version_id):
    return {db.session.get(User, t.user_id).username: t for t in db.session.scalars(
        select(AckTask).where(AckTask.standard_version_id == version_id))}


def user(name) -> User:
    return db.session.scalar(select(User).where(User.username == name))


def new_version(world, *, effective: date, material: bool = True, clause: bool = True):
    v1 = db.session.get(StandardVersion, world.version)
    admin, supervisor = user("cs.admin"), user("cs.supervisor")
    with acting_as(admin):
        draft = services.new_draft(v1.standard, effective, "修订", material=material,
                                   author=admin)
        db.session.flush()
        if clause:
            services.add_clause(draft, number="3", title_zh="代签短信", body="代签须短信告知。")
        else:  # a typo fix
            draft.clauses[0].body = draft.clauses[0].body + " "
        db.session.flush()
    publish_reviewed(draft, admin, supervisor)
    db.session.commit()
    return draft


def test_publishing_gives_every_member_of_the_audience_a_task_due_in_two_weeks(app, world):
    with app.test_request_context():
        t = tasks(world.version)
        assert set(t) == {"staff.a", "staff.b", "carrier.manager"}  # carriers only
        assert {x.due_on for x in t.values()} == {local_today() + timedelta(days=14)}
        assert all(x.status is TaskStatus.OPEN for x in t.values())
        promo = tasks(world.promo_version)
        assert set(promo) == {"dept.manager", "dept.b.manager"}


def test_acknowledging_closes_the_task_with_the_text_hash(app, world, make_browser):
    b = make_browser()
    b.login(username("staff_a"), PASSWORD)
    english(b)
    page = b.get("/standards/to-read").get_data(as_text=True)
    assert f'/standards/versions/{world.version}">Read' in page
    assert b.post(f"/standards/versions/{world.version}/acknowledge").status_code == 302
    with app.test_request_context():
        task = tasks(world.version)["staff.a"]
        assert task.status is TaskStatus.DONE and task.acknowledgement is not None
        assert task.acknowledgement.text_hash == task.standard_version.text_hash
    page = b.get("/standards/to-read").get_data(as_text=True)
    assert "Nothing to read" in page
    before = row_counts(app)
    resp = b.post(f"/standards/versions/{world.version}/acknowledge", follow_redirects=True)
    assert "You already acknowledged CAR-DLV v1" in resp.get_data(as_text=True)
    assert row_counts(app) == before


def test_a_non_material_change_carries_acknowledgements_over(app, world):
    with app.test_request_context():
        v1 = db.session.get(StandardVersion, world.version)
        services.acknowledge(v1, user("staff.a"), ip="10.0.0.1", user_agent="t")
        db.session.commit()
        v2 = new_version(world, effective=local_today(), material=False, clause=False)
        t = tasks(v2.id)
        assert t["staff.a"].status is TaskStatus.DONE and t["staff.a"].carried_over
        assert t["staff.b"].status is TaskStatus.OPEN
        assert db.session.get(StandardVersion, world.version).status is VersionStatus.SUPERSEDED
        # the superseded version's open tasks are cancelled
        old = tasks(world.version)
        assert old["staff.b"].status is TaskStatus.CANCELLED
        assert old["staff.b"].cancelled_reason == "superseded"
        assert old["staff.a"].status is TaskStatus.DONE


def test_new_staff_inherit_the_open_tasks_of_their_party(app, world):
    with app.test_request_context():
        carrier = db.session.get(Party, world.carrier_a)
        newcomer = create_user(username="sf.new", display_name="新人", password=PASSWORD,
                               role=Role.PARTY_STAFF, party=carrier)
        db.session.commit()
        t = tasks(world.version)
        assert t["sf.new"].status is TaskStatus.OPEN
        assert t["sf.new"].due_on >= local_today() + timedelta(days=14)
        assert db.session.scalar(select(AuditEvent).where(
            AuditEvent.action == "ack_tasks.inherited")).object_id == str(newcomer.id)
        # nothing of the departments' standard
        assert "sf.new" not in tasks(world.promo_version)


def test_a_future_version_is_scheduled_and_takes_effect_on_its_date(app, world):
    with app.test_request_context():
        later = local_today() + timedelta(days=10)
        v2 = new_version(world, effective=later)
        std = v2.standard
        assert std.current_version.id == world.version  # v1 still in force
        assert std.scheduled_version.id == v2.id and v2.is_scheduled
        assert v2.ack_due_on == local_today() + timedelta(days=14)  # two weeks > ten days


def test_scheduled_version_tasks_are_due_by_the_effective_date_when_later(app, world):
    with app.test_request_context():
        later = local_today() + timedelta(days=30)
        v2 = new_version(world, effective=later)
        assert v2.ack_due_on == later
        assert set(tasks(v2.id)) == {"staff.a", "staff.b", "carrier.manager"}
        assert tasks(world.version)["staff.b"].status is TaskStatus.OPEN  # v1 still binds
        assert campaigns.take_effect() == 0
        moment = datetime.combine(later, datetime.min.time(), tzinfo=UTC) + timedelta(hours=12)
        with frozen_time(moment):
            assert campaigns.take_effect() == 1
            db.session.commit()
            assert db.session.get(StandardVersion, world.version).status is \
                VersionStatus.SUPERSEDED
            assert v2.standard.current_version.id == v2.id
            assert campaigns.take_effect() == 0  # idempotent
        assert tasks(world.version)["staff.b"].status is TaskStatus.CANCELLED


def test_only_one_version_can_be_scheduled_at_a_time(app, world):
    with app.test_request_context():
        new_version(world, effective=local_today() + timedelta(days=30))
        v1 = db.session.get(StandardVersion, world.version)
        admin = user("cs.admin")
        draft = services.new_draft(v1.standard, local_today() + timedelta(days=40), "再改",
                                   author=admin)
        db.session.flush()
        with pytest.raises(ServiceError, match="already scheduled|已有一个待生效"):
            services.publish_version(draft, admin, review_skipped="test")


def test_a_due_date_in_the_past_is_refused_and_nothing_is_written(app, world, make_browser):
    admin = make_browser()
    admin.login(username("cs_admin"), PASSWORD)
    english(admin)
    resp = admin.post(f"/standards/{world.standard}/drafts", {
        "effective_from": local_today().isoformat(), "change_note": "x", "material": "y"})
    vid = int(resp.headers["Location"].rsplit("/", 1)[1])
    admin.post(f"/standards/versions/{vid}/clauses", {"number": "3", "title_zh": "新",
                                                      "body": "正文"})
    admin.post(f"/standards/versions/{vid}/submit")
    sup = make_browser()
    sup.login(username("cs_supervisor"), PASSWORD)
    english(sup)
    sup.post(f"/standards/versions/{vid}/approve")
    before = row_counts(app)
    resp = sup.post(f"/standards/versions/{vid}/publish",
                    {"ack_due_on": (local_today() - timedelta(days=1)).isoformat()})
    assert resp.status_code == 400
    assert "The acknowledgement due date cannot be in the past." in resp.get_data(as_text=True)
    assert row_counts(app) == before
    resp = sup.post(f"/standards/versions/{vid}/publish", {"ack_due_on": "not a date"})
    assert resp.status_code == 400 and "Not a valid date value." in resp.get_data(as_text=True)
    due = (local_today() + timedelta(days=5)).isoformat()
    resp = sup.post(f"/standards/versions/{vid}/publish", {"ack_due_on": due},
                    follow_redirects=True)
    assert f"reading tasks are due on {due}" in resp.get_data(as_text=True)
    with app.app_context():
        assert {t.due_on.isoformat() for t in tasks(vid).values()} == {due}


def test_retiring_needs_a_reason_and_cancels_open_tasks(app, world, make_browser):
    sup = make_browser()
    sup.login(username("cs_supervisor"), PASSWORD)
    english(sup)
    before = row_counts(app)
    resp = sup.post(f"/standards/versions/{world.version}/retire", {"reason": "  "})
    assert resp.status_code == 400 and row_counts(app) == before
    resp = sup.post(f"/standards/versions/{world.version}/retire",
                    {"reason": "与新合同条款冲突,暂停执行"}, follow_redirects=True)
    assert "CAR-DLV v1 retired." in resp.get_data(as_text=True)
    with app.app_context():
        v1 = db.session.get(StandardVersion, world.version)
        assert v1.status is VersionStatus.RETIRED and v1.retire_reason.startswith("与新合同")
        assert {t.status for t in tasks(world.version).values()} == {TaskStatus.CANCELLED}
        assert v1.standard.current_version is None
        ev = db.session.scalar(select(AuditEvent).where(
            AuditEvent.action == "standard_version.retired"))
        assert ev.after_dict()["open_tasks_cancelled"] == 3


def test_named_parties_join_the_audience_and_leaving_cancels_their_tasks(app, world,
                                                                         make_browser):
    admin = make_browser()
    admin.login(username("cs_admin"), PASSWORD)
    english(admin)
    page = admin.get(f"/standards/{world.standard}/edit").get_data(as_text=True)
    import re

    lock = re.search(r'name="lock" type="hidden" value="(\d+)"', page).group(1)
    form = {"title_zh": "配送公司配送服务标准", "title_en": "Carrier delivery standard",
            "audience": "carrier", "owner_id": "1", "lock": lock}
    before = row_counts(app)
    resp = admin.post(f"/standards/{world.standard}/edit", {**form, "party_codes": "M001, X99"})
    assert resp.status_code == 400 and "No party with code X99." in resp.get_data(as_text=True)
    assert row_counts(app) == before
    resp = admin.post(f"/standards/{world.standard}/edit", {**form, "party_codes": "m001"},
                      follow_redirects=True)
    assert "1 new reading task(s)" in resp.get_data(as_text=True)
    merchant = make_browser()
    merchant.login(username("merchant_staff"), PASSWORD)
    assert merchant.get(f"/standards/{world.standard}").status_code == 200
    with app.app_context():
        assert tasks(world.version)["merchant.staff"].status is TaskStatus.OPEN
    # a second editor with the old lock is told, and nothing changes
    resp = admin.post(f"/standards/{world.standard}/edit", {**form, "party_codes": ""})
    assert resp.status_code == 400
    assert "Someone else changed this standard" in resp.get_data(as_text=True)
    page = admin.get(f"/standards/{world.standard}/edit").get_data(as_text=True)
    form["lock"] = re.search(r'name="lock" type="hidden" value="(\d+)"', page).group(1)
    admin.post(f"/standards/{world.standard}/edit", {**form, "party_codes": ""})
    with app.app_context():
        task = tasks(world.version)["merchant.staff"]
        assert task.status is TaskStatus.CANCELLED and task.cancelled_reason == "left_audience"
    assert merchant.get(f"/standards/{world.standard}").status_code == 404


def test_an_audience_needs_a_kind_or_a_party(app, world):
    with app.test_request_context(), pytest.raises(
            ServiceError, match="Choose at least one audience|请至少选择一个适用对象"):
        services.create_standard(code="X-1", title_zh="某", audience=[],
                                 effective_from=local_today())


def test_coverage_counts_per_party_and_exports_csv(app, world, make_browser):
    with app.test_request_context():
        v1 = db.session.get(StandardVersion, world.version)
        services.acknowledge(v1, user("staff.a"), ip="10.0.0.9", user_agent="t")
        db.session.commit()
        rows, count = campaigns.coverage_by_party(v1)
        assert count == 2
        assert [(r.party.code, r.totals.done, r.totals.total) for r in rows] == [
            ("C002", 0, 1), ("C001", 1, 2)]  # least covered first
    officer = make_browser()
    officer.login(username("cs_officer"), PASSWORD)
    english(officer)
    page = officer.get(f"/standards/versions/{world.version}/coverage").get_data(as_text=True)
    assert "<strong>1 / 3</strong>" in page and "33.3%" in page
    resp = officer.get(f"/standards/versions/{world.version}/coverage?format=csv")
    assert resp.mimetype == "text/csv"
    body = resp.get_data(as_text=True)
    assert body.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert rows[0][:3] == ["Standard", "Version", "Party code"]
    by_user = {r[4]: r for r in rows[1:]}
    assert set(by_user) == {"staff.a", "staff.b", "carrier.manager"}
    assert by_user["staff.a"][6] == "done" and by_user["staff.a"][9] == "10.0.0.9"
    parties = officer.get(f"/standards/versions/{world.version}/coverage?format=csv&what=parties")
    assert "C001" in parties.get_data(as_text=True)
    overview = officer.get("/standards/coverage").get_data(as_text=True)
    assert "CAR-DLV" in overview and "INT-PROMO" in overview


def test_overdue_tasks_are_listed(app, world, make_browser):
    with app.test_request_context():
        later = datetime.now(UTC) + timedelta(days=20)
        with frozen_time(later):
            _tasks, n = campaigns.overdue_tasks([world.version])
            assert n == 3
    officer = make_browser()
    officer.login(username("cs_officer"), PASSWORD)
    english(officer)
    assert "Nobody is overdue." in officer.get("/standards/coverage").get_data(as_text=True)


def test_a_manager_sees_their_own_staff_only(app, world, make_browser):
    mgr = make_browser()
    mgr.login(username("carrier_manager"), PASSWORD)
    english(mgr)
    page = mgr.get("/standards/team").get_data(as_text=True)
    assert "staff.a" in page and "carrier.manager" in page and "staff.b" not in page
    body = mgr.get("/standards/team?format=csv").get_data(as_text=True)
    assert "staff.a" in body and "staff.b" not in body


def test_change_impact_lists_open_cases_on_the_old_text_and_who_has_not_read(app, world,
                                                                            make_browser):
    with app.test_request_context():
        from portal.cases.services import open_case, record_violation
        from portal.standards.models import Clause

        officer = user("cs.officer")
        clause = db.session.get(Clause, world.clause)
        with acting_as(officer):
            case = open_case(title="虚假签收", description="TK9", user=officer,
                             incident_at=datetime.now(UTC) - timedelta(days=1))
            record_violation(case, clause=clause, party=db.session.get(Party, world.carrier_a),
                             occurrences=1, evidence="录音", user=officer)
        db.session.commit()
        v2 = new_version(world, effective=local_today() + timedelta(days=7))
        vid, number = v2.id, case.number
    b = make_browser()
    b.login(username("cs_supervisor"), PASSWORD)
    english(b)
    page = b.get(f"/standards/versions/{vid}/impact").get_data(as_text=True)
    assert number in page and "CAR-DLV v1 §1" in page and "unchanged" in page
    assert "Replaces CAR-DLV v1" in page
    assert "0 of 3 staff acknowledged" in page and "C001" in page and "C002" in page
