"""Load test: 100 simulated users for two minutes against gunicorn on PostgreSQL (issue 9).

    .venv/bin/python bench/load.py
    BENCH_LOAD_USERS=100 BENCH_LOAD_SECONDS=120 BENCH_LOAD_WEB_WORKERS=4 .venv/bin/python bench/load.py

What runs, all on this machine over loopback:

- a fresh PostgreSQL database with the demo data (``flask demo load``: parties, the rulebook,
  four months of cases, rulings, appeals, HR notices, tickets), plus the load's own accounts:
  party staff (who inherit the open reading tasks), CS officers (who enrol in two-factor
  sign-in through the setup page, as a new officer does), auditors and HR officers;
- the portal under gunicorn (``gunicorn.conf.py``, BENCH_LOAD_WEB_WORKERS processes) and, when
  Redis answers on REDIS_URL (default redis://127.0.0.1:6379/14), one job worker
  (``flask worker jobs``) that renders the requested reports, as in production;
- BENCH_LOAD_USERS simulated users (asyncio + httpx, each with its own cookies), signed in
  first (password and, for CS, a TOTP code: sign-in is timed apart), then for
  BENCH_LOAD_SECONDS each repeats its role's journey with a think time of 1-5 s (uniform,
  mean 3 s) between requests (BENCH_LOAD_THINK="0.5,2.5" for a harder run; on this machine that
  doubles the rate to ~55 requests/s and the two cores saturate):
  party staff (60 %): home, "To read", a standard version, acknowledge it, own cases and a
  case, own penalties, training;
  CS officers (20 %): case list (with a filter), a case, open a case, record a violation and
  rule on it with blame split 70/30 between a carrier and a department;
  auditors (10 %): dashboard, ledger, audit log, and once per user a one-month audit report
  PDF, polled until done and downloaded;
  HR officers (10 %): HR inbox and a notice.

Printed: requests, throughput, errors (any status other than the one expected, or a failed
connection), p50/p95/p99 of page requests (GET and form posts; report downloads and sign-in
apart). Target: zero errors and p95 of pages under 500 ms.

Not part of the test run: figures depend on the machine (and on what else it is running).
"""
from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.common import fresh_database

ROOT = Path(__file__).resolve().parent.parent
USERS = int(os.environ.get("BENCH_LOAD_USERS", "100"))
SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "120"))
WEB_WORKERS = os.environ.get("BENCH_LOAD_WEB_WORKERS", "")
REDIS_URL = os.environ.get("BENCH_LOAD_REDIS_URL", "redis://127.0.0.1:6379/14")
PASSWORD = "load-Password-2026!"
# seconds between a user's requests: still faster than people click
THINK = tuple(float(x) for x in os.environ.get("BENCH_LOAD_THINK", "1,5").split(","))
LOG = os.environ.get("BENCH_LOAD_LOG", "/tmp/bench-load-servers.log")
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
SECRET_RE = re.compile(r'data-totp-secret="([A-Z2-7=]+)"')
SHARE = {"staff": 0.6, "officer": 0.2, "auditor": 0.1, "hr": 0.1}


# --- set-up ----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_ok(url: str) -> bool:
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        client.flushdb()
        return True
    except Exception:  # noqa: BLE001  (no Redis: jobs run in-process)
        return False


def roles() -> dict[str, int]:
    counts = {role: int(USERS * share) for role, share in SHARE.items()}
    counts["staff"] += USERS - sum(counts.values())
    return counts


def seed(url: str) -> dict:
    """Demo data and the load's accounts; what the journeys need to know."""
    os.environ["DATABASE_URL"] = url
    from flask_migrate import upgrade
    from sqlalchemy import select

    from portal import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
    with app.test_request_context():
        from portal.accounts.models import User
        from portal.accounts.services import create_user
        from portal.cases.models import Case
        from portal.core.audit import acting_as
        from portal.core.permissions import Role
        from portal.demo.data import load_demo
        from portal.extensions import db
        from portal.hr.models import HrNotice
        from portal.parties.models import Party

        t0 = time.perf_counter()
        load_demo()
        print(f"demo data loaded in {time.perf_counter() - t0:.0f} s")
        admin = db.session.scalar(select(User).where(User.username == "admin"))
        carriers = db.session.scalars(select(Party).where(Party.code.like("C%"))
                                      .order_by(Party.code)).all()
        counts, accounts = roles(), defaultdict(list)
        role_of = {"officer": Role.CS_OFFICER, "auditor": Role.AUDITOR, "hr": Role.HR_OFFICER}
        with acting_as(admin):
            for kind, n in counts.items():
                for i in range(n):
                    name = f"load.{kind}{i:03d}"
                    create_user(username=name, display_name=f"压测{kind}{i}", password=PASSWORD,
                                role=Role.PARTY_STAFF if kind == "staff" else role_of[kind],
                                party=carriers[i % len(carriers)] if kind == "staff" else None,
                                email=f"{name}@example.com")
                    accounts[kind].append(name)
        db.session.commit()
        from portal.cases.services import ruled_clauses

        clause = next(c for c in ruled_clauses()       # a carrier clause with a fixed fine
                      if c.label.startswith("CAR-") and c.fine_per_occurrence)
        dept = db.session.scalar(select(Party.id).where(Party.code == "D001"))
        return {"accounts": dict(accounts), "clause": clause.id, "carriers":
                [c.id for c in carriers], "dept": dept,
                "cases": db.session.scalars(select(Case.id).order_by(Case.id.desc())
                                            .limit(40)).all(),
                "notices": db.session.scalars(select(HrNotice.id).limit(20)).all()}


def start_servers(url: str, port: int, with_redis: bool) -> list[subprocess.Popen]:
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "load-test-secret-key",
           "PORTAL_BASE_URL": f"http://127.0.0.1:{port}"}
    if WEB_WORKERS:
        env["WEB_CONCURRENCY"] = WEB_WORKERS
    if with_redis:
        env["REDIS_URL"] = REDIS_URL
    else:
        env.pop("REDIS_URL", None)
    gunicorn = shutil.which("gunicorn", path=str(ROOT / ".venv" / "bin")) or "gunicorn"
    log = open(LOG, "w")  # noqa: SIM115  (the servers write to it until they stop)
    procs = [subprocess.Popen([gunicorn, "-c", "gunicorn.conf.py", "--bind",
                               f"127.0.0.1:{port}", "--access-logfile", "/dev/null", "wsgi:app"],
                              cwd=ROOT, env=env, start_new_session=True, stdout=log,
                              stderr=subprocess.STDOUT)]
    if with_redis:
        flask = str(ROOT / ".venv" / "bin" / "flask")
        # the job worker runs at a lower CPU priority than the web servers, as DEPLOY.md
        # advises when they share a machine: a report being rendered must not slow the pages
        procs.append(subprocess.Popen(["nice", "-n", "10", flask, "--app", "wsgi", "worker",
                                       "jobs"], cwd=ROOT,
                                      env=env, start_new_session=True, stdout=log,
                                      stderr=subprocess.STDOUT))
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/login", timeout=2).status_code == 200:
                return procs
        except httpx.HTTPError:
            time.sleep(0.5)
    stop(procs)
    raise RuntimeError("gunicorn did not answer on /login within 60 s")


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


# --- the simulated users ---------------------------------------------------------------------

class Stats:
    def __init__(self):
        self.times = defaultdict(list)     # category -> seconds
        self.errors = []                   # (what, detail)
        self.routes = defaultdict(list)    # "GET /cases/{id}" -> seconds
        self.measuring = False

    def add(self, category: str, seconds: float, route: str = "") -> None:
        if self.measuring:
            self.times[category].append(seconds)
            if route:
                self.routes[route].append(seconds)


class User:
    def __init__(self, base: str, role: str, name: str, data: dict, stats: Stats, rng):
        self.role, self.name, self.data, self.stats, self.rng = role, name, data, stats, rng
        self.client = httpx.AsyncClient(base_url=base, follow_redirects=False, timeout=60)
        self.csrf = None
        self.secret = None

    async def request(self, method: str, url: str, *, expect=(200,), category="page",
                      data=None):
        if data is not None:
            data = {**data, "csrf_token": self.csrf or ""}
        t0 = time.perf_counter()
        try:
            resp = await self.client.request(method, url, data=data)
        except httpx.HTTPError as exc:
            self.stats.errors.append((f"{method} {url}", repr(exc)))
            return None
        route = method + " " + re.sub(r"/\d+", "/{id}", url.split("?")[0])
        self.stats.add(category, time.perf_counter() - t0, route if category == "page" else "")
        if resp.status_code not in expect:
            if self.stats.measuring:
                said = re.findall(r'class="(?:error|flash flash-error)"[^>]*>([^<]+)<', resp.text)
                self.stats.errors.append((f"{self.name} {method} {url}",
                                          f"{resp.status_code} {'; '.join(said)[:300]}"))
            return None
        if resp.headers.get("content-type", "").startswith("text/html"):
            m = CSRF_RE.search(resp.text)
            if m:
                self.csrf = m.group(1)
        return resp

    async def get(self, url: str, **kw):
        return await self.request("GET", url, **kw)

    async def post(self, url: str, data: dict, **kw):
        kw.setdefault("expect", (302, 303))
        return await self.request("POST", url, data=data, **kw)

    async def sign_in(self) -> bool:
        await self.get("/login", category="sign-in")
        r = await self.post("/login", {"username": self.name, "password": PASSWORD},
                            category="sign-in")
        if r is None:
            return False
        where = r.headers.get("location", "")
        if where.endswith("/account/2fa/setup"):
            page = await self.get("/account/2fa/setup", category="sign-in")
            self.secret = SECRET_RE.search(page.text).group(1)
            r = await self.post("/account/2fa/setup", {"code": self._code()},
                                expect=(200, 302, 303), category="sign-in")
        elif where.endswith("/login/2fa"):
            await self.get("/login/2fa", category="sign-in")
            r = await self.post("/login/2fa", {"code": self._code()}, category="sign-in")
        return r is not None

    def _code(self) -> str:
        import pyotp

        return pyotp.TOTP(self.secret).now()

    async def think(self) -> None:
        await asyncio.sleep(self.rng.uniform(*THINK))

    # each role's journey: a list of steps, each a coroutine
    async def staff(self):
        await self.get("/")
        await self.think()
        page = await self.get("/standards/")
        await self.think()
        versions = re.findall(r'href="/standards/versions/(\d+)"', page.text if page else "")
        if versions:
            vid = self.rng.choice(versions)
            page = await self.get(f"/standards/versions/{vid}")
            await self.think()
            if page is not None and f"/standards/versions/{vid}/acknowledge" in page.text:
                await self.post(f"/standards/versions/{vid}/acknowledge", {})
                await self.think()
        page = await self.get("/cases")
        await self.think()
        cases = re.findall(r'href="/cases/(\d+)"', page.text if page else "")
        if cases:
            await self.get(f"/cases/{self.rng.choice(cases)}")
            await self.think()
        await self.get("/penalties")
        await self.think()
        await self.get("/training/mine")
        await self.think()

    async def officer(self):
        await self.get("/cases?status=ruled")
        await self.think()
        await self.get(f"/cases/{self.rng.choice(self.data['cases'])}")
        await self.think()
        day = (time.time() - 86400)
        stamp = time.strftime("%Y-%m-%dT10:30", time.localtime(day))
        r = await self.post("/cases/new", {"title": f"压测案件 {self.name}", "incident_at": stamp,
                                           "description": "工单 LOAD"})
        await self.think()
        if r is None:
            return
        case = r.headers["location"].rstrip("/").rsplit("/", 1)[1]
        await self.get(f"/cases/{case}")
        await self.think()
        carrier = self.rng.choice(self.data["carriers"])
        r = await self.post(f"/cases/{case}/violations", {
            "clause_id": self.data["clause"], "party_id": carrier, "occurrences": 1,
            "evidence": "客户来电录音"})
        await self.think()
        if r is None:
            return
        await self.post(f"/cases/{case}/ruling", {
            "rationale": "压测:配送员虚假反馈签收,促销部未同步规则,按 70/30 分担。",
            "shares-0-party_id": carrier, "shares-0-percent": 70,
            "shares-1-party_id": self.data["dept"], "shares-1-percent": 30,
            "shares-1-employee_no": "E0137", "shares-1-employee_name": "钱晓",
            "shares-1-override_reason": "促销部审核了该批次的配送承诺",
            "shares-2-party_id": 0, "shares-3-party_id": 0})
        await self.think()

    async def auditor(self):
        await self.get("/reports/dashboard")
        await self.think()
        await self.get("/penalties")
        await self.think()
        await self.get("/audit/")
        await self.think()
        if not getattr(self, "reported", False):
            self.reported = True
            await self.report()

    async def report(self):
        await self.get("/reports/")
        end = time.strftime("%Y-%m-%d")
        start = time.strftime("%Y-%m-%d", time.localtime(time.time() - 30 * 86400))
        r = await self.post("/reports/audit", {"start": start, "end": end})
        if r is None:
            return
        job = r.headers["location"].rstrip("/")
        await self.get(job)
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 120:
            await asyncio.sleep(2)
            progress = await self.get(f"{job}/progress", category="report progress")
            if progress is None:
                return
            status = progress.json().get("status")
            if status == "done":
                pdf = await self.get(f"{job}/report.pdf", category="report download")
                if pdf is not None and not pdf.content.startswith(b"%PDF"):
                    self.stats.errors.append((f"{self.name} report", "not a PDF"))
                self.stats.add("report ready", time.perf_counter() - t0)
                return
            if status == "failed":
                self.stats.errors.append((f"{self.name} report", progress.text[:200]))
                return
        self.stats.errors.append((f"{self.name} report", "not ready within 120 s"))

    async def hr(self):
        await self.get("/hr/notices")
        await self.think()
        if self.data["notices"]:
            await self.get(f"/hr/notices/{self.rng.choice(self.data['notices'])}")
            await self.think()

    async def run(self, until: float) -> None:
        journey = getattr(self, self.role)
        while time.monotonic() < until:
            await journey()


async def simulate(base: str, data: dict) -> tuple[Stats, float]:
    stats, rng = Stats(), random.Random(20261201)  # nosec B311  (think times, not secrets)
    users = [User(base, role, name, data, stats, random.Random(rng.random()))  # nosec B311
             for role, names in data["accounts"].items() for name in names]
    stats.measuring = True          # sign-in is timed too, in its own category
    t0 = time.perf_counter()
    sem = asyncio.Semaphore(8)

    async def sign_in(u):
        async with sem:
            if not await u.sign_in():
                stats.errors.append((u.name, "could not sign in"))

    await asyncio.gather(*(sign_in(u) for u in users))
    print(f"{len(users)} users signed in in {time.perf_counter() - t0:.1f} s")
    until = time.monotonic() + SECONDS
    t0 = time.perf_counter()
    await asyncio.gather(*(u.run(until) for u in users))
    elapsed = time.perf_counter() - t0
    for u in users:
        await u.client.aclose()
    return stats, elapsed


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))] * 1000


def main() -> None:
    url, drop = fresh_database()
    procs = []
    try:
        data = seed(url)
        with_redis = redis_ok(REDIS_URL)
        port = free_port()
        procs = start_servers(url, port, with_redis)
        import multiprocessing

        print(f"gunicorn on 127.0.0.1:{port} ({WEB_WORKERS or 'gunicorn.conf.py default'} "
              f"workers), {'RQ worker on ' + REDIS_URL if with_redis else 'jobs in-process'}, "
              f"{multiprocessing.cpu_count()} cores; {USERS} users for {SECONDS:.0f} s: "
              + ", ".join(f"{len(v)} {k}" for k, v in data["accounts"].items()))
        stats, elapsed = asyncio.run(simulate(f"http://127.0.0.1:{port}", data))
    finally:
        stop(procs)
        drop()
    pages = stats.times["page"]
    total = sum(len(v) for k, v in stats.times.items() if k != "sign-in")
    print(f"\nrequests: {total:,} in {elapsed:.0f} s = {total / elapsed:.1f} requests/s "
          f"({len(pages):,} page requests)")
    for category in ("page", "sign-in", "report download", "report ready"):
        v = stats.times.get(category)
        if v:
            print(f"  {category:16s} n={len(v):5d}  p50 {pct(v, 50):7.0f} ms  p95 "
                  f"{pct(v, 95):7.0f} ms  p99 {pct(v, 99):7.0f} ms  max {max(v) * 1000:7.0f} ms"
                  f"  mean {statistics.mean(v) * 1000:6.0f} ms")
    print("slowest pages (p95):")
    slow = sorted(stats.routes.items(), key=lambda kv: -pct(kv[1], 95))[:8]
    for route, v in slow:
        print(f"  {route:45s} n={len(v):5d}  p50 {pct(v, 50):6.0f} ms  p95 {pct(v, 95):6.0f} ms")
    print(f"errors: {len(stats.errors)} (the servers' log: {LOG})")
    kinds = defaultdict(list)
    for what, detail in stats.errors:
        kinds[(what.split(" ", 1)[-1], detail[:120])].append(what)
    for (what, detail), seen in list(kinds.items())[:20]:
        print(f"  {len(seen)} x {what}: {detail}")
    ok = not stats.errors and pages and pct(pages, 95) < 500
    print(f"target (no errors, p95 of pages < 500 ms): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
