"""Benchmark: the CS review queue's first page, with filters, at 1M tickets and 200k violations.

    .venv/bin/python bench/review_queue.py
    BENCH_TICKETS=200000 .venv/bin/python bench/review_queue.py      # a smaller run

Target (issue 5): the review queue's first page with filters renders in under 100 ms with
1,000,000 tickets and 200,000 violations in the database (PostgreSQL). Measured through the
Flask test client as a signed-in CS officer: the whole request (query, count, facts, template),
median of 20 runs after a warm-up, for several filter combinations; the follow-up queue too.

The data is seeded set-based (INSERT ... SELECT generate_series, then VACUUM ANALYZE as
autovacuum would after a bulk load, so the visibility map allows index-only scans): one ticket in
five has a violation (false feedback, days late or a late answer, on the CAR-DLV rulebook),
60 % still proposed, 35 % confirmed, 5 % dismissed, proposed over the last 300 days; orders
repeat every 800,000 tickets, so some orders have two compensations; 2 % of the tickets are
past their promised time and not delivered (the follow-up queue), each chased once a day for
the last ten days (a tenth of them today).

Not part of the test run: figures depend on the machine.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text

from bench.common import bench_app, build_people, median_ms, signed_in, timed_gets

N = int(os.environ.get("BENCH_TICKETS", "1000000"))
RUNS = int(os.environ.get("BENCH_RUNS", "20"))
CARRIERS, MERCHANTS = 60, 3000
TARGET_MS = 100.0

TICKETS_SQL = """
WITH c AS (SELECT array_agg(id ORDER BY code) AS ids FROM parties WHERE kind = 'carrier'),
     m AS (SELECT array_agg(id ORDER BY code) AS ids FROM parties WHERE kind = 'merchant'),
     g AS (SELECT i, now() - make_interval(days => i % 300, mins => (i * 37) % 1440) AS opened
           FROM generate_series(1, :n) AS i)
INSERT INTO tickets (ticket_no, order_no, carrier_id, merchant_id, category, order_value,
                     opened_at, promised_at, delivered_at, carrier_signed, customer_signed,
                     proxy_signed, cs_request_at, responded_at, customer_tz, text, days_late,
                     response_seconds, captured_at)
SELECT 'T' || lpad(i::text, 9, '0'), 'O' || lpad((i % 800000)::text, 11, '0'),
       c.ids[1 + (i::bigint * 2654435761 % 1000003) % array_length(c.ids, 1)],
       m.ids[1 + (i::bigint * 40503 % 1000003) % array_length(m.ids, 1)],
       (ARRAY['delay', 'false_feedback', 'no_response', 'attitude', 'damage'])[1 + i % 5],
       (100 + (i::bigint * 7919) % 200000) / 100.0, opened, opened - interval '1 day',
       CASE WHEN i % 50 = 7 THEN NULL
            ELSE opened - interval '1 day' + make_interval(days => (i / 5) % 4) END,
       true, i % 15 <> 0, false,
       CASE WHEN i % 3 = 0 THEN opened END,
       CASE WHEN i % 3 = 0 THEN opened + make_interval(mins => 5 + (i * 13) % 400) END,
       '', '客户投诉:配送延误,要求核实', CASE WHEN i % 50 = 7 THEN NULL ELSE (i / 5) % 4 END,
       CASE WHEN i % 3 = 0 THEN (5 + (i * 13) % 400) * 60 END, now()
FROM g, c, m
"""

# one violation per fifth ticket, by i % 3: false feedback, days late, a late answer
VIOLATIONS_SQL = """
WITH k AS (SELECT substr(t.ticket_no, 2)::int AS i, t.* FROM tickets t),
     cl AS (SELECT c.id, c.number, c."check", v.standard_id FROM clauses c
            JOIN standard_versions v ON v.id = c.standard_version_id
            JOIN standards s ON s.id = v.standard_id
            WHERE s.code = 'CAR-DLV' AND c."check" <> '')
INSERT INTO violations (clause_id, party_id, occurrences, evidence, recorded_at, status, source,
                        ticket_no, standard_id, clause_number, "check", incident_at,
                        customer_compensation, party_fine, points, repeat_no, multiplier,
                        tier_no, fact_from, fact_to, fact_value, fact_limit, order_value,
                        order_no, dismiss_reason)
SELECT cl.id, k.carrier_id, 1, '', now() - make_interval(days => k.i % 300,
                                                         mins => (k.i * 17) % 1440),
       CASE WHEN k.i % 100 < 60 THEN 'proposed' WHEN k.i % 100 < 95 THEN 'confirmed'
            ELSE 'dismissed' END,
       'rule', k.ticket_no, cl.standard_id, cl.number, cl."check",
       CASE cl."check" WHEN 'days_late' THEN k.promised_at WHEN 'response_time'
            THEN k.opened_at ELSE k.opened_at END,
       CASE WHEN cl."check" = 'days_late'
            THEN (ARRAY[5.00, 10.00, greatest(k.order_value, 10.00)])[1 + k.i % 3]
            ELSE 0 END,
       CASE cl."check" WHEN 'false_feedback' THEN 500.00 WHEN 'response_time' THEN 50.00
            ELSE 0 END,
       CASE WHEN cl."check" = 'false_feedback' THEN 6 ELSE 0 END, 1, 1.00,
       CASE WHEN cl."check" = 'days_late' THEN 1 + k.i % 3 END,
       CASE cl."check" WHEN 'days_late' THEN k.promised_at
            WHEN 'response_time' THEN k.opened_at END,
       CASE cl."check" WHEN 'response_time' THEN k.opened_at + interval '3 hours'
            ELSE k.opened_at + interval '2 days' END,
       CASE cl."check" WHEN 'days_late' THEN 1 + k.i % 3 WHEN 'response_time' THEN 10800 END,
       CASE WHEN cl."check" = 'response_time' THEN 7200 END, k.order_value, k.order_no, ''
FROM k JOIN cl ON cl."check" = (ARRAY['false_feedback', 'days_late', 'response_time'])[
    1 + (k.i / 5) % 3]
WHERE k.i % 5 = 0
"""

# every late shipment chased once a day over the last ten days, a tenth of them today
CHASES_SQL = """
INSERT INTO chases (ticket_no, user_id, chased_at, note)
SELECT t.ticket_no, (SELECT id FROM users WHERE username = 'bench.officer'),
       now() - make_interval(days => d + (t.r % 10 <> 0)::int, mins => ((t.r * 7) % 600)::int),
       '已联系配送站,承诺尽快送达'
FROM (SELECT ticket_no, row_number() OVER (ORDER BY ticket_no) AS r FROM tickets
      WHERE delivered_at IS NULL) t, generate_series(0, 9) AS d
"""


def seed(db) -> dict:
    """Tickets, violations and chases set-based; returns what the filters ask for."""
    counts = {}
    for label, sql, params in (("tickets", TICKETS_SQL, {"n": N}),
                               ("violations", VIOLATIONS_SQL, {}),
                               ("chases", CHASES_SQL, {})):
        t0 = time.perf_counter()
        counts[label] = db.session.execute(text(sql), params).rowcount
        db.session.commit()
        print(f"seeded {counts[label]:,} {label} in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    db.session.commit()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))    # what autovacuum does after a bulk load
    print(f"VACUUM ANALYZE in {time.perf_counter() - t0:.1f} s")
    row = db.session.execute(text(
        "SELECT v.standard_id, v.ticket_no, t.order_no, p.id AS carrier_id FROM violations v "
        "JOIN tickets t ON t.ticket_no = v.ticket_no JOIN parties p ON p.id = v.party_id "
        "WHERE v.status = 'proposed' AND v.\"check\" = 'days_late' AND p.code = 'C007' "
        "ORDER BY v.id LIMIT 1")).one()
    proposed = db.session.execute(text(
        "SELECT count(*) FROM violations WHERE status = 'proposed'")).scalar()
    late = db.session.execute(text(
        "SELECT count(*) FROM tickets WHERE delivered_at IS NULL AND promised_at < now()")
        ).scalar()
    print(f"{proposed:,} proposed violations in the queue; {late:,} late shipments to follow up")
    return {"std": row.standard_id, "ticket": row.ticket_no, "order": row.order_no,
            "carrier": row.carrier_id}


def main() -> None:
    with bench_app() as app:
        with app.test_request_context():
            from portal.core.audit import acting_as
            from portal.extensions import db
            from portal.standards.loader import load_directory

            admin, _sup, _n = build_people(CARRIERS, 0, MERCHANTS, 0)
            with acting_as(admin):   # the rulebook, in force from 2026-01-01
                load_directory(Path(__file__).resolve().parent.parent / "standards", owner=admin)
            db.session.commit()
            ids = seed(db)
        client = signed_in(app, "bench.officer")
        days_late = f"{ids['std']}:4"
        cases = [
            ("no filter, oldest first", ""),
            ("largest amount first", "?sort=amount"),
            ("kind = carrier", "?kind=carrier"),
            ("party C007", "?party=C007"),
            ("party by name 配送公司7", "?party=配送公司7"),
            ("clause CAR-DLV §4 (days late)", f"?clause={days_late}"),
            ("amount at stake >= ¥100", "?min=100"),
            ("waiting more than 30 days", "?age=30"),
            ("ticket number", f"?q={ids['ticket']}"),
            ("order number", f"?q={ids['order']}"),
            ("carrier + clause + ¥5 + 7 days, by amount",
             f"?kind=carrier&party=C007&clause={days_late}&min=5&age=7&sort=amount"),
            ("clause + amount >= ¥1000 (rare), by amount",
             f"?clause={days_late}&min=1000&sort=amount"),
            ("page 2, no filter", "?page=2"),
        ]
        worst = 0.0
        print(f"\nreview queue, first page (50 rows), median of {RUNS} runs:")
        for label, query in cases:
            ms = median_ms(timed_gets(client, "/intake/review" + query, RUNS))
            worst = max(worst, ms)
            print(f"  {label:<46} {ms:7.1f} ms  {'OK' if ms < TARGET_MS else 'NOT MET'}")
        print(f"\nfollow-up queue, median of {RUNS} runs:")
        for label, url in (("per carrier", "/intake/follow-up"),
                           ("one carrier's late shipments", f"/intake/follow-up/{ids['carrier']}"),
                           ("one carrier, CSV export",
                            f"/intake/follow-up/{ids['carrier']}?format=csv")):
            ms = median_ms(timed_gets(client, url, RUNS))
            print(f"  {label:<46} {ms:7.1f} ms")
        print(f"\ntarget: every filtered first page of the review queue < {TARGET_MS:.0f} ms "
              f"(slowest {worst:.1f} ms): {'OK' if worst < TARGET_MS else 'NOT MET'}")


if __name__ == "__main__":
    main()
