"""HR penalty notices: written from rulings, following corrections and appeals (amended,
withdrawn, carried over), HR's steps and their refusals, escalation by working days, and the
emails and webhook events each change queues."""
from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from flask_babel import force_locale
from sqlalchemy import select

from portal.cases.appeals import decide_appeal, file_appeal
from portal.cases.models import AppealStatus, Case, Penalty
from portal.cases.rulings import ShareInput, issue_ruling
from portal.cases.services import open_case, record_violation
from portal.core.audit import AuditEvent, acting_as
from portal.core.db import utcnow
from portal.core.errors import ConflictError, ServiceError
from portal.core.outbox import OutboxMessage
from portal.core.timeutil import frozen_time, local_today
from portal.extensions import db
from portal.hr.escalation import escalate_overdue, escalation_due
from portal.hr.models import ActionKind, EventKind, HrNotice, NoticeStatus
from portal.hr.services import acknowledge_notice, close_notice, record_action
from portal.parties.models import Party
from portal.standards.rules import HrSanction, RuleKind, canonical, parse_rules
from portal.standards.services import add_clause, create_standard
from tests.factories import build_world, publish_reviewed
from tests.test_rulings import user

OK = "线下已确认"
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def world(ctx):
    """build_world's case: carrier C001 70 % (¥350), D001 30 % (¥150) naming E0137 钱晓, on a
    carrier clause (no sanction proposed). HR officers with addresses: one reads Chinese, one
    English; a CS supervisor with an address (escalations)."""
    w = build_world()
    hr = user("hr_officer")
    hr.email, hr.locale = "hr@example.com", "zh_CN"
    from portal.accounts.services import create_user
    from portal.core.permissions import Role

    create_user(username="hr.en", display_name="HR (English)", password="test-password-1",
                role=Role.HR_OFFICER, email="hr.en@example.com")
    user("hr_en").locale = "en"
    user("cs_supervisor").email = "sup@example.com"
    db.session.commit()
    return w


def notice_of(world) -> HrNotice:
    return db.session.get(HrNotice, world.notice)


def en(fn, *args, **kw):
    """Run a service in English, so the refusal's message can be read."""
    with force_locale("en"):
        return fn(*args, **kw)


def refused(match: str, fn, *args, **kw):
    with pytest.raises(ServiceError, match=match):
        en(fn, *args, **kw)


def hr_actions() -> list[str]:
    return db.session.scalars(select(AuditEvent.action).where(
        AuditEvent.action.like("hr_notice.%")).order_by(AuditEvent.id)).all()


def hr_mail(kind: str) -> list[OutboxMessage]:
    return db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.key.like(f"hr-notice-%-{kind}%")).order_by(OutboxMessage.id)).all()


def correct(world, *shares, rationale="证据充分", reason="复核后更正"):
    officer = user("cs_officer")
    with acting_as(officer):
        return issue_ruling(db.session.get(Case, world.case), officer=officer,
                            rationale=rationale, shares=list(shares), supersede_reason=reason)


def sanction_clauses(world):
    """An internal standard whose clauses propose sanctions to HR."""
    admin = user("cs_admin")
    with acting_as(admin):
        std = create_standard(code="INT-HR", title_zh="内部处罚标准", title_en="Internal sanctions",
                              audience=["department"], author=admin,
                              effective_from=local_today() - timedelta(days=30))
        v = std.versions[0]
        fine = add_clause(v, number="1", title_zh="促销设置错误", title_en="Promotion set up wrongly",
                          body="因人为失误导致促销设置错误。", fine="1000.00",
                          rules=[{"kind": "hr_sanction", "proposal": "fine",
                                  "text": "从当月绩效扣减"}])
        training = add_clause(v, number="2", title_zh="规则未同步", title_en="Rules not shared",
                              body="促销规则变更须同步客服。", fine="200.00",
                              rules=[{"kind": "hr_sanction", "proposal": "training"}])
        db.session.flush()
        publish_reviewed(v, admin, user("cs_supervisor"))
    return fine, training


def dept_case(world, *clauses, employee=("E0142", "冯雪")) -> HrNotice:
    officer = user("cs_officer")
    dept = db.session.get(Party, world.dept)
    with acting_as(officer):
        case = open_case(title="满减门槛设置错误", description="", user=officer,
                         incident_at=utcnow() - timedelta(days=1))
        for clause in clauses:
            record_violation(case, clause=clause, party=dept, occurrences=1, evidence="截图",
                             user=officer)
        issue_ruling(case, officer=officer, rationale="配置错误未复核即上线",
                     shares=[ShareInput(world.dept, 100, *employee, override_reason=OK)])
    db.session.commit()
    return db.session.scalar(select(HrNotice).where(HrNotice.case_id == case.id))


# --- what a notice carries ----------------------------------------------------------------------

def test_a_notice_carries_the_clauses_and_the_gravest_sanction_they_propose(world):
    fine, training = sanction_clauses(world)
    notice = dept_case(world, training, fine)
    assert (notice.employee_no, notice.employee_name, notice.department_id) == (
        "E0142", "冯雪", world.dept)
    assert [c["label"] for c in notice.clauses] == ["INT-HR v1 §1", "INT-HR v1 §2"]
    assert notice.proposal is HrSanction.FINE and notice.proposal_text == "从当月绩效扣减"
    assert notice.amount == Decimal("1200.00") and notice.percent == 100
    assert notice.status is NoticeStatus.NEW and notice.number == f"HR-{notice.id:06d}"
    assert [e.kind for e in notice.events] == [EventKind.SENT]


def test_the_sanction_rule_is_checked_and_frozen_with_the_version(ctx):
    parsed = parse_rules([{"kind": "hr_sanction", "proposal": "written_warning", "text": " 记录 "}])
    assert parsed[0]["kind"] is RuleKind.HR_SANCTION
    assert parsed[0]["params"] == {"proposal": "written_warning", "text": "记录"}
    assert '"proposal":"written_warning"' in canonical(RuleKind.HR_SANCTION, None, None,
                                                       parsed[0]["params"])
    for bad in ({"kind": "hr_sanction", "proposal": "flogging"},
                {"kind": "hr_sanction", "proposal": "fine", "amount": "5"},
                {"kind": "hr_sanction", "proposal": "fine", "text": "x" * 501}):
        with pytest.raises(ServiceError):
            parse_rules([bad])
    with pytest.raises(ServiceError):
        parse_rules([{"kind": "hr_sanction", "proposal": "fine"},
                     {"kind": "hr_sanction", "proposal": "training"}])
    # the older kinds' canonical text (and so every other rulebook's hash) is unchanged
    assert canonical(RuleKind.FIXED_FINE, Decimal("500.00"), None, {}) == (
        'rule {"amount":"500.00","kind":"fixed_fine","params":{},"points":null}')


def test_the_default_rulebook_proposes_sanctions_on_internal_clauses(ctx):
    import tomllib

    from portal import ROOT

    data = tomllib.loads((ROOT / "standards" / "int-promo.toml").read_text("utf-8"))
    proposals = {c["number"]: [r["proposal"] for r in c.get("rules", [])
                               if r["kind"] == "hr_sanction"] for c in data["clauses"]}
    assert proposals == {"1": ["written_warning"], "2": ["fine"], "3": ["training"], "4": []}
    for clause in data["clauses"]:
        parse_rules(clause.get("rules"))


# --- HR's steps ---------------------------------------------------------------------------------

def test_hr_acknowledges_records_the_action_and_closes_in_that_order(world):
    notice, hr = notice_of(world), user("hr_officer")
    refused("Acknowledge receipt", record_action, notice, hr, "警告")
    refused("Record the action taken before closing", close_notice, notice, hr)
    acknowledge_notice(notice, hr)
    refused("already acknowledged", acknowledge_notice, notice, hr)
    refused("Record the action taken before closing", close_notice, notice, hr)
    refused("Describe the action taken", record_action, notice, hr, "  ")
    record_action(notice, hr, "书面警告已发", kind="written_warning")
    assert notice.status is NoticeStatus.ACTIONED and notice.action_kind is ActionKind.WRITTEN_WARNING
    refused("already recorded", record_action, notice, hr, "再来一次")
    close_notice(notice, hr)
    assert notice.status is NoticeStatus.CLOSED and notice.closed_by_id == hr.id
    refused("already closed", close_notice, notice, hr)
    refused("already acknowledged", acknowledge_notice, notice, hr)
    assert hr_actions() == ["hr_notice.sent", "hr_notice.acknowledged", "hr_notice.actioned",
                            "hr_notice.closed"]
    assert [e.kind for e in notice.events] == [EventKind.SENT, EventKind.ACKNOWLEDGED,
                                               EventKind.ACTION_RECORDED, EventKind.CLOSED]


def test_an_action_other_than_the_one_proposed_needs_a_reason(world):
    fine, _training = sanction_clauses(world)
    notice, hr = dept_case(world, fine), user("hr_officer")
    acknowledge_notice(notice, hr)
    refused("differs from the sanction proposed", record_action, notice, hr,
            "口头提醒", kind="written_warning")
    refused("Choose the action taken", record_action, notice, hr, "x", kind="flogging")
    assert notice.status is NoticeStatus.ACKNOWLEDGED
    record_action(notice, hr, "书面警告", kind="written_warning", reason="首次违规,主动上报")
    assert notice.action_reason == "首次违规,主动上报"


def test_the_proposed_action_needs_no_reason_and_is_the_default(world):
    fine, _training = sanction_clauses(world)
    notice, hr = dept_case(world, fine), user("hr_officer")
    acknowledge_notice(notice, hr)
    record_action(notice, hr, "扣减 11 月绩效 1000 元")
    assert notice.action_kind is ActionKind.FINE and notice.action_reason == ""


def test_a_step_on_a_notice_changed_meanwhile_is_a_conflict(world):
    notice, hr = notice_of(world), user("hr_officer")
    seen = notice.version
    acknowledge_notice(notice, hr)
    db.session.commit()
    with pytest.raises(ConflictError):
        en(record_action, notice, hr, "警告", version=seen)
    assert notice.status is NoticeStatus.ACKNOWLEDGED


def test_two_hr_officers_acting_at_once_cannot_both_win(app, world):
    """Optimistic locking: the second writer's flush finds the row changed."""
    from sqlalchemy.orm import Session
    from sqlalchemy.orm.exc import StaleDataError

    with Session(db.engine) as other:
        theirs = other.get(HrNotice, world.notice)
        acknowledge_notice(notice_of(world), user("hr_officer"))
        db.session.commit()
        theirs.status = NoticeStatus.ACKNOWLEDGED
        with pytest.raises(StaleDataError):
            other.commit()


# --- following corrections and appeals --------------------------------------------------------

def test_a_correction_without_the_department_withdraws_its_notice(world):
    notice = notice_of(world)
    acknowledge_notice(notice, user("hr_officer"))
    correct(world, ShareInput(world.carrier_a, 100, override_reason=OK))
    assert notice.status is NoticeStatus.WITHDRAWN and notice.withdrawn_at is not None
    event = notice.events[-1]
    assert event.kind is EventKind.WITHDRAWN and event.ref.startswith("R-")
    assert event.reason == "复核后更正"
    assert event.details["previous"]["status"] == "acknowledged"
    assert hr_actions()[-1] == "hr_notice.withdrawn"
    assert {m.to_addr for m in hr_mail("withdrawn")} == {"hr@example.com", "hr.en@example.com"}
    refused("was withdrawn", record_action, notice, user("hr_officer"), "警告")


def test_a_correction_changing_the_amount_amends_the_notice_and_keeps_what_hr_did(world):
    notice, hr = notice_of(world), user("hr_officer")
    acknowledge_notice(notice, hr)
    record_action(notice, hr, "扣绩效 150 元")
    close_notice(notice, hr)
    old_penalty = notice.penalty_id
    correct(world, ShareInput(world.carrier_a, 80, override_reason=OK),
            ShareInput(world.dept, 20, "E0137", "钱晓", override_reason=OK))
    assert notice.amount == Decimal("100.00") and notice.percent == 20
    assert notice.status is NoticeStatus.NEW and notice.amendments == 1
    assert notice.action_kind is None and notice.closed_at is None
    assert notice.penalty_id != old_penalty and db.session.get(Penalty, notice.penalty_id).active
    amended = notice.events[-1]
    assert amended.kind is EventKind.AMENDED
    assert (amended.details["before"]["amount"], amended.details["after"]["amount"]) == (
        "150.00", "100.00")
    assert amended.details["previous"]["status"] == "closed"
    assert amended.details["previous"]["action_taken"] == "扣绩效 150 元"
    assert [m.key for m in hr_mail("amended")] == [
        f"hr-notice-{notice.id}-amended-1-u{user('hr_officer').id}",
        f"hr-notice-{notice.id}-amended-1-u{user('hr_en').id}"]
    acknowledge_notice(notice, hr)                       # HR acknowledges the amended notice


def test_a_correction_leaving_the_notice_as_it_was_carries_it_over(world):
    notice = notice_of(world)
    acknowledge_notice(notice, user("hr_officer"))
    correct(world, ShareInput(world.carrier_a, 70, override_reason=OK),
            ShareInput(world.dept, 30, "E0137", "钱晓", override_reason=OK))
    assert notice.status is NoticeStatus.ACKNOWLEDGED and notice.amendments == 0
    assert notice.events[-1].kind is EventKind.CARRIED_OVER
    assert db.session.get(Penalty, notice.penalty_id).active
    assert hr_mail("amended") == [] and hr_mail("withdrawn") == []


def test_a_correction_naming_another_employee_withdraws_one_notice_and_writes_another(world):
    correct(world, ShareInput(world.carrier_a, 70, override_reason=OK),
            ShareInput(world.dept, 30, "E0142", "冯雪", override_reason=OK))
    notices = db.session.scalars(select(HrNotice).order_by(HrNotice.id)).all()
    assert [(n.employee_no, n.status) for n in notices] == [
        ("E0137", NoticeStatus.WITHDRAWN), ("E0142", NoticeStatus.NEW)]


def _dept_appeal(world):
    manager = user("dept_manager")
    with acting_as(manager):
        return file_appeal(db.session.get(Case, world.case), world.dept, "促销部不应承担责任",
                           manager)


def test_an_overturned_appeal_withdraws_the_notice(world):
    appeal = _dept_appeal(world)
    with acting_as(user("cs_supervisor")):
        decide_appeal(appeal, user("cs_supervisor"), AppealStatus.OVERTURNED, "促销部无责")
    notice = notice_of(world)
    assert notice.status is NoticeStatus.WITHDRAWN
    assert notice.events[-1].ref == appeal.number and notice.events[-1].reason == "促销部无责"


def test_a_reduced_appeal_amends_the_notice(world):
    notice = notice_of(world)
    acknowledge_notice(notice, user("hr_officer"))
    appeal = _dept_appeal(world)
    with acting_as(user("cs_supervisor")):
        decide_appeal(appeal, user("cs_supervisor"), AppealStatus.REDUCED, "减半", fine="75.00")
    assert notice.amount == Decimal("75.00") and notice.status is NoticeStatus.NEW
    assert notice.penalty_id == appeal.new_penalty_id
    assert notice.events[-1].kind is EventKind.AMENDED and notice.events[-1].ref == appeal.number


def test_an_upheld_appeal_leaves_the_notice_alone(world):
    appeal = _dept_appeal(world)
    with acting_as(user("cs_supervisor")):
        decide_appeal(appeal, user("cs_supervisor"), AppealStatus.UPHELD, "维持")
    assert notice_of(world).status is NoticeStatus.NEW and notice_of(world).amendments == 0


def test_an_appeal_by_a_carrier_touches_no_notice(world):
    carrier = user("staff_a")
    with acting_as(carrier):
        appeal = file_appeal(db.session.get(Case, world.case), world.carrier_a, "不认可", carrier)
    with acting_as(user("cs_supervisor")):
        decide_appeal(appeal, user("cs_supervisor"), AppealStatus.OVERTURNED, "撤销")
    assert notice_of(world).status is NoticeStatus.NEW


# --- telling HR ---------------------------------------------------------------------------------

def test_each_hr_officer_gets_the_new_notice_in_their_language(world):
    from portal.standards.models import Clause

    notice = dept_case(world, db.session.get(Clause, world.promo_clause))
    mails = {m.to_addr: m for m in hr_mail("created")}
    assert {m.key for m in mails.values()} == {
        f"hr-notice-{notice.id}-created-u{user(k).id}" for k in ("hr_officer", "hr_en")}
    assert set(mails) == {"hr@example.com", "hr.en@example.com"}
    zh, en_ = mails["hr@example.com"], mails["hr.en@example.com"]
    assert notice.number in zh.subject and "冯雪" in zh.subject
    assert "D001 促销部" in zh.body and "Promotions" not in zh.body
    assert "D001 Promotions" in en_.body and "Department:" in en_.body
    assert "/hr/notices/" in zh.body
    assert notice.case.number in zh.body and "¥1,000.00" in zh.body


def test_a_change_is_posted_to_the_subscribed_webhook_in_the_same_transaction(world):
    from portal.core.webhooks import create_endpoint

    with acting_as(user("cs_admin")):
        create_endpoint(name="hr-system", url="https://hr.example.com/hook",
                        events=["hr_notice.withdrawn", "hr_notice.amended"])
    correct(world, ShareInput(world.carrier_a, 100, override_reason=OK))
    rows = db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.event == "hr_notice.withdrawn")).all()
    assert len(rows) == 1 and rows[0].key.startswith(f"hr-notice-{world.notice}-withdrawn")
    body = json.loads(rows[0].body)
    data = body.get("data", body)
    assert data["notice"] == notice_of(world).number and data["status"] == "withdrawn"
    assert "C001" not in rows[0].body       # nothing of the other party


# --- escalation ---------------------------------------------------------------------------------

def local(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def test_working_days_skip_weekends_and_holidays():
    holidays = frozenset({date(2026, 12, 7)})                     # a Monday off
    friday = local(2026, 12, 4, 15, 0)
    assert escalation_due(friday, 2, SHANGHAI, frozenset()) == local(2026, 12, 8, 15, 0)
    assert escalation_due(friday, 2, SHANGHAI, holidays) == local(2026, 12, 9, 15, 0)
    saturday = local(2026, 12, 5, 11, 0)                        # counted from Monday 00:00
    assert escalation_due(saturday, 2, SHANGHAI, frozenset()) == local(2026, 12, 9, 0, 0)
    assert escalation_due(saturday, 1, SHANGHAI, holidays) == local(2026, 12, 9, 0, 0)


@pytest.fixture
def holidays(app, monkeypatch):
    monkeypatch.setitem(app.config, "HR_ESCALATE_WORKING_DAYS", 2)
    monkeypatch.setitem(app.config, "HR_HOLIDAYS", "2026-12-07")


def test_a_notice_left_new_is_escalated_once_after_the_working_days(world, holidays):
    notice = notice_of(world)
    notice.created_at = local(2026, 12, 4, 15, 0).astimezone(UTC)    # Friday afternoon
    db.session.commit()
    with frozen_time(local(2026, 12, 9, 14, 59)):       # Wednesday (Monday was a holiday)
        assert escalate_overdue() == 0
    with frozen_time(local(2026, 12, 9, 15, 0)):
        assert escalate_overdue() == 1
        assert escalate_overdue() == 0                  # once only
    assert notice.escalated_at == local(2026, 12, 9, 15, 0).astimezone(UTC)
    assert notice.status is NoticeStatus.NEW and notice.events[-1].kind is EventKind.ESCALATED
    assert hr_actions().count("hr_notice.escalated") == 1
    assert {m.to_addr for m in hr_mail("escalated")} == {
        "hr@example.com", "hr.en@example.com", "sup@example.com"}


def test_an_acknowledged_or_withdrawn_notice_is_never_escalated(world, holidays):
    notice = notice_of(world)
    notice.created_at = local(2026, 12, 4, 15, 0).astimezone(UTC)
    acknowledge_notice(notice, user("hr_officer"))
    db.session.commit()
    with frozen_time(local(2026, 12, 30, 9, 0)):
        assert escalate_overdue() == 0


def test_an_amended_notice_is_given_the_working_days_again(world, holidays):
    notice = notice_of(world)
    with frozen_time(local(2026, 12, 1, 10, 0)):
        notice.created_at = utcnow()
        db.session.flush()
    with frozen_time(local(2026, 12, 3, 10, 0)):
        assert escalate_overdue() == 1
        correct(world, ShareInput(world.carrier_a, 80, override_reason=OK),
                ShareInput(world.dept, 20, "E0137", "钱晓", override_reason=OK))
    assert notice.escalated_at is None and notice.amended_at == local(2026, 12, 3, 10, 0)
    with frozen_time(local(2026, 12, 4, 10, 0)):
        assert escalate_overdue() == 0
    with frozen_time(local(2026, 12, 8, 10, 0)):        # Thu -> Fri, (Mon off), Tue
        assert escalate_overdue() == 1
    assert len(hr_mail("escalated")) == 6               # twice, 3 recipients each


def test_the_worker_round_escalates(app, world, holidays, smtp_server):
    from portal.worker.cli import run_round

    notice = notice_of(world)
    notice.created_at = utcnow() - timedelta(days=10)
    db.session.commit()
    result = run_round()
    assert result["hr_escalated"] == 1
    assert db.session.get(HrNotice, world.notice).escalated_at is not None
    assert run_round()["hr_escalated"] == 0
