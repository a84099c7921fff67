"""A backup restores: data made through the portal's services, ``scripts/backup`` (pg_dump
custom format and the file folders as tar), ``scripts/restore`` into a fresh database, and the
copy has the same rows, an intact audit chain and the same files. PostgreSQL only."""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import uuid

import pytest
from sqlalchemy import create_engine, func, select, text

from portal import ROOT
from portal.core.db import Base
from tests.conftest import BACKEND, PG_SERVER

pytestmark = [
    pytest.mark.skipif(BACKEND == "sqlite", reason="backup and restore use pg_dump/pg_restore: "
                       "PostgreSQL only (TEST_DATABASE=postgresql)"),
    pytest.mark.skipif(shutil.which("pg_dump") is None or shutil.which("pg_restore") is None,
                       reason="pg_dump / pg_restore are not installed"),
]


def _script(args: list[str], *, env: dict, timeout: int, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, timeout=timeout, check=False, **kw)


def _counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {t.name: conn.scalar(select(func.count()).select_from(t))
                    for t in Base.metadata.sorted_tables}
    finally:
        engine.dispose()


def _make_data(app) -> tuple[str, str]:
    """A world (parties, people, a case with violations...), and an evidence file."""
    from portal.accounts.models import User
    from portal.cases.evidence import add_evidence
    from portal.cases.models import Case
    from portal.core.audit import acting_as
    from portal.extensions import db
    from tests.factories import build_world, username

    with app.test_request_context():
        world = build_world()
        officer = db.session.scalar(select(User).where(User.username == username("cs_officer")))
        data = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n" + uuid.uuid4().bytes
        with acting_as(officer):
            ev = add_evidence(db.session.get(Case, world.case), "签收单.pdf", data, officer)
        db.session.commit()
        return ev.storage_key, hashlib.sha256(data).hexdigest()


def test_a_backup_restores_into_a_new_database_with_its_rows_chain_and_files(
        app, database, tmp_path, monkeypatch):
    files = tmp_path / "files"
    monkeypatch.setitem(app.config, "FILE_STORAGE_DIR", str(files))
    key, digest = _make_data(app)
    before = _counts(database.url)
    assert before["audit_events"] > 0 and before["evidence_files"] == 1

    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": database.url, "FILE_STORAGE": "local",
           "FILE_STORAGE_DIR": str(files), "REPORTS_DIR": str(tmp_path / "reports")}
    backup = tmp_path / "backup"
    done = _script([str(ROOT / "scripts" / "backup"), str(backup)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert {"portal.dump", "files.tar", "reports.tar", "SHA256SUMS"} <= {
        p.name for p in backup.iterdir()}

    name = f"portal_restored_{uuid.uuid4().hex[:10]}"
    target = PG_SERVER.rsplit("/", 1)[0] + "/" + name
    restored_files = tmp_path / "restored-files"
    try:
        done = _script([str(ROOT / "scripts" / "restore"), str(backup), target,
                               str(restored_files)], env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        assert _counts(target) == before

        from portal import create_app
        from portal.core.audit import verify_chain
        from portal.core.storage import storage

        copy = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": target,
                           "FILE_STORAGE_DIR": str(restored_files)})
        with copy.app_context():
            report = verify_chain()
            assert report.intact and report.checked == before["audit_events"]
            restored = storage().read_bytes(key)
            assert hashlib.sha256(restored).hexdigest() == digest
            from portal.extensions import db
            db.engine.dispose()

        # restoring over an existing database is refused
        again = _script([str(ROOT / "scripts" / "restore"), str(backup), target],
                               env=env, capture_output=True, text=True, timeout=60)
        assert again.returncode != 0 and "already exists" in again.stderr
    finally:
        admin = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_backup_says_it_needs_postgresql(tmp_path):
    done = _script([str(ROOT / "scripts" / "backup"), str(tmp_path / "b")],
                          env={"PATH": "/usr/bin:/bin",
                               "DATABASE_URL": "sqlite:///instance/portal.db"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "PostgreSQL" in done.stderr
