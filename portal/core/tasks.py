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
