"""Monthly statements (对账单): what a party was charged and what was reversed in one month.

A period is a calendar month ("2026-11") in the portal's time zone
(``PORTAL_DEFAULT_TIMEZONE``). A penalty is *charged* in the month it began to stand
(``created_at``) and *reversed* (the same amounts, negative) in the month it stopped standing
(``withdrawn_at``: its ruling was superseded, or an appeal replaced it). A statement issued for
a month therefore never needs to change: a later correction shows up on a later statement.
The zero penalty an overturning appeal leaves behind never stood (inactive, never withdrawn)
and is on no statement.

Issuing freezes the lines into ``Statement.lines_json`` and hashes their canonical text (a
header with the party code and the period, then one canonical JSON object per line); the
party's manager countersigns that hash. Notes are kept as a code and a reference
(``appeal_reduced`` + ``A-000003``) and put into words when shown, so the frozen text and its
hash do not depend on the language of whoever issued it. The caller commits.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from portal.cases.models import (
    Appeal,
    AppealStatus,
    Penalty,
    Ruling,
    RulingStatus,
    Statement,
    StatementStatus,
    ViolationStatus,
)
from portal.core.audit import record
from portal.core.db import utcnow
from portal.core.errors import ConflictError, ServiceError
from portal.core.money import to_money
from portal.core.permissions import Perm, allowed
from portal.core.timeutil import zone
from portal.extensions import db
from portal.parties.models import Party

CHARGE, REVERSAL = "charge", "reversal"
NAME_MAX = 120
_PERIOD_RE = re.compile(r"^(\d{4})-(\d{2})$")
ZERO = Decimal("0.00")


# --- periods ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Period:
    """A calendar month in the portal's time zone; ``start``/``end`` bound it in UTC
    (half-open: ``start <= t < end``)."""

    year: int
    month: int

    @property
    def text(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def __str__(self) -> str:
        return self.text

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=portal_zone()).astimezone(UTC)

    @property
    def end(self) -> datetime:
        return self.next().start

    def next(self) -> Period:
        return Period(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Period:
        return Period(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def has_ended(self, now: datetime | None = None) -> bool:
        return (now or utcnow()) >= self.end


def portal_zone():
    return zone(current_app.config["PORTAL_DEFAULT_TIMEZONE"])


def parse_period(value) -> Period:
    """``"YYYY-MM"`` (or a ``Period``) as a Period; anything else is refused, naming it."""
    if isinstance(value, Period):
        return value
    text = str(value or "").strip()
    match = _PERIOD_RE.match(text)
    if match:
        year, month = int(match.group(1)), int(match.group(2))
        if 1970 <= year <= 9998 and 1 <= month <= 12:
            return Period(year, month)
    raise ServiceError(_("“%(p)s” is not a month: write it as YYYY-MM, for example 2026-11.",
                         p=text[:40]), "period")


def current_period() -> Period:
    local = utcnow().astimezone(portal_zone())
    return Period(local.year, local.month)


# --- lines --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Line:
    """One line of a statement: a penalty charged, or reversed (amounts negative)."""

    at: datetime                 # UTC
    local: str                   # the same moment in the portal's zone, "2026-11-03 14:05"
    kind: str                    # CHARGE or REVERSAL
    penalty_id: int
    case_id: int
    case: str
    ruling: str
    clauses: tuple[str, ...]
    share: int                   # percent
    fine: Decimal
    compensation: Decimal
    amount: Decimal
    points: int
    note: str = ""               # a NOTES key
    note_ref: str = ""           # the appeal or ruling the note names

    @property
    def penalty(self) -> str:
        return f"P-{self.penalty_id:06d}"

    @property
    def is_reversal(self) -> bool:
        return self.kind == REVERSAL

    @property
    def note_text(self) -> str:
        return note_text(self.note, self.note_ref)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(at=self.at.astimezone(UTC).isoformat(timespec="microseconds"),
                 clauses=list(self.clauses), penalty=self.penalty,
                 fine=str(self.fine), compensation=str(self.compensation),
                 amount=str(self.amount))
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Line:
        return cls(at=datetime.fromisoformat(d["at"]), local=d["local"], kind=d["kind"],
                   penalty_id=d["penalty_id"], case_id=d["case_id"], case=d["case"],
                   ruling=d["ruling"], clauses=tuple(d["clauses"]), share=d["share"],
                   fine=to_money(d["fine"]), compensation=to_money(d["compensation"]),
                   amount=to_money(d["amount"]), points=d["points"], note=d.get("note", ""),
                   note_ref=d.get("note_ref", ""))


def note_text(note: str, ref: str) -> str:
    texts = {
        "appeal_reduced": lambda: _("reduced on appeal %(ref)s", ref=ref),
        "appeal_replaced": lambda: _("replaced on appeal %(ref)s", ref=ref),
        "appeal_overturned": lambda: _("overturned on appeal %(ref)s", ref=ref),
        "superseded": lambda: _("superseded by %(ref)s", ref=ref),
        "corrects": lambda: _("correction of %(ref)s", ref=ref),
    }
    return texts[note]() if note in texts else ""


@dataclass(frozen=True)
class Totals:
    fine: Decimal = ZERO
    compensation: Decimal = ZERO
    amount: Decimal = ZERO
    points: int = 0

    @classmethod
    def of(cls, lines: list[Line]) -> Totals:
        return cls(sum((line.fine for line in lines), ZERO),
                   sum((line.compensation for line in lines), ZERO),
                   sum((line.amount for line in lines), ZERO),
                   sum(line.points for line in lines))


@dataclass
class _Notes:
    """The appeals and corrections that explain a set of penalties, loaded once."""

    replaced_by_appeal: dict[int, Appeal] = field(default_factory=dict)   # old penalty id
    from_appeal: dict[int, Appeal] = field(default_factory=dict)          # new penalty id
    superseded_by: dict[int, Ruling] = field(default_factory=dict)        # old ruling id

    @classmethod
    def load(cls, penalties: list[Penalty]) -> _Notes:
        notes = cls()
        ids = [p.id for p in penalties]
        if not ids:
            return notes
        decided = (AppealStatus.REDUCED, AppealStatus.OVERTURNED)
        for a in db.session.scalars(select(Appeal).where(
                Appeal.status.in_(decided),
                or_(Appeal.penalty_id.in_(ids), Appeal.new_penalty_id.in_(ids)))):
            notes.replaced_by_appeal[a.penalty_id] = a
            if a.new_penalty_id is not None:
                notes.from_appeal[a.new_penalty_id] = a
        ruling_ids = {p.ruling_id for p in penalties}
        for r in db.session.scalars(select(Ruling).where(
                Ruling.supersedes_id.in_(ruling_ids),
                Ruling.status.in_((RulingStatus.EFFECTIVE, RulingStatus.SUPERSEDED)))):
            notes.superseded_by[r.supersedes_id] = r
        return notes

    def for_charge(self, p: Penalty) -> tuple[str, str]:
        appeal = self.from_appeal.get(p.id)
        if appeal is not None:
            return "appeal_reduced", appeal.number
        if p.ruling.supersedes is not None:
            return "corrects", p.ruling.supersedes.number
        return "", ""

    def for_reversal(self, p: Penalty) -> tuple[str, str]:
        appeal = self.replaced_by_appeal.get(p.id)
        if appeal is not None:
            kind = ("appeal_overturned" if appeal.status is AppealStatus.OVERTURNED
                    else "appeal_replaced")
            return kind, appeal.number
        ruling = self.superseded_by.get(p.ruling_id)
        if ruling is not None:
            return "superseded", ruling.number
        return "", ""


def statement_lines(party_id: int, period) -> list[Line]:
    """The party's lines for ``period``, as they stand now (live, not frozen)."""
    period = parse_period(period)
    lo, hi = period.start, period.end
    charged = db.session.scalars(select(Penalty).where(
        Penalty.party_id == party_id, Penalty.created_at >= lo, Penalty.created_at < hi,
        # stood at some time: still standing, or withdrawn later (an overturning appeal's
        # zero replacement is neither, and never stood)
        or_(Penalty.active.is_(True), Penalty.withdrawn_at.is_not(None)))).all()
    reversed_ = db.session.scalars(select(Penalty).where(
        Penalty.party_id == party_id, Penalty.withdrawn_at >= lo,
        Penalty.withdrawn_at < hi)).all()
    notes = _Notes.load(list({p.id: p for p in [*charged, *reversed_]}.values()))
    tz = portal_zone()
    lines = [_line(p, CHARGE, p.created_at, notes.for_charge(p), tz) for p in charged]
    lines += [_line(p, REVERSAL, p.withdrawn_at, notes.for_reversal(p), tz) for p in reversed_]
    return sorted(lines, key=lambda x: (x.at, x.penalty_id, x.is_reversal))


def _line(p: Penalty, kind: str, at: datetime, note: tuple[str, str], tz) -> Line:
    sign = -1 if kind == REVERSAL else 1
    clauses = sorted({v.clause.label for v in p.case.violations
                      if v.party_id == p.party_id and v.status is ViolationStatus.CONFIRMED})
    return Line(at=at, local=at.astimezone(tz).strftime("%Y-%m-%d %H:%M"), kind=kind,
                penalty_id=p.id, case_id=p.case_id, case=p.case.number, ruling=p.ruling.number,
                clauses=tuple(clauses), share=p.share.percent, fine=sign * p.fine,
                compensation=sign * p.compensation, amount=sign * p.amount,
                points=sign * p.points, note=note[0], note_ref=note[1])


def canonical_text(party_code: str, period, lines: list[Line]) -> str:
    """The text a statement's hash is taken over: a header, then one line per line."""
    head = f"statement\nparty: {party_code}\nperiod: {parse_period(period).text}\n"
    return head + "".join(_canonical_json(line.to_dict()) + "\n" for line in lines)


def text_hash(party_code: str, period, lines: list[Line]) -> str:
    return hashlib.sha256(canonical_text(party_code, period, lines).encode("utf-8")).hexdigest()


def _canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def frozen_lines(statement: Statement) -> list[Line]:
    """The lines of an issued statement, as they were frozen."""
    return [Line.from_dict(d) for d in json.loads(statement.lines_json)]


def statement_totals(statement: Statement) -> Totals:
    return Totals(statement.fine_total, statement.compensation_total, statement.amount_total,
                  statement.points_total)


# --- issuing --------------------------------------------------------------------------------

def _ensure_ended(period: Period) -> None:
    if not period.has_ended():
        raise ServiceError(_("The month %(p)s has not ended yet (%(tz)s time): a statement is "
                             "issued once its month is over.", p=period.text,
                             tz=current_app.config["PORTAL_DEFAULT_TIMEZONE"]), "period")


def find_statement(party_id: int, period) -> Statement | None:
    return db.session.scalar(select(Statement).where(
        Statement.party_id == party_id, Statement.period == parse_period(period).text))


def issue_statement(party: Party, period, user) -> Statement:
    """Freeze ``party``'s lines for a month that has ended into a statement (one per party
    and month)."""
    period = parse_period(period)
    _ensure_ended(period)
    existing = find_statement(party.id, period)
    if existing is not None:
        raise ServiceError(_("%(party)s already has a statement for %(p)s: %(n)s.",
                             party=party.code, p=period.text, n=existing.number), "period")
    lines = statement_lines(party.id, period)
    totals = Totals.of(lines)
    statement = Statement(
        party_id=party.id, period=period.text, status=StatementStatus.ISSUED,
        issued_at=utcnow(), issued_by_id=getattr(user, "id", None),
        lines_json=_canonical_json([line.to_dict() for line in lines]),
        fine_total=totals.fine, compensation_total=totals.compensation,
        amount_total=totals.amount, points_total=totals.points,
        text_hash=text_hash(party.code, period, lines))
    db.session.add(statement)
    code = party.code            # the session is unusable after a failed flush
    try:
        db.session.flush()
    except IntegrityError:       # issued by someone else at the same moment (unique key)
        raise ConflictError(_("%(party)s's statement for %(p)s was issued by someone else "
                              "meanwhile: nothing was issued; reload and try again.",
                              party=code, p=period.text)) from None
    record("statement.issued", statement, actor=user,
           after={**statement.snapshot(), "number": statement.number, "party_code": party.code,
                  "lines": len(lines), "fine": totals.fine,
                  "compensation": totals.compensation})
    return statement


def parties_with_lines(period) -> list[int]:
    """Ids of the parties with at least one line for ``period``."""
    period = parse_period(period)
    lo, hi = period.start, period.end
    charged = select(Penalty.party_id).where(
        Penalty.created_at >= lo, Penalty.created_at < hi,
        or_(Penalty.active.is_(True), Penalty.withdrawn_at.is_not(None)))
    withdrawn = select(Penalty.party_id).where(Penalty.withdrawn_at >= lo,
                                               Penalty.withdrawn_at < hi)
    return sorted(set(db.session.scalars(charged).all()) |
                  set(db.session.scalars(withdrawn).all()))


def issue_all(period, user) -> list[Statement]:
    """Issue the statement of every party with a line for ``period`` that has none yet."""
    period = parse_period(period)
    _ensure_ended(period)
    done = set(db.session.scalars(select(Statement.party_id).where(
        Statement.period == period.text)).all())
    ids = [i for i in parties_with_lines(period) if i not in done]
    if not ids:
        return []
    parties = db.session.scalars(select(Party).where(Party.id.in_(ids))
                                 .order_by(Party.code)).all()
    return [issue_statement(p, period, user) for p in parties]


# --- countersigning ------------------------------------------------------------------------

def may_countersign(user, statement: Statement) -> bool:
    return (allowed(user, Perm.COUNTERSIGN_STATEMENTS) and user.party_id is not None
            and user.party_id == statement.party_id)


def countersign(statement: Statement, user, typed_name: str, seen_hash: str) -> Statement:
    """The party's manager signs the statement's text (hash) with their typed full name."""
    if not may_countersign(user, statement):
        raise ServiceError(_("Only a manager of %(party)s may countersign its statement.",
                             party=statement.party.code))
    if statement.status is StatementStatus.COUNTERSIGNED:
        raise ServiceError(_("Statement %(n)s was already countersigned by %(name)s.",
                             n=statement.number, name=statement.countersigned_name))
    name = " ".join((typed_name or "").split())
    if not name:
        raise ServiceError(_("Type your full name to countersign."), "name")
    if len(name) > NAME_MAX:
        raise ServiceError(_("The name may be at most %(n)d characters.", n=NAME_MAX), "name")
    if (seen_hash or "").strip().lower() != statement.text_hash:
        raise ConflictError(_("The statement you read is not the one on record (its text hash "
                              "differs). Reload the page, read it again, then countersign."))
    before = statement.snapshot()
    statement.status = StatementStatus.COUNTERSIGNED
    statement.countersigned_by_id = user.id
    statement.countersigned_name = name
    statement.countersigned_at = utcnow()
    statement.countersigned_hash = statement.text_hash
    record("statement.countersigned", statement, actor=user, before=before,
           after={**statement.snapshot(), "number": statement.number, "name": name,
                  "at": statement.countersigned_at, "hash": statement.countersigned_hash})
    return statement
