"""Benchmark: a ~100-page period audit report, rendered three ways from the same HTML.

    .venv/bin/python bench/report.py
    BENCH_REPORT_CASES=1200 .venv/bin/python bench/report.py     # a ~200-page report
    BENCH_REPORT_HTML=/tmp/r.html .venv/bin/python bench/report.py   # keep the HTML, then
    BENCH_REPORT_HTML_IN=/tmp/r.html .venv/bin/python bench/report.py  # time it again

Target (issue 8): the parallel renderer (``portal/reports/render.py``: the report cut at its
part marks, parts laid out by WeasyPrint in min(2, cores) processes, joined with pypdf and
numbered "第 N 页 / 共 M 页" by a stamped overlay) at least 2x faster than one plain WeasyPrint
render of the same HTML measured in the same run, with a peak RSS under 600 MB per render
process. Headless Chromium printing the same HTML file is timed too, for the ratio.

The data is seeded set-based on a fresh PostgreSQL database (the SQL of ``bench/cases.py``):
cases with their violations, rulings, shares, penalties and appeals, plus an audit event per
ruling (the appendix prints its hash). The HTML is made once by the portal (the report as an
auditor gets it); the renders then run in fresh processes (baseline, parallel cold) and again
with the pool warm, as it is in a running portal.

Not part of the test run: figures depend on the machine (and on what else it is running).
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from io import BytesIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text

from bench.common import bench_app, build_people

N = int(os.environ.get("BENCH_REPORT_CASES", "600"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
CARRIERS, MERCHANTS = 60, 3000   # the SQL of bench/cases.py picks among 3,000 merchants
CHROMIUM = os.environ.get("BENCH_CHROMIUM", "/usr/bin/chromium")

EVENTS_SQL = """
INSERT INTO audit_events (occurred_at, actor_id, actor_name, action, object_type, object_id,
                          before, after, ip, prev_hash, hash)
SELECT r.ruled_at, r.officer_id, 'bench.officer', 'ruling.issued', 'rulings', r.id::text,
       NULL, '{}', NULL, repeat('0', 64), encode(sha256(('ruling-' || r.id)::bytea), 'hex')
FROM rulings r ORDER BY r.id
"""


def seed(db) -> None:
    from bench import cases as c

    for label, sql in (("cases", c.CASES_SQL), ("violations", c.VIOLATIONS_SQL),
                       ("rulings", c.RULINGS_SQL), ("responsibility shares", c.SHARES_SQL),
                       ("penalties", c.PENALTIES_SQL), ("open appeals", c.APPEALS_SQL),
                       ("audit events of rulings", EVENTS_SQL)):
        n = db.session.execute(text(sql), {"n": N}).rowcount
        db.session.commit()
        print(f"seeded {n:,} {label}")
    db.session.execute(text("UPDATE rulings SET rationale = '证据充分：客户未签收，系统显示已签收，"
                            "录音与轨迹已核对，配送公司承担主要责任。'"))
    db.session.commit()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


def report_html(app) -> str:
    from datetime import timedelta

    from flask import render_template
    from flask_login import login_user

    from portal.accounts.models import User
    from portal.core.db import utcnow
    from portal.core.timeutil import local_today
    from portal.extensions import db
    from portal.reports.jobs import CHUNK_ROWS
    from portal.reports.services import build_audit_report

    with app.test_request_context():
        user = db.session.scalar(db.select(User).where(User.username == "bench.admin"))
        login_user(user)
        today, now = local_today(), utcnow()
        t0 = time.perf_counter()
        report = build_audit_report(today - timedelta(days=366), today, "Asia/Shanghai", now)
        html = render_template("reports/audit_pdf.html", r=report, report_id="AR-BENCH",
                               requested_by=user.display_name, chunk_rows=CHUNK_ROWS)
        print(f"report data and HTML: {time.perf_counter() - t0:.1f} s "
              f"({len(report.appendix):,} rulings, {len(report.violations):,} violations, "
              f"{len(html) / 1e6:.1f} MB of HTML)")
        return html


def pages_of(pdf: bytes) -> int:
    from pypdf import PdfReader

    return len(PdfReader(BytesIO(pdf)).pages)


def plain_render(html: str, static_root: str):
    """``HTML(...).write_pdf()`` as WeasyPrint comes (the portal's static-only URL fetcher,
    nothing else changed), with the process's peak RSS."""
    from portal.reports.render import _render

    return _render(html, static_root, "")


def baseline(html: str, static_root: str):
    """One plain WeasyPrint render of the whole document, in a fresh process."""
    import multiprocessing

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["portal.reports.pdf_warmup", "portal.core.pdf"])
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        pool.submit(int, 0).result()        # the process is up (as the parallel pool's are)
        t0 = time.perf_counter()
        pdf, pages, rss = pool.submit(plain_render, html, static_root).result()
        return pdf, pages, rss, time.perf_counter() - t0


def chromium(html: str) -> tuple[float, int] | None:
    if not shutil.which(CHROMIUM):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "report.html", Path(tmp) / "report.pdf"
        src.write_text(html, encoding="utf-8")
        t0 = time.perf_counter()
        subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                        "--no-pdf-header-footer", f"--print-to-pdf={out}", src.as_uri()],
                       check=True, capture_output=True, timeout=300)
        seconds = time.perf_counter() - t0
        return seconds, pages_of(out.read_bytes())


def make_html() -> tuple[str, str]:
    """The report's HTML from a freshly seeded database (or BENCH_REPORT_HTML_IN, a file an
    earlier run kept with BENCH_REPORT_HTML) and the static folder."""
    from portal import ROOT

    static_root = str(ROOT / "portal" / "static")
    if os.environ.get("BENCH_REPORT_HTML_IN"):
        return Path(os.environ["BENCH_REPORT_HTML_IN"]).read_text(encoding="utf-8"), static_root
    with bench_app() as app:
        with app.app_context():
            from portal.extensions import db

            build_people(CARRIERS, 0, MERCHANTS, 0)
            db.session.commit()
            with app.test_request_context():
                from portal.accounts.models import User
                from portal.core.audit import acting_as
                from portal.standards.loader import load_directory

                admin = db.session.scalar(db.select(User).where(User.username == "bench.admin"))
                with acting_as(admin):
                    load_directory(Path(__file__).resolve().parent.parent / "standards",
                                   owner=admin)
                db.session.commit()
            seed(db)
        html = report_html(app)
    if os.environ.get("BENCH_REPORT_HTML"):    # keep the HTML to profile it again
        Path(os.environ["BENCH_REPORT_HTML"]).write_text(html, encoding="utf-8")
    return html, static_root


def main() -> None:
    from portal.reports import render

    html, static_root = make_html()
    workers = render.worker_count()
    print(f"\nrendering on {os.cpu_count()} cores, {workers} render processes, {RUNS} runs "
          f"each, alternating (best and median shown: other work on the machine adds noise)")
    base, par = [], []
    render.shutdown_pool()
    t0 = time.perf_counter()
    pdf_b, stats = render.render_parallel(html, static_root, workers=workers)
    t_cold = time.perf_counter() - t0
    for _ in range(RUNS):
        _pdf_a, pages_a, rss_a, t_a = baseline(html, static_root)
        base.append(t_a)
        t0 = time.perf_counter()
        pdf_b, stats = render.render_parallel(html, static_root, workers=workers)
        par.append(time.perf_counter() - t0)
    assert stats.pages == pages_a == pages_of(pdf_b), "the parts paginate as the whole does"
    a, b = min(base), min(par)
    print(f"(a) plain WeasyPrint, one render:  {pages_a} pages  best {a:6.2f} s  median "
          f"{statistics.median(base):6.2f} s  ({a / pages_a * 100:.1f} s per 100 pages)  "
          f"peak RSS {rss_a:.0f} MB")
    print(f"(b) parallel renderer:             {stats.pages} pages  best {b:6.2f} s  median "
          f"{statistics.median(par):6.2f} s  (first run, new processes: {t_cold:.2f} s)  "
          f"{stats.parts} parts  peak RSS per process {stats.peak_rss_mb:.0f} MB")

    chrome = chromium(html)
    if chrome:
        t_c, pages_c = chrome
        print(f"(c) headless Chromium --print-to-pdf: {pages_c} pages  {t_c:6.2f} s")

    print(f"\nbaseline / parallel: {a / b:.2f}x best, "
          f"{statistics.median(base) / statistics.median(par):.2f}x median (target >= 2)")
    if chrome:
        per_page_b, per_page_c = b / stats.pages, t_c / pages_c
        print(f"parallel / Chromium, per page: {per_page_b / per_page_c:.2f}x "
              f"({per_page_b * 100:.1f} s vs {per_page_c * 100:.1f} s per 100 pages)")
    ok_mem = max(rss_a, stats.peak_rss_mb) < render.MEMORY_LIMIT_MB
    print(f"peak RSS under {render.MEMORY_LIMIT_MB} MB per render: {'yes' if ok_mem else 'NO'}")
    render.shutdown_pool()


if __name__ == "__main__":
    main()
