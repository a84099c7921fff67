"""Benchmark: the dashboard (温度计 / 晴雨表) for a year, with 1,000,000 tickets, a year of daily
shipment volumes and 200,000 cases.

    .venv/bin/python bench/dashboard.py
    BENCH_TICKETS=200000 BENCH_CASES=50000 .venv/bin/python bench/dashboard.py   # smaller
    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/benchdash \
        .venv/bin/python bench/dashboard.py                # seeded once, then reused

Target (issue 8): the dashboard for a year renders in under 300 ms (PostgreSQL). Measured
through the Flask test client: the whole request (filters, every metric, charts, template),
median of 10 runs after a warm-up, as an auditor; a carrier's scorecard (its rank needs every
carrier's rate) as its staff. Complaints and orders are read from the monthly rollup
(``reports.models``); the first request after new data counts the months again, timed apart.

Seeded set-based (INSERT ... SELECT generate_series, then VACUUM ANALYZE): 60 carriers, 3,000
merchants, 12 warehouses, 8 departments; 1,000,000 tickets opened over the last 365 days, each
naming a carrier, a merchant and a warehouse, one in ten a department the CS request went to;
orders shipped per party per day for the last 365 days (1.1 million rows); the 200,000 cases,
rulings, penalties and appeals of ``bench/cases.py``.

Not part of the test run: figures depend on the machine.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text

import bench.cases
from bench.common import PASSWORD, bench_app, median_ms, signed_in, timed_gets

N = int(os.environ.get("BENCH_TICKETS", "1000000"))
RUNS = int(os.environ.get("BENCH_RUNS", "10"))
CARRIERS, MERCHANTS, WAREHOUSES, DEPARTMENTS = 60, 3000, 12, 8
TARGET_MS = 300.0

PARTIES_SQL = """
INSERT INTO parties (code, name_zh, name_en, kind, active, sanction, version, created_at)
SELECT 'W' || lpad(i::text, 3, '0'), '仓库' || i, 'Warehouse ' || i, 'warehouse', true, '', 1,
       now() FROM generate_series(1, :w) AS i
UNION ALL
SELECT 'D' || lpad(i::text, 3, '0'), '部门' || i, 'Department ' || i, 'department', true, '', 1,
       now() FROM generate_series(1, :d) AS i
"""

TICKETS_SQL = """
WITH c AS (SELECT array_agg(id ORDER BY code) AS ids FROM parties WHERE kind = 'carrier'),
     m AS (SELECT array_agg(id ORDER BY code) AS ids FROM parties WHERE kind = 'merchant'),
     w AS (SELECT array_agg(id ORDER BY code) AS ids FROM parties WHERE kind = 'warehouse'),
     d AS (SELECT array_agg(id ORDER BY code) AS ids FROM parties WHERE kind = 'department'),
     g AS (SELECT i, now() - make_interval(days => i % 365, mins => (i * 37) % 1440) AS opened
           FROM generate_series(1, :n) AS i)
INSERT INTO tickets (ticket_no, order_no, carrier_id, merchant_id, warehouse_id, request_to_id,
                     category, order_value, opened_at, promised_at, delivered_at, customer_tz,
                     text, days_late, captured_at)
SELECT 'T' || lpad(i::text, 9, '0'), 'O' || lpad(i::text, 11, '0'),
       c.ids[1 + (i::bigint * 2654435761 % 1000003) % array_length(c.ids, 1)],
       m.ids[1 + (i::bigint * 40503 % 1000003) % array_length(m.ids, 1)],
       w.ids[1 + i % array_length(w.ids, 1)],
       CASE WHEN i % 10 = 3 THEN d.ids[1 + (i / 10) % array_length(d.ids, 1)] END,
       (ARRAY['delay', 'false_feedback', 'no_response', 'attitude', 'damage'])[1 + i % 5],
       (100 + (i::bigint * 7919) % 200000) / 100.0, opened, opened - interval '1 day',
       opened - interval '1 day' + make_interval(days => (i / 5) % 4), '',
       '客户投诉:配送延误,要求核实', (i / 5) % 4, now()
FROM g, c, m, w, d
"""

# orders per party per day: carriers ~16k, warehouses ~80k, merchants ~300, departments ~100k
VOLUMES_SQL = """
INSERT INTO shipment_volumes (party_id, day, orders)
SELECT p.id, current_date - k,
       CASE p.kind WHEN 'carrier' THEN 12000 + (p.id * 131 + k * 17) % 8000
                   WHEN 'warehouse' THEN 60000 + (p.id * 71 + k * 13) % 40000
                   WHEN 'department' THEN 100000
                   ELSE 200 + (p.id * 37 + k * 11) % 200 END
FROM parties p, generate_series(0, 364) AS k
"""


def seed(db) -> None:
    for label, sql, params in (("warehouses and departments", PARTIES_SQL,
                                {"w": WAREHOUSES, "d": DEPARTMENTS}),
                               ("tickets", TICKETS_SQL, {"n": N}),
                               ("shipment volumes", VOLUMES_SQL, {})):
        t0 = time.perf_counter()
        n = db.session.execute(text(sql), params).rowcount
        db.session.commit()
        print(f"seeded {n:,} {label} in {time.perf_counter() - t0:.1f} s")
    bench.cases.seed(db)          # 200,000 cases (BENCH_CASES), then VACUUM ANALYZE


def main() -> None:
    t_start = time.perf_counter()
    with bench_app() as app:
        with app.test_request_context():
            from portal.accounts.services import create_user
            from portal.core.permissions import Role
            from portal.extensions import db

            if db.session.scalar(text("SELECT count(*) FROM tickets")):
                print("reusing the data already in BENCH_DATABASE_URL")
            else:
                bench.cases.people_and_rulebook()
                create_user(username="bench.auditor", display_name="审计", password=PASSWORD,
                            role=Role.AUDITOR)
                db.session.commit()
                seed(db)
                print(f"seeding took {time.perf_counter() - t_start:.1f} s in all")
            db.session.execute(text("DELETE FROM complaint_rollup_months"))   # counted anew
            db.session.commit()
        auditor = signed_in(app, "bench.auditor")
        t0 = time.perf_counter()
        assert auditor.get("/reports/dashboard").status_code == 200
        print(f"\nfirst request after new data (the year's monthly counts made): "
              f"{(time.perf_counter() - t0) * 1000:.0f} ms")
        staff = signed_in(app, "c007.staff")
        year = time.strftime("%Y")
        pages = [
            ("dashboard, last twelve months", auditor, "/reports/dashboard"),
            (f"dashboard, year {year}", auditor, f"/reports/dashboard?year={year}"),
            ("dashboard, carriers only", auditor, "/reports/dashboard?kind=carrier"),
            ("dashboard, one party (C007)", auditor, "/reports/dashboard?party=C007"),
            ("scorecard of C007, as its staff", staff, "/reports/scorecard"),
            ("dashboard, parties table as CSV", auditor,
             "/reports/dashboard?export=parties&format=csv"),
        ]
        print(f"\nwhole request, median of {RUNS} runs after a warm-up:")
        first = None
        for label, client, url in pages:
            ms = median_ms(timed_gets(client, url, RUNS))
            first = ms if first is None else first
            print(f"  {label:<40} {ms:8.1f} ms")
        print(f"\ntarget: the dashboard for a year < {TARGET_MS:.0f} ms: "
              f"{first:.1f} ms {'OK' if first < TARGET_MS else 'NOT MET'}")


if __name__ == "__main__":
    main()
