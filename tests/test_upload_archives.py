"""Zip bombs and other archives: what the portal refuses before it unpacks anything.

An XLSX workbook is a zip archive, and the uploads that take one (evidence on a case, the ticket
import) judge it by its central directory alone: what it declares its parts expand to, how hard
each part is compressed, how many parts, which compression, whether a part is itself an
archive. The bombs are made here: a real one (1 GB of zeros, deflated to about 1 MB) and
cheaper ones whose directory simply declares a size their data does not have.
"""
from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zipfile

import pytest
from flask import session
from openpyxl import Workbook
from PIL import Image
from sqlalchemy import func, select

from portal.cases.evidence import Evidence
from portal.core import filetypes
from portal.extensions import db
from portal.intake import services as intake
from portal.intake.fields import TICKET_NAMES
from portal.intake.models import BatchKind, BatchSource, BatchStatus, ImportBatch, Ticket
from tests.factories import PASSWORD, build_world, username
from tests.helpers import english
from tests.test_intake import rulebook

GB = 1 << 30
MB = 1 << 20
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


# --- making archives --------------------------------------------------------------------------

def _workbook() -> bytes:
    """A real workbook openpyxl wrote: the ticket columns and one ticket."""
    book = Workbook()
    book.active.append(TICKET_NAMES)
    row = {"ticket_no": "X1", "carrier_code": "C001", "order_value": "199.00",
           "opened_at": "2026-03-05 10:00"}
    book.active.append([row.get(n, "") for n in TICKET_NAMES])
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def _workbook_with(zeros: dict[str, int] | None = None, extra: dict[str, bytes] | None = None,
                   compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """The real workbook with each member named in ``zeros`` (a sheet already there, or a new
    member) written as that many zero bytes, streamed in 16 MB chunks so that the bomb is
    never in memory whole, and the members of ``extra`` added with ``compression``."""
    zeros, extra = zeros or {}, extra or {}
    source = zipfile.ZipFile(io.BytesIO(_workbook()))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for info in source.infolist():
            if info.filename not in zeros:
                zf.writestr(info.filename, source.read(info))
        for name, size in zeros.items():
            chunk = b"\0" * min(size, 16 * MB)
            with zf.open(name, "w") as out:
                for start in range(0, size, len(chunk)):
                    out.write(chunk[:size - start])
        for name, data in extra.items():
            zf.writestr(name, data, compress_type=compression)
    return buf.getvalue()


def _declaring(data: bytes, member: str, size: int) -> bytes:
    """``data`` (a zip) with ``member``'s uncompressed size in the central directory (and its
    local header) changed to ``size``: a small file that says it expands to ``size`` bytes."""
    out = bytearray(data)
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(member)
    struct.pack_into("<I", out, info.header_offset + 22, size)
    at = out.find(b"PK\x01\x02")
    while at != -1:
        name_length = struct.unpack_from("<H", out, at + 28)[0]
        if out[at + 46:at + 46 + name_length] == member.encode():
            struct.pack_into("<I", out, at + 24, size)
        at = out.find(b"PK\x01\x02", at + 1)
    return bytes(out)


def _plain_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("签收单.pdf", PDF)
        zf.writestr("照片.jpg", _jpeg())
    return buf.getvalue()


def _tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("签收单.pdf")
        info.size = len(PDF)
        tf.addfile(info, io.BytesIO(PDF))
    return buf.getvalue()


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "blue").save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def gigabyte_bomb() -> bytes:
    """A workbook whose first sheet is 1 GB of zeros: about 1 MB as uploaded (3 s to make)."""
    data = _workbook_with(zeros={"xl/worksheets/sheet1.xml": GB})
    assert len(data) < 2 * MB
    return data


def _lying_bomb() -> bytes:
    """A workbook of a few KB whose directory says its first sheet expands to 3 GB."""
    return _declaring(_workbook(), "xl/worksheets/sheet1.xml", 3_000_000_000)


# --- the check itself (central directory only) ------------------------------------------------

def test_an_ordinary_workbook_has_no_problem(app):
    with app.app_context():
        assert filetypes.zip_problem(io.BytesIO(_workbook())) is None


@pytest.mark.parametrize(("make", "problem"), [
    (_lying_bomb, "expanded"),
    (lambda: _workbook_with(zeros={"xl/media/image1.png": 20 * MB}), "ratio"),
    (lambda: _workbook_with(extra={f"xl/media/i{n}.txt": b"" for n in range(10_001)}),
     "members"),
    (lambda: _workbook_with(extra={"xl/embeddings/old.zip": _plain_zip()}), "nested"),
    (lambda: _workbook_with(extra={"xl/embeddings/Workbook1.xlsx": _workbook()}), "nested"),
    (lambda: _workbook_with(extra={"xl/media/a.bin": b"x" * 1000},
                            compression=zipfile.ZIP_BZIP2), "method"),
], ids=["declared-3GB", "ratio-1000:1", "10001-members", "nested-zip", "nested-xlsx",
        "bzip2"])
def test_each_kind_of_bomb_is_named(app, make, problem):
    with app.app_context():
        f = io.BytesIO(make())
        assert filetypes.zip_problem(f) == problem
        assert f.tell() == 0     # left at its start for whoever reads it next


def test_a_huge_directory_is_refused_without_being_parsed(app, monkeypatch):
    """Parsing a central directory costs ~600 bytes of memory per entry, so one far larger than
    10,000 entries could need is refused from the end record alone."""
    long_names = {f"xl/media/{'n' * 440}{n}.txt": b"" for n in range(9_000)}
    data = _workbook_with(extra=long_names)

    def never(*args, **kwargs):
        raise AssertionError("the directory was parsed")

    monkeypatch.setattr(zipfile, "ZipFile", never)
    with app.app_context():
        assert filetypes.zip_problem(io.BytesIO(data)) == "members"


def test_what_is_not_a_zip_has_no_zip_problem(app):
    with app.app_context():
        for data in (PDF, _jpeg(), b"ticket_no\nT1\n", b"PK\x03\x04 truncated"):
            assert filetypes.zip_problem(io.BytesIO(data)) is None


def test_zipfile_never_gives_more_than_a_deflated_member_declares():
    """Why checking the declared sizes is enough for the Deflate members that are allowed: a
    member whose data expands beyond its declared size is cut there and fails its CRC."""
    data = _declaring(_workbook_with(zeros={"xl/media/a.bin": 10 * MB}), "xl/media/a.bin", 1000)
    with (zipfile.ZipFile(io.BytesIO(data)) as zf, zf.open("xl/media/a.bin") as member,
          pytest.raises(zipfile.BadZipFile, match="Bad CRC-32")):
        while member.read(65536):
            assert member.tell() <= 1000


# --- evidence: through the case page, as a CS officer ---------------------------------------

@pytest.fixture(autouse=True)
def _own_storage(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "FILE_STORAGE_DIR", str(tmp_path / "files"))
    monkeypatch.setattr(intake, "upload_dir", lambda: tmp_path / "imports")
    (tmp_path / "imports").mkdir()


@pytest.fixture
def case_id(app) -> int:
    with app.test_request_context():
        return build_world().case


def _officer(make_browser):
    b = make_browser()
    b.login(username("cs_officer"), PASSWORD)
    english(b)
    return b


def _upload_evidence(browser, case_id: int, name: str, data: bytes) -> str:
    """Post the file through the case page's form; the evidence section of the case page
    shown after it (the browser opens it there: the outcome is shown there, not at the top)."""
    resp = browser.post(f"/cases/{case_id}/evidence", {"file": (io.BytesIO(data), name),
                                                      "note": ""})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("#evidence")
    top, section = browser.get(f"/cases/{case_id}").get_data(as_text=True).split(
        '<h2 id="evidence">')
    assert 'class="flash ' not in top and 'class="flash ' in section
    return section


def _nothing_stored(app, tmp_path) -> bool:
    files = [p for p in (tmp_path / "files").rglob("*") if p.is_file()]
    with app.app_context():
        rows = db.session.scalar(select(func.count()).select_from(Evidence))
    return rows == 0 and files == []


EXPANDED = "The file expands to more than 100 MB when opened"
# a ticket import is read as a stream: it may expand as far as a CSV import may be large
EXPANDED_IMPORT = "The file expands to more than 1000 MB when opened"


def test_a_workbook_that_expands_to_a_gigabyte_is_refused_as_evidence(
        app, case_id, make_browser, tmp_path, gigabyte_bomb):
    page = _upload_evidence(_officer(make_browser), case_id, "明细.xlsx", gigabyte_bomb)
    assert EXPANDED in page
    assert _nothing_stored(app, tmp_path)


def test_a_workbook_whose_directory_declares_3_gb_is_refused_as_evidence(
        app, case_id, make_browser, tmp_path):
    page = _upload_evidence(_officer(make_browser), case_id, "明细.xlsx", _lying_bomb())
    assert EXPANDED in page
    assert _nothing_stored(app, tmp_path)


@pytest.mark.parametrize(("data", "message"), [
    (_workbook_with(zeros={"xl/media/image1.png": 20 * MB}),
     "A part of the file is compressed more than 100 to 1"),
    (_workbook_with(extra={"xl/embeddings/old.zip": _plain_zip()}),
     "The file holds another archive inside"),
    (_workbook_with(extra={"xl/media/a.bin": b"x" * 1000}, compression=zipfile.ZIP_BZIP2),
     "The file is compressed in a way Office files never are"),
], ids=["ratio", "nested", "bzip2"])
def test_other_bombs_are_refused_as_evidence_with_their_reason(
        app, case_id, make_browser, tmp_path, data, message):
    page = _upload_evidence(_officer(make_browser), case_id, "明细.xlsx", data)
    assert message in page
    assert _nothing_stored(app, tmp_path)


@pytest.mark.parametrize(("name", "data"), [
    ("证据.zip", _plain_zip()),
    ("证据.tar", _tar()),
    ("证据.pdf.gz", gzip.compress(PDF)),
    ("证据.7z", b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\0" * 24),
    ("证据.rar", b"Rar!\x1a\x07\x01\x00" + b"\0" * 24),
], ids=["zip", "tar", "gzip", "7z", "rar"])
def test_a_plain_archive_is_refused_as_evidence_saying_why(app, case_id, make_browser,
                                                           tmp_path, name, data):
    page = _upload_evidence(_officer(make_browser), case_id, name, data)
    assert f"The file {name} is an archive (zip, rar, 7z, tar, gz…), which is not accepted " \
           "as evidence: unpack it and upload the files one by one." in page
    assert _nothing_stored(app, tmp_path)


def test_the_evidence_form_says_archives_are_not_accepted(app, case_id, make_browser):
    page = _officer(make_browser).get(f"/cases/{case_id}").get_data(as_text=True)
    assert "Archives (zip, rar, 7z…) are not accepted: unpack them and upload the files one " \
           "by one." in page
    assert "An image (PNG, JPEG, GIF or WebP), a PDF, or a spreadsheet (XLSX or CSV)" in page


@pytest.mark.parametrize(("name", "data", "kind"), [
    ("明细.xlsx", _workbook(), "spreadsheet"),
    ("签收单.pdf", PDF, "pdf"),
    ("照片.jpg", _jpeg(), "image"),
], ids=["xlsx", "pdf", "jpeg"])
def test_ordinary_files_still_upload_as_evidence(app, case_id, make_browser, name, data, kind):
    page = _upload_evidence(_officer(make_browser), case_id, name, data)
    assert f"Evidence {name} added" in page
    with app.app_context():
        evidence = db.session.scalar(select(Evidence))
        assert (evidence.filename, evidence.kind.value, evidence.size) == (name, kind, len(data))


# --- the ticket import ------------------------------------------------------------------------

@pytest.fixture
def rules(app):
    with app.test_request_context():
        build_world(with_case=False)
        rulebook()
        db.session.commit()


def _upload_tickets(browser, name: str, data: bytes):
    browser.get("/intake/")
    return browser.post("/intake/", {"file": (io.BytesIO(data), name), "kind": "tickets"},
                        content_type="multipart/form-data")


def _no_import(app, tmp_path) -> bool:
    with app.app_context():
        batches = db.session.scalar(select(func.count()).select_from(ImportBatch))
        tickets = db.session.scalar(select(func.count()).select_from(Ticket))
    return batches == 0 and tickets == 0 and list((tmp_path / "imports").iterdir()) == []


def test_a_workbook_bomb_is_refused_on_the_ticket_import_form(app, rules, make_browser,
                                                               tmp_path, gigabyte_bomb):
    resp = _upload_tickets(_officer(make_browser), "tickets.xlsx", gigabyte_bomb)
    assert resp.status_code == 200 and EXPANDED_IMPORT in resp.get_data(as_text=True)
    assert _no_import(app, tmp_path)


def test_a_bomb_named_csv_is_judged_as_the_workbook_it_is(app, rules, make_browser, tmp_path):
    """The importer opens a file as a workbook by its zip signature whatever its name."""
    resp = _upload_tickets(_officer(make_browser), "tickets.csv", _lying_bomb())
    assert resp.status_code == 200 and EXPANDED_IMPORT in resp.get_data(as_text=True)
    assert _no_import(app, tmp_path)


def test_a_workbook_bomb_given_to_the_importer_directly_is_refused(app, rules):
    """The command line and the background import reach the importer without the form: it
    checks the workbook itself before openpyxl opens it."""
    with app.test_request_context():
        session["lang"] = "en"
        with pytest.raises(intake.ImportRefused) as refused:
            intake.run_import(_lying_bomb(), "tickets.xlsx", BatchKind.TICKETS, BatchSource.CLI)
        db.session.rollback()
        assert refused.value.problem == "archive:expanded"
        assert refused.value.message.startswith(EXPANDED_IMPORT)
        assert db.session.scalar(select(func.count()).select_from(ImportBatch)) == 0
        assert db.session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_an_ordinary_workbook_still_imports_through_the_form(app, rules, make_browser,
                                                             monkeypatch):
    monkeypatch.setitem(app.config, "INTAKE_RUN_INLINE", True)
    resp = _upload_tickets(_officer(make_browser), "tickets.xlsx", _workbook())
    assert resp.status_code == 302 and "/intake/batches/" in resp.headers["Location"]
    with app.app_context():
        (batch,) = db.session.scalars(select(ImportBatch)).all()
        assert (batch.status, batch.created) == (BatchStatus.DONE, 1)
        assert db.session.get(Ticket, "X1") is not None


def test_the_limit_is_a_setting(app, case_id, make_browser, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "UPLOAD_MAX_EXPANDED_BYTES", 5_000)
    page = _upload_evidence(_officer(make_browser), case_id, "明细.xlsx", _workbook())
    assert "The file expands to more than 0.005 MB when opened" in page
    assert _nothing_stored(app, tmp_path)
