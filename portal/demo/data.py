"""Builds the demo world through the same services the UI uses, so every row is audited."""
from __future__ import annotations

import random
from datetime import UTC, timedelta
from decimal import Decimal

from sqlalchemy import select

from portal import ROOT
from portal.accounts.models import User
from portal.accounts.services import create_user
from portal.cases.rulings import ShareInput, issue_ruling
from portal.cases.services import open_case, record_violation
from portal.core.audit import acting_as, record
from portal.core.db import utcnow
from portal.core.permissions import Role
from portal.core.timeutil import frozen_time
from portal.demo.training import load_training
from portal.extensions import db
from portal.hr.services import acknowledge_notice, record_action
from portal.parties.models import Party, PartyKind
from portal.parties.services import create_party
from portal.standards.loader import load_directory
from portal.standards.models import Standard
from portal.standards.services import acknowledge, add_clause, new_draft, submit_for_review

DEMO_PASSWORD = "demo-pass-2026"  # nosec B105  # the demo logins, published in the README
# The demo accounts whose role requires two-factor sign-in share this published key, so that
# `flask demo code USERNAME` can print their current code. Never use it for a real account.
DEMO_TOTP_SECRET = "SERVICESTANDARDSDEMOTOTPKEYAAAAA"  # nosec B105  # published, demo only

PARTIES = [
    ("C001", "顺丰速运", "SF Express", PartyKind.CARRIER),
    ("C002", "中通快递", "ZTO Express", PartyKind.CARRIER),
    ("C003", "圆通速递", "YTO Express", PartyKind.CARRIER),
    ("C004", "韵达快递", "Yunda Express", PartyKind.CARRIER),
    ("C005", "申通快递", "STO Express", PartyKind.CARRIER),
    ("C006", "城市之星落地配", "City Star Last-Mile", PartyKind.CARRIER),
    ("M001", "优品数码旗舰店", "Youpin Digital Flagship", PartyKind.MERCHANT),
    ("M002", "鲜果园生鲜", "Fresh Orchard Grocery", PartyKind.MERCHANT),
    ("M003", "童趣玩具专营店", "Kids Fun Toys", PartyKind.MERCHANT),
    ("M004", "雅居家纺", "Yaju Home Textiles", PartyKind.MERCHANT),
    ("W001", "北京亦庄仓", "Beijing Yizhuang Warehouse", PartyKind.WAREHOUSE),
    ("W002", "上海嘉定仓", "Shanghai Jiading Warehouse", PartyKind.WAREHOUSE),
    ("W003", "广州黄埔仓", "Guangzhou Huangpu Warehouse", PartyKind.WAREHOUSE),
    ("D001", "促销部", "Promotions", PartyKind.DEPARTMENT),
    ("D002", "运营部", "Operations", PartyKind.DEPARTMENT),
    ("D003", "送货部", "Delivery management", PartyKind.DEPARTMENT),
    ("D004", "商品部", "Catalogue", PartyKind.DEPARTMENT),
]

# username, name, role, party code, employee no
USERS = [
    ("admin", "系统管理员 王敏", Role.CS_ADMIN, None, "E0001"),
    ("supervisor", "客服主管 李娜", Role.CS_SUPERVISOR, None, "E0002"),
    ("director", "客服总监 孙立", Role.CS_DIRECTOR, None, "E0010"),
    ("officer", "判责专员 张伟", Role.CS_OFFICER, None, "E0003"),
    ("officer2", "判责专员 刘洋", Role.CS_OFFICER, None, "E0004"),
    ("auditor", "审计 陈静", Role.AUDITOR, None, "E0005"),
    ("hr.zhao", "人事专员 赵磊", Role.HR_OFFICER, None, "E0006"),
    ("sf.zhou", "周强(顺丰客服)", Role.PARTY_STAFF, "C001", ""),
    ("sf.wu", "吴婷(顺丰客服)", Role.PARTY_STAFF, "C001", ""),
    ("sf.mgr", "顺丰客服经理 许强", Role.PARTY_MANAGER, "C001", ""),
    ("zto.sun", "孙浩(中通客服)", Role.PARTY_STAFF, "C002", ""),
    ("yto.ma", "马丽(圆通客服)", Role.PARTY_STAFF, "C003", ""),
    ("m001.he", "何佳(优品数码)", Role.PARTY_STAFF, "M001", ""),
    ("m002.lin", "林峰(鲜果园)", Role.PARTY_STAFF, "M002", ""),
    ("w001.guo", "郭涛(亦庄仓)", Role.PARTY_STAFF, "W001", ""),
    ("promo.mgr", "促销部经理 黄蕾", Role.DEPARTMENT_MANAGER, "D001", "E0101"),
]

EMPLOYEES = {"D001": [("E0137", "钱晓"), ("E0142", "冯雪")],
             "D002": [("E0208", "蒋宁")], "D003": [("E0311", "韩冰")], "D004": [("E0405", "唐悦")]}

CASE_TITLES = {
    PartyKind.CARRIER: ["客户投诉未收到包裹但系统显示已签收", "配送超时三天未联系客户",
                        "代签未按规定短信告知", "客服催单两小时内未回复"],
    PartyKind.MERCHANT: ["商家使用未备案配送公司发货", "商家超时发货引发投诉", "商品描述与实物不符"],
    PartyKind.WAREHOUSE: ["仓库错发商品", "仓库交接延误导致整批订单超时"],
    PartyKind.DEPARTMENT: ["促销活动价格设置错误", "促销上线前未经客服审核"],
}


def is_loaded() -> bool:
    return db.session.scalar(select(Party.id).where(Party.code == "C001")) is not None


def load_demo(months: int = 4, seed: int = 20261123) -> dict:
    rng = random.Random(seed)  # nosec B311  # reproducible demo data, no secrets
    start = utcnow() - timedelta(days=30 * months)
    with frozen_time(start):
        parties = {code: create_party(code=code, name_zh=zh, name_en=en, kind=kind)
                   for code, zh, en, kind in PARTIES}
        users = {}
        for username, name, role, code, emp in USERS:
            users[username] = create_user(
                username=username, display_name=name, password=DEMO_PASSWORD, role=role,
                party=parties.get(code), email=f"{username}@example.com", employee_no=emp)
        db.session.flush()
        _enrol_two_factor(users.values())
        with acting_as(users["admin"]):
            result = load_directory(ROOT / "standards", users["admin"],
                                    owner=users["supervisor"])
        if result.errors:
            raise RuntimeError("; ".join(str(e) for e in result.errors))
    _acknowledge_some(users, rng, start)
    load_training(users, start)
    n_cases = _cases(parties, users, rng, start, months)
    _version_in_review(users["supervisor"])
    _awaiting_approval(parties, users)
    _appealed(parties, users)
    _hr_scenarios(parties, users)
    from portal.demo.tickets import load_tickets

    intake = load_tickets(users["officer"], rng)
    with acting_as(users["admin"]):  # joined this week: inherits the carriers' reading tasks
        create_user(username="sf.new", display_name="新员工 方圆(顺丰)", password=DEMO_PASSWORD,
                    role=Role.PARTY_STAFF, party=parties["C001"], email="sf.new@example.com")
    from portal.cases.sanctions import review_all

    review_all()          # every party's points and sanctions as of today
    from portal.demo.statements import issue_demo_statements
    issue_demo_statements(users)  # the complete months' statements (对账单)
    db.session.commit()
    return {"parties": len(parties), "users": len(users), "cases": n_cases, **intake}


def _enrol_two_factor(users) -> None:
    """The accounts whose role requires two-factor sign-in get the demo key (party staff sign
    in with the password alone, as they may choose to)."""
    from portal.accounts.security import two_factor_required

    for user in users:
        if two_factor_required(user):
            user.totp_secret, user.totp_enabled_at = DEMO_TOTP_SECRET, utcnow()
            with acting_as(user):
                record("two_factor.enrolled", user, after={"demo_key": True})


def demo_code(username: str) -> str:
    """The current sign-in code of a demo account (one holding the published demo key)."""
    import pyotp

    from portal.core.errors import ServiceError

    user = db.session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None or user.totp_secret != DEMO_TOTP_SECRET or not user.two_factor_enabled:
        raise ServiceError(f"{username} is not a demo account with the demo two-factor key")
    return pyotp.TOTP(DEMO_TOTP_SECRET).at(utcnow())


def _acknowledge_some(users, rng, start):
    standards = db.session.scalars(select(Standard)).all()
    for username in ("sf.zhou", "zto.sun", "m001.he", "w001.guo", "promo.mgr", "yto.ma"):
        user = users[username]
        for std in standards:
            v = std.current_version
            if v and std.addresses(user.party):
                with frozen_time(start + timedelta(days=rng.randint(1, 20), hours=3)), \
                        acting_as(user):
                    acknowledge(v, user, ip=f"10.8.{rng.randint(0, 9)}.{rng.randint(2, 250)}",
                                user_agent="Mozilla/5.0 (demo)")


def _clauses_by_kind():
    by_kind: dict[PartyKind, list] = {}
    for std in db.session.scalars(select(Standard)).all():
        v = std.current_version
        for c in v.clauses if v else []:
            if c.fine_per_occurrence:
                for kind in std.audience_kinds:
                    by_kind.setdefault(kind, []).append(c)
    return by_kind


def _cases(parties, users, rng, start, months) -> int:
    clauses = _clauses_by_kind()
    officers = [users["officer"], users["officer2"], users["supervisor"]]
    by_kind: dict[PartyKind, list[Party]] = {}
    for p in parties.values():
        by_kind.setdefault(p.kind, []).append(p)
    n = 0
    day = start + timedelta(days=21)
    end = utcnow() - timedelta(days=1)
    while day < end:
        kind = rng.choice([PartyKind.CARRIER] * 4 + [PartyKind.MERCHANT] * 2 +
                          [PartyKind.WAREHOUSE, PartyKind.DEPARTMENT])
        if not clauses.get(kind):
            day += timedelta(days=1)
            continue
        party = rng.choice(by_kind[kind])
        clause = rng.choice(clauses[kind])
        officer = rng.choice(officers)
        incident = day.replace(hour=rng.randint(1, 12), minute=rng.randint(0, 59), tzinfo=UTC)
        with acting_as(officer):
            with frozen_time(incident + timedelta(hours=6)):
                case = open_case(title=rng.choice(CASE_TITLES[kind]),
                                 description=f"工单号 TK{rng.randint(10_000_000, 99_999_999)},"
                                             f"订单号 {rng.randint(10**11, 10**12 - 1)}",
                                 incident_at=incident, user=officer)
                record_violation(case, clause=clause, party=party,
                                 occurrences=rng.choice([1, 1, 1, 2]),
                                 evidence="客户来电录音及配送系统签收记录已核对;投诉工单截图已存档。",
                                 user=officer)
            ruled_at = incident + timedelta(days=rng.randint(1, 4), hours=rng.randint(0, 5))
            if rng.random() < 0.8 and ruled_at < end:
                with frozen_time(ruled_at):
                    issue_ruling(case, officer=officer, rationale=_rationale(kind, rng),
                                 shares=_shares(kind, party, by_kind, rng))
                    _hr_follow_up(case, users["hr.zhao"], rng)
        n += 1
        day += timedelta(hours=rng.randint(20, 60))
    return n


OVERRIDE = "该条款已在线下培训中逐条讲解并签到，视同知悉。"


def _shares(kind, party, by_kind, rng) -> list[ShareInput]:
    """A share needs an override reason where the party never acknowledged the clause; the
    demo gives one everywhere and the portal keeps it only where it is needed."""
    if kind is PartyKind.DEPARTMENT:
        emp = rng.choice(EMPLOYEES.get(party.code, [("E0999", "未知")]))
        return [ShareInput(party.id, 100, *emp, override_reason=OVERRIDE)]
    if rng.random() < 0.25:
        dept = rng.choice(by_kind[PartyKind.DEPARTMENT])
        emp = rng.choice(EMPLOYEES[dept.code])
        pct = rng.choice([60, 70, 80])
        return [ShareInput(party.id, pct, override_reason=OVERRIDE),
                ShareInput(dept.id, 100 - pct, *emp, override_reason=OVERRIDE)]
    return [ShareInput(party.id, 100, override_reason=OVERRIDE)]


def _awaiting_approval(parties, users):
    """A large case ruled by an officer, waiting for the supervisor's signature."""
    clause = next(c for c in _clauses_by_kind()[PartyKind.CARRIER]
                  if c.fine_per_occurrence == Decimal("500.00"))
    officer = users["officer2"]
    with acting_as(officer), frozen_time(utcnow() - timedelta(hours=20)):
        case = open_case(title="同一配送站点连续虚假签收(批量)",
                         description="工单号 TK26110001 至 TK26110006,共 6 单;站点:朝阳三站",
                         incident_at=utcnow() - timedelta(days=3), user=officer)
        record_violation(case, clause=clause, party=parties["C002"], occurrences=6,
                         evidence="6 单客户均确认未签收,配送员轨迹未到达小区。", user=officer)
        issue_ruling(case, officer=officer, rationale="同一站点短期内连续 6 次虚假签收反馈,情节严重,"
                     "按条款逐单处罚。", shares=[ShareInput(parties["C002"].id, 100,
                                                        override_reason=OVERRIDE)])


def _appealed(parties, users):
    """A ruling from two days ago that SF Express appeals (round 1, waiting for a decision)."""
    from portal.cases.appeals import file_appeal

    clause = next(c for c in _clauses_by_kind()[PartyKind.CARRIER]
                  if c.fine_per_occurrence == Decimal("500.00"))
    officer = users["officer"]
    with acting_as(officer), frozen_time(utcnow() - timedelta(days=2)):
        case = open_case(title="客户投诉未收到包裹,系统显示本人签收",
                         description="工单号 TK26111877", user=officer,
                         incident_at=utcnow() - timedelta(days=1))
        record_violation(case, clause=clause, party=parties["C001"], occurrences=1,
                         evidence="客户来电录音;签收记录截图。", user=officer)
        issue_ruling(case, officer=officer, rationale="配送员在客户未签收的情况下反馈签收。",
                     shares=[ShareInput(parties["C001"].id, 100, override_reason=OVERRIDE)])
    staff = users["sf.zhou"]
    with acting_as(staff), frozen_time(utcnow() - timedelta(days=1)):
        file_appeal(case, parties["C001"].id, "该件已按客户电话要求放入小区快递柜,客户凭取件码"
                    "取件,快递柜系统有取件记录,并非虚假签收。", staff)


def _rationale(kind, rng) -> str:
    return rng.choice([
        "经核实客户反馈属实,责任方已确认学习过对应条款版本,按条款处罚。",
        "系统记录与客户陈述一致,证据充分,依据条款判定责任。",
        "调取通话录音与签收记录,确认违规,按责任比例分摊。",
    ])


def _version_in_review(author):
    """CAR-DLV v2 waits in review, so a second person (admin) can approve and publish it."""
    car = db.session.scalar(select(Standard).where(Standard.code == "CAR-DLV"))
    with acting_as(author), frozen_time(utcnow() - timedelta(hours=3)):
        draft = new_draft(car, (utcnow() + timedelta(days=14)).date(),
                          "新增“异常件 24 小时内上报”条款;虚假签收反馈罚款不变。",
                          material=True, author=author)
        db.session.flush()
        add_clause(draft, number="9", title_zh="异常件 24 小时内上报",
                   title_en="Report exceptions within 24 hours",
                   body="包裹破损、丢失、地址错误等异常,配送公司须在发现后 24 小时内在系统中上报并通知客服。",
                   rules=[{"kind": "time_limit", "limit_minutes": 1440, "amount": "100.00"}])
        db.session.flush()
        submit_for_review(draft, author)


def _hr_follow_up(case, hr_user, rng):
    """HR works through most notices: receipt acknowledged, action recorded (now and then not
    the one proposed, with the reason), and half of those closed."""
    from portal.hr.models import ActionKind, HrNotice
    from portal.hr.services import close_notice, default_action

    notices = db.session.scalars(select(HrNotice).where(HrNotice.case_id == case.id)).all()
    for notice in notices:
        if rng.random() < 0.7:
            with acting_as(hr_user):
                acknowledge_notice(notice, hr_user)
                if rng.random() < 0.6:
                    kind, reason = default_action(notice), ""
                    if kind is ActionKind.FINE and rng.random() < 0.4:
                        kind, reason = ActionKind.WRITTEN_WARNING, "员工首次违规且主动上报,改为书面警告。"
                    record_action(notice, hr_user, "已发书面警告,并安排重新培训促销审核流程。",
                                  kind=kind, reason=reason)
                    if notice.id % 3:   # most of them closed, some left open
                        close_notice(notice, hr_user)


def _hr_scenarios(parties, users):
    """HR notices in the states the inbox must show besides the everyday ones: one amended
    (an appeal reduced the department's fine after HR had acknowledged it), one withdrawn
    (a correction took the department out of the ruling), one just sent; then the worker's
    escalation as of now (notices left new for more than the working days allowed)."""
    from portal.cases.appeals import decide_appeal, file_appeal
    from portal.cases.models import AppealStatus
    from portal.hr.escalation import escalate_overdue
    from portal.hr.models import HrNotice
    from portal.standards.models import Clause

    promo = db.session.scalar(select(Standard).where(Standard.code == "INT-PROMO"))
    wrong_setup = db.session.scalar(select(Clause).where(
        Clause.standard_version_id == promo.current_version.id, Clause.number == "2"))
    car_clause = next(c for c in _clauses_by_kind()[PartyKind.CARRIER]
                      if c.fine_per_occurrence == Decimal("500.00"))
    officer, officer2, hr = users["officer"], users["officer2"], users["hr.zhao"]
    dept, ops = parties["D001"], parties["D002"]
    now = utcnow()
    with acting_as(officer), frozen_time(now - timedelta(days=6)):       # amended on appeal
        case = open_case(title="满减券门槛设置错误(满 99 减 90)", user=officer,
                         description="工单号 TK26112301 等 14 单;活动编号 PROMO-1128",
                         incident_at=now - timedelta(days=7))
        record_violation(case, clause=wrong_setup, party=dept, occurrences=1,
                         evidence="活动配置截图;客户投诉工单 14 单。", user=officer)
        issue_ruling(case, officer=officer, rationale="促销部配置满减门槛时将 999 误填为 99,"
                     "未经复核上线,造成超额优惠。", shares=[ShareInput(
                         dept.id, 100, "E0142", "冯雪", override_reason=OVERRIDE)])
    with acting_as(hr), frozen_time(now - timedelta(days=5)):
        acknowledge_notice(db.session.scalar(select(HrNotice).where(
            HrNotice.case_id == case.id)), hr)
    with acting_as(users["promo.mgr"]), frozen_time(now - timedelta(days=5, hours=-2)):
        appeal = file_appeal(case, dept.id, "配置错误在上线 20 分钟内即被本部门发现并下线,"
                             "实际损失远小于判定金额,请求减轻。", users["promo.mgr"])
    with acting_as(officer2), frozen_time(now - timedelta(hours=30)):
        decide_appeal(appeal, officer2, AppealStatus.REDUCED, "核实下线记录属实,罚款减半。",
                      fine="500.00")
    with acting_as(officer), frozen_time(now - timedelta(days=5)):       # withdrawn
        case = open_case(title="配送超时:促销预售发货日期承诺错误", user=officer,
                         description="工单号 TK26112455", incident_at=now - timedelta(days=6))
        record_violation(case, clause=car_clause, party=parties["C003"], occurrences=1,
                         evidence="客户来电录音。", user=officer)
        issue_ruling(case, officer=officer, rationale="圆通延误,运营部预售日期承诺有误,按 70/30 分担。",
                     shares=[ShareInput(parties["C003"].id, 70, override_reason=OVERRIDE),
                             ShareInput(ops.id, 30, "E0208", "蒋宁", override_reason=OVERRIDE)])
    with acting_as(officer), frozen_time(now - timedelta(days=2)):
        issue_ruling(case, officer=officer, rationale="复核:预售日期由商家设置,运营部无责,圆通全责。",
                     shares=[ShareInput(parties["C003"].id, 100, override_reason=OVERRIDE)],
                     supersede_reason="运营部提供了商家后台设置记录,预售日期非运营部设置。")
    with acting_as(officer), frozen_time(now - timedelta(hours=2)):     # just sent
        case = open_case(title="促销上线前未经客服审核(秒杀专场)", user=officer,
                         description="活动编号 PROMO-1201", incident_at=now - timedelta(hours=20))
        record_violation(case, clause=db.session.scalar(select(Clause).where(
            Clause.standard_version_id == promo.current_version.id, Clause.number == "1")),
            party=dept, occurrences=1, evidence="活动上线记录;审核系统无提交记录。", user=officer)
        issue_ruling(case, officer=officer, rationale="秒杀专场未提交客服审核即上线。",
                     shares=[ShareInput(dept.id, 100, "E0137", "钱晓", override_reason=OVERRIDE)])
    escalate_overdue()


def logins() -> list[tuple[str, str, str]]:
    rows = db.session.execute(select(User.username, User.display_name, User.role)
                              .order_by(User.id)).all()
    return [(u, n, r.value) for u, n, r in rows]
