"""Report jobs: a printed report is made in the background and kept for download.

A request creates a job and answers at once; the page polls the job's progress (JSON) and
links the PDF when it is ready. The job is started through ``core.jobs``: with ``REDIS_URL``
an RQ worker (``flask worker jobs``, any machine) runs it; in the embedded default it runs in a
thread of the web process, nothing installed. Its PDF is rendered by ``reports.render`` in a
small process pool. ``REPORTS_RUN_INLINE`` runs it within the request instead (tests).

No table: each job is a folder of files in the report store (``report_store()``): under
``REPORTS_DIR`` (default ``instance/reports``) with local file storage, or under
``<S3_PREFIX>reports/`` in the bucket with ``FILE_STORAGE=s3``, so that every app server and
worker sees every job. A job's folder holds ``job.json`` (the manifest: who asked, what, status, progress), ``report.pdf`` and
``snapshot.json`` (what the report was made from: period or object, generation time, the
last audit event included, the SHA-256 of the data rows, the language). Printing again from
a snapshot rebuilds the report as of the same moment, under the same report id; when the
records have changed since, the reprint fails and says so (the kept PDF stays the record).

Jobs older than ``REPORTS_KEEP_DAYS`` (30) are removed by the scheduled round
(``purge_old_jobs``), never one still queued or running.
"""
from __future__ import annotations

import json
import logging
import threading
import traceback
import uuid
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from flask import current_app, render_template
from flask_babel import force_locale

from portal.core.db import utcnow
from portal.core.permissions import Perm, allowed, party_scope
from portal.core.storage import LocalStorage, S3Storage, Storage, storage
from portal.extensions import db

log = logging.getLogger(__name__)

KINDS = ("audit", "dossier", "scorecard")
CHUNK_ROWS = 80   # rows of a long table per part (each part starts a page)
_write_lock = threading.Lock()


class JobStatus:
    QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


@dataclass
class Job:
    id: str
    kind: str
    params: dict
    user_id: int
    locale: str
    created_at: str
    title: str = ""
    status: str = JobStatus.QUEUED
    percent: int = 0
    stage: str = ""
    report_id: str = ""
    pages: int = 0
    finished_at: str = ""
    error: str = ""
    stats: dict = field(default_factory=dict)
    reprint_of: str = ""

    @property
    def finished(self) -> bool:
        return self.status in (JobStatus.DONE, JobStatus.FAILED)

    @property
    def pdf_key(self) -> str:
        return f"{self.id}/report.pdf"

    @property
    def snapshot_key(self) -> str:
        return f"{self.id}/snapshot.json"

    def progress(self) -> dict:
        return {"id": self.id, "status": self.status, "percent": self.percent,
                "stage": self.stage, "finished": self.finished, "pages": self.pages,
                "error": self.error}


def reports_dir() -> Path:
    configured = current_app.config.get("REPORTS_DIR")
    return Path(configured) if configured else Path(current_app.instance_path) / "reports"


def report_store() -> Storage:
    """Where report jobs are kept: ``REPORTS_DIR`` with local storage, else the bucket's
    ``reports/`` folder (keys ``<job id>/job.json`` either way)."""
    main = storage()
    if isinstance(main, S3Storage):
        return S3Storage(main.bucket, prefix=f"{main.prefix}reports/",
                         endpoint_url=main.endpoint_url, client=main.client)
    root = str(reports_dir())
    cached = current_app.extensions.get("portal.reports.store")
    if cached is None or str(cached.root) != root:
        cached = current_app.extensions["portal.reports.store"] = LocalStorage(root)
    return cached


def _save(job: Job) -> None:
    data = json.dumps(asdict(job), ensure_ascii=False, indent=1).encode()
    with _write_lock:   # written whole and renamed (local) or one PUT (S3): never half
        report_store().put(f"{job.id}/job.json", data, replace=True)


def load_job(job_id: str) -> Job | None:
    if not job_id.isalnum():
        return None
    try:
        return Job(**json.loads(report_store().read_bytes(f"{job_id}/job.json")))
    except (OSError, ValueError, TypeError):
        return None


def may_see(user, job: Job) -> bool:
    """Whoever asked for it; CS and auditors (every party's rows) see every job."""
    if job.user_id == user.id:
        return True
    return allowed(user, Perm.PRINT_REPORTS) and party_scope(user) is None


def all_jobs() -> list[Job]:
    ids = [k.split("/")[0] for k in report_store().list_keys() if k.endswith("/job.json")]
    return [j for j in map(load_job, ids) if j is not None]


def jobs_for(user, limit: int = 50) -> list[Job]:
    jobs = [j for j in all_jobs() if may_see(user, j)]
    jobs.sort(key=lambda j: j.created_at, reverse=True)
    return jobs[:limit]


def load_snapshot(job: Job) -> dict | None:
    try:
        return json.loads(report_store().read_bytes(job.snapshot_key))
    except (OSError, ValueError):
        return None


def open_pdf(job: Job):
    """The PDF as a stream (``FileNotFoundError`` if it is not there)."""
    return report_store().open(job.pdf_key)


def purge_old_jobs(now: datetime | None = None) -> int:
    """Remove the jobs created more than ``REPORTS_KEEP_DAYS`` ago that are finished (a queued
    or running job is never removed). Logged; the audit trail records state changes of
    records, and report jobs are files, not records (their creation is not audited either)."""
    days = int(current_app.config.get("REPORTS_KEEP_DAYS", 30))
    if days <= 0:
        return 0
    cutoff = (now or utcnow()) - timedelta(days=days)
    store, removed = report_store(), 0
    for job in all_jobs():
        if not job.finished or datetime.fromisoformat(job.created_at) >= cutoff:
            continue
        for key in store.list_keys(job.id):
            store.delete(key)
        if isinstance(store, LocalStorage):
            for folder in (store.root / job.id,):
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
        removed += 1
        log.info("report job %s (%s, %s, created %s) removed after %d days", job.id,
                 job.kind, job.report_id or job.title, job.created_at, days)
    return removed


# --- starting ------------------------------------------------------------------------------

def create_job(kind: str, params: dict, user, locale: str, title: str, *,
               reprint_of: str = "") -> Job:
    """Record a job and start it (``core.jobs``, or inline when ``REPORTS_RUN_INLINE``)."""
    if kind not in KINDS:   # a programming error, also under python -O
        raise ValueError(f"unknown report kind {kind!r}")
    job = Job(id=uuid.uuid4().hex, kind=kind, params=params, user_id=user.id, locale=locale,
              created_at=utcnow().isoformat(), title=title, reprint_of=reprint_of)
    _save(job)
    app = current_app._get_current_object()
    if app.config.get("REPORTS_RUN_INLINE"):
        run_job(app, job.id)
        return load_job(job.id)
    from portal.core.jobs import enqueue
    from portal.worker.tasks import render_report

    enqueue(render_report, job.id)
    return job


def reprint(job: Job, user, title: str) -> Job:
    return create_job(job.kind, job.params, user, job.locale, title, reprint_of=job.id)


# --- running -------------------------------------------------------------------------------

def run_job(app, job_id: str) -> None:
    """Gather, render, keep. Runs as the user who asked, in their language: the same
    visibility rules as their pages (a party's staff see only their own party's rows)."""
    from flask_login import login_user

    from portal.accounts.models import User

    with app.test_request_context():
        job = load_job(job_id)
        try:
            user = db.session.get(User, job.user_id)
            login_user(user)
            snapshot = None
            if job.reprint_of:
                original = load_job(job.reprint_of)
                snapshot = original and load_snapshot(original)
                if snapshot is None:
                    raise RuntimeError("the report to print again has no snapshot")
            _update(job, status=JobStatus.RUNNING, percent=5, stage="gathering")
            with force_locale(job.locale):
                html, snap = build_html(job, user, snapshot)
            _update(job, percent=15, stage="rendering", report_id=snap["report_id"])
            pdf, stats = _render(html, snap["report_id"], job)
            store = report_store()
            store.put(job.pdf_key, pdf, replace=True)
            snap["pages"], snap["render"] = stats.pages, stats.as_dict()
            store.put(job.snapshot_key, json.dumps(snap, ensure_ascii=False, indent=1,
                                                   default=str).encode(), replace=True)
            _update(job, status=JobStatus.DONE, percent=100, stage="done", pages=stats.pages,
                    stats=stats.as_dict(), finished_at=utcnow().isoformat())
        except Exception as exc:  # noqa: BLE001  (the job records any failure for its page)
            current_app.logger.error("report job %s failed: %s", job_id,
                                     traceback.format_exc())
            _update(job, status=JobStatus.FAILED, stage="failed", error=str(exc),
                    finished_at=utcnow().isoformat())
        finally:
            db.session.rollback()


def _update(job: Job, **changes) -> None:
    for k, v in changes.items():
        setattr(job, k, v)
    _save(job)


def _render(html: str, report_id: str, job: Job):
    from portal.reports.render import render_parallel

    def progress(done, total):
        _update(job, percent=15 + int(75 * done / total), stage="rendering")

    return render_parallel(html, current_app.static_folder, title=report_id,
                           target=current_app.config.get("REPORTS_PART_BYTES"),
                           progress=progress)


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="microseconds")


def build_html(job: Job, user, snapshot: dict | None = None) -> tuple[str, dict]:
    """The report's HTML and its snapshot. From a ``snapshot``: as of its moment, under its
    report id, refusing if the data no longer hash the same."""
    from portal.core.i18n import use_timezone
    from portal.reports import services

    now = datetime.fromisoformat(snapshot["generated_at"]) if snapshot else utcnow()
    # times print in the zone of the first printing, whoever prints it again
    use_timezone(snapshot["timezone"] if snapshot else user.timezone)
    prefix = {"audit": "AR", "dossier": "CD", "scorecard": "SC"}[job.kind]
    report_id = snapshot["report_id"] if snapshot else f"{prefix}-{now:%Y%m%d%H%M%S}-{job.id[:6]}"
    requested_by = snapshot["requested_by"] if snapshot else user.display_name
    p = job.params
    common = {"report_id": report_id, "requested_by": requested_by, "chunk_rows": CHUNK_ROWS,
              "locale": job.locale, "is_en": job.locale.startswith("en")}
    if job.kind == "audit":
        tz = snapshot["timezone"] if snapshot else user.timezone
        data = services.build_audit_report(date.fromisoformat(p["start"]),
                                           date.fromisoformat(p["end"]), tz, now, job.locale)
        html = render_template("reports/audit_pdf.html", r=data, **common)
    elif job.kind == "dossier":
        from portal.cases.models import Case

        case = db.session.get(Case, p["case_id"])
        scope = party_scope(user)
        if case is None or (scope is not None and scope not in case.party_ids()):
            raise LookupError("no such case")
        tz = snapshot["timezone"] if snapshot else user.timezone
        data = services.build_dossier(case, scope, now)
        html = render_template("reports/dossier_pdf.html", d=data, **common)
    else:
        from portal.parties.models import Party

        party = db.session.get(Party, p["party_id"])
        scope = party_scope(user)
        if party is None or (scope is not None and scope != party.id):
            raise LookupError("no such party")
        tz = snapshot["timezone"] if snapshot else user.timezone
        data = services.build_scorecard(party, date.fromisoformat(p["start"]),
                                        date.fromisoformat(p["end"]), now, job.locale)
        html = render_template("reports/scorecard_pdf.html", s=data, **common)
    if snapshot and snapshot["data_sha256"] != data.data_sha256:
        raise services.SnapshotMismatch(
            "the records this report was made from have changed since; the kept PDF is the "
            "record of that moment")
    snap = {"report_id": report_id, "kind": job.kind, "params": p,
            "generated_at": _iso(now), "timezone": tz, "locale": job.locale,
            "requested_by": requested_by, "user_id": job.user_id,
            "last_event_id": data.last_event_id, "data_sha256": data.data_sha256,
            "scope": party_scope(user)}
    return html, snap
