"""Printed reports: the audit report, case dossier and scorecard, made as background jobs,
numbered continuously across parts rendered in parallel, and printed again from a snapshot."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from datetime import timedelta

import pytest

from portal.core.timeutil import local_today
from tests.factories import PASSWORD, build_world, username

PAGE_RE = re.compile(r"第\s*(\d+)\s*页\s*/\s*共\s*(\d+)\s*页")


def pdf_text(pdf: bytes, page: int | None = None) -> str:
    exe = shutil.which("pdftotext")
    assert exe, "pdftotext (poppler-utils) is installed by the set-up script"
    pages = ["-f", str(page), "-l", str(page)] if page else []
    out = subprocess.run([exe, "-enc", "UTF-8", *pages, "-", "-"], input=pdf,
                         capture_output=True, check=True)
    return out.stdout.decode("utf-8")


def page_count(pdf: bytes) -> int:
    from io import BytesIO

    from pypdf import PdfReader

    return len(PdfReader(BytesIO(pdf)).pages)


@pytest.fixture
def reports(app, tmp_path):
    """Reports kept in a temporary folder, made within the request (unless a test says so)."""
    keys = ("REPORTS_DIR", "REPORTS_RUN_INLINE", "REPORTS_PART_BYTES")
    saved = {k: app.config[k] for k in keys if k in app.config}
    app.config.update(REPORTS_DIR=str(tmp_path / "reports"), REPORTS_RUN_INLINE=True)
    yield tmp_path / "reports"
    for k in keys:
        app.config.pop(k, None)
    app.config.update(saved)


@pytest.fixture
def world(app):
    with app.test_request_context():
        world = build_world()
        world.ids["evidence_sha"] = _evidence(world.case)
        return world


def _evidence(case_id: int) -> str:
    from portal.cases.evidence import add_evidence
    from portal.cases.models import Case
    from portal.core.audit import acting_as
    from portal.extensions import db
    from tests.test_training import _user

    officer = _user("cs_officer")
    with acting_as(officer):
        evidence = add_evidence(db.session.get(Case, case_id), "签收单.pdf",
                                b"%PDF-1.4\n%%EOF\n", officer)
    db.session.commit()
    return evidence.sha256


def signed_in(make_browser, who: str):
    b = make_browser()
    b.login(username(who), PASSWORD)
    return b


def period() -> dict:
    today = local_today()
    return {"start": str(today - timedelta(days=30)), "end": str(today)}


def job_id_of(resp) -> str:
    assert resp.status_code == 303, resp.status_code
    return resp.headers["Location"].rstrip("/").split("/")[-1]


def download(browser, job_id: str) -> bytes:
    r = browser.get(f"/reports/jobs/{job_id}/report.pdf")
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    return r.data


# --- the audit report -----------------------------------------------------------------------

def test_audit_report_shows_the_period_in_chinese_with_its_id_in_the_footer(
        app, world, reports, make_browser):
    auditor = signed_in(make_browser, "auditor")
    job_id = job_id_of(auditor.post("/reports/audit", period()))
    page = auditor.get(f"/reports/jobs/{job_id}").get_data(as_text=True)
    assert "report.pdf" in page
    pdf = download(auditor, job_id)
    text = pdf_text(pdf)
    snapshot = json.loads((reports / job_id / "snapshot.json").read_text())
    for words in ("审计报告", "顺丰速运", "钱晓", "R-000001", "证据充分",
                  "CAR-DLV v1 §1", snapshot["report_id"]):
        assert words in text, words
    first = pdf_text(pdf, 1).replace(" ", "")
    assert snapshot["report_id"] in first and "第1页/共" in first
    # the appendix names the hash of the ruling's latest audit event
    with app.app_context():
        from sqlalchemy import select

        from portal.core.audit import AuditEvent
        from portal.extensions import db

        ruling_hash = db.session.scalars(
            select(AuditEvent.hash).where(AuditEvent.object_type == "rulings",
                                          AuditEvent.object_id == str(world.ruling))
            .order_by(AuditEvent.id.desc())).first()
    flat = re.sub(r"\s", "", text)   # a hash wraps over lines of its table cell
    assert ruling_hash[:16] in flat and ruling_hash[-16:] in flat


def test_the_audit_report_in_english(world, reports, make_browser):
    auditor = signed_in(make_browser, "auditor")
    auditor.post("/lang", {"lang": "en"})
    pdf = download(auditor, job_id_of(auditor.post("/reports/audit", period())))
    text = pdf_text(pdf)
    assert "Audit report" in text and "Appendix" in text
    assert "Waiting for a decision: 0" in text and "Overturned: 0" in text   # appeal outcomes
    assert re.search(r"Page\s+1\s+of\s+\d+", text)


def test_pages_are_numbered_continuously_across_parts_rendered_in_parallel(
        app, world, reports, make_browser):
    app.config["REPORTS_PART_BYTES"] = 1      # every marked block a part of its own
    auditor = signed_in(make_browser, "auditor")
    job_id = job_id_of(auditor.post("/reports/audit", period()))
    snapshot = json.loads((reports / job_id / "snapshot.json").read_text())
    assert snapshot["render"]["parts"] >= 5 and snapshot["render"]["workers"] >= 1
    assert snapshot["render"]["peak_rss_mb"] < 600
    pdf = download(auditor, job_id)
    total = page_count(pdf)
    assert total == snapshot["pages"] == sum(snapshot["render"]["part_pages"])
    for n in range(1, total + 1):
        found = PAGE_RE.findall(pdf_text(pdf, n))
        assert found == [(str(n), str(total))], (n, found)


def _long_html(parts: int, rows: int) -> str:
    from flask import render_template_string

    body = "<!-- pdf:part -->".join(
        f'<section class="part"><h2>第{p}部分</h2><table><thead><tr><th>序号</th><th>内容</th>'
        f'</tr></thead><tbody>'
        + "".join(f"<tr><td>{p}-{i}</td><td>配送公司虚假签收反馈 {i}</td></tr>"
                  for i in range(rows))
        + "</tbody></table></section>" for p in range(parts))
    return render_template_string(
        '{% import "_pdf.html" as pdf with context %}<!doctype html><html><head>'
        '<meta charset="utf-8"><style>{{ pdf.page_style("测试", "T-1", "T-1") }}'
        ' .part { break-before: page; }</style></head><body>' + body + "</body></html>")


def test_parallel_render_paginates_as_one_render_does(app):
    from portal.reports.render import render_parallel, render_single

    with app.test_request_context():
        html = _long_html(parts=4, rows=70)
    single, one = render_single(html, app.static_folder)
    joined, many = render_parallel(html, app.static_folder, target=1, workers=2)
    assert many.parts == 4 and many.workers == 2
    assert many.pages == one.pages == page_count(joined) > 4
    for n in range(1, many.pages + 1):   # the overlay is laid out in two chunks
        assert PAGE_RE.findall(pdf_text(joined, n)) == [(str(n), str(many.pages))]
    for n in (1, many.part_pages[0] + 1, many.pages):
        assert pdf_text(joined, n).split("第")[0] == pdf_text(single, n).split("第")[0]
    assert many.peak_rss_mb < 600


def test_parts_are_cut_where_the_bytes_are_shared_equally():
    from portal.reports.render import balanced_parts

    blocks = ["a" * 10, "b" * 10, "c" * 40, "d" * 10, "e" * 10, "f" * 20]   # 100 bytes
    assert balanced_parts(blocks, 2, weight=len) == ["a" * 10 + "b" * 10 + "c" * 40,
                                         "d" * 10 + "e" * 10 + "f" * 20]
    four = balanced_parts(blocks, 4, weight=len)
    assert "".join(four) == "".join(blocks) and len(four) == 4
    assert balanced_parts(blocks[:2], 5) == blocks[:2]       # never more parts than blocks
    assert balanced_parts(["x"], 3) == ["x"]


# --- snapshot and reprint -------------------------------------------------------------------

def test_printing_again_from_the_snapshot_gives_the_same_document(
        app, world, reports, make_browser):
    auditor = signed_in(make_browser, "auditor")
    first = job_id_of(auditor.post("/reports/audit", period()))
    snap = auditor.get(f"/reports/jobs/{first}/snapshot.json").get_json()
    assert {"report_id", "params", "generated_at", "last_event_id", "data_sha256"} <= set(snap)
    # a case recorded after the report does not enter the reprint
    with app.test_request_context():
        from portal.cases.services import open_case
        from portal.core.audit import acting_as
        from portal.core.db import utcnow
        from portal.extensions import db
        from tests.test_training import _user

        officer = _user("cs_officer")
        with acting_as(officer):
            open_case(title="后来的案件", description="", incident_at=utcnow(), user=officer)
        # the auditor moved to another zone since: the reprint keeps the first one's times
        _user("auditor").timezone = "America/New_York"
        db.session.commit()
    again = job_id_of(auditor.post(f"/reports/jobs/{first}/reprint"))
    assert json.loads((reports / again / "job.json").read_text())["status"] == "done"
    a, b = download(auditor, first), download(auditor, again)
    assert pdf_text(a) == pdf_text(b)
    assert a == b   # fixed metadata: the same bytes too
    assert auditor.get(f"/reports/jobs/{again}/snapshot.json").get_json()["data_sha256"] == \
        snap["data_sha256"]


def test_a_reprint_is_refused_when_the_records_changed(app, world, reports, make_browser):
    auditor = signed_in(make_browser, "auditor")
    first = job_id_of(auditor.post("/reports/audit", period()))
    path = reports / first / "snapshot.json"
    snap = json.loads(path.read_text())
    path.write_text(json.dumps({**snap, "data_sha256": "0" * 64}))
    again = job_id_of(auditor.post(f"/reports/jobs/{first}/reprint"))
    job = json.loads((reports / again / "job.json").read_text())
    assert job["status"] == "failed" and "changed" in job["error"]
    assert auditor.get(f"/reports/jobs/{again}/report.pdf").status_code == 404


# --- background jobs ------------------------------------------------------------------------

def test_a_report_is_made_in_the_background_and_its_progress_polled(
        app, world, reports, make_browser):
    app.config["REPORTS_RUN_INLINE"] = False
    auditor = signed_in(make_browser, "auditor")
    job_id = job_id_of(auditor.post("/reports/audit", period()))
    page = auditor.get(f"/reports/jobs/{job_id}").get_data(as_text=True)
    assert "report-progress.js" in page or "report.pdf" in page
    deadline = time.monotonic() + 120
    while True:
        p = auditor.get(f"/reports/jobs/{job_id}/progress").get_json()
        assert set(p) >= {"status", "percent", "finished"}
        if p["finished"]:
            break
        assert time.monotonic() < deadline, p
        time.sleep(0.2)
    assert p["status"] == "done" and p["percent"] == 100 and p["pages"] >= 1
    assert job_id in auditor.get("/reports/").get_data(as_text=True)
    assert download(auditor, job_id).startswith(b"%PDF")


def test_a_job_is_seen_by_its_asker_and_by_cs_only(world, reports, make_browser):
    staff_a = signed_in(make_browser, "staff_a")
    job_id = job_id_of(staff_a.post("/reports/scorecard", period()))
    assert staff_a.get(f"/reports/jobs/{job_id}").status_code == 200
    assert signed_in(make_browser, "auditor").get(f"/reports/jobs/{job_id}").status_code == 200
    other = signed_in(make_browser, "carrier_manager")
    for url in ("", "/progress", "/report.pdf", "/snapshot.json"):
        assert other.get(f"/reports/jobs/{job_id}{url}").status_code == 404


# --- dossier and scorecard ------------------------------------------------------------------

def test_the_case_dossier_lists_evidence_hashes_rulings_and_the_audit_trail(
        world, reports, make_browser):
    officer = signed_in(make_browser, "cs_officer")
    pdf = download(officer, job_id_of(officer.post(f"/reports/cases/{world.case}/dossier")))
    text = pdf_text(pdf).replace("\n", "")
    for words in ("CASE-", "签收单.pdf", world.evidence_sha, "R-000001", "证据充分",
                  "ruling.issued", "D001"):
        assert words in text, words


def test_a_party_gets_only_its_own_part_of_a_dossier(world, reports, make_browser):
    staff_a = signed_in(make_browser, "staff_a")
    pdf = download(staff_a, job_id_of(staff_a.post(f"/reports/cases/{world.case}/dossier")))
    text = pdf_text(pdf)
    assert "顺丰速运" in text and "C001 70%" in text
    assert "D001" not in text and "钱晓" not in text


def test_another_partys_case_dossier_is_not_found(world, reports, make_browser):
    staff_b = signed_in(make_browser, "staff_b")
    assert staff_b.post(f"/reports/cases/{world.case}/dossier").status_code == 404
    assert staff_b.post("/reports/cases/999999/dossier").status_code == 404


def test_a_party_prints_its_own_scorecard_only(world, reports, make_browser):
    staff_a = signed_in(make_browser, "staff_a")
    assert staff_a.post("/reports/scorecard", {**period(), "party": "C002"}).status_code == 404
    pdf = download(staff_a, job_id_of(staff_a.post("/reports/scorecard", period())))
    text = pdf_text(pdf)
    assert "C001" in text and "顺丰速运" in text and "中通快递" not in text


def test_cs_prints_any_partys_scorecard_by_code(world, reports, make_browser):
    auditor = signed_in(make_browser, "auditor")
    assert auditor.post("/reports/scorecard", {**period(), "party": "X999"}).status_code == 400
    pdf = download(auditor, job_id_of(auditor.post("/reports/scorecard",
                                                   {**period(), "party": "C002"})))
    assert "中通快递" in pdf_text(pdf)
