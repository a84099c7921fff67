"""Uploading a ticket file in the browser: stored, imported in the background with a progress
bar, and a result page with the counts and every rejected row by line and reason."""
from __future__ import annotations

import io
import time

import pytest
from sqlalchemy import func, select

from portal.core.audit import AuditEvent
from portal.extensions import db
from portal.intake.models import BatchStatus, ImportBatch, Ticket
from tests.factories import PASSWORD, build_world, username
from tests.test_intake import rulebook

HEADER = "ticket_no,carrier_code,order_value,opened_at,promised_at,delivered_at\n"
GOOD = "T1,C001,199.00,2026-03-05 10:00,2026-03-02 18:00,2026-03-04 09:12\n"
BAD = "T2,C999,5,2026-03-05 10:00,,\n"


@pytest.fixture
def world(app):
    with app.test_request_context():
        build_world(with_case=False)
        rulebook()
        db.session.commit()


def signed_in(make_browser, who="cs_officer", lang="en"):
    b = make_browser()
    b.login(username(who), PASSWORD)
    b.post("/lang", {"lang": lang})
    return b


def upload(b, content: bytes, name="tickets.csv", kind="tickets"):
    b.get("/intake/")
    return b.post("/intake/", {"file": (io.BytesIO(content), name), "kind": kind},
                  content_type="multipart/form-data")


def batches() -> list[ImportBatch]:
    return db.session.scalars(select(ImportBatch).order_by(ImportBatch.id)).all()


def test_an_upload_shows_its_counts_and_rejected_rows(app, world, make_browser, monkeypatch):
    monkeypatch.setitem(app.config, "INTAKE_RUN_INLINE", True)
    b = signed_in(make_browser)
    resp = upload(b, (HEADER + GOOD + BAD).encode())
    assert resp.status_code == 302
    page = b.get(resp.headers["Location"]).get_data(as_text=True)
    assert "tickets.csv" in page and "Rejected rows" in page
    assert "no party has this code" in page and "C999" in page
    with app.app_context():
        (batch,) = batches()
        assert (batch.status, batch.created, batch.rejected, batch.violations) == (
            BatchStatus.DONE, 1, 1, 1)
        assert db.session.get(Ticket, "T1").days_late == 2
        kinds = db.session.scalars(select(AuditEvent.action).where(
            AuditEvent.action.like("import_batch.%")).order_by(AuditEvent.id)).all()
        assert kinds == ["import_batch.queued", "import_batch.finished"]
    csv_text = b.get(f"/intake/batches/{batch.id}/rejections.csv").get_data(as_text=True)
    assert "3,T2,carrier_code,unknown_party" in csv_text


def test_the_result_page_speaks_chinese(app, world, make_browser, monkeypatch):
    monkeypatch.setitem(app.config, "INTAKE_RUN_INLINE", True)
    b = signed_in(make_browser, lang="zh_CN")
    page = b.get(upload(b, (HEADER + BAD).encode()).headers["Location"]).get_data(as_text=True)
    assert "被拒收的行" in page and "没有此编码的责任主体" in page


def test_the_import_runs_in_the_background_and_the_bar_follows_it(app, world, make_browser):
    b = signed_in(make_browser)
    rows = "".join(f"B{i},C001,10.00,2026-03-05 10:00,,\n" for i in range(3000))
    resp = upload(b, (HEADER + rows).encode())
    url = resp.headers["Location"]
    progress = url + "/progress"
    for _ in range(200):
        state = b.get(progress).get_json()
        assert 0 <= state["percent"] <= 100
        if state["finished"]:
            break
        time.sleep(0.05)
    assert state == {**state, "status": "done", "percent": 100, "finished": True}
    assert ">3000<" in b.get(url).get_data(as_text=True)


def test_a_running_import_shows_a_progress_bar(app, world, make_browser):
    with app.app_context():
        batch = ImportBatch(kind="tickets", source="upload", filename="big.csv",
                            size_bytes=1000, bytes_read=250, status=BatchStatus.RUNNING)
        db.session.add(batch)
        db.session.commit()
        url = f"/intake/batches/{batch.id}"
    b = signed_in(make_browser)
    page = b.get(url).get_data(as_text=True)
    assert "<progress" in page and "import-progress.js" in page
    assert b.get(url + "/progress").get_json()["percent"] == 25


def test_a_file_that_is_not_csv_or_xlsx_is_refused_and_nothing_stored(app, world, make_browser):
    b = signed_in(make_browser)
    resp = upload(b, b"MZ\x90\x00", name="tickets.exe")
    assert resp.status_code == 200
    assert "Upload a CSV (.csv) or Excel (.xlsx) file; tickets.exe is neither." in \
        resp.get_data(as_text=True)
    with app.app_context():
        assert batches() == []


def test_a_file_without_its_columns_fails_with_the_reason(app, world, make_browser,
                                                            monkeypatch):
    monkeypatch.setitem(app.config, "INTAKE_RUN_INLINE", True)
    b = signed_in(make_browser)
    page = b.get(upload(b, b"order_no,carrier_code\nO1,C001\n").headers["Location"])
    assert "The file lacks the column(s): ticket_no." in page.get_data(as_text=True)
    with app.app_context():
        (batch,) = batches()
        assert batch.status is BatchStatus.FAILED and batch.error == "missing:ticket_no"
        assert db.session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_party_staff_and_auditors_cannot_upload(app, world, make_browser):
    for who, status in (("staff_a", 403), ("auditor", 403)):
        b = signed_in(make_browser, who)
        resp = b.post("/intake/", {"file": (io.BytesIO(GOOD.encode()), "t.csv"),
                                   "kind": "tickets"}, content_type="multipart/form-data")
        assert resp.status_code == status
    auditor = signed_in(make_browser, "auditor")
    page = auditor.get("/intake/").get_data(as_text=True)
    assert "Upload a file" not in page and "Imports" in page


def test_a_file_larger_than_an_ordinary_request_may_be_uploaded(app, world, make_browser,
                                                                  monkeypatch):
    monkeypatch.setitem(app.config, "INTAKE_RUN_INLINE", True)
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 2_000)
    b = signed_in(make_browser)
    rows = "".join(f"L{i},C001,10.00,2026-03-05 10:00,,\n" for i in range(200))
    resp = upload(b, (HEADER + rows).encode())
    assert resp.status_code == 302 and "/intake/batches/" in resp.headers["Location"]


def test_a_file_above_the_import_limit_is_refused_with_a_message(app, world, make_browser,
                                                                  monkeypatch):
    monkeypatch.setitem(app.config, "IMPORT_MAX_BYTES", 2_000)
    b = signed_in(make_browser)
    rows = "".join(f"L{i},C001,10.00,2026-03-05 10:00,,\n" for i in range(200))
    resp = upload(b, (HEADER + rows).encode())
    assert resp.status_code == 303
    assert "The file is larger than" in b.get("/intake/").get_data(as_text=True)
    with app.app_context():
        assert batches() == []


def test_an_upload_without_the_csrf_token_is_refused(app, world, make_browser):
    b = signed_in(make_browser)
    resp = b.post("/intake/", {"file": (io.BytesIO((HEADER + GOOD).encode()), "t.csv"),
                               "kind": "tickets"}, csrf=False, content_type="multipart/form-data")
    assert resp.status_code == 400


def _waiting_upload(age_hours: float, bytes_read: int = 0) -> int:
    from datetime import timedelta

    from portal.core.db import utcnow
    from portal.intake.models import BatchKind, BatchSource

    batch = ImportBatch(kind=BatchKind.TICKETS, source=BatchSource.UPLOAD, filename="t.csv",
                        size_bytes=1000, bytes_read=bytes_read, status=BatchStatus.QUEUED,
                        created_at=utcnow() - timedelta(hours=age_hours))
    db.session.add(batch)
    db.session.commit()
    return batch.id


def test_uploads_whose_import_stopped_are_marked_interrupted(app, world, make_browser):
    """A worker killed mid-import takes its transaction with it; the upload it was importing
    must not wait for ever: the scheduled round marks it failed, with the reason on its page."""
    from portal.intake.services import fail_abandoned_uploads

    with app.app_context():
        pg = db.engine.dialect.name == "postgresql"
        started = _waiting_upload(0.1, bytes_read=500)    # had read half the file
        old = _waiting_upload(7)                             # its job never ran
        fresh = _waiting_upload(0.1)                         # waiting its turn
        assert fail_abandoned_uploads() == (2 if pg else 1)
        status = {b.id: (b.status, b.error) for b in batches()}
        assert status[old] == (BatchStatus.FAILED, "interrupted")
        assert status[fresh] == (BatchStatus.QUEUED, "")
        # on SQLite nothing tells a running import from a stopped one but time
        assert status[started] == ((BatchStatus.FAILED, "interrupted") if pg
                                   else (BatchStatus.QUEUED, ""))
        events = db.session.scalars(select(AuditEvent.action).where(
            AuditEvent.action == "import_batch.failed")).all()
        assert len(events) == (2 if pg else 1)
        assert fail_abandoned_uploads() == 0      # done once
    b = signed_in(make_browser)
    page = b.get(f"/intake/batches/{old}").get_data(as_text=True)
    assert "interrupted before it finished" in page


def test_an_upload_being_imported_is_left_alone(app, world):
    """While an import holds the import lock (another process, here another connection),
    no waiting upload is taken for abandoned."""
    from portal.intake import importer
    from portal.intake.services import fail_abandoned_uploads

    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("the import lock is PostgreSQL's")
        started = _waiting_upload(0.1, bytes_read=500)
        with db.engine.connect() as other:
            other.exec_driver_sql(f"SELECT pg_advisory_xact_lock({importer.IMPORT_LOCK})")
            assert fail_abandoned_uploads() == 0
            other.rollback()
        assert db.session.get(ImportBatch, started).status is BatchStatus.QUEUED
        assert fail_abandoned_uploads() == 1
