"""A ruling taking effect and an appeal filed or decided tell the people concerned (each in
their email language) and the subscribed systems, in the same transaction."""
from __future__ import annotations

import json

from sqlalchemy import select

from portal.accounts.models import User
from portal.cases.appeals import decide_appeal, file_appeal
from portal.cases.models import AppealStatus, Case
from portal.core.audit import acting_as
from portal.core.outbox import OutboxMessage
from portal.core.webhooks import create_endpoint
from portal.extensions import db
from tests.factories import build_world, username


def user(key: str) -> User:
    return db.session.scalar(select(User).where(User.username == username(key)))


def emails(prefix: str) -> dict[str, OutboxMessage]:
    rows = db.session.scalars(select(OutboxMessage).where(OutboxMessage.key.startswith(prefix)))
    return {m.to_addr: m for m in rows if m.channel.value == "email"}


def events(name: str) -> list[dict]:
    return [json.loads(m.body) for m in db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.event == name))]


def test_ruling_appeal_and_decision_reach_the_people_and_systems_concerned(ctx):
    with acting_as(None):
        create_endpoint(name="ERP", url="http://127.0.0.1:9/hook",
                        events=["case.ruled", "appeal.filed", "appeal.decided"])
    db.session.flush()
    world = build_world()
    case = db.session.get(Case, world.case)
    # the world's ruling took effect before anyone had an address: nothing was queued
    assert emails("case-ruled-") == {}
    manager, staff, officer = user("carrier_manager"), user("staff_a"), user("cs_officer")
    manager.email, manager.locale = "mgr@c001.example", "en"
    staff.email, officer.email = "staff@c001.example", "officer@cs.example"
    officer.locale = "zh_CN"
    db.session.flush()
    from portal.cases.updates import ruling_effective

    ruling_effective(case.ruling)            # the same call _take_effect makes
    ruled = emails("case-ruled-")
    assert set(ruled) == {"mgr@c001.example"}          # managers, not every staff member
    mail = ruled["mgr@c001.example"]
    assert mail.subject.startswith(f"Case {case.number} ruled: C001 owes ¥350.00")
    assert "70%" in mail.body and "You may appeal until" in mail.body
    ruled_event = events("case.ruled")
    assert {s["party"] for s in ruled_event[0]["data"]["shares"]} == {"C001", "D001"}

    with acting_as(staff):
        appeal = file_appeal(case, world.carrier_a, "有取件码短信为证", staff)
    filed = emails(f"appeal-filed-{appeal.id}")
    assert set(filed) == {"officer@cs.example"}
    assert "申诉" in filed["officer@cs.example"].subject      # the officer reads Chinese
    assert events("appeal.filed")

    supervisor = user("cs_supervisor")
    with acting_as(supervisor):
        decide_appeal(appeal, supervisor, AppealStatus.REDUCED, "部分采纳", fine="100.00")
    decided = emails(f"appeal-decided-{appeal.id}")
    assert set(decided) == {"mgr@c001.example", "staff@c001.example"}
    assert "Reduced" in decided["mgr@c001.example"].subject
    assert "¥100.00" in decided["mgr@c001.example"].body
    assert events("appeal.decided")
