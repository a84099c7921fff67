"""What the benchmarks share: a fresh database, and parties and people made in bulk."""
from __future__ import annotations

import os
import statistics
import time
import uuid
from contextlib import contextmanager

from sqlalchemy import create_engine, insert, select, text

PG_SERVER = os.environ.get("BENCH_PG_SERVER",
                           "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
PASSWORD = "bench-password-1"


def fresh_database() -> tuple[str, callable]:
    """A new PostgreSQL database (or BENCH_DATABASE_URL) and the function that drops it."""
    url = os.environ.get("BENCH_DATABASE_URL")
    if url:
        return url, lambda: None
    name = f"portal_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return PG_SERVER.rsplit("/", 1)[0] + "/" + name, drop


def build_people(carriers: int, carrier_staff: int, merchants: int, merchant_staff: int):
    """Parties and their staff in bulk (one password hash shared: hashing is not what is
    measured), plus a CS administrator, supervisor and officer. Returns (admin, supervisor,
    number of staff)."""
    from portal.accounts.models import User
    from portal.accounts.services import create_user, hash_password
    from portal.core.db import utcnow
    from portal.core.permissions import Role
    from portal.extensions import db
    from portal.parties.models import Party, PartyKind

    now = utcnow()
    parties = [{"code": f"C{i:03d}", "name_zh": f"配送公司{i}", "name_en": f"Carrier {i}",
                "kind": PartyKind.CARRIER, "active": True, "version": 1, "created_at": now}
               for i in range(1, carriers + 1)]
    parties += [{"code": f"M{i:05d}", "name_zh": f"商家{i}", "name_en": f"Merchant {i}",
                 "kind": PartyKind.MERCHANT, "active": True, "version": 1, "created_at": now}
                for i in range(1, merchants + 1)]
    db.session.execute(insert(Party), parties)
    ids = dict(db.session.execute(select(Party.code, Party.id)).all())
    pw = hash_password(PASSWORD)
    people = []
    for code, pid in ids.items():
        for n in range(1, (carrier_staff if code.startswith("C") else merchant_staff) + 1):
            people.append({"username": f"{code.lower()}.s{n}", "display_name": f"{code} 员工{n}",
                           "email": f"{code.lower()}.s{n}@example.com", "employee_no": "",
                           "password_hash": pw, "role": Role.PARTY_STAFF, "party_id": pid,
                           "locale": "zh_CN", "timezone": "Asia/Shanghai", "active": True,
                           "created_at": now})
    if people:
        db.session.execute(insert(User), people)
    admin = create_user(username="bench.admin", display_name="管理员", password=PASSWORD,
                        role=Role.CS_ADMIN)
    sup = create_user(username="bench.sup", display_name="主管", password=PASSWORD,
                      role=Role.CS_SUPERVISOR)
    create_user(username="bench.officer", display_name="专员", password=PASSWORD,
                role=Role.CS_OFFICER)
    db.session.flush()
    return admin, sup, len(people)


@contextmanager
def bench_app():
    """The portal on a fresh, migrated database (dropped afterwards); CSRF off for the
    timing client, fast password hashes."""
    url, drop = fresh_database()
    os.environ["DATABASE_URL"] = url
    from flask_migrate import upgrade

    from portal import create_app

    # the timing client signs in with the password alone: no second factor for the benchmarks
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TWO_FACTOR_REQUIRED_ROLES": [],
                      "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000", "WTF_CSRF_ENABLED": False})
    try:
        with app.app_context():
            upgrade()
        yield app
    finally:
        with app.app_context():
            from portal.extensions import db

            db.session.remove()
            db.engine.dispose()
        drop()


def signed_in(app, username: str):
    client = app.test_client()
    resp = client.post("/login", data={"username": username, "password": PASSWORD})
    assert resp.status_code == 302, resp.status_code
    return client


def timed_gets(client, url: str, n: int) -> list[float]:
    """Seconds taken by ``n`` GETs of ``url`` after one warm-up request."""
    assert client.get(url).status_code == 200
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        assert client.get(url).status_code == 200
        times.append(time.perf_counter() - t0)
    return times


def median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1000


def mark_progress(model, done_status) -> int:
    """Mark 60 % of the tasks in ``model`` done and a tenth of the rest overdue by three days,
    then ANALYZE (PostgreSQL), as a campaign looks some weeks in. Returns how many tasks."""
    from datetime import timedelta

    from sqlalchemy import select, update

    from portal.core.timeutil import local_today
    from portal.extensions import db

    ids = db.session.scalars(select(model.id).order_by(model.id)).all()
    cut = int(len(ids) * 0.6)
    db.session.execute(update(model).where(model.id.in_(ids[:cut])).values(status=done_status))
    db.session.execute(update(model).where(model.id.in_(ids[cut::10]))
                       .values(due_on=local_today() - timedelta(days=3)))
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("ANALYZE"))
        db.session.commit()
    return len(ids)
