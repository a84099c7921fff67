"""Benchmark: publish one version to ~10,000 people, then render its coverage page.

    .venv/bin/python bench/publish_campaign.py            # PostgreSQL on 127.0.0.1:5432
    BENCH_DATABASE_URL=sqlite:////tmp/bench.db .venv/bin/python bench/publish_campaign.py

Builds 60 carriers x 20 staff + 3,000 merchants x 3 staff (10,200 people) in a fresh database
(dropped afterwards), then measures, printing each figure:

* publishing one approved version addressed to carriers and merchants: the service call that
  writes the 10,200 acknowledgement tasks and the audit events, and the commit (target < 2 s);
* the coverage page of that version, as a signed-in CS officer gets it through the app, after
  60 % of the staff acknowledged and some are overdue (target < 200 ms; median of 20).

Not part of the test run: figures depend on the machine.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from bench.common import (
    bench_app,
    build_people,
    mark_progress,
    median_ms,
    signed_in,
    timed_gets,
)

CARRIERS, CARRIER_STAFF = 60, 20
MERCHANTS, MERCHANT_STAFF = 3000, 3


def build(app):
    """Parties and people in bulk, then one approved version addressed to them."""
    from portal.core.audit import acting_as
    from portal.core.timeutil import local_today
    from portal.extensions import db
    from portal.standards import services

    admin, sup, people = build_people(CARRIERS, CARRIER_STAFF, MERCHANTS, MERCHANT_STAFF)
    with acting_as(admin):
        std = services.create_standard(code="BENCH-DLV", title_zh="配送与商家服务标准",
                                       audience=["carrier", "merchant"],
                                       effective_from=local_today(), author=admin)
        v = std.versions[0]
        for i in range(1, 21):
            services.add_clause(v, number=str(i), title_zh=f"条款{i}", body="正文。" * 40,
                                fine="50.00")
        db.session.flush()
        services.submit_for_review(v, admin)
    with acting_as(sup):
        services.approve_version(v, sup)
    db.session.commit()
    return v.id, sup.id, people


def main() -> None:
    with bench_app() as app:
        with app.test_request_context():
            from portal.accounts.models import User
            from portal.core.audit import acting_as
            from portal.extensions import db
            from portal.standards import services
            from portal.standards.models import AckTask, StandardVersion, TaskStatus

            t0 = time.perf_counter()
            vid, sup_id, people = build(app)
            print(f"set-up: {CARRIERS} carriers x {CARRIER_STAFF} + {MERCHANTS} merchants x "
                  f"{MERCHANT_STAFF} = {people} staff in {time.perf_counter() - t0:.1f} s "
                  f"({db.engine.dialect.name})")
            version = db.session.get(StandardVersion, vid)
            sup = db.session.get(User, sup_id)
            t0 = time.perf_counter()
            with acting_as(sup):
                services.publish_version(version, sup)
            db.session.commit()
            publish_s = time.perf_counter() - t0
            n_tasks = mark_progress(AckTask, TaskStatus.DONE)
            print(f"publish to the audience: {n_tasks} tasks in {publish_s * 1000:.0f} ms "
                  f"(target < 2000 ms) {'OK' if publish_s < 2 else 'SLOW'}")
        client = signed_in(app, "bench.officer")
        url_cov = f"/standards/versions/{vid}/coverage"
        times = timed_gets(client, url_cov, 20)
        med = median_ms(times)
        print(f"coverage page ({n_tasks} tasks, {CARRIERS + MERCHANTS} parties): median "
              f"{med:.0f} ms, max {max(times) * 1000:.0f} ms over 20 requests "
              f"(target < 200 ms) {'OK' if med < 200 else 'SLOW'}")
        print(f"overall coverage page: median "
              f"{median_ms(timed_gets(client, '/standards/coverage', 10)):.0f} ms")
        t0 = time.perf_counter()
        resp = client.get(url_cov + "?format=csv")
        print(f"CSV export of {n_tasks} tasks: {(time.perf_counter() - t0) * 1000:.0f} ms, "
              f"{len(resp.data) // 1024} KiB")


if __name__ == "__main__":
    main()
