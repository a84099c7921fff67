"""Points per party per calendar year and the sanctions they trigger (积分与处罚).

The year of a penalty's points is the calendar year, in the portal's time zone
(``PORTAL_DEFAULT_TIMEZONE``), in which its ruling took effect. A penalty an appeal replaced
keeps its ruling's year, so an appeal decided on 2 January does not move December's points into
the new year; a correction is a new ruling and counts in the year it took effect. Only standing
penalties count (``Penalty.active``): an overturned or superseded one no longer does.

A party's points for a year are the points of that year's penalties plus the serious points
(``Penalty.serious_points``, from clauses whose points rule is marked serious) of the
``SERIOUS_POINTS_CARRY_YEARS`` years before: serious violations are exempt from the yearly
reset.

``SANCTION_THRESHOLDS`` is the ladder (default 12 warning, 24 mandatory retraining, 36
suspension of new business, 48 termination). ``review_sanctions`` runs whenever a party's
penalties change (a ruling takes effect, an appeal reduces or overturns):

* each level the party's points for the current year reach triggers a ``Sanction`` (one row per
  party, year and level: a level lifted once is not triggered again that year);
* a standing sanction of any year whose year's points fell below its threshold (an appeal or a
  correction took points back) is lifted by the portal, saying what the points are now;
* ``Party.sanction`` then names the gravest standing level ("" for none).

CS may also lift a sanction by hand with a reason (``lift_sanction``). Every change is audited;
the caller commits.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, func, or_, select

from portal.accounts.models import User
from portal.cases.models import Penalty, Ruling, Sanction, SanctionLevel, Violation
from portal.config import parse_carry_years, parse_sanction_thresholds
from portal.core.audit import record
from portal.core.db import utcnow
from portal.core.errors import ServiceError, required_reason
from portal.core.notify import email_user
from portal.core.permissions import Perm, Role, allowed
from portal.core.timeutil import local_today, zone
from portal.extensions import db
from portal.parties.models import Party

LEVEL_LABELS = {
    SanctionLevel.WARNING: _l("Warning"),
    SanctionLevel.RETRAINING: _l("Mandatory retraining"),
    SanctionLevel.SUSPENSION: _l("Suspension of new business"),
    SanctionLevel.TERMINATION: _l("Cooperation terminated"),
}
GRAVITY = list(SanctionLevel)                  # mildest first
NO_NEW_BUSINESS = (SanctionLevel.SUSPENSION.value, SanctionLevel.TERMINATION.value)
RETRAINING_DUE_DAYS = 14
REASON_MAX = 2000


class YearPoints(NamedTuple):
    """A party's points for a year: ``points`` counts against the thresholds and includes
    ``serious_carried``, the serious points of earlier years still counting."""

    points: int = 0
    serious_carried: int = 0

    @property
    def of_the_year(self) -> int:
        return self.points - self.serious_carried


class Step(NamedTuple):
    points: int
    level: SanctionLevel


def thresholds() -> list[Step]:
    """The ladder from ``SANCTION_THRESHOLDS``, mildest first."""
    return [Step(points, SanctionLevel(level)) for points, level in
            parse_sanction_thresholds(current_app.config["SANCTION_THRESHOLDS"])]


def carry_years() -> int:
    return parse_carry_years(current_app.config["SERIOUS_POINTS_CARRY_YEARS"])


def current_year() -> int:
    return local_today().year


def level_label(level: SanctionLevel | str) -> str:
    return str(LEVEL_LABELS[SanctionLevel(level)])


# --- points -------------------------------------------------------------------------------------

def _year_start(year: int) -> datetime:
    """1 January of ``year``, 00:00 in the portal's time zone, as a UTC instant."""
    tz = zone(current_app.config.get("PORTAL_DEFAULT_TIMEZONE"))
    return datetime.combine(date(year, 1, 1), time.min, tzinfo=tz).astimezone(UTC)


def points_by_party(party_ids: Iterable[int] | None, year: int) -> dict[int, YearPoints]:
    """Points for ``year`` of ``party_ids`` (every party when None) in one query; parties with
    none are left out (read them with ``.get(pid, YearPoints())``)."""
    start, end = _year_start(year), _year_start(year + 1)
    carry_from = _year_start(year - carry_years())
    effective = Ruling.effective_at
    this_year = effective >= start
    q = (select(Penalty.party_id,
                func.coalesce(func.sum(case((this_year, Penalty.points), else_=0)), 0),
                func.coalesce(func.sum(case((this_year, 0), else_=Penalty.serious_points)), 0))
         .join(Ruling, Ruling.id == Penalty.ruling_id)
         .where(Penalty.active.is_(True), effective >= carry_from, effective < end)
         .group_by(Penalty.party_id))
    if party_ids is not None:
        ids = sorted(set(party_ids))
        if not ids:
            return {}
        q = q.where(Penalty.party_id.in_(ids))
    return {pid: YearPoints(int(own) + int(carried), int(carried))
            for pid, own, carried in db.session.execute(q)}


def year_points(party_id: int, year: int | None = None) -> YearPoints:
    """``(points, serious_carried)`` of one party for ``year`` (default: this year)."""
    year = current_year() if year is None else year
    return points_by_party([party_id], year).get(party_id, YearPoints())


def ladder(points: int) -> list[tuple[Step, bool]]:
    """The thresholds, each with whether ``points`` reach it."""
    return [(step, points >= step.points) for step in thresholds()]


def sanctions_of(party_id: int) -> list[Sanction]:
    """The party's sanctions, newest year first, gravest first within a year."""
    rows = db.session.scalars(select(Sanction).where(Sanction.party_id == party_id)).all()
    return sorted(rows, key=lambda s: (-s.year, -GRAVITY.index(s.level), -s.id))


def new_business_condition(flag: bool):
    """SQL condition on ``Party`` matching ``Party.new_business == flag``."""
    ok = and_(Party.active.is_(True), Party.sanction.not_in(NO_NEW_BUSINESS))
    return ok if flag else or_(Party.active.is_(False), Party.sanction.in_(NO_NEW_BUSINESS))


# --- reviewing -----------------------------------------------------------------------------------

def review_sanctions(party_ids: Iterable[int]) -> list[Sanction]:
    """Re-check the sanctions of ``party_ids`` after their penalties changed: trigger what this
    year's points reach, lift what the points no longer reach, keep ``Party.sanction``. Returns
    the sanctions triggered."""
    ids = sorted(set(party_ids))
    if not ids:
        return []
    q = select(Party).where(Party.id.in_(ids)).order_by(Party.id)
    if db.session.get_bind().dialect.name == "postgresql":
        # one review of a party at a time; NO KEY UPDATE: rows that merely refer to the party
        # (an acknowledgement, a violation) take KEY SHARE locks and must not wait on it
        # populate_existing: the rows as locked, not as this session read them earlier (a
        # ruling on the same party committed meanwhile has moved its version on)
        q = q.with_for_update(key_share=True).execution_options(populate_existing=True)
    parties = db.session.scalars(q).all()
    year = current_year()
    steps = thresholds()
    existing = db.session.scalars(select(Sanction).where(Sanction.party_id.in_(ids))).all()
    points = {year: points_by_party(ids, year)}
    for y in {s.year for s in existing if s.active} - {year}:
        points[y] = points_by_party({s.party_id for s in existing if s.year == y}, y)
    triggered = []
    for party in parties:
        mine = [s for s in existing if s.party_id == party.id]
        for s in mine:
            now_points = points[s.year].get(party.id, YearPoints())
            if s.active and now_points.points < s.threshold:
                _lift_automatically(s, party, now_points)
        reached = points[year].get(party.id, YearPoints())
        have = {s.level for s in mine if s.year == year}
        for step in steps:
            if reached.points >= step.points and step.level not in have:
                triggered.append(_trigger(party, year, step, reached))
        _sync_party(party)
    return triggered


def review_all() -> list[Sanction]:
    """Review every party (the demo data, or after the thresholds were changed)."""
    return review_sanctions(db.session.scalars(select(Party.id)).all())


def _trigger(party: Party, year: int, step: Step, reached: YearPoints) -> Sanction:
    sanction = Sanction(party_id=party.id, year=year, level=step.level, threshold=step.points,
                        points=reached.points, triggered_at=utcnow())
    db.session.add(sanction)
    db.session.flush()
    assigned = _assign_retraining(party, year) if step.level is SanctionLevel.RETRAINING else []
    notified = _notify_managers(party, sanction)
    record("sanction.triggered", sanction, after={
        **sanction.snapshot(), "party_code": party.code,
        "serious_carried": reached.serious_carried, "courses_assigned": assigned,
        "notified": notified})
    return sanction


def _assign_retraining(party: Party, year: int) -> list[dict]:
    """The party's staff get the published courses on the standards it was penalised under
    this year, due in ``RETRAINING_DUE_DAYS``; returns what was assigned."""
    from portal.training.assignments import assign_course
    from portal.training.models import Course, CourseStandard, CourseStatus

    penalised = (select(Violation.standard_id)
                 .join(Penalty, and_(Penalty.case_id == Violation.case_id,
                                     Penalty.party_id == Violation.party_id))
                 .join(Ruling, Ruling.id == Penalty.ruling_id)
                 .where(Penalty.party_id == party.id, Penalty.active.is_(True),
                        Ruling.effective_at >= _year_start(year),
                        Ruling.effective_at < _year_start(year + 1),
                        Violation.standard_id.is_not(None)))
    courses = db.session.scalars(select(Course).where(
        Course.status == CourseStatus.PUBLISHED,
        Course.id.in_(select(CourseStandard.course_id)
                      .where(CourseStandard.standard_id.in_(penalised))))
        .order_by(Course.code)).all()
    due = local_today() + timedelta(days=RETRAINING_DUE_DAYS)
    assigned = []
    for course in courses:
        with force_locale(current_app.config["BABEL_DEFAULT_LOCALE"]):
            note = _("Mandatory retraining: %(code)s reached the retraining threshold of its "
                     "points for %(year)d.", code=party.code, year=year)
        _assignment, made = assign_course(course, due_on=due, party_codes=party.code, note=note)
        assigned.append({"course": course.code, "tasks": made, "due_on": due})
    return assigned


def _notify_managers(party: Party, sanction: Sanction) -> list[str]:
    """One email per manager of the party, keyed by sanction and person (never sent twice)."""
    managers = db.session.scalars(select(User).where(
        User.party_id == party.id, User.active.is_(True), User.email != "",
        User.role.in_([Role.PARTY_MANAGER, Role.DEPARTMENT_MANAGER])).order_by(User.id)).all()
    base = current_app.config["PORTAL_BASE_URL"].rstrip("/")

    def subject() -> str:
        return _("%(party)s: %(level)s (%(points)d points in %(year)d)", party=party.code,
                 level=level_label(sanction.level), points=sanction.points, year=sanction.year)

    def body() -> str:
        text = _("%(party)s has %(points)d points in %(year)d, reaching the threshold of "
                 "%(threshold)d for: %(level)s.", party=party.code, points=sanction.points,
                 year=sanction.year, threshold=sanction.threshold,
                 level=level_label(sanction.level))
        if sanction.level.value in NO_NEW_BUSINESS:
            text += "\n\n" + _("The party receives no new business. Its staff can still "
                               "sign in, see their cases and appeal.")
        return text + "\n\n" + _("Your party's points and sanctions: %(url)s",
                                  url=f"{base}/parties/standing")

    for user in managers:
        email_user(user, key=f"sanction-{sanction.id}:{user.id}", subject=subject, body=body)
    return [u.username for u in managers]


def _lift_automatically(sanction: Sanction, party: Party, now_points: YearPoints) -> None:
    before = sanction.snapshot()
    with force_locale(current_app.config["BABEL_DEFAULT_LOCALE"]):
        reason = _("Lifted automatically: the points for %(year)d are now %(points)d, below "
                   "the threshold of %(threshold)d (an appeal or a correction took points "
                   "back).", year=sanction.year, points=now_points.points,
                   threshold=sanction.threshold)
    sanction.lifted_at, sanction.lift_reason = utcnow(), reason
    record("sanction.lifted", sanction, before=before, after={
        **sanction.snapshot(), "party_code": party.code, "automatic": True,
        "points_now": now_points.points})


def lift_sanction(sanction: Sanction, user, reason: str) -> Sanction:
    """CS lifts a standing sanction by hand (e.g. a suspension after the retraining was
    passed), with a reason. The level is not triggered again that year."""
    if not allowed(user, Perm.MANAGE_SANCTIONS):
        raise ServiceError(_("Only a CS supervisor, administrator or director may lift a "
                             "sanction."))
    if not sanction.active:
        raise ServiceError(_("This sanction was already lifted on %(when)s.",
                             when=sanction.lifted_at.date().isoformat()))
    text = required_reason(reason, _("Say why the sanction is lifted: the party and the "
                                      "auditors read it."), REASON_MAX)
    before = sanction.snapshot()
    sanction.lifted_at, sanction.lifted_by_id, sanction.lift_reason = utcnow(), user.id, text
    record("sanction.lifted", sanction, before=before, after={
        **sanction.snapshot(), "party_code": sanction.party.code, "automatic": False,
        "by": user.username}, actor=user)
    _sync_party(sanction.party)
    return sanction


def _sync_party(party: Party) -> None:
    """``Party.sanction``: the gravest standing level of any year, or ""."""
    db.session.flush()
    levels = db.session.scalars(select(Sanction.level).where(
        Sanction.party_id == party.id, Sanction.lifted_at.is_(None))).all()
    gravest = max(levels, key=GRAVITY.index).value if levels else ""
    if party.sanction == gravest:
        return
    before = {"sanction": party.sanction, "new_business": party.new_business}
    party.sanction = gravest
    record("party.sanction_changed", party, before=before,
           after={"code": party.code, "sanction": gravest, "new_business": party.new_business})
