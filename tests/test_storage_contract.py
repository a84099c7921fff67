"""File storage: one contract, run against both backends: ``LocalStorage`` (a folder) and
``S3Storage`` talking HTTP to a real S3-compatible server (moto's ``ThreadedMotoServer`` on a
free local port; boto3 is not mocked). Then the portal end to end on S3: an evidence file
uploaded through the case page lands in the bucket and downloads back byte for byte."""
from __future__ import annotations

import hashlib
import io
import os
import uuid

import pytest

from portal.core.storage import (
    LocalStorage,
    S3Storage,
    make_storage,
    put_in_transaction,
    storage,
)
from portal.extensions import db
from tests.conftest import free_port

BUCKET = "portal-test"
CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing"}


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 HTTP server on 127.0.0.1 with the test bucket."""
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing"
                 ).create_bucket(Bucket=BUCKET)
    yield url
    server.stop()


def _s3(url: str, prefix: str = "") -> S3Storage:
    return S3Storage(BUCKET, prefix=prefix or f"t-{uuid.uuid4().hex[:8]}/", endpoint_url=url,
                     region="us-east-1", **CREDENTIALS)


@pytest.fixture(params=["local", "s3"])
def backend(request, tmp_path):
    if request.param == "local":
        return LocalStorage(tmp_path / "files")
    return _s3(request.getfixturevalue("s3_server"))


# --- the contract --------------------------------------------------------------------------

def test_bytes_and_streams_are_stored_and_read_back(backend):
    assert backend.put("evidence/a1", b"hello") == 5
    assert backend.put("evidence/a2", io.BytesIO(b"stream" * 1000)) == 6000
    with backend.open("evidence/a1") as f:
        assert f.read() == b"hello"
    assert backend.read_bytes("evidence/a2") == b"stream" * 1000
    assert backend.exists("evidence/a1") and not backend.exists("evidence/zz")


def test_a_key_names_one_file_unless_replaced_on_purpose(backend):
    backend.put("jobs/x/job.json", b"one")
    with pytest.raises(FileExistsError):
        backend.put("jobs/x/job.json", b"two")
    assert backend.read_bytes("jobs/x/job.json") == b"one"
    backend.put("jobs/x/job.json", b"three", replace=True)
    assert backend.read_bytes("jobs/x/job.json") == b"three"


def test_a_missing_file_is_file_not_found_and_deleting_it_is_no_error(backend):
    with pytest.raises(FileNotFoundError):
        backend.open("evidence/none")
    backend.delete("evidence/none")
    backend.put("evidence/gone", b"x")
    backend.delete("evidence/gone")
    assert not backend.exists("evidence/gone")


@pytest.mark.parametrize("key", ["../etc/passwd", "a/../b", ".part-x", "a//b", "/abs", "a b",
                                 "", "x" * 201])
def test_keys_that_could_escape_or_collide_are_refused(backend, key):
    with pytest.raises(ValueError, match="not a storage key"):
        backend.put(key, b"x")


def test_keys_are_listed_by_folder(backend):
    for key in ("r/1/job.json", "r/1/report.pdf", "r/2/job.json", "other/3"):
        backend.put(key, b"x")
    assert backend.list_keys("r") == ["r/1/job.json", "r/1/report.pdf", "r/2/job.json"]
    assert backend.list_keys("r/1") == ["r/1/job.json", "r/1/report.pdf"]
    assert backend.list_keys("none") == []
    assert set(backend.list_keys()) == {"r/1/job.json", "r/1/report.pdf", "r/2/job.json",
                                        "other/3"}


def test_large_files_go_up_and_come_down_as_streams(backend):
    """12 MB: above boto3's multipart threshold (8 MB); read back in 1 MB chunks."""
    data = os.urandom(1 << 20) * 12
    assert backend.put("evidence/big", io.BytesIO(data)) == len(data)
    digest, largest = hashlib.sha256(), 0
    with backend.open("evidence/big") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            largest = max(largest, len(chunk))
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert largest <= 1 << 20


def test_a_file_put_in_a_rolled_back_transaction_is_deleted(app, backend):
    with app.app_context():
        put_in_transaction("evidence/tx1", b"x", backend=backend)
        assert backend.exists("evidence/tx1")
        db.session.rollback()
        assert not backend.exists("evidence/tx1")


def test_a_file_put_in_a_rolled_back_savepoint_is_deleted_the_rest_kept(app, backend):
    with app.app_context():
        put_in_transaction("evidence/outer", b"x", backend=backend)
        savepoint = db.session.begin_nested()
        put_in_transaction("evidence/inner", b"y", backend=backend)
        savepoint.rollback()
        assert not backend.exists("evidence/inner")
        db.session.commit()
        db.session.remove()
        assert backend.exists("evidence/outer")


# --- settings ------------------------------------------------------------------------------

def test_s3_settings_say_what_is_missing(tmp_path):
    base = {"FILE_STORAGE_DIR": str(tmp_path)}
    with pytest.raises(ValueError, match="S3_BUCKET"):
        make_storage({**base, "FILE_STORAGE": "s3"})
    with pytest.raises(ValueError, match="S3_SECRET_ACCESS_KEY"):
        make_storage({**base, "FILE_STORAGE": "s3", "S3_BUCKET": "b",
                      "S3_ACCESS_KEY_ID": "only-half"})
    with pytest.raises(ValueError, match="FILE_STORAGE"):
        make_storage({**base, "FILE_STORAGE": "ftp"})
    assert isinstance(make_storage({**base, "FILE_STORAGE": "local"}), LocalStorage)


def test_the_environment_is_checked_at_start_up(monkeypatch):
    from portal.config import SettingError, parse_file_storage

    monkeypatch.delenv("S3_BUCKET", raising=False)
    with pytest.raises(SettingError, match="S3_BUCKET"):
        parse_file_storage("s3")
    with pytest.raises(SettingError, match="FILE_STORAGE"):
        parse_file_storage("nfs")
    assert parse_file_storage("Local") == "local"


def test_a_missing_bucket_is_named(s3_server):
    missing = S3Storage("no-such-bucket", endpoint_url=s3_server, region="us-east-1",
                        **CREDENTIALS)
    with pytest.raises(RuntimeError, match="no-such-bucket"):
        missing.put("evidence/x", b"x")


# --- the portal on S3, end to end -----------------------------------------------------------

@pytest.fixture
def s3_app(app, s3_server, monkeypatch):
    prefix = f"e2e-{uuid.uuid4().hex[:8]}"
    for name, value in {"FILE_STORAGE": "s3", "S3_BUCKET": BUCKET, "S3_ENDPOINT_URL": s3_server,
                        "S3_REGION": "us-east-1", "S3_ACCESS_KEY_ID": "testing",
                        "S3_SECRET_ACCESS_KEY": "testing", "S3_PREFIX": prefix}.items():
        monkeypatch.setitem(app.config, name, value)
    return app


def test_evidence_uploaded_through_the_page_lands_in_the_bucket_and_downloads_back(
        s3_app, make_browser):
    import boto3
    from sqlalchemy import select

    from portal.cases.evidence import Evidence
    from tests.test_evidence import PDF, _browser, _upload
    from tests.test_evidence import world as make_world

    world = make_world.__wrapped__(s3_app)
    data = PDF + os.urandom(300_000)
    cs = _browser(make_browser, "cs_officer")
    cs.get(f"/cases/{world.case}")
    assert _upload(cs, world.case, "签收单.pdf", data).status_code == 303
    with s3_app.app_context():
        ev = db.session.scalar(select(Evidence))
        assert isinstance(storage(), S3Storage)
        key = f"{s3_app.config['S3_PREFIX']}/{ev.storage_key}"
    client = boto3.client("s3", endpoint_url=s3_app.config["S3_ENDPOINT_URL"],
                          region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    assert client.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data
    resp = cs.get(f"/cases/{world.case}/evidence/{ev.id}")
    assert resp.status_code == 200 and resp.data == data


def test_report_jobs_are_kept_in_the_bucket_and_downloaded_from_it(s3_app, make_browser):
    """Every app server sees every report job: manifest, snapshot and PDF are objects."""
    import boto3

    from tests.test_reports import download, job_id_of, period, signed_in
    from tests.test_reports import world as report_world

    report_world.__wrapped__(s3_app)
    s3_app.config["REPORTS_RUN_INLINE"] = True
    try:
        auditor = signed_in(make_browser, "auditor")
        auditor.get("/reports/")
        job_id = job_id_of(auditor.post("/reports/audit", period()))
    finally:
        s3_app.config.pop("REPORTS_RUN_INLINE")
    client = boto3.client("s3", endpoint_url=s3_app.config["S3_ENDPOINT_URL"],
                          region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    prefix = f"{s3_app.config['S3_PREFIX']}/reports/{job_id}/"
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]
    assert {o["Key"][len(prefix):] for o in listed} == {"job.json", "snapshot.json",
                                                        "report.pdf"}
    pdf = download(auditor, job_id)
    assert pdf.startswith(b"%PDF")
    assert pdf == client.get_object(Bucket=BUCKET, Key=prefix + "report.pdf")["Body"].read()
    assert job_id in auditor.get("/reports/").get_data(as_text=True)
