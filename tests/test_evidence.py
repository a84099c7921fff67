"""Evidence files on cases: what is accepted (by content), where it is kept, who sees it."""
from __future__ import annotations

import base64
import hashlib
import io
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from flask import session
from openpyxl import Workbook
from PIL import Image
from sqlalchemy import func, select

from portal import ROOT
from portal.accounts.models import User
from portal.cases.evidence import Evidence, add_evidence
from portal.cases.models import Case
from portal.cases.services import open_case, record_violation
from portal.core.audit import AuditEvent, acting_as
from portal.core.db import utcnow
from portal.core.errors import ServiceError
from portal.core.filetypes import safe_filename
from portal.core.storage import storage
from portal.extensions import db
from portal.parties.models import Party
from portal.standards.models import Clause
from tests.factories import PASSWORD, build_world, username
from tests.helpers import english


def _image(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buf, fmt)
    return buf.getvalue()


def _xlsx() -> bytes:
    wb = Workbook()
    wb.active.append(["单号", "原因"])
    wb.active.append(["TK1", "未签收"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _zip(names: list[str]) -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in names:
            zf.writestr(name, "<x/>")
    return buf.getvalue()


PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
CSV = "单号,原因\nTK1,客户未签收\n"
# The start of a Windows executable: "MZ", the DOS header (full of NUL bytes) and stub.
EXE = (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00\xb8" + b"\x00" * 43
       + b"\x80\x00\x00\x00\x0e\x1f\xba\x0e\x00\xb4\t\xcd!\xb8\x01L\xcd!"
       + b"This program cannot be run in DOS mode.\r\r\n$" + b"\x00" * 64 + b"PE\x00\x00")

ACCEPTED = [
    ("photo.png", _image("PNG"), "image/png", "image"),
    ("photo.jpg", _image("JPEG"), "image/jpeg", "image"),
    ("anim.gif", _image("GIF"), "image/gif", "image"),
    ("pic.webp", _image("WEBP"), "image/webp", "image"),
    ("签收单.pdf", PDF, "application/pdf", "pdf"),
    ("明细.xlsx", _xlsx(), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
     "spreadsheet"),
    ("明细.csv", CSV.encode("utf-8"), "text/csv; charset=utf-8", "spreadsheet"),
    ("明细-gbk.csv", CSV.encode("gb18030"), "text/csv; charset=gb18030", "spreadsheet"),
]


@pytest.fixture(autouse=True)
def _own_storage(app, tmp_path, monkeypatch):
    """Each test its own storage folder, so "nothing stored" can be counted."""
    monkeypatch.setitem(app.config, "FILE_STORAGE_DIR", str(tmp_path / "files"))


@pytest.fixture
def world(app):
    with app.test_request_context():
        return build_world()


@contextmanager
def _in_english(app):
    """A request context whose messages are in English (services answer in the user's
    language, Chinese by default)."""
    with app.test_request_context():
        session["lang"] = "en"
        yield


def _stored_files(app) -> list[Path]:
    root = Path(app.config["FILE_STORAGE_DIR"])
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _rows(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Evidence))


def _user(key: str) -> User:
    return db.session.scalar(select(User).where(User.username == username(key)))


def _browser(make_browser, who: str):
    b = make_browser()
    b.login(username(who), PASSWORD)
    english(b)
    return b


def _upload(browser, case_id: int, name: str, data: bytes, note: str = "", **kw):
    return browser.post(f"/cases/{case_id}/evidence",
                        {"file": (io.BytesIO(data), name), "note": note}, **kw)


def _shared_open_case(world) -> int:
    """An open case with violations of both carriers (C001 and C002)."""
    officer = _user("cs_officer")
    with acting_as(officer):
        case = open_case(title="两家承运商", description="", user=officer,
                         incident_at=utcnow() - timedelta(days=1))
        clause = db.session.get(Clause, world.clause)
        for key in ("carrier_a", "carrier_b"):
            record_violation(case, clause=clause, party=db.session.get(Party, world.ids[key]),
                             occurrences=1, evidence="录音已核对", user=officer)
    db.session.commit()
    return case.id


# --- what is accepted ---------------------------------------------------------------------

@pytest.mark.parametrize(("name", "data", "content_type", "kind"), ACCEPTED,
                         ids=[a[0] for a in ACCEPTED])
def test_each_accepted_type_is_kept_as_what_its_content_is(app, world, name, data,
                                                           content_type, kind):
    with _in_english(app):
        ev = add_evidence(db.session.get(Case, world.case), name, data, _user("cs_officer"))
        db.session.commit()
        assert (ev.filename, ev.content_type, ev.kind.value, ev.size) == (
            name, content_type, kind, len(data))
        with storage().open(ev.storage_key) as f:
            assert f.read() == data


@pytest.mark.parametrize("name", ["invoice.pdf", "photo.png", "photo.jpg", "list.csv"])
def test_a_windows_executable_under_another_name_is_refused(app, world, make_browser, name):
    cs = _browser(make_browser, "cs_officer")
    resp = _upload(cs, world.case, name, EXE)
    assert resp.status_code == 303 and resp.headers["Location"].endswith(
        f"/cases/{world.case}#evidence")
    page = cs.get(f"/cases/{world.case}").get_data(as_text=True)
    assert f"The file {name} is not accepted as evidence" in page
    assert _rows(app) == 0 and _stored_files(app) == []


@pytest.mark.parametrize(("name", "data"), [
    ("report.docx", _zip(["[Content_Types].xml", "word/document.xml"])),
    ("macros.xlsx", _zip(["[Content_Types].xml", "xl/workbook.xml", "xl/vbaProject.bin"])),
    ("notes.csv", "只有一列\n没有逗号\n".encode()),
    ("binary.csv", b"a,b\n\x01\x02,\x03\n"),
    ("truncated.png", _image("PNG")[:30]),
    ("page.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1,2)</script></svg>'),
    ("page.csv", b"\n  <html><body>a,b</body></html>"),
], ids=["docx", "xlsm", "no-commas", "control-bytes", "truncated-png", "svg", "html"])
def test_other_content_is_refused_and_nothing_is_stored(app, world, name, data):
    with _in_english(app):
        with pytest.raises(ServiceError, match="not accepted as evidence"):
            add_evidence(db.session.get(Case, world.case), name, data, _user("cs_officer"))
        db.session.rollback()
    assert _rows(app) == 0 and _stored_files(app) == []


def test_an_empty_file_is_refused(app, world):
    with _in_english(app), pytest.raises(ServiceError, match="is empty"):
        add_evidence(db.session.get(Case, world.case), "a.pdf", b"", _user("cs_officer"))
    assert _stored_files(app) == []


def test_a_file_over_the_size_limit_is_refused(app, world, make_browser, monkeypatch):
    monkeypatch.setitem(app.config, "EVIDENCE_MAX_BYTES", 1000)
    cs = _browser(make_browser, "cs_officer")
    resp = _upload(cs, world.case, "big.pdf", PDF + b"0" * 1000)
    assert resp.status_code == 303
    assert "The file big.pdf is larger than 0.001 MB." in cs.get(
        f"/cases/{world.case}").get_data(as_text=True)
    assert _rows(app) == 0 and _stored_files(app) == []


def test_a_request_far_over_the_limit_is_refused_before_it_is_read(app, world, make_browser,
                                                                   monkeypatch):
    monkeypatch.setitem(app.config, "EVIDENCE_MAX_BYTES", 1000)
    cs = _browser(make_browser, "cs_officer")
    resp = _upload(cs, world.case, "huge.pdf", PDF + b"0" * 1_100_000)
    assert resp.status_code == 303
    assert "The file is larger than 0.001 MB." in cs.get(
        f"/cases/{world.case}").get_data(as_text=True)
    assert _rows(app) == 0 and _stored_files(app) == []


def test_an_upload_without_csrf_token_is_refused(app, world, make_browser):
    cs = _browser(make_browser, "cs_officer")
    assert _upload(cs, world.case, "a.pdf", PDF, csrf=False).status_code == 400
    assert _rows(app) == 0 and _stored_files(app) == []


# --- how it is kept and served --------------------------------------------------------------

def test_files_are_kept_outside_the_web_root_under_generated_names(app, world, make_browser):
    cs = _browser(make_browser, "cs_officer")
    _upload(cs, world.case, "签收单.pdf", PDF)
    [path] = _stored_files(app)
    with app.app_context():
        ev = db.session.scalar(select(Evidence))
        assert path == storage().path(ev.storage_key)
    assert path.read_bytes() == PDF
    assert "签收单" not in str(path) and not path.name.endswith(".pdf")
    for served in (Path(app.static_folder), ROOT / "portal", ROOT / "templates"):
        assert not path.resolve().is_relative_to(served.resolve())
    assert Path(app.config["FILE_STORAGE_DIR"]).name == "files"


def test_sha256_is_recorded_at_upload_and_sent_with_the_file(app, world, make_browser):
    cs = _browser(make_browser, "cs_officer")
    _upload(cs, world.case, "签收单.pdf", PDF, note="客户签名")
    digest = hashlib.sha256(PDF).hexdigest()
    with app.app_context():
        ev = db.session.scalar(select(Evidence))
        assert (ev.sha256, ev.note, ev.party_id) == (digest, "客户签名", None)
    page = cs.get(f"/cases/{world.case}").get_data(as_text=True)
    assert f'title="{digest}"' in page and digest[:12] in page and "客户签名" in page
    resp = cs.get(f"/cases/{world.case}/evidence/{ev.id}")
    assert resp.status_code == 200 and resp.data == PDF
    assert resp.mimetype == "application/pdf"
    assert resp.headers["Content-Disposition"] == (
        f"attachment; filename=\"evidence-{ev.id}.pdf\"; "
        "filename*=UTF-8''%E7%AD%BE%E6%94%B6%E5%8D%95.pdf")
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Repr-Digest"] == (
        "sha-256=:" + base64.b64encode(hashlib.sha256(PDF).digest()).decode() + ":")
    assert "private" in resp.headers["Cache-Control"]


def test_images_are_shown_inline_with_a_name_that_matches_their_content(app, world,
                                                                        make_browser):
    cs = _browser(make_browser, "cs_officer")
    png = _image("PNG")
    _upload(cs, world.case, "photo.exe", png)  # a real PNG, whatever its name says
    with app.app_context():
        ev = db.session.scalar(select(Evidence))
    resp = cs.get(f"/cases/{world.case}/evidence/{ev.id}")
    assert resp.mimetype == "image/png" and resp.data == png
    assert resp.headers["Content-Disposition"] == (
        "inline; filename=\"photo.exe.png\"; filename*=UTF-8''photo.exe.png")


def test_the_audit_chain_records_the_upload(app, world, make_browser):
    cs = _browser(make_browser, "cs_officer")
    _upload(cs, world.case, "明细.xlsx", _xlsx())
    with app.app_context():
        ev = db.session.scalar(select(Evidence))
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "evidence.added"))
        assert event.object_type == "evidence_files" and event.object_id == str(ev.id)
        assert event.actor_name == "cs.officer"
        after = event.after_dict()
        assert (after["filename"], after["size"], after["sha256"], after["kind"]) == (
            "明细.xlsx", ev.size, ev.sha256, "spreadsheet")
        assert after["content_type"] == ev.content_type and after["case_id"] == world.case


def test_a_file_whose_transaction_fails_is_deleted(app, world, monkeypatch):
    import portal.cases.evidence as evidence_module

    def broken_record(*args, **kwargs):
        db.session.flush()
        raise RuntimeError("database went away")

    with _in_english(app):
        case = db.session.get(Case, world.case)
        with monkeypatch.context() as m:
            m.setattr(evidence_module, "record", broken_record)
            with pytest.raises(RuntimeError):
                add_evidence(case, "a.pdf", PDF, _user("cs_officer"))
        assert len(_stored_files(app)) == 1   # written, not committed
        db.session.rollback()
        assert _stored_files(app) == []
        add_evidence(case, "b.pdf", PDF, _user("cs_officer"))
        db.session.commit()
    assert len(_stored_files(app)) == 1 and _rows(app) == 1


def test_file_names_are_made_safe_to_show():
    assert safe_filename("C:\\Users\\x\\照片.png") == "照片.png"
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("invoice\u202egpj.exe") == "invoicegpj.exe"   # no right-to-left trick
    assert safe_filename("a\x00b\nc.pdf") == "abc.pdf"
    long = safe_filename("长" * 300 + ".xlsx")
    assert len(long) == 200 and long.endswith(".xlsx")
    assert safe_filename("  ", default="file") == "file"


# --- who sees and adds ----------------------------------------------------------------------

def test_another_partys_staff_get_404_for_the_cases_evidence(app, world, make_browser):
    cs = _browser(make_browser, "cs_officer")
    _upload(cs, world.case, "签收单.pdf", PDF)
    with app.app_context():
        ev_id = db.session.scalar(select(Evidence.id))
    other = _browser(make_browser, "staff_b")   # carrier C002, not in the case
    for evidence_id in (ev_id, ev_id + 1, 1, 999):
        assert other.get(f"/cases/{world.case}/evidence/{evidence_id}").status_code == 404
    assert _upload(other, world.case, "x.pdf", PDF).status_code == 404
    assert _rows(app) == 1


def test_evidence_is_only_served_under_its_own_case(app, world, make_browser):
    """A case one may see does not open the files of a case one may not."""
    with _in_english(app):
        hidden = open_case(title="另一案", description="", incident_at=utcnow(),
                           user=_user("cs_officer"))
        ev = add_evidence(hidden, "secret.pdf", PDF, _user("cs_officer"))
        db.session.commit()
        ev_id, hidden_id = ev.id, hidden.id
    carrier = _browser(make_browser, "staff_a")   # sees world.case, not the hidden one
    assert carrier.get(f"/cases/{world.case}/evidence/{ev_id}").status_code == 404
    assert carrier.get(f"/cases/{hidden_id}/evidence/{ev_id}").status_code == 404


def test_a_party_sees_cs_files_and_its_own_but_not_another_partys(app, world, make_browser):
    with app.test_request_context():
        case_id = _shared_open_case(world)
    cs = _browser(make_browser, "cs_officer")
    carrier_a = _browser(make_browser, "staff_a")
    carrier_b = _browser(make_browser, "staff_b")
    for browser, name in ((cs, "cs.pdf"), (carrier_a, "a.pdf"), (carrier_b, "b.pdf")):
        assert _upload(browser, case_id, name, PDF).status_code == 303
    with app.app_context():
        ids = {e.filename: e for e in db.session.scalars(select(Evidence))}
        assert ids["cs.pdf"].party_id is None
        assert ids["a.pdf"].party_id == world.carrier_a
        assert ids["b.pdf"].party_id == world.carrier_b
        ids = {name: e.id for name, e in ids.items()}
    page = carrier_a.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "cs.pdf" in page and "a.pdf" in page and "b.pdf" not in page
    assert carrier_a.get(f"/cases/{case_id}/evidence/{ids['cs.pdf']}").status_code == 200
    assert carrier_a.get(f"/cases/{case_id}/evidence/{ids['a.pdf']}").status_code == 200
    assert carrier_a.get(f"/cases/{case_id}/evidence/{ids['b.pdf']}").status_code == 404
    assert carrier_b.get(f"/cases/{case_id}/evidence/{ids['a.pdf']}").status_code == 404
    cs_page = cs.get(f"/cases/{case_id}").get_data(as_text=True)
    assert all(name in cs_page for name in ("cs.pdf", "a.pdf", "b.pdf"))
    auditor = _browser(make_browser, "auditor")
    assert auditor.get(f"/cases/{case_id}/evidence/{ids['b.pdf']}").status_code == 200


def test_auditors_may_download_but_not_upload(app, world, make_browser):
    cs = _browser(make_browser, "cs_officer")
    _upload(cs, world.case, "签收单.pdf", PDF)
    with app.app_context():
        ev_id = db.session.scalar(select(Evidence.id))
    auditor = _browser(make_browser, "auditor")
    resp = auditor.get(f"/cases/{world.case}/evidence/{ev_id}")
    assert resp.status_code == 200 and resp.data == PDF
    page = auditor.get(f"/cases/{world.case}").get_data(as_text=True)
    assert "签收单.pdf" in page and "Add an evidence file" not in page
    assert _upload(auditor, world.case, "x.pdf", PDF).status_code == 403
    assert _rows(app) == 1


def test_cs_may_add_evidence_to_a_ruled_case(app, world, make_browser):
    cs = _browser(make_browser, "cs_officer")
    assert "Add an evidence file" in cs.get(f"/cases/{world.case}").get_data(as_text=True)
    _upload(cs, world.case, "复核.pdf", PDF)
    assert "Evidence 复核.pdf added to CASE-" in cs.get(
        f"/cases/{world.case}").get_data(as_text=True)
    assert _rows(app) == 1


def test_a_party_in_the_case_may_add_evidence_after_the_ruling(app, world, make_browser):
    """For an appeal: the grounds come as files on the ruled case."""
    carrier = _browser(make_browser, "staff_a")
    assert "Add an evidence file" in carrier.get(f"/cases/{world.case}").get_data(as_text=True)
    assert _upload(carrier, world.case, "申诉材料.pdf", PDF).status_code == 303
    with app.app_context():
        ev = db.session.scalar(select(Evidence))
        assert (ev.filename, ev.party_id, ev.appeal_id) == ("申诉材料.pdf", world.carrier_a, None)
    dept = _browser(make_browser, "dept_manager")   # the other party in the case
    assert "申诉材料.pdf" not in dept.get(f"/cases/{world.case}").get_data(as_text=True)
    assert dept.get(f"/cases/{world.case}/evidence/{ev.id}").status_code == 404

def test_a_party_may_add_evidence_to_an_open_case_it_is_in(app, world, make_browser):
    with app.test_request_context():
        case_id = _shared_open_case(world)
    carrier = _browser(make_browser, "staff_a")
    page = carrier.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "Add an evidence file" in page and "not by other parties" in page
    _upload(carrier, case_id, "回单.jpg", _image("JPEG"), note="签收照片")
    assert "回单.jpg" in carrier.get(f"/cases/{case_id}").get_data(as_text=True)
    assert _rows(app) == 1
