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

import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select, text, update

from bench.common import PASSWORD, build_people, fresh_database

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
    url, drop = fresh_database()
    os.environ["DATABASE_URL"] = url
    from flask_migrate import upgrade

    from portal import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
                      "WTF_CSRF_ENABLED": False})
    try:
        with app.app_context():
            upgrade()
        with app.test_request_context():
            from portal.accounts.models import User
            from portal.core.audit import acting_as
            from portal.core.timeutil import local_today
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
            n_tasks = db.session.scalar(select(db.func.count()).select_from(AckTask))
            print(f"publish to the audience: {n_tasks} tasks in {publish_s * 1000:.0f} ms "
                  f"(target < 2000 ms) {'OK' if publish_s < 2 else 'SLOW'}")
            # 60 % acknowledged, a tenth of the rest overdue
            ids = db.session.scalars(select(AckTask.id).order_by(AckTask.id)).all()
            done = ids[: int(len(ids) * 0.6)]
            db.session.execute(update(AckTask).where(AckTask.id.in_(done))
                               .values(status=TaskStatus.DONE))
            late = ids[int(len(ids) * 0.6):: 10]
            db.session.execute(update(AckTask).where(AckTask.id.in_(late))
                               .values(due_on=local_today() - timedelta(days=3)))
            db.session.commit()
            db.session.execute(text("ANALYZE")) if db.engine.dialect.name == "postgresql" \
                else None
            db.session.commit()
        client = app.test_client()
        resp = client.post("/login", data={"username": "bench.officer", "password": PASSWORD})
        assert resp.status_code == 302, resp.status_code
        url_cov = f"/standards/versions/{vid}/coverage"
        assert client.get(url_cov).status_code == 200  # warm-up (templates, caches)
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            resp = client.get(url_cov)
            times.append(time.perf_counter() - t0)
            assert resp.status_code == 200
        med = statistics.median(times) * 1000
        print(f"coverage page ({n_tasks} tasks, {CARRIERS + MERCHANTS} parties): median "
              f"{med:.0f} ms, max {max(times) * 1000:.0f} ms over 20 requests "
              f"(target < 200 ms) {'OK' if med < 200 else 'SLOW'}")
        times = []
        for _ in range(10):
            t0 = time.perf_counter()
            assert client.get("/standards/coverage").status_code == 200
            times.append(time.perf_counter() - t0)
        print(f"overall coverage page: median {statistics.median(times) * 1000:.0f} ms")
        t0 = time.perf_counter()
        resp = client.get(url_cov + "?format=csv")
        print(f"CSV export of {n_tasks} tasks: {(time.perf_counter() - t0) * 1000:.0f} ms, "
              f"{len(resp.data) // 1024} KiB")
    finally:
        with app.app_context():
            from portal.extensions import db

            db.session.remove()
            db.engine.dispose()
        drop()


if __name__ == "__main__":
    main()
