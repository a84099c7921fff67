"""Counting people's tasks (reading tasks, training tasks) in SQL: done, open, overdue."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, case, func


@dataclass
class Totals:
    total: int = 0
    done: int = 0
    overdue: int = 0

    @property
    def open(self) -> int:
        return self.total - self.done

    @property
    def percent(self) -> float:
        return round(100 * self.done / self.total, 1) if self.total else 0.0


def count_columns(model, today: date):
    """``count, done, overdue`` aggregate columns over ``model`` (a task table with ``id``,
    ``status`` whose values include "done" and "open", and ``due_on``)."""
    done = func.sum(case((model.status == "done", 1), else_=0))
    overdue = func.sum(case((and_(model.status == "open", model.due_on < today), 1), else_=0))
    return func.count(model.id), done, overdue


def totals_of(row) -> Totals:
    return Totals(row[0] or 0, row[1] or 0, row[2] or 0)


def totals_by(model, key, scope, today: date) -> dict:
    """Task counts grouped by ``key`` (a column of ``model``) for the tasks matching
    ``scope``, counting active people's non-cancelled tasks, in one query."""
    from sqlalchemy import select

    from portal.accounts.models import User
    from portal.extensions import db

    q = (select(key, *count_columns(model, today)).select_from(model)
         .join(User, model.user_id == User.id)
         .where(*scope, model.status != "cancelled", User.active.is_(True)).group_by(key))
    return {r[0]: totals_of(r[1:]) for r in db.session.execute(q)}


def per_party(model, scope, today: date, *, kind: str | None = None, search: str = "",
              only_incomplete: bool = False, page: int = 1, per_page: int = 50):
    """Task counts per party for the tasks matching ``scope`` (SQL conditions on ``model``,
    a task table with ``party_id`` and ``user_id``), counting active people's non-cancelled
    tasks, least complete first, filtered by party kind, code or name, paged in SQL.

    Returns ``[(party or None, Totals)]`` for the page and how many parties match."""
    from sqlalchemy import func, or_, select

    from portal.accounts.models import User
    from portal.extensions import db
    from portal.parties.models import Party

    total, done, overdue = count_columns(model, today)
    q = (select(model.party_id, total.label("total"), done.label("done"),
                overdue.label("overdue"))
         .select_from(model).join(User, model.user_id == User.id)
         .outerjoin(Party, model.party_id == Party.id)
         .where(*scope, model.status != "cancelled", User.active.is_(True))
         .group_by(model.party_id, Party.code))
    if kind:
        q = q.where(Party.kind == kind)
    if search:
        like = f"%{search.strip()}%"
        q = q.where(or_(Party.code.ilike(like), Party.name_zh.ilike(like),
                        Party.name_en.ilike(like)))
    if only_incomplete:
        q = q.having(done < total)
    count = db.session.scalar(select(func.count()).select_from(q.subquery()))
    rows = db.session.execute(
        q.order_by((done * 1.0 / total).asc(), overdue.desc(), Party.code)
        .limit(per_page).offset((page - 1) * per_page)).all()
    ids = [r.party_id for r in rows if r.party_id is not None]
    parties = {p.id: p for p in db.session.scalars(select(Party).where(Party.id.in_(ids)))}
    return ([(parties.get(r.party_id), totals_of((r.total, r.done, r.overdue)))
             for r in rows], count)
