"""Acknowledgement campaigns: who must read which published version, by when, and who did.

A *task* (``AckTask``) exists for every active member of staff of every party in a standard's
audience, for each *live* version (the one in force and one scheduled to follow it). Tasks are
made in bulk when a version is published (``open_campaign``), when someone joins a party of the
audience (``assign_open_tasks``) or when the audience grows (``sync_audience``); they close when
the person acknowledges, and are cancelled when their version is superseded or retired or the
person's party leaves the audience. Coverage is counted from the tasks, in SQL, so the pages stay
fast with tens of thousands of them. The caller commits, as with every service.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.orm import selectinload

from portal.accounts.models import User
from portal.accounts.services import active_staff
from portal.core.audit import record
from portal.core.db import utcnow
from portal.core.errors import ServiceError
from portal.core.notify import email_locale
from portal.core.reminders import queue_grouped
from portal.core.tasks import Totals, per_party, totals_by
from portal.core.timeutil import local_today
from portal.extensions import db
from portal.parties.models import Party
from portal.standards.models import (
    Acknowledgement,
    AckTask,
    Standard,
    StandardVersion,
    TaskStatus,
    VersionStatus,
)

# --- who is in the audience ---------------------------------------------------------------


def audience_filter(standard: Standard):
    """SQL condition on ``Party`` for the parties a standard is addressed to."""
    kinds, party_ids = standard.audience_kinds, standard.audience_party_ids
    conds = []
    if kinds:
        conds.append(Party.kind.in_(kinds))
    if party_ids:
        conds.append(Party.id.in_(party_ids))
    return or_(*conds) if conds else Party.id.is_(None)


def audience_staff(standard: Standard, user_id: int | None = None):
    """(user id, party id) of the active staff of active parties in the audience."""
    q = (select(User.id, User.party_id).join(Party, User.party_id == Party.id)
         .where(audience_filter(standard), User.active.is_(True), Party.active.is_(True)))
    if user_id is not None:
        q = q.where(User.id == user_id)
    return db.session.execute(q).all()


def default_due_on(version: StandardVersion, today: date | None = None) -> date:
    """Two weeks (ACK_DUE_DAYS) from today, or the effective date if that is later."""
    today = today or local_today()
    return max(today + timedelta(days=current_app.config["ACK_DUE_DAYS"]),
               version.effective_from)


def joiner_due_on(version: StandardVersion, today: date | None = None) -> date:
    """For someone who joins a running campaign: its date, but never less time than a
    campaign of their own would give them."""
    return max(version.ack_due_on or version.effective_from, default_due_on(version, today))


# --- making and closing tasks -------------------------------------------------------------


@dataclass
class CampaignResult:
    created: int = 0
    carried_over: int = 0
    cancelled: int = 0


def _covering_acks(version: StandardVersion) -> dict[int, int]:
    """user id -> acknowledgement id, for acknowledgements that count for ``version``."""
    from portal.standards.services import covering_versions

    rows = db.session.execute(
        select(Acknowledgement.user_id, func.max(Acknowledgement.id))
        .where(Acknowledgement.standard_version_id.in_(covering_versions(version)))
        .group_by(Acknowledgement.user_id)).all()
    return dict(rows)


def _make_tasks(version: StandardVersion, due_on: date, staff, now) -> CampaignResult:
    """Insert the tasks ``staff`` (user id, party id) do not have yet for ``version``."""
    result = CampaignResult()
    if not staff:
        return result
    have = set(db.session.scalars(select(AckTask.user_id).where(
        AckTask.standard_version_id == version.id)))
    acked = _covering_acks(version)
    rows = []
    for user_id, party_id in staff:
        if user_id in have:
            continue
        ack_id = acked.get(user_id)
        rows.append({"standard_version_id": version.id, "user_id": user_id,
                     "party_id": party_id, "due_on": due_on, "created_at": now,
                     "status": TaskStatus.DONE if ack_id else TaskStatus.OPEN,
                     "acknowledgement_id": ack_id, "done_at": now if ack_id else None,
                     "carried_over": bool(ack_id), "cancelled_reason": ""})
        result.created += 1
        result.carried_over += bool(ack_id)
    if rows:
        db.session.execute(insert(AckTask), rows)
    return result


def cancel_open_tasks(version_ids, reason: str, *, user_ids=None, party_ids=None) -> int:
    """Cancel open tasks of these versions (optionally only some people or parties)."""
    if not version_ids:
        return 0
    q = (update(AckTask).where(AckTask.standard_version_id.in_(list(version_ids)),
                               AckTask.status == TaskStatus.OPEN)
         .values(status=TaskStatus.CANCELLED, cancelled_reason=reason)
         .execution_options(synchronize_session=False))
    if user_ids is not None:
        q = q.where(AckTask.user_id.in_(list(user_ids)))
    if party_ids is not None:
        q = q.where(AckTask.party_id.in_(list(party_ids)))
    return db.session.execute(q).rowcount or 0


def open_campaign(version: StandardVersion, due_on: date) -> CampaignResult:
    """On publication: a task for each person in the audience, due on ``due_on``.

    People whose acknowledgement still covers the text (a non-material change) get a task that
    is already done ("carried over"), so coverage counts them without asking them again.
    """
    now = utcnow()
    result = _make_tasks(version, due_on, audience_staff(version.standard), now)
    record("ack_campaign.opened", version, after={
        "label": version.label, "due_on": due_on, "tasks": result.created,
        "carried_over": result.carried_over, "material": version.material})
    return result


def assign_open_tasks(user) -> CampaignResult:
    """A person who joins a party inherits the tasks of every live version addressed to it."""
    result = CampaignResult()
    if user.party_id is None or not user.active:
        return result
    now = utcnow()
    party = user.party or db.session.get(Party, user.party_id)
    for std in db.session.scalars(select(Standard)):
        if not std.addresses(party):
            continue
        for version in std.live_versions:
            made = _make_tasks(version, joiner_due_on(version), [(user.id, user.party_id)], now)
            result.created += made.created
            result.carried_over += made.carried_over
    if result.created:
        record("ack_tasks.inherited", user, after={"user": user.username,
                                                   "party_id": user.party_id,
                                                   "tasks": result.created})
    return result


def sync_audience(standard: Standard) -> CampaignResult:
    """After the audience changed: tasks for newcomers, open tasks of those who left cancelled."""
    result = CampaignResult()
    now = utcnow()
    staff = audience_staff(standard)
    in_audience = {party_id for _u, party_id in staff}
    for version in standard.live_versions:
        made = _make_tasks(version, joiner_due_on(version), staff, now)
        task_parties = set(db.session.scalars(select(AckTask.party_id).distinct().where(
            AckTask.standard_version_id == version.id, AckTask.status == TaskStatus.OPEN)))
        gone = task_parties - in_audience
        result.created += made.created
        result.carried_over += made.carried_over
        result.cancelled += cancel_open_tasks([version.id], "left_audience", party_ids=gone)
    return result


def close_task(version: StandardVersion, user, ack: Acknowledgement) -> None:
    """The person acknowledged: their task is done (one is made if they had none)."""
    now = utcnow()
    task = db.session.scalar(select(AckTask).where(AckTask.standard_version_id == version.id,
                                                   AckTask.user_id == user.id))
    if task is None:
        db.session.add(AckTask(standard_version_id=version.id, user_id=user.id,
                               party_id=user.party_id, due_on=local_today(),
                               status=TaskStatus.DONE, done_at=now, acknowledgement=ack))
    elif task.status is not TaskStatus.DONE:
        task.status, task.done_at, task.acknowledgement = TaskStatus.DONE, now, ack
        task.cancelled_reason = ""


def take_effect(today: date | None = None) -> int:
    """Versions whose date has come replace the ones before them: the older published ones
    become superseded and their open tasks are cancelled. Idempotent; run by the worker daily
    and after every publication. Returns how many versions were superseded."""
    today = today or local_today()
    count = 0
    published = db.session.scalars(
        select(StandardVersion).where(StandardVersion.status == VersionStatus.PUBLISHED)
        .order_by(StandardVersion.standard_id, StandardVersion.number)).all()
    in_force: dict[int, StandardVersion] = {}
    for v in published:
        if v.effective_from <= today:
            in_force[v.standard_id] = v  # the newest in force wins (ordered by number)
    for v in published:
        current = in_force.get(v.standard_id)
        if current is not None and v.number < current.number:
            v.status = VersionStatus.SUPERSEDED
            cancelled = cancel_open_tasks([v.id], "superseded")
            record("standard_version.superseded", v, before={"status": VersionStatus.PUBLISHED},
                   after={"status": VersionStatus.SUPERSEDED, "by_version_id": current.id,
                          "open_tasks_cancelled": cancelled})
            count += 1
    return count


# --- reading: lists and coverage ----------------------------------------------------------


def _active_tasks(version_ids):
    return (select(AckTask).join(User, AckTask.user_id == User.id)
            .where(AckTask.standard_version_id.in_(list(version_ids)),
                   AckTask.status != TaskStatus.CANCELLED, User.active.is_(True)))


def totals_by_version(version_ids, today: date | None = None, *,
                      party_id: int | None = None) -> dict[int, Totals]:
    """Task counts per version (optionally of one party), in one grouped query."""
    scope = [AckTask.standard_version_id.in_(list(version_ids))]
    if party_id is not None:
        scope.append(AckTask.party_id == party_id)
    return totals_by(AckTask, AckTask.standard_version_id, scope, today or local_today())


def totals(version_ids, today: date | None = None, *, party_id: int | None = None) -> Totals:
    """Task counts summed over ``version_ids``."""
    parts = totals_by_version(version_ids, today, party_id=party_id).values()
    return Totals(sum(t.total for t in parts), sum(t.done for t in parts),
                  sum(t.overdue for t in parts))


@dataclass
class PartyCoverage:
    party: Party
    totals: Totals


def coverage_by_party(version: StandardVersion, today: date | None = None, *,
                      kind: str | None = None, search: str = "", only_incomplete: bool = False,
                      page: int = 1, per_page: int = 50) -> tuple[list[PartyCoverage], int]:
    """One row per party of the audience, least covered first; and how many parties match."""
    rows, count = per_party(AckTask, [AckTask.standard_version_id == version.id],
                            today or local_today(), kind=kind, search=search,
                            only_incomplete=only_incomplete, page=page, per_page=per_page)
    return [PartyCoverage(party, t) for party, t in rows], count


def overdue_tasks(version_ids, today: date | None = None, *, party_id: int | None = None,
                  page: int = 1, per_page: int = 50) -> tuple[list[AckTask], int]:
    today = today or local_today()
    q = _active_tasks(version_ids).where(AckTask.status == TaskStatus.OPEN,
                                         AckTask.due_on < today)
    if party_id is not None:
        q = q.where(AckTask.party_id == party_id)
    count = db.session.scalar(select(func.count()).select_from(q.subquery()))
    tasks = db.session.scalars(
        q.join(Party, AckTask.party_id == Party.id)
        .options(selectinload(AckTask.user), selectinload(AckTask.party),
                 selectinload(AckTask.standard_version))
        .order_by(AckTask.due_on, Party.code, User.username)
        .limit(per_page).offset((page - 1) * per_page)).all()
    return tasks, count


def export_rows(version_ids, *, party_id: int | None = None, overdue_only: bool = False,
                today: date | None = None):
    """Every (non-cancelled) task with its person, party and acknowledgement, for CSV."""
    today = today or local_today()
    q = (_active_tasks(version_ids).join(Party, AckTask.party_id == Party.id)
         .options(selectinload(AckTask.user), selectinload(AckTask.party),
                  selectinload(AckTask.acknowledgement),
                  selectinload(AckTask.standard_version))
         .order_by(Party.code, User.username, AckTask.standard_version_id))
    if party_id is not None:
        q = q.where(AckTask.party_id == party_id)
    if overdue_only:
        q = q.where(AckTask.status == TaskStatus.OPEN, AckTask.due_on < today)
    return db.session.execute(q.execution_options(yield_per=1000)).scalars()


def tasks_of(user, *, statuses=(TaskStatus.OPEN,)) -> list[AckTask]:
    return db.session.scalars(
        select(AckTask).where(AckTask.user_id == user.id, AckTask.status.in_(statuses))
        .options(selectinload(AckTask.standard_version).selectinload(StandardVersion.standard))
        .order_by(AckTask.status, AckTask.due_on, AckTask.id)).all()


def team_matrix(party_id: int):
    """A party's staff and their tasks on the live versions addressed to the party."""
    staff = active_staff(party_id)
    tasks = db.session.scalars(
        select(AckTask).where(AckTask.party_id == party_id,
                              AckTask.status != TaskStatus.CANCELLED)
        .options(selectinload(AckTask.standard_version).selectinload(StandardVersion.standard),
                 selectinload(AckTask.acknowledgement))).all()
    versions = sorted({t.standard_version for t in tasks
                       if t.standard_version.status is VersionStatus.PUBLISHED},
                      key=lambda v: (v.standard.code, v.number))
    cells = {(t.user_id, t.standard_version_id): t for t in tasks}
    return staff, versions, cells


# --- reminders ----------------------------------------------------------------------------


def schedule_reminders(today: date | None = None) -> dict[str, int]:
    """Queue one email per person for tasks due within ACK_REMIND_DAYS_BEFORE days, and one
    for tasks now overdue. Each task is reminded once of each; the mark on the task and the
    outbox row are written in the same transaction, so a reminder is never queued twice."""
    today = today or local_today()
    before = current_app.config["ACK_REMIND_DAYS_BEFORE"]
    base = (select(AckTask).join(User, AckTask.user_id == User.id)
            .join(StandardVersion, AckTask.standard_version_id == StandardVersion.id)
            .where(AckTask.status == TaskStatus.OPEN, User.active.is_(True), User.email != "",
                   StandardVersion.status == VersionStatus.PUBLISHED)
            .options(selectinload(AckTask.user),
                     selectinload(AckTask.standard_version).selectinload(StandardVersion.standard))
            .order_by(AckTask.user_id, AckTask.due_on, AckTask.id))
    due_soon = db.session.scalars(base.where(
        AckTask.reminded_before_at.is_(None), AckTask.due_on >= today,
        AckTask.due_on <= today + timedelta(days=before))).all()
    overdue = db.session.scalars(base.where(
        AckTask.reminded_overdue_at.is_(None), AckTask.due_on < today)).all()
    return {"due_soon": queue_grouped(due_soon, prefix="ack", kind="due_soon",
                                      mark="reminded_before_at",
                                      text=lambda u, g: _reminder_text(u, g, "due_soon")),
            "overdue": queue_grouped(overdue, prefix="ack", kind="overdue",
                                     mark="reminded_overdue_at",
                                     text=lambda u, g: _reminder_text(u, g, "overdue"))}


def _reminder_text(user, tasks: list[AckTask], kind: str) -> tuple[str, str]:
    base_url = current_app.config["PORTAL_BASE_URL"].rstrip("/")
    locale = email_locale(user)
    if kind == "overdue":
        subject = _("Overdue: %(n)d service standard(s) still to acknowledge", n=len(tasks))
        intro = _("The following standards were due to be read and acknowledged and are "
                  "now overdue:")
    else:
        subject = _("Reminder: %(n)d service standard(s) to acknowledge by %(date)s",
                    n=len(tasks), date=min(t.due_on for t in tasks).isoformat())
        intro = _("Please read and acknowledge the following standards before their due "
                  "date:")
    lines = [_("Hello %(name)s,", name=user.display_name), "", intro, ""]
    for t in tasks:
        v = t.standard_version
        lines.append(f"- {v.label} {v.standard.title(locale)} · "
                     + _("due %(date)s", date=t.due_on.isoformat()))
    lines += ["", _("Open your reading list: %(url)s", url=f"{base_url}/standards/to-read"),
              "", _("Service Standards Portal")]
    return f"[{current_app.config['PORTAL_NAME']}] {subject}", "\n".join(lines)


def check_due_on(due_on: date | None, today: date | None = None) -> None:
    today = today or local_today()
    if due_on is not None and due_on < today:
        raise ServiceError(_("The acknowledgement due date cannot be in the past."),
                           "ack_due_on")


def task_of(version: StandardVersion, user) -> AckTask | None:
    return db.session.scalar(select(AckTask).where(AckTask.standard_version_id == version.id,
                                                   AckTask.user_id == user.id))


# --- change impact ------------------------------------------------------------------------


@dataclass
class CaseImpact:
    case: object
    violations: list
    changes: dict  # clause number -> added | removed | changed | same (against the new text)


@dataclass
class Impact:
    replaces: StandardVersion | None
    cases: list[CaseImpact]
    parties: list[PartyCoverage]
    parties_count: int
    totals: Totals
    audience_parties: int
    audience_staff: int


def change_impact(version: StandardVersion, *, limit: int = 100) -> Impact:
    """What a version changes when it takes effect: open cases whose violations cite an older
    version of the standard (with what became of each clause), and who has not acknowledged."""
    from portal.cases.models import Case, CaseStatus, Violation
    from portal.standards.diff import diff_versions
    from portal.standards.models import Clause

    std = version.standard
    older = [v for v in std.versions if v.is_published and v.number < version.number]
    replaces = std.current_version if std.current_version is not version else (
        older[-1] if older else None)
    older_ids = [v.id for v in older]
    cases = []
    if older_ids:
        open_cases = db.session.scalars(
            select(Case).where(Case.status == CaseStatus.OPEN, Case.violations.any(
                Violation.clause.has(Clause.standard_version_id.in_(older_ids))))
            .options(selectinload(Case.violations)).order_by(Case.id).limit(limit)).all()
        diffs = {}
        for case in open_cases:
            cited = [vi for vi in case.violations
                     if vi.clause.standard_version_id in older_ids]
            changes = {}
            for vi in cited:
                old = vi.clause.standard_version
                if old.id not in diffs:
                    diffs[old.id] = {r.number: r.change for r in diff_versions(old, version)}
                changes[vi.clause.number] = diffs[old.id].get(vi.clause.number, "removed")
            cases.append(CaseImpact(case, cited, changes))
    staff = audience_staff(std)
    if version.is_published:
        parties, count = coverage_by_party(version, only_incomplete=True, per_page=limit)
        tot = totals([version.id])
    else:
        parties, count, tot = [], 0, Totals()
    return Impact(replaces, cases, parties, count, tot,
                  len({p for _u, p in staff}), len(staff))
