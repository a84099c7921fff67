"""What the benchmarks share: a fresh database, and parties and people made in bulk."""
from __future__ import annotations

import os
import uuid

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
    db.session.execute(insert(User), people)
    admin = create_user(username="bench.admin", display_name="管理员", password=PASSWORD,
                        role=Role.CS_ADMIN)
    sup = create_user(username="bench.sup", display_name="主管", password=PASSWORD,
                      role=Role.CS_SUPERVISOR)
    create_user(username="bench.officer", display_name="专员", password=PASSWORD,
                role=Role.CS_OFFICER)
    db.session.flush()
    return admin, sup, len(people)
