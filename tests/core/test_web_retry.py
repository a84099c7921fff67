"""A form action that PostgreSQL rolls back for a deadlock or a serialization failure runs
again (rolled back first, so nothing is half-written); any other database error does not."""
from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from portal.core.web import RETRY_ATTEMPTS, submit


class _Orig(Exception):
    def __init__(self, sqlstate):
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


class _Form:
    def validate_on_submit(self):
        return True


def _error(sqlstate):
    return OperationalError("UPDATE ...", {}, _Orig(sqlstate))


def test_a_deadlocked_action_runs_again(ctx):
    calls = []

    def run():
        calls.append(1)
        if len(calls) < RETRY_ATTEMPTS:
            raise _error("40P01")
        return "done"

    outcome = submit(_Form(), run)
    assert outcome.ok and outcome.result == "done" and len(calls) == RETRY_ATTEMPTS


def test_retries_stop_after_the_last_attempt(ctx):
    calls = []

    def run():
        calls.append(1)
        raise _error("40001")

    with pytest.raises(OperationalError):
        submit(_Form(), run)
    assert len(calls) == RETRY_ATTEMPTS


def test_other_database_errors_are_not_retried(ctx):
    calls = []

    def run():
        calls.append(1)
        raise _error("23505")        # a unique violation is a bug or a refusal, not a race

    with pytest.raises(OperationalError):
        submit(_Form(), run)
    assert len(calls) == 1
