"""Benchmark: assign a course to ~10,000 staff; render a certificate PDF; the dashboards.

    .venv/bin/python bench/training.py            # PostgreSQL on 127.0.0.1:5432
    BENCH_DATABASE_URL=sqlite:////tmp/bench.db .venv/bin/python bench/training.py

Builds 60 carriers x 20 staff + 3,000 merchants x 3 staff (10,200 people) in a fresh database
(dropped afterwards), then measures, printing each figure:

* assigning one published course to carriers and merchants: the service call that writes the
  10,200 training tasks and the audit event, and the commit (target < 2 s);
* a 1-page certificate PDF with Chinese text, as the holder downloads it through the app
  (target < 1 s; the first render, with fonts cold, and the median of 10);
* the training dashboard and one course's per-party page after 60 % completed (median of 10).

Not part of the test run: figures depend on the machine.
"""
from __future__ import annotations

import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select

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


def build():
    """People, one published standard and one published course teaching it."""
    from portal.core.audit import acting_as
    from portal.core.timeutil import local_today
    from portal.extensions import db
    from portal.standards import services
    from portal.training import courses

    admin, sup, people = build_people(CARRIERS, CARRIER_STAFF, MERCHANTS, MERCHANT_STAFF)
    with acting_as(admin):
        std = services.create_standard(code="BENCH-DLV", title_zh="配送与商家服务标准",
                                       audience=["carrier", "merchant"],
                                       effective_from=local_today(), author=admin)
        v = std.versions[0]
        services.add_clause(v, number="1", title_zh="虚假签收", body="正文。", fine="500")
        db.session.flush()
        services.publish_version(v, admin, review_skipped="benchmark")
        course = courses.create_course(code="TRN-BENCH", title_zh="配送与商家服务标准培训",
                                       title_en="Delivery and merchant service training",
                                       kind="mandatory", mode="online",
                                       standard_codes="BENCH-DLV", validity_months=12,
                                       questions_per_attempt=5, author=admin)
        courses.save_lesson(course, title_zh="第一课", body="# 标准要点\n\n- 不得虚假签收")
        for i in range(8):
            courses.save_question(course, kind="single", text_zh=f"问题{i}",
                                  options=[("对", "", True), ("错", "", False)])
        courses.publish_course(course, admin)
    db.session.commit()
    return course.id, sup.id, people


def main() -> None:
    with bench_app() as app:
        with app.test_request_context():
            from portal.accounts.models import User
            from portal.core.audit import acting_as
            from portal.core.timeutil import local_today
            from portal.extensions import db
            from portal.training import assignments, quiz
            from portal.training.models import Course, TrainingStatus, TrainingTask

            t0 = time.perf_counter()
            course_id, sup_id, people = build()
            print(f"set-up: {people} staff in {time.perf_counter() - t0:.1f} s "
                  f"({db.engine.dialect.name})")
            course = db.session.get(Course, course_id)
            sup = db.session.get(User, sup_id)
            t0 = time.perf_counter()
            with acting_as(sup):
                _a, made = assignments.assign_course(
                    course, due_on=local_today() + timedelta(days=30),
                    kinds=["carrier", "merchant"], user=sup)
            db.session.commit()
            assign_s = time.perf_counter() - t0
            print(f"assign a course to the audience: {made} training tasks in "
                  f"{assign_s * 1000:.0f} ms (target < 2000 ms) {'OK' if assign_s < 2 else 'SLOW'}")
            # one holder passes for real (the certificate to print), then 60 % are marked done
            holder = db.session.scalar(select(User).where(User.username == "c001.s1"))
            task = assignments.task_of(course, holder)
            attempt = quiz.start_attempt(course, task, holder)
            right = {str(i): it.right for i, it in
                     enumerate(quiz.paper_items(attempt, reveal=True))}
            quiz.submit_attempt(attempt, right, holder)
            db.session.commit()
            cert_id = task.certificate_id
            n_tasks = mark_progress(TrainingTask, TrainingStatus.DONE)
        client = signed_in(app, "c001.s1")
        pdf_url = f"/training/certificates/{cert_id}.pdf"
        t0 = time.perf_counter()
        resp = client.get(pdf_url)
        first = time.perf_counter() - t0
        assert resp.status_code == 200 and resp.data.startswith(b"%PDF")
        times = timed_gets(client, pdf_url, 10)
        med = median_ms(times)
        print(f"certificate PDF (1 page, Chinese): first {first * 1000:.0f} ms, median "
              f"{med:.0f} ms, max {max(times) * 1000:.0f} ms over 10, "
              f"{len(resp.data) // 1024} KiB (target < 1000 ms) {'OK' if med < 1000 else 'SLOW'}")
        client = signed_in(app, "bench.officer")
        for label, page in (("training dashboard", "/training/reports"),
                            ("course per-party page", f"/training/reports/courses/{course_id}")):
            print(f"{label} ({n_tasks} tasks, {CARRIERS + MERCHANTS} parties): median "
                  f"{median_ms(timed_gets(client, page, 10)):.0f} ms")
        t0 = time.perf_counter()
        resp = client.get(f"/training/reports/courses/{course_id}?format=csv")
        print(f"CSV export of {n_tasks} tasks: {(time.perf_counter() - t0) * 1000:.0f} ms, "
              f"{len(resp.data) // 1024} KiB")


if __name__ == "__main__":
    main()
