"""The thin governance loop, end to end through the web forms, with CSRF on."""
from __future__ import annotations

import shutil
import subprocess
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from portal.accounts.models import User
from portal.cases.models import Case, Penalty
from portal.core.audit import AuditEvent, verify_chain
from portal.core.timeutil import local_today
from portal.extensions import db
from portal.hr.models import HrNotice, NoticeStatus
from portal.parties.models import Party
from portal.standards.models import Acknowledgement, StandardVersion, VersionStatus

PW = "a-good-password-42"


def _party_id(app, code):
    with app.app_context():
        return db.session.scalar(select(Party.id).where(Party.code == code))


def test_the_whole_loop(app, make_browser):
    with app.app_context():
        from portal.accounts.services import create_user
        from portal.core.permissions import Role

        create_user(username="admin", display_name="管理员", password=PW, role=Role.CS_ADMIN)
        db.session.commit()

    # 1. cs_admin creates parties and a user for each
    admin = make_browser()
    admin.login("admin", PW)
    for code, zh, kind in [("C001", "顺丰速运", "carrier"), ("M001", "优品数码", "merchant"),
                           ("W001", "北京仓", "warehouse"), ("D001", "促销部", "department")]:
        r = admin.post("/parties/new", {"code": code, "name_zh": zh, "name_en": "", "kind": kind})
        assert r.status_code == 302, r.get_data(as_text=True)
    users = [("sf.staff", "party_staff", "C001"), ("m.staff", "party_staff", "M001"),
             ("supervisor", "cs_supervisor", None),
             ("hr.one", "hr_officer", None), ("officer", "cs_officer", None),
             ("promo.mgr", "department_manager", "D001"), ("auditor", "auditor", None)]
    for username, role, code in users:
        r = admin.post("/users/new", {
            "username": username, "display_name": username, "email": "", "employee_no": "",
            "role": role, "party_id": _party_id(app, code) if code else 0, "password": PW})
        assert r.status_code == 302, r.get_data(as_text=True)

    # 2. CS publishes a standard version with a priced clause
    today = local_today()
    r = admin.post("/standards/new", {
        "code": "CAR-DLV", "title_zh": "配送公司配送服务标准", "title_en": "Carrier delivery",
        "category": "delivery", "summary": "", "audience": ["carrier"],
        "effective_from": (today - timedelta(days=1)).isoformat()})
    assert r.status_code == 302
    version_url = r.headers["Location"]
    vid = int(version_url.rsplit("/", 1)[1])
    r = admin.post(f"/standards/versions/{vid}/clauses", {
        "number": "1", "title_zh": "虚假签收反馈", "title_en": "False delivery feedback",
        "body": "配送员未经客户本人或代签人签收,不得在系统中反馈已签收。", "fine": "500"})
    assert r.status_code == 302
    assert admin.post(f"/standards/versions/{vid}/submit").status_code == 302
    # four eyes: the author cannot approve; a supervisor approves and publishes
    admin.post(f"/standards/versions/{vid}/approve")
    with app.app_context():
        assert db.session.get(StandardVersion, vid).status is VersionStatus.IN_REVIEW
    supervisor = make_browser()
    supervisor.login("supervisor", PW)
    assert supervisor.post(f"/standards/versions/{vid}/approve").status_code == 302
    assert supervisor.post(f"/standards/versions/{vid}/publish").status_code == 302
    with app.app_context():
        v = db.session.get(StandardVersion, vid)
        assert v.status is VersionStatus.PUBLISHED and len(v.text_hash) == 64
        clause_id = v.clauses[0].id

    # 3. carrier staff see only carrier standards and acknowledge the version
    carrier = make_browser()
    carrier.login("sf.staff", PW)
    page = carrier.get("/standards/").get_data(as_text=True)
    assert "CAR-DLV" in page
    assert "确认" in page or "To read" in page
    r = carrier.get(f"/standards/versions/{vid}")
    assert "虚假签收反馈" in r.get_data(as_text=True)
    r = carrier.post(f"/standards/versions/{vid}/acknowledge",
                     headers={"User-Agent": "TestBrowser/1.0"})
    assert r.status_code == 302
    merchant = make_browser()
    merchant.login("m.staff", PW)
    assert "CAR-DLV" not in merchant.get("/standards/").get_data(as_text=True)
    assert merchant.get(f"/standards/versions/{vid}").status_code == 404
    with app.app_context():
        ack = db.session.scalar(select(Acknowledgement))
        assert ack.user.username == "sf.staff"
        assert ack.ip == "127.0.0.1" and ack.user_agent == "TestBrowser/1.0"
        assert ack.text_hash == db.session.get(StandardVersion, vid).text_hash

    # 4. the officer records a violation, splits blame 70/30 and rules
    officer = make_browser()
    officer.login("officer", PW)
    r = officer.post("/cases/new", {"title": "客户未签收但系统显示已签收",
                                    "incident_at": (today - timedelta(days=1)).isoformat()
                                    + "T10:30", "description": "工单 TK1001"})
    assert r.status_code == 302
    case_id = int(r.headers["Location"].rsplit("/", 1)[1])
    r = officer.post(f"/cases/{case_id}/violations", {
        "clause_id": clause_id, "party_id": _party_id(app, "C001"), "occurrences": 1,
        "evidence": "客户来电录音;签收记录截图"})
    assert r.status_code == 302, r.get_data(as_text=True)
    r = officer.post(f"/cases/{case_id}/ruling", {
        "rationale": "配送员虚假反馈签收,促销部未及时同步活动规则,按 70/30 分担。",
        "shares-0-party_id": _party_id(app, "C001"), "shares-0-percent": 70,
        "shares-1-party_id": _party_id(app, "D001"), "shares-1-percent": 30,
        "shares-1-employee_no": "E0137", "shares-1-employee_name": "钱晓",
        "shares-1-override_reason": "促销部审核了该批次的配送承诺",
        "shares-2-party_id": 0, "shares-3-party_id": 0})
    assert r.status_code == 302, r.get_data(as_text=True)
    with app.app_context():
        penalties = {p.party.code: p.amount for p in db.session.scalars(select(Penalty))}
        assert penalties == {"C001": Decimal("350.00"), "D001": Decimal("150.00")}
        assert db.session.get(Case, case_id).status.value == "ruled"

    # the carrier sees its own penalty, not the department's
    ledger = carrier.get("/penalties").get_data(as_text=True)
    assert "350.00" in ledger and "150.00" not in ledger

    # 5. HR receives the notice, acknowledges it and records the action
    hr = make_browser()
    hr.login("hr.one", PW)
    inbox = hr.get("/hr/notices").get_data(as_text=True)
    assert "钱晓" in inbox
    with app.app_context():
        notice_id = db.session.scalar(select(HrNotice.id))
    assert hr.post(f"/hr/notices/{notice_id}/acknowledge").status_code == 302
    r = hr.post(f"/hr/notices/{notice_id}/action", {"action_taken": "书面警告,扣绩效 150 元"})
    assert r.status_code == 302
    with app.app_context():
        n = db.session.get(HrNotice, notice_id)
        assert n.status is NoticeStatus.ACTIONED and n.employee_no == "E0137"
        assert n.amount == Decimal("150.00")
    manager = make_browser()
    manager.login("promo.mgr", PW)
    assert "钱晓" in manager.get(f"/hr/notices/{notice_id}").get_data(as_text=True)

    # 6. the auditor downloads the PDF audit report
    auditor = make_browser()
    auditor.login("auditor", PW)
    r = auditor.get(f"/reports/audit.pdf?start={today - timedelta(days=30)}&end={today}")
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    pdf = r.data
    assert pdf.startswith(b"%PDF")
    text = _pdf_text(pdf)
    assert "审计报告" in text and "顺丰速运" in text and "钱晓" in text
    compact = text.replace(" ", "")
    assert "第1页/共" in compact  # page X of Y in the footer

    # 7. every change is in the audit chain, and the chain verifies
    with app.app_context():
        actions = set(db.session.scalars(select(AuditEvent.action)))
        for expected in ("party.created", "user.created", "standard_version.published",
                         "acknowledgement.recorded", "case.opened", "violation.recorded",
                         "ruling.issued", "penalty.created", "hr_notice.sent",
                         "hr_notice.acknowledged", "hr_notice.actioned"):
            assert expected in actions
        assert verify_chain().intact
        actor = db.session.scalar(select(AuditEvent.actor_name)
                                  .where(AuditEvent.action == "ruling.issued"))
        assert actor == "officer"
        assert db.session.scalar(select(User.id).where(User.username == "officer"))


def _pdf_text(pdf: bytes) -> str:
    exe = shutil.which("pdftotext")
    assert exe, "pdftotext (poppler-utils) is installed by the set-up script"
    out = subprocess.run([exe, "-enc", "UTF-8", "-", "-"], input=pdf, capture_output=True,
                         check=True)
    return out.stdout.decode("utf-8")
