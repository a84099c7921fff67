"""Benchmark: the case list with filters and the party ledger, with 200,000 cases.

    .venv/bin/python bench/cases.py
    BENCH_CASES=50000 .venv/bin/python bench/cases.py      # a smaller run
    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/benchcases \
        .venv/bin/python bench/cases.py                    # seeded once, then reused

Target (issue 6): the case list with filters and the party ledger render in under 100 ms with
200,000 cases in the database (PostgreSQL). Measured through the Flask test client: the whole
request (filters, query, capped count, the rows' parties and rulings, totals, template), median
of 20 runs after a warm-up, as a CS officer and as a carrier's staff.

The data is seeded set-based (INSERT ... SELECT generate_series, then VACUUM ANALYZE): cases
over the last 365 days, 75 % ruled, 20 % open, 5 % waiting for a signature; each case has one
confirmed violation by a carrier (60 carriers) on a CAR-DLV clause, a fifth a second one by a
merchant (3,000 merchants); each ruling splits the blame 100 % or 70/30 with a penalty per
share; 1 % of the ruled cases have an open appeal and 2 % a penalty replaced on appeal.

Not part of the test run: figures depend on the machine.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text

from bench.common import PASSWORD, bench_app, build_people, median_ms, signed_in, timed_gets

N = int(os.environ.get("BENCH_CASES", "200000"))
RUNS = int(os.environ.get("BENCH_RUNS", "20"))
CARRIERS, MERCHANTS = 60, 3000
TARGET_MS = 100.0

CASES_SQL = """
INSERT INTO cases (id, title, description, incident_at, status, opened_by_id, version, created_at)
SELECT i, (ARRAY['客户未签收但系统显示已签收', '配送延误三天未送达', '客服请求两小时未回复',
                 '代签未发短信告知', '包裹破损拒赔'])[1 + i % 5] || ' #' || i, '',
       now() - make_interval(days => i % 365, mins => (i * 37) % 1440),
       CASE WHEN i % 20 < 15 THEN 'ruled' WHEN i % 20 < 19 THEN 'open'
            ELSE 'awaiting_approval' END,
       (SELECT id FROM users WHERE username = 'bench.officer'), 1, now()
FROM generate_series(1, :n) AS i
"""

# a violation by a carrier on every case, a second one by a merchant on every fifth
VIOLATIONS_SQL = """
WITH c AS (SELECT array_agg(id ORDER BY code) AS ids FROM parties WHERE kind = 'carrier'),
     m AS (SELECT array_agg(id ORDER BY code) AS ids FROM parties WHERE kind = 'merchant'),
     cl AS (SELECT array_agg(c.id ORDER BY c.number) AS ids,
                   array_agg(c.number ORDER BY c.number) AS numbers, min(v.standard_id) AS sid
            FROM clauses c JOIN standard_versions v ON v.id = c.standard_version_id
            JOIN standards s ON s.id = v.standard_id WHERE s.code = 'CAR-DLV')
INSERT INTO violations (case_id, clause_id, party_id, occurrences, evidence, recorded_at, status,
                        source, standard_id, clause_number, "check", incident_at,
                        customer_compensation, party_fine, points, repeat_no, multiplier,
                        dismiss_reason)
SELECT k.id, cl.ids[1 + k.id % 4], CASE WHEN second THEN m.ids[1 + k.id % 3000]
                                        ELSE c.ids[1 + k.id % 60] END,
       1, '录音已核对', k.incident_at, 'confirmed', 'manual', cl.sid, cl.numbers[1 + k.id % 4],
       '', k.incident_at, CASE WHEN k.id % 4 = 3 THEN 10.00 ELSE 0 END,
       (ARRAY[500.00, 20.00, 50.00, 0.00])[1 + k.id % 4], CASE WHEN k.id % 4 = 0 THEN 6 ELSE 0 END,
       1, 1.00, ''
FROM cases k, c, m, cl, (VALUES (false), (true)) AS s(second)
WHERE NOT second OR k.id % 5 = 0
"""

RULINGS_SQL = """
INSERT INTO rulings (id, case_id, officer_id, rationale, total_amount, fine_total,
                     compensation_total, points_total, ruled_at, status, required_role,
                     approval_meaning, declined_reason, supersede_reason, effective_at)
SELECT k.id, k.id, k.opened_by_id, '证据充分', t.fine + t.comp, t.fine, t.comp, t.points,
       k.incident_at + interval '2 days', CASE WHEN k.status = 'ruled' THEN 'effective'
                                                ELSE 'pending' END,
       CASE WHEN k.status = 'ruled' THEN 'cs_officer' ELSE 'cs_supervisor' END, '', '', '',
       CASE WHEN k.status = 'ruled' THEN k.incident_at + interval '2 days' END
FROM cases k JOIN (SELECT case_id, sum(party_fine) AS fine, sum(customer_compensation) AS comp,
                          sum(points) AS points FROM violations GROUP BY case_id) t
  ON t.case_id = k.id
WHERE k.status IN ('ruled', 'awaiting_approval')
"""

# the carrier alone, or (cases with a merchant's violation) carrier 70, merchant 30
SHARES_SQL = """
INSERT INTO responsibility_shares (ruling_id, party_id, percent, employee_no, employee_name, fine,
                                   compensation, points, serious_points, override_reason)
SELECT r.id, v.party_id, CASE WHEN n = 1 THEN 100 WHEN v.first THEN 70 ELSE 30 END, '', '',
       round(r.fine_total * CASE WHEN n = 1 THEN 1 WHEN v.first THEN 0.7 ELSE 0.3 END, 2),
       round(r.compensation_total * CASE WHEN n = 1 THEN 1 WHEN v.first THEN 0.7 ELSE 0.3 END, 2),
       CASE WHEN v.first THEN r.points_total ELSE 0 END, 0, ''
FROM rulings r
JOIN (SELECT case_id, party_id, row_number() OVER (PARTITION BY case_id ORDER BY id) = 1 AS first,
             count(*) OVER (PARTITION BY case_id) AS n FROM violations) v ON v.case_id = r.case_id
"""

PENALTIES_SQL = """
INSERT INTO penalties (ruling_id, share_id, case_id, party_id, amount, fine, compensation, points,
                       serious_points, active, withdrawn_at, created_at)
SELECT r.id, s.id, r.case_id, s.party_id, s.fine + s.compensation, s.fine, s.compensation,
       s.points, 0, true, NULL, r.effective_at
FROM rulings r JOIN responsibility_shares s ON s.ruling_id = r.id
WHERE r.status = 'effective'
"""

# 2 % of the ruled cases: the carrier's penalty halved on appeal 5 days after the ruling
REPLACED_SQL = """
WITH old AS (
    UPDATE penalties SET active = false, withdrawn_at = created_at + interval '5 days'
    WHERE case_id % 50 = 0 AND points > 0 RETURNING *)
INSERT INTO penalties (ruling_id, share_id, case_id, party_id, amount, fine, compensation, points,
                       serious_points, active, withdrawn_at, created_at)
SELECT ruling_id, share_id, case_id, party_id, round(amount / 2, 2), round(fine / 2, 2),
       compensation, points / 2, 0, true, NULL, withdrawn_at FROM old
"""

APPEALS_SQL = """
INSERT INTO appeals (case_id, ruling_id, party_id, round, statement, filed_by_id, filed_at, status,
                     decision_reason, penalty_id)
SELECT p.case_id, p.ruling_id, p.party_id, 1, '配送员已按约定放置快递柜',
       (SELECT id FROM users WHERE username = 'bench.officer'), p.created_at + interval '1 day',
       'open', '', p.id
FROM penalties p WHERE p.case_id % 100 = 7 AND p.active
"""


CASE_PARTIES_SQL = """
INSERT INTO case_parties (case_id, party_id, kind)
SELECT involved.case_id, p.id, p.kind FROM (
    SELECT case_id, party_id FROM violations WHERE case_id IS NOT NULL
    UNION
    SELECT r.case_id, s.party_id FROM responsibility_shares s JOIN rulings r ON r.id = s.ruling_id
) AS involved JOIN parties p ON p.id = involved.party_id
"""


def seed(db) -> None:
    for label, sql in (("cases", CASES_SQL), ("violations", VIOLATIONS_SQL),
                       ("rulings", RULINGS_SQL), ("responsibility shares", SHARES_SQL),
                       ("penalties", PENALTIES_SQL), ("penalties replaced on appeal", REPLACED_SQL),
                       ("open appeals", APPEALS_SQL),
                       ("parties involved in cases", CASE_PARTIES_SQL)):
        t0 = time.perf_counter()
        n = db.session.execute(text(sql), {"n": N}).rowcount
        db.session.commit()
        print(f"seeded {n:,} {label} in {time.perf_counter() - t0:.1f} s")
    for table in ("cases", "rulings"):
        db.session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                f"(SELECT max(id) FROM {table}))"))
    db.session.commit()
    t0 = time.perf_counter()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))    # what autovacuum does after a bulk load
    print(f"VACUUM ANALYZE in {time.perf_counter() - t0:.1f} s")


def people_and_rulebook() -> None:
    """The parties and CS staff (``build_people``), the rulebook in ``standards/`` and a staff
    account of carrier C007 (``c007.staff``) to time a party's own pages with."""
    from portal.accounts.services import create_user
    from portal.core.audit import acting_as
    from portal.core.permissions import Role
    from portal.extensions import db
    from portal.parties.models import Party
    from portal.standards.loader import load_directory

    admin, _sup, _n = build_people(CARRIERS, 0, MERCHANTS, 0)
    with acting_as(admin):
        load_directory(Path(__file__).resolve().parent.parent / "standards", owner=admin)
    c007 = db.session.scalar(db.select(Party).where(Party.code == "C007"))
    create_user(username="c007.staff", display_name="C007 员工", password=PASSWORD,
                role=Role.PARTY_STAFF, party=c007)


def main() -> None:
    with bench_app() as app:
        with app.test_request_context():
            from portal.extensions import db

            if db.session.scalar(text("SELECT count(*) FROM cases")):
                print("reusing the cases already in BENCH_DATABASE_URL")
            else:
                people_and_rulebook()
                db.session.commit()
                seed(db)
            clause = db.session.execute(text(
                "SELECT v.standard_id FROM standard_versions v JOIN standards s "
                "ON s.id = v.standard_id WHERE s.code = 'CAR-DLV' LIMIT 1")).scalar()
        month = time.strftime("%Y-%m", time.localtime(time.time() - 40 * 86400))
        officer = signed_in(app, "bench.officer")
        staff = signed_in(app, "c007.staff")
        lists = [
            ("cases: no filter", officer, "/cases"),
            ("cases: status ruled", officer, "/cases?status=ruled"),
            ("cases: party C007", officer, "/cases?party=C007"),
            ("cases: party by name 商家42", officer, "/cases?party=商家42"),
            ("cases: kind merchant", officer, "/cases?kind=merchant"),
            ("cases: clause CAR-DLV §1", officer, f"/cases?clause={clause}:1"),
            ("cases: incident in one month", officer,
             f"/cases?from={month}-01&to={month}-28"),
            ("cases: owed at least ¥500", officer, "/cases?min=500"),
            ("cases: appeal waiting", officer, "/cases?appeal=open"),
            ("cases: case number", officer, f"/cases?q=CASE-{N // 2:06d}"),
            ("cases: title words", officer, "/cases?q=两小时"),
            ("cases: carrier + clause + month + ¥500", officer,
             f"/cases?party=C007&clause={clause}:1&from={month}-01&to={month}-28&min=500"),
            ("cases: page 40, no filter", officer, "/cases?page=40"),
            ("cases: a carrier's staff, no filter", staff, "/cases"),
            ("cases: a carrier's staff, ruled", staff, "/cases?status=ruled"),
            # a party's filters read only its own violations, penalties and appeals (issue 20)
            ("cases: a carrier's staff, its clause §1", staff, f"/cases?clause={clause}:1"),
            ("cases: a carrier's staff, it owes >= ¥500", staff, "/cases?min=500"),
            ("cases: a carrier's staff, its appeal waiting", staff, "/cases?appeal=open"),
            ("cases: a carrier's staff, another party named", staff, "/cases?party=C001"),
            ("ledger: no filter", officer, "/penalties"),
            ("ledger: party C007", officer, "/penalties?party=C007"),
            ("ledger: party C007, one month", officer, f"/penalties?party=C007&month={month}"),
            ("ledger: kind merchant", officer, "/penalties?kind=merchant"),
            ("ledger: withdrawn", officer, "/penalties?status=withdrawn"),
            ("ledger: a carrier's staff", staff, "/penalties"),
            ("ledger: a carrier's staff, one month", staff, f"/penalties?month={month}"),
        ]
        worst = 0.0
        print(f"\nfirst pages (cases 25 rows, ledger 50 rows + totals), median of {RUNS} runs:")
        for label, client, url in lists:
            ms = median_ms(timed_gets(client, url, RUNS))
            worst = max(worst, ms)
            print(f"  {label:<46} {ms:7.1f} ms  {'OK' if ms < TARGET_MS else 'NOT MET'}")
        ms = median_ms(timed_gets(officer, "/penalties?party=C007&format=csv", 5))
        print(f"  {'ledger CSV, party C007 (not a target)':<46} {ms:7.1f} ms")
        print(f"\ntarget: every filtered first page < {TARGET_MS:.0f} ms "
              f"(slowest {worst:.1f} ms): {'OK' if worst < TARGET_MS else 'NOT MET'}")


if __name__ == "__main__":
    main()
