"""Demo statements: every complete month with penalties is issued by the CS supervisor two
days after it ended (or now, if sooner), as CS would; SF Express's manager (``sf.mgr``) has
countersigned every statement of C001 but the latest, which waits for the demo user."""
from __future__ import annotations

from datetime import timedelta

from portal.cases.statements import (
    countersign,
    current_period,
    issue_all,
    parties_with_lines,
)
from portal.core.audit import acting_as
from portal.core.db import utcnow
from portal.core.timeutil import frozen_time

MONTHS_BACK = 12


def issue_demo_statements(users) -> int:
    """Issue the demo's statements; returns how many. None when every penalty of the demo
    falls in the current month (nothing complete to issue)."""
    months, period = [], current_period().previous()
    for _ in range(MONTHS_BACK):
        if parties_with_lines(period):
            months.append(period)
        period = period.previous()
    supervisor, manager = users["supervisor"], users["sf.mgr"]
    issued = []
    for period in reversed(months):
        with frozen_time(min(period.end + timedelta(days=2, hours=10), utcnow())), \
                acting_as(supervisor):
            issued += issue_all(period, supervisor)
    ours = [st for st in issued if st.party_id == manager.party_id]
    for st in ours[:-1]:
        with frozen_time(min(st.issued_at + timedelta(days=1), utcnow())), acting_as(manager):
            countersign(st, manager, "许强", st.text_hash)
    return len(issued)
