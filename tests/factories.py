"""Builds test worlds through the services, the same way the UI does."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from portal.accounts.services import create_user
from portal.cases.rulings import ShareInput, issue_ruling
from portal.cases.services import open_case, record_violation
from portal.core.audit import acting_as
from portal.core.db import utcnow
from portal.core.permissions import Role
from portal.core.timeutil import local_today
from portal.extensions import db
from portal.parties.models import PartyKind
from portal.parties.services import create_party
from portal.standards.services import (
    add_clause,
    approve_version,
    create_standard,
    publish_version,
    submit_for_review,
)

PASSWORD = "test-password-1"


@dataclass
class World:
    ids: dict

    def __getattr__(self, name):
        try:
            return self.ids[name]
        except KeyError:
            raise AttributeError(name) from None


def build_world(*, with_case: bool = True) -> World:
    """Parties of every kind, a user per role, two published standards, one ruled case."""
    ids = {}
    parties = {
        "carrier_a": create_party(code="C001", name_zh="顺丰速运", name_en="SF Express",
                                  kind=PartyKind.CARRIER),
        "carrier_b": create_party(code="C002", name_zh="中通快递", name_en="ZTO",
                                  kind=PartyKind.CARRIER),
        "merchant": create_party(code="M001", name_zh="优品数码", name_en="Youpin",
                                 kind=PartyKind.MERCHANT),
        "warehouse": create_party(code="W001", name_zh="北京仓", name_en="Beijing WH",
                                  kind=PartyKind.WAREHOUSE),
        "dept": create_party(code="D001", name_zh="促销部", name_en="Promotions",
                             kind=PartyKind.DEPARTMENT),
        "dept_b": create_party(code="D002", name_zh="运营部", name_en="Operations",
                               kind=PartyKind.DEPARTMENT),
    }
    users = {
        "cs_admin": (Role.CS_ADMIN, None), "cs_supervisor": (Role.CS_SUPERVISOR, None),
        "cs_officer": (Role.CS_OFFICER, None), "cs_director": (Role.CS_DIRECTOR, None),
        "auditor": (Role.AUDITOR, None),
        "hr_officer": (Role.HR_OFFICER, None),
        "staff_a": (Role.PARTY_STAFF, "carrier_a"), "staff_b": (Role.PARTY_STAFF, "carrier_b"),
        "carrier_manager": (Role.PARTY_MANAGER, "carrier_a"),
        "merchant_staff": (Role.PARTY_STAFF, "merchant"),
        "dept_manager": (Role.DEPARTMENT_MANAGER, "dept"),
        "dept_b_manager": (Role.DEPARTMENT_MANAGER, "dept_b"),
    }
    made = {}
    for username, (role, party_key) in users.items():
        made[username] = create_user(username=username.replace("_", "."),
                                     display_name=username, password=PASSWORD, role=role,
                                     party=parties.get(party_key))
    db.session.flush()
    admin = made["cs_admin"]
    with acting_as(admin):
        car = create_standard(code="CAR-DLV", title_zh="配送公司配送服务标准",
                              title_en="Carrier delivery standard", audience=["carrier"],
                              effective_from=local_today() - timedelta(days=30), author=admin)
        v = car.versions[0]
        c1 = add_clause(v, number="1", title_zh="虚假签收反馈", title_en="False delivery feedback",
                        body="未经客户签收不得反馈签收。", fine="500.00")
        add_clause(v, number="2", title_zh="两小时响应", title_en="2-hour response",
                   body="客服请求须在2小时内回复。", fine="50")
        db.session.flush()
        publish_reviewed(v, admin, made["cs_supervisor"])
        promo = create_standard(code="INT-PROMO", title_zh="内部促销活动审核标准",
                                title_en="Promotions review", audience=["department"],
                                effective_from=local_today() - timedelta(days=30), author=admin)
        pv = promo.versions[0]
        c3 = add_clause(pv, number="1", title_zh="促销设置错误", title_en="Promotion set up wrongly",
                        body="促销上线前须经客服审核。", fine="1000.00")
        db.session.flush()
        publish_reviewed(pv, admin, made["cs_supervisor"])
    ids.update({k: p.id for k, p in parties.items()})
    ids.update({f"user_{k}": u.id for k, u in made.items()})
    ids.update(standard=car.id, version=v.id, clause=c1.id, promo_version=pv.id,
               promo_clause=c3.id)
    if with_case:
        officer = made["cs_officer"]
        with acting_as(officer):
            case = open_case(title="客户未签收但系统显示已签收", description="TK1",
                             incident_at=utcnow() - timedelta(days=2), user=officer)
            record_violation(case, clause=c1, party=parties["carrier_a"], occurrences=1,
                             evidence="录音已核对", user=officer)
            ruling = issue_ruling(case, officer=officer, rationale="证据充分", shares=[
                ShareInput(parties["carrier_a"].id, 70, override_reason="线下培训已确认"),
                ShareInput(parties["dept"].id, 30, "E0137", "钱晓",
                           override_reason="促销部承担配送环节的审核责任")])
        ids.update(case=case.id, ruling=ruling.id, notice=_notice_id(ruling))
    db.session.commit()
    return World(ids)


def publish_reviewed(version, author, reviewer):
    """Send ``version`` through review: ``author`` submits, ``reviewer`` approves and publishes."""
    with acting_as(author):
        submit_for_review(version, author)
    with acting_as(reviewer):
        approve_version(version, reviewer)
        publish_version(version, reviewer)


def username(key: str) -> str:
    """The login name build_world gives the user called ``key`` (e.g. staff_a -> staff.a)."""
    return key.replace("_", ".")


def _notice_id(ruling) -> int:
    from portal.hr.models import HrNotice

    return db.session.scalar(db.select(HrNotice.id).where(HrNotice.case_id == ruling.case_id))


def build_training() -> dict:
    """On top of ``build_world``: an online course assigned to carriers that staff_b passed
    (attempt and certificate), and an offline course with a future session staff_a sits in."""
    from portal.accounts.models import User
    from portal.training import assignments, courses, quiz, sessions

    users = {u.username: u for u in db.session.scalars(db.select(User))}
    admin, staff_a, staff_b = users["cs.admin"], users["staff.a"], users["staff.b"]
    with acting_as(admin):
        course = courses.create_course(code="TRN-DLV", title_zh="配送标准培训", kind="mandatory",
                                       mode="online", standard_codes="CAR-DLV",
                                       questions_per_attempt=1, pass_mark=100,
                                       validity_months=12, author=admin)
        courses.save_lesson(course, title_zh="第一课", body="# 要点")
        courses.save_question(course, kind="true_false", text_zh="不得虚假签收",
                              options=[("", "", True)])
        courses.publish_course(course, admin)
        offline = courses.create_course(code="TRN-OFF", title_zh="线下培训", kind="mandatory",
                                        mode="offline", questions_per_attempt=0, author=admin)
        courses.publish_course(offline, admin)
        for c in (course, offline):
            assignments.assign_course(c, due_on=local_today() + timedelta(days=10),
                                      kinds=["carrier"], user=admin)
        session = sessions.schedule_session(offline, starts_at=utcnow() + timedelta(days=3),
                                            ends_at=utcnow() + timedelta(days=3, hours=2),
                                            place="培训室", capacity=10)
    enrolment = sessions.enrol(session, staff_a, by=staff_a)
    attempt = quiz.start_attempt(course, assignments.task_of(course, staff_b), staff_b)
    right = quiz.paper_items(attempt, reveal=True)[0].right
    quiz.submit_attempt(attempt, {"0": right}, staff_b)
    cert = assignments.task_of(course, staff_b).certificate
    db.session.commit()
    return {"course": course.id, "offline_course": offline.id, "session": session.id,
            "enrolment": enrolment.id, "attempt": attempt.id, "certificate": cert.id,
            "cert_code": cert.code}
