"""The CS review queue of proposed violations and the follow-up queue (跟单) of late shipments:
what they list, and what CS does with them. The caller commits.

A proposal (status ``proposed``) leaves the review queue once, by one of three verbs:
``confirm`` opens one case for the selected proposals, ``merge`` attaches them to an open case,
``dismiss`` closes them with a reason. Each verb claims its rows with ``UPDATE ... WHERE status =
'proposed'`` and refuses the whole action unless every selected row was still waiting, so when
two officers act on the same proposal only the first succeeds and the second changes nothing.

One compensation per order (DOMAIN.md): a violation confirmed or merged with a customer
compensation, for an order already compensated by another confirmed violation (any ticket of
the order, or another clause of the same ticket), has its compensation set to zero; the
officer is told and the audit event says why. The order is locked while this is decided (an
advisory lock per order on PostgreSQL), so two officers confirming two tickets of one order at
the same moment cannot both pay.

Locks are taken in one order by every action: the selected violations (``SELECT ... FOR
UPDATE``, by id), the orders, the case (merge), and last the audit chain (``core.audit``).

The follow-up queue (跟单) is in ``intake.followup``.
"""
from __future__ import annotations

import enum
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from sqlalchemy import or_, select, text, update
from sqlalchemy.orm import selectinload

from portal.cases.models import Case, CaseStatus, Violation, ViolationStatus
from portal.cases.services import involve, open_case
from portal.core.audit import record
from portal.core.db import utcnow
from portal.core.errors import ServiceError, required_reason
from portal.core.money import format_yuan
from portal.core.web import CappedPage, capped_page
from portal.extensions import db
from portal.intake.facts import describe
from portal.intake.models import Ticket
from portal.parties.models import PartyKind
from portal.parties.services import parties_matching
from portal.standards.models import RELEASED, Clause, Standard, StandardVersion

PER_PAGE = 50
COUNT_CAP = 10_000        # the queue's size is counted up to here ("10,000+" beyond)
MAX_SELECTED = 100        # proposals one action may take
REASON_MAX = 500
ZERO = Decimal("0.00")


# --- the review queue: reading --------------------------------------------------------------

class Sort(enum.StrEnum):
    OLDEST = "oldest"      # longest waiting first (recorded_at: proposed or last revised)
    AMOUNT = "amount"      # most at stake first (fine + compensation)


@dataclass
class QueueFilters:
    kind: PartyKind | None = None
    party: str = ""                    # a party's code (exact) or part of its name
    standard_id: int | None = None     # with clause_number: one clause of one standard
    clause_number: str = ""
    min_amount: Decimal | None = None  # on the amount at stake: party fine + compensation
    older_than_days: int | None = None
    number: str = ""                   # a ticket number or an order number, exact
    sort: Sort = Sort.OLDEST


def amount_at_stake():
    """What a proposal puts at stake: the party's fine plus the customer's compensation."""
    return Violation.party_fine + Violation.customer_compensation


def queue_query(f: QueueFilters, now: datetime):
    """The proposals matching ``f``, in its order. A party searched for and a ticket or order
    number are looked up first, so that the planner sees plain lists of ids and numbers."""
    q = select(Violation).where(Violation.status == ViolationStatus.PROPOSED)
    if f.kind is not None or f.party:
        parties = parties_matching(f.kind, f.party)
        if f.party:       # a plain list of ids for the planner
            parties = db.session.scalars(parties).all()
        q = q.where(Violation.party_id.in_(parties))
    if f.standard_id is not None:
        q = q.where(Violation.standard_id == f.standard_id,
                    Violation.clause_number == f.clause_number)
    if f.min_amount is not None:
        q = q.where(amount_at_stake() >= f.min_amount)
    if f.older_than_days:
        q = q.where(Violation.recorded_at <= now - timedelta(days=f.older_than_days))
    if f.number:      # a ticket number or an order number
        q = q.where(or_(Violation.ticket_no == f.number, Violation.order_no == f.number))
    if f.sort is Sort.AMOUNT:
        return q.order_by(amount_at_stake().desc(), Violation.recorded_at, Violation.id)
    return q.order_by(Violation.recorded_at, Violation.id)


@dataclass
class Compensated:
    """Another proposed or confirmed compensation on the same order."""

    ticket_no: str
    status: ViolationStatus
    amount: Decimal


@dataclass
class QueueRow:
    violation: Violation
    ticket: Ticket | None
    facts: str
    age: timedelta
    same_order: list[Compensated] = field(default_factory=list)

    @property
    def amount(self) -> Decimal:
        return self.violation.party_fine + self.violation.customer_compensation


def queue_page(f: QueueFilters, page: int, tz: ZoneInfo, per_page: int = PER_PAGE
               ) -> CappedPage:
    """One page of the queue (``items`` are ``QueueRow``s), with each row's ticket, facts in
    ``tz`` and same-order flags; counted up to ``COUNT_CAP`` (``core.web.capped_page``), so the
    first page never pays for an exact count of a large queue."""
    now = utcnow()
    q = queue_query(f, now).options(selectinload(Violation.party),
                                    selectinload(Violation.standard),
                                    selectinload(Violation.clause))
    result = capped_page(q, Violation.id, page, per_page, COUNT_CAP)
    found = result.items
    tickets = _tickets({v.ticket_no for v in found})
    elsewhere = compensated_elsewhere(found, tickets)
    result.items = [QueueRow(v, tickets.get(v.ticket_no),
                             describe(v, tz, tickets.get(v.ticket_no)),
                             now - v.recorded_at, elsewhere.get(v.id, [])) for v in found]
    return result


def _tickets(numbers) -> dict[str, Ticket]:
    numbers = {n for n in numbers if n}
    if not numbers:
        return {}
    return {t.ticket_no: t for t in db.session.scalars(
        select(Ticket).where(Ticket.ticket_no.in_(numbers)))}


def compensated_elsewhere(violations, tickets: dict[str, Ticket]) -> dict[int, list[Compensated]]:
    """For each violation that compensates a customer: the other proposed or confirmed
    compensations on the same order (one compensation per order)."""
    paying = {v.id: tickets[v.ticket_no].order_no for v in violations
              if v.customer_compensation > 0 and v.ticket_no in tickets
              and tickets[v.ticket_no].order_no}
    if not paying:
        return {}
    by_order = defaultdict(list)
    for r in db.session.execute(
            select(Violation.order_no, Violation.id, Violation.ticket_no, Violation.status,
                   Violation.customer_compensation)
            .where(Violation.order_no.in_(set(paying.values())),
                   Violation.customer_compensation > 0,
                   Violation.status.in_((ViolationStatus.PROPOSED, ViolationStatus.CONFIRMED)))
            .order_by(Violation.id)):
        by_order[r.order_no].append(r)
    return {vid: [Compensated(r.ticket_no, r.status, r.customer_compensation)
                  for r in by_order[order] if r.id != vid]
            for vid, order in paying.items()}


def _clause_sort_key(number: str):
    return [int(p) if p.isdigit() else 0 for p in number.split(".")]


def clause_options(locale: str, everything: bool = False) -> list[tuple[int, str, str]]:
    """The clauses the rule engine checks (``everything``: all clauses), one per standard and
    clause number (titled as in their latest released version):
    ``(standard_id, clause_number, label)``."""
    q = (select(Standard.id, Standard.code, Clause.number, Clause.title_zh, Clause.title_en)
         .join(StandardVersion, Clause.standard_version_id == StandardVersion.id)
         .join(Standard, StandardVersion.standard_id == Standard.id)
         .where(StandardVersion.status.in_(RELEASED))
         .order_by(Standard.code, StandardVersion.number))
    rows = db.session.execute(q if everything else q.where(Clause.check != "")).all()
    latest = {}
    for r in rows:
        title = r.title_en if locale.startswith("en") and r.title_en else r.title_zh
        latest[(r.id, r.number)] = (r.code, f"{r.code} §{r.number} {title}")
    ordered = sorted(latest.items(), key=lambda kv: (kv[1][0], _clause_sort_key(kv[0][1])))
    return [(sid, number, label) for (sid, number), (_code, label) in ordered]


# --- the review queue: acting ---------------------------------------------------------------

@dataclass
class Zeroed:
    """A compensation withheld because the order is already compensated."""

    violation: Violation
    amount: Decimal
    paid_on: str          # the ticket whose confirmed violation compensates the order
    order_no: str

    def message(self) -> str:
        return _("Order %(order)s is already compensated on ticket %(paid)s: the compensation "
                 "of %(amount)s on ticket %(ticket)s was set to ¥0.00 (one compensation per "
                 "order).", order=self.order_no, paid=self.paid_on,
                 amount=format_yuan(self.amount), ticket=self.violation.ticket_no)


@dataclass
class Reviewed:
    violations: list[Violation]
    case: Case | None = None
    zeroed: list[Zeroed] = field(default_factory=list)


def _selection(ids) -> list[int]:
    ids = sorted({int(i) for i in ids or [] if i is not None})
    if not ids:
        raise ServiceError(_("Select at least one proposed violation."))
    if len(ids) > MAX_SELECTED:
        raise ServiceError(_("Select at most %(n)d violations at a time.", n=MAX_SELECTED))
    return ids


def _waiting(ids: list[int]) -> list[Violation]:
    """The selected proposals, locked in id order; refused unless every one still waits."""
    found = db.session.scalars(
        select(Violation).where(Violation.id.in_(ids)).order_by(Violation.id)
        .options(selectinload(Violation.party), selectinload(Violation.standard),
                 selectinload(Violation.clause))
        .with_for_update(of=Violation, key_share=True)   # FOR NO KEY UPDATE
        .execution_options(populate_existing=True)).all()   # as locked, not as read before
    gone = [v for v in found if v.status is not ViolationStatus.PROPOSED]
    if gone or len(found) != len(ids):
        _refuse_taken(gone, len(ids) - len(found))
    return found


def _refuse_taken(gone: list[Violation], missing: int):
    names = ", ".join(v.ticket_no or f"#{v.id}" for v in gone)
    if missing:
        names = ", ".join(filter(None, [names, _("%(n)d withdrawn by a re-import", n=missing)]))
    raise ServiceError(_("Already reviewed or withdrawn meanwhile: %(which)s. Nothing was "
                         "changed; reload the queue and try again.", which=names))


def _claim(violations: list[Violation], **values) -> None:
    """Move ``violations`` out of the queue with ``values``, only if each is still proposed."""
    ids = [v.id for v in violations]
    result = db.session.execute(
        update(Violation).where(Violation.id.in_(ids),
                                Violation.status == ViolationStatus.PROPOSED)
        .values(**values).execution_options(synchronize_session="fetch"))
    if result.rowcount != len(ids):
        _refuse_taken([], len(ids) - result.rowcount)


_ORDER_LOCKS = 740_212   # PostgreSQL advisory locks (this, hashtext(order number)): one per order


def _lock_paying_orders(violations: list[Violation]) -> dict[str, Ticket]:
    """Take the lock of each order the selected proposals would compensate, so that two
    officers confirming tickets of one order decide one after the other. Taken before anything
    writes an audit event (whose chain lock comes last in every action), and per order rather
    than on the ticket rows, which an import may be updating. SQLite has one writer at a time.
    Returns the tickets of the selected proposals that compensate a customer."""
    tickets = _tickets({v.ticket_no for v in violations if v.customer_compensation > 0})
    orders = sorted({t.order_no for t in tickets.values() if t.order_no})
    if orders and db.session.get_bind().dialect.name == "postgresql":
        for order in orders:
            db.session.execute(text("SELECT pg_advisory_xact_lock(:space, hashtext(:order))"),
                               {"space": _ORDER_LOCKS, "order": order})
    return tickets


def _claim_confirmed(violations: list[Violation], user, case: Case,
                     tickets: dict[str, Ticket]) -> list[Zeroed]:
    _claim(violations, status=ViolationStatus.CONFIRMED, case_id=case.id,
           reviewed_by_id=user.id, reviewed_at=utcnow())
    involve(case.id, {v.party for v in violations})
    db.session.expire(case, ["violations"])
    return _one_compensation_per_order(violations, tickets)


def _one_compensation_per_order(violations: list[Violation],
                                tickets: dict[str, Ticket]) -> list[Zeroed]:
    """Zero the compensation of each just-confirmed violation whose order another confirmed
    violation already compensates (``tickets``: from ``_lock_paying_orders``)."""
    paying = [v for v in violations if v.customer_compensation > 0
              and v.ticket_no in tickets and tickets[v.ticket_no].order_no]
    orders = {tickets[v.ticket_no].order_no for v in paying}
    if not orders:
        return []
    paid = {}
    for r in db.session.execute(
            select(Violation.order_no, Violation.ticket_no)
            .where(Violation.order_no.in_(orders), Violation.id.not_in([v.id for v in violations]),
                   Violation.status == ViolationStatus.CONFIRMED,
                   Violation.customer_compensation > 0)
            .order_by(Violation.id)):
        paid.setdefault(r.order_no, r.ticket_no)
    zeroed = []
    for v in paying:                                   # in id order: the first one pays
        order = tickets[v.ticket_no].order_no
        if order in paid:
            zeroed.append(Zeroed(v, v.customer_compensation, paid[order], order))
            v.customer_compensation = ZERO
        else:
            paid[order] = v.ticket_no
    return zeroed


def _audit(action: str, violations, before: dict, zeroed: list[Zeroed], **extra) -> None:
    withheld = {z.violation.id: z for z in zeroed}
    for v in violations:
        after = v.snapshot() | extra
        if v.id in withheld:
            z = withheld[v.id]
            after |= {"compensation_withheld": z.amount, "order_no": z.order_no,
                      "compensated_on": z.paid_on}
        record(action, v, before=before[v.id], after=after)


def case_title(violations: list[Violation]) -> str:
    clauses = list(dict.fromkeys(
        f"{v.standard.code if v.standard else ''} §{v.clause_number} {v.clause.title_zh}".strip()
        for v in violations))
    tickets = list(dict.fromkeys(v.ticket_no for v in violations if v.ticket_no))
    what = "、".join(clauses[:2]) + (f" +{len(clauses) - 2}" if len(clauses) > 2 else "")
    which = ", ".join(tickets[:3]) + (f" +{len(tickets) - 3}" if len(tickets) > 3 else "")
    return (f"{which} · {what}" if which else what)[:200]


def case_description(violations: list[Violation], tz: ZoneInfo) -> str:
    tickets = _tickets({v.ticket_no for v in violations})
    lines = [_("Opened from the review queue of proposed violations:")]
    for v in violations:
        lines.append(f"- {v.ticket_no or ''} {v.party.code} "
                     f"{v.standard.code if v.standard else ''} §{v.clause_number}: "
                     f"{describe(v, tz, tickets.get(v.ticket_no))}")
    return "\n".join(lines)


def confirm(ids, *, user, tz: ZoneInfo) -> Reviewed:
    """Confirm the selected proposals: one new case holds them all (its incident time is the
    earliest of theirs, its description their facts in ``tz``)."""
    violations = _waiting(_selection(ids))
    tickets = _lock_paying_orders(violations)
    before = {v.id: v.snapshot() for v in violations}
    incident = min(v.incident_at or v.recorded_at for v in violations)
    case = open_case(title=case_title(violations),
                     description=case_description(violations, tz),
                     incident_at=incident, user=user)
    zeroed = _claim_confirmed(violations, user, case, tickets)
    _audit("violation.confirmed", violations, before, zeroed, case=case.number)
    return Reviewed(violations, case, zeroed)


CASE_NO_RE = re.compile(r"^(?:CASE-?)?0*(\d{1,9})$", re.IGNORECASE)


def open_case_by_number(number: str) -> Case:
    m = CASE_NO_RE.match((number or "").strip())
    case = db.session.get(Case, int(m.group(1))) if m and int(m.group(1)) else None
    if case is None:
        raise ServiceError(_("No case has the number %(n)s (write it as CASE-000123 or 123).",
                             n=(number or "").strip() or "—"), "case_no")
    if case.status is not CaseStatus.OPEN:
        raise ServiceError(_("Case %(n)s is already ruled; proposals can only be merged into "
                             "an open case.", n=case.number), "case_no")
    return case


def merge(ids, case_no: str, *, user) -> Reviewed:
    """Confirm the selected proposals into the open case numbered ``case_no``.

    The case's row version is raised in the same statement that checks it is still open, so a
    ruling being written at the same moment fails on its optimistic lock instead of pricing
    the case without them."""
    violations = _waiting(_selection(ids))
    case = open_case_by_number(case_no)
    tickets = _lock_paying_orders(violations)
    before = {v.id: v.snapshot() for v in violations}
    bumped = db.session.execute(
        update(Case).where(Case.id == case.id, Case.status == CaseStatus.OPEN)
        .values(version=Case.version + 1).execution_options(synchronize_session=False))
    if bumped.rowcount != 1:
        raise ServiceError(_("Case %(n)s was ruled meanwhile; nothing was changed.",
                             n=case.number), "case_no")
    db.session.expire(case)
    zeroed = _claim_confirmed(violations, user, case, tickets)
    _audit("violation.merged", violations, before, zeroed, case=case.number)
    return Reviewed(violations, case, zeroed)


def dismiss(ids, reason: str, *, user) -> Reviewed:
    reason = required_reason(reason, _("Give the reason for dismissing: the party and the "
                                        "auditors read it."), REASON_MAX)
    violations = _waiting(_selection(ids))
    before = {v.id: v.snapshot() for v in violations}
    _claim(violations, status=ViolationStatus.DISMISSED, dismiss_reason=reason,
           reviewed_by_id=user.id, reviewed_at=utcnow())
    _audit("violation.dismissed", violations, before, [], reason=reason)
    return Reviewed(violations)
