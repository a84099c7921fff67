"""Operations on standards: drafting, publishing, acknowledging. The caller commits."""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import flag_modified

from portal.core.audit import record
from portal.core.db import utcnow
from portal.core.errors import ConflictError, ServiceError
from portal.core.money import MoneyError, to_money
from portal.core.permissions import ROLE_PERMISSIONS, Perm, allowed, party_scope
from portal.extensions import db
from portal.parties.models import Party, PartyKind
from portal.standards import campaigns
from portal.standards.models import (
    Acknowledgement,
    Clause,
    PenaltyRule,
    Standard,
    StandardAudience,
    StandardVersion,
    VersionStatus,
)
from portal.standards.rules import RuleKind, parse_check, parse_rules

CODE_RE = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)*$")
CLAUSE_NO_RE = re.compile(r"^\d+(\.\d+)*$")


def create_standard(*, code: str, title_zh: str, title_en: str = "", category: str = "",
                    summary: str = "", audience: list[str], effective_from: date,
                    party_codes: str | list[str] = "", owner=None, author=None,
                    ack_requires_training: bool = False) -> Standard:
    """A new standard with an empty draft version 1. ``owner`` answers for it (default: the
    author); ``audience`` lists party kinds, ``party_codes`` names single parties."""
    code = (code or "").strip().upper()
    if not CODE_RE.match(code) or len(code) > 32:
        raise ServiceError(_("Code must look like CAR-DLV: capital letters and digits in "
                             "groups joined by '-'."), "code")
    if db.session.scalar(select(Standard.id).where(Standard.code == code)):
        raise ServiceError(_("A standard with code %(code)s already exists.", code=code), "code")
    if not (title_zh or "").strip():
        raise ServiceError(_("Chinese title is required."), "title_zh")
    kinds, parties = _audience(audience, party_codes)
    owner = owner or author
    _check_owner(owner)
    std = Standard(code=code, title_zh=title_zh.strip(), title_en=(title_en or "").strip(),
                   category=(category or "").strip(), summary=(summary or "").strip(),
                   owner_id=getattr(owner, "id", None),
                   ack_requires_training=bool(ack_requires_training),
                   audiences=[StandardAudience(party_kind=k) for k in kinds]
                   + [StandardAudience(party_id=p.id) for p in parties])
    db.session.add(std)
    version = StandardVersion(standard=std, number=1, effective_from=effective_from,
                              author_id=getattr(author, "id", None))
    db.session.add(version)
    record("standard.created", std, after={**_snapshot(std, kinds, parties)})
    record("standard_version.drafted", version, after={"standard": code, "number": 1})
    return std


def update_standard(std: Standard, *, title_zh: str, title_en: str = "", category: str = "",
                    summary: str = "", audience: list[str], party_codes: str | list[str] = "",
                    owner=None, expected: int | None = None,
                    ack_requires_training: bool | None = None) -> dict:
    """Edit what describes a standard (never its published text). A changed audience takes
    effect at once: newcomers get tasks for the live versions, those who left lose open ones."""
    if expected is not None and expected != std.version:
        raise ConflictError(_("Someone else changed this standard while you were editing it. "
                              "Reload the page to see their change, then try again."))
    if not (title_zh or "").strip():
        raise ServiceError(_("Chinese title is required."), "title_zh")
    kinds, parties = _audience(audience, party_codes)
    _check_owner(owner)
    before = _snapshot(std, std.audience_kinds, std.audience_parties)
    std.title_zh, std.title_en = title_zh.strip(), (title_en or "").strip()
    std.category, std.summary = (category or "").strip(), (summary or "").strip()
    std.owner_id = getattr(owner, "id", None)
    if ack_requires_training is not None:
        std.ack_requires_training = bool(ack_requires_training)
    want = {("kind", k) for k in kinds} | {("party", p.id) for p in parties}
    have = {(("kind", a.party_kind) if a.party_kind else ("party", a.party_id)): a
            for a in std.audiences}
    for key, row in have.items():
        if key not in want:
            std.audiences.remove(row)
    for kind, value in want - set(have):
        std.audiences.append(StandardAudience(party_kind=value) if kind == "kind"
                             else StandardAudience(party_id=value))
    db.session.flush()
    db.session.expire(std, ["audiences"])
    after = _snapshot(std, kinds, parties)
    if before == after:
        return {"changed": False}
    flag_modified(std, "title_zh")  # an audience change alone must bump the row version too
    db.session.flush()
    record("standard.updated", std, before=before, after=after)
    synced = campaigns.sync_audience(std) if before["audience"] != after["audience"] or \
        before["parties"] != after["parties"] else campaigns.CampaignResult()
    if synced.created or synced.cancelled:
        record("ack_tasks.audience_synced", std, after={
            "created": synced.created, "carried_over": synced.carried_over,
            "cancelled": synced.cancelled})
    return {"changed": True, "created": synced.created, "cancelled": synced.cancelled}


def _snapshot(std: Standard, kinds, parties) -> dict:
    return {"code": std.code, "title_zh": std.title_zh, "title_en": std.title_en,
            "category": std.category, "summary": std.summary, "owner_id": std.owner_id,
            "audience": [k.value for k in kinds], "parties": sorted(p.code for p in parties),
            "ack_requires_training": std.ack_requires_training}


def _check_owner(owner) -> None:
    if owner is not None and not allowed(owner, Perm.AUTHOR_STANDARDS):
        raise ServiceError(_("The owner must be an active CS supervisor or administrator."),
                           "owner_id")


def possible_owners() -> list:
    """Active users who may own a standard: those who may author standards."""
    from portal.accounts.models import User

    roles = [r for r, perms in ROLE_PERMISSIONS.items() if Perm.AUTHOR_STANDARDS in perms]
    return db.session.scalars(select(User).where(User.role.in_(roles), User.active.is_(True))
                              .order_by(User.display_name)).all()


def parse_party_codes(party_codes: str | list[str]) -> list[Party]:
    """``"C001, M002"`` (commas, spaces, Chinese commas or new lines) -> those parties."""
    if isinstance(party_codes, str):
        codes = [c for c in re.split(r"[\s,,、;;]+", party_codes.strip().upper()) if c]
    else:
        codes = [c.strip().upper() for c in party_codes if c.strip()]
    codes = list(dict.fromkeys(codes))
    if not codes:
        return []
    found = {p.code.upper(): p for p in db.session.scalars(
        select(Party).where(func.upper(Party.code).in_(codes)))}
    unknown = [c for c in codes if c not in found]
    if unknown:
        raise ServiceError(_("No party with code %(codes)s.", codes=", ".join(unknown)),
                           "party_codes")
    return [found[c] for c in codes]


def _audience(audience: list[str], party_codes) -> tuple[list[PartyKind], list[Party]]:
    parties = parse_party_codes(party_codes or "")
    if not audience and not parties:
        raise ServiceError(_("Choose at least one audience: a kind of party or named "
                             "parties."), "audience")
    kinds = _audience_kinds(audience) if audience else []
    # A party already covered by its kind needs no naming.
    parties = [p for p in parties if p.kind not in kinds]
    return kinds, parties


def _audience_kinds(audience: list[str]) -> list[PartyKind]:
    try:
        return sorted({PartyKind(a) for a in audience}, key=lambda k: list(PartyKind).index(k))
    except ValueError:
        raise ServiceError(_("Unknown audience: %(value)s", value=audience), "audience") from None


NO_CHECK = "none"   # a clause the rule engine must not check, whatever its rules imply


def add_clause(version: StandardVersion, *, number: str, title_zh: str, title_en: str = "",
               body: str = "", fine: Decimal | str | None = None,
               rules: list[dict] | None = None, check: str | None = None) -> Clause:
    """Add a clause to a draft. ``fine`` is the short form of one fixed_fine rule; ``rules``
    are rule dicts as in the standards files (checked by ``standards.rules.parse_rules``);
    ``check`` says which ticket facts the rule engine checks it by (default: what the rules
    imply, see ``standards.rules.default_check``; ``NO_CHECK``: none)."""
    if version.is_frozen:
        raise ServiceError(_("Only a draft can be edited; a version in review or published "
                             "never changes: start a new draft."))
    number = (number or "").strip()
    if not CLAUSE_NO_RE.match(number):
        raise ServiceError(_("Clause number must look like 3 or 3.1."), "number")
    if any(c.number == number for c in version.clauses):
        raise ServiceError(_("Clause %(n)s already exists in this version.", n=number), "number")
    if not (title_zh or "").strip():
        raise ServiceError(_("Chinese title is required."), "title_zh")
    rule_items = list(rules or [])
    if fine not in (None, ""):
        try:
            amount = to_money(fine)
        except MoneyError:
            raise ServiceError(_("Fine must be an amount in yuan, e.g. 500 or 500.00."),
                               "fine") from None
        if amount <= 0:
            raise ServiceError(_("Fine must be greater than zero."), "fine")
        rule_items.insert(0, {"kind": RuleKind.FIXED_FINE.value, "amount": str(amount)})
    parsed = parse_rules(rule_items)
    clause = Clause(standard_version=version, number=number, title_zh=title_zh.strip(),
                    title_en=(title_en or "").strip(), body=(body or "").strip(),
                    position=len(version.clauses),
                    check="" if check == NO_CHECK else parse_check(check, parsed),
                    rules=[PenaltyRule.from_parsed(p) for p in parsed])
    db.session.add(clause)
    record("clause.added", clause, after={
        "version_id": version.id, "number": number, "title_zh": clause.title_zh,
        "rules": [r.describe_canonical() for r in clause.rules], "check": clause.check})
    return clause


def new_draft(standard: Standard, effective_from: date, change_note: str = "", *,
              material: bool = True, author=None) -> StandardVersion:
    """A new draft copying the clauses of the current published version.

    ``material``: the change binds the parties anew, so everyone in the audience must
    acknowledge it again; a non-material change (a typo) keeps their acknowledgements.
    """
    if any(v.status in (VersionStatus.DRAFT, VersionStatus.IN_REVIEW, VersionStatus.APPROVED)
           for v in standard.versions):
        raise ServiceError(_("This standard already has a version on its way (draft, in review "
                             "or approved); finish that one first."))
    base = standard.current_version
    number = max((v.number for v in standard.versions), default=0) + 1
    draft = StandardVersion(standard=standard, number=number, effective_from=effective_from,
                            change_note=(change_note or "").strip(), material=material,
                            author_id=getattr(author, "id", None))
    db.session.add(draft)
    if base:
        for c in base.clauses:
            draft.clauses.append(Clause(
                number=c.number, title_zh=c.title_zh, title_en=c.title_en, body=c.body,
                position=c.position, check=c.check,
                rules=[r.copy() for r in c.rules]))
    record("standard_version.drafted", draft, after={"standard": standard.code,
                                                     "number": number, "material": material})
    return draft


# --- review: draft -> in review -> approved (or back to draft) -> published ---------------

def check_lock(version: StandardVersion, expected: int | None) -> None:
    """Optimistic lock for forms: ``expected`` is the row version the user's page showed."""
    if expected is not None and expected != version.version:
        raise ConflictError(_("Someone else changed this version while you were looking at it. "
                              "Reload the page to see what changed, then try again."))


def _move(version: StandardVersion, to: VersionStatus, action: str, **after):
    before = {"status": version.status}
    version.status = to
    record(f"standard_version.{action}", version, before=before,
           after={"status": to, "label": version.label, **after})


def submit_for_review(version: StandardVersion, user, expected: int | None = None):
    check_lock(version, expected)
    if version.status is not VersionStatus.DRAFT:
        raise ServiceError(_("Only a draft can be sent for review."))
    if not version.clauses:
        raise ServiceError(_("A version needs at least one clause before it can be reviewed."))
    version.submitted_at = utcnow()
    version.submitted_by_id = user.id
    version.rejection_reason = ""
    _move(version, VersionStatus.IN_REVIEW, "submitted")


def _four_eyes(version: StandardVersion, user) -> None:
    if user.id in {version.author_id, version.submitted_by_id}:
        raise ServiceError(_("Four eyes: the reviewer must be a different person from the "
                             "author of this version."))


def approve_version(version: StandardVersion, user, expected: int | None = None):
    check_lock(version, expected)
    if version.status is not VersionStatus.IN_REVIEW:
        raise ServiceError(_("Only a version in review can be approved."))
    _four_eyes(version, user)
    version.approved_at = utcnow()
    version.approved_by_id = user.id
    _move(version, VersionStatus.APPROVED, "approved", approved_by=user.username)


def reject_version(version: StandardVersion, user, reason: str, expected: int | None = None):
    check_lock(version, expected)
    if version.status is not VersionStatus.IN_REVIEW:
        raise ServiceError(_("Only a version in review can be rejected."))
    _four_eyes(version, user)
    if not (reason or "").strip():
        raise ServiceError(_("A rejection needs a reason."), "reason")
    version.rejection_reason = reason.strip()
    _move(version, VersionStatus.DRAFT, "rejected", reason=version.rejection_reason)


def publish_version(version: StandardVersion, user, expected: int | None = None, *,
                    review_skipped: str | None = None,
                    ack_due_on: date | None = None) -> StandardVersion:
    """Publish an approved version and open its acknowledgement campaign (a task per person
    in the audience, due on ``ack_due_on``: by default two weeks, or the effective date if
    later). A version effective today or earlier replaces the one in force at once; a later
    one is *scheduled* and replaces it on its date (``campaigns.take_effect``).

    ``review_skipped`` names why a version may go out without review (the rulebook loaded from
    files by an administrator); it is kept in the audit event."""
    check_lock(version, expected)
    if version.is_published:
        raise ServiceError(_("This version is already published."))
    if version.status is not VersionStatus.APPROVED and not review_skipped:
        raise ServiceError(_("A version must be approved by a second person before it is "
                             "published."))
    if not version.clauses:
        raise ServiceError(_("A version needs at least one clause before it can be published."))
    campaigns.check_due_on(ack_due_on)
    if any(v.is_scheduled for v in version.standard.versions if v is not version):
        raise ServiceError(_("Another version of this standard is already scheduled to take "
                             "effect; retire it first or wait until it is in force."))
    db.session.flush()
    before_status = version.status
    version.text_hash = version.compute_text_hash()
    version.status = VersionStatus.PUBLISHED
    version.published_at = utcnow()
    version.published_by_id = user.id if user else None
    version.ack_due_on = ack_due_on or campaigns.default_due_on(version)
    record("standard_version.published", version, before={"status": before_status},
           after={"status": VersionStatus.PUBLISHED, "label": version.label,
                  "effective_from": version.effective_from, "text_hash": version.text_hash,
                  "clauses": len(version.clauses), "material": version.material,
                  "ack_due_on": version.ack_due_on, "review_skipped": review_skipped})
    campaigns.take_effect()
    campaigns.open_campaign(version, version.ack_due_on)
    from portal.training.assignments import retrain

    retrain(version)  # courses teaching the standard move on; a material change retrains
    return version


def retire_version(version: StandardVersion, user, reason: str,
                   expected: int | None = None) -> StandardVersion:
    """Withdraw a published version (the standard no longer binds, or a scheduled version
    should not take effect). Its open acknowledgement tasks are cancelled."""
    check_lock(version, expected)
    if version.status is not VersionStatus.PUBLISHED:
        raise ServiceError(_("Only a published version can be retired."))
    if not (reason or "").strip():
        raise ServiceError(_("Retiring a version needs a reason."), "reason")
    version.status = VersionStatus.RETIRED
    version.retired_at = utcnow()
    version.retired_by_id = user.id
    version.retire_reason = reason.strip()
    cancelled = campaigns.cancel_open_tasks([version.id], "retired")
    record("standard_version.retired", version, before={"status": VersionStatus.PUBLISHED},
           after={"status": VersionStatus.RETIRED, "label": version.label,
                  "reason": version.retire_reason, "open_tasks_cancelled": cancelled})
    return version


# --- reading ------------------------------------------------------------------------------

def visible_standards(user):
    """Standards this user may see: all for CS and auditors, their audience's for parties."""
    q = select(Standard).options(selectinload(Standard.versions),
                                 selectinload(Standard.audiences)).order_by(Standard.code)
    scope = party_scope(user)
    if scope is not None:
        kind = db.session.scalar(select(Party.kind).where(Party.id == scope))
        q = q.where(Standard.audiences.any(or_(StandardAudience.party_kind == kind,
                                               StandardAudience.party_id == scope)))
    return db.session.scalars(q).all()


def may_see_standard(user, standard: Standard) -> bool:
    scope = party_scope(user)
    if scope is None:
        return True
    return standard.addresses(db.session.get(Party, scope))


def may_see_version(user, version: StandardVersion) -> bool:
    """Parties see only published text of their audience's standards; drafts are CS business."""
    if not may_see_standard(user, version.standard):
        return False
    return party_scope(user) is None or version.is_published


def covering_versions(version: StandardVersion) -> list[int]:
    """Ids of the versions whose acknowledgement counts for ``version``: itself and, through
    non-material changes, the released versions before it back to the last material one."""
    released = sorted((v for v in version.standard.versions
                       if v.is_published and v.number <= version.number),
                      key=lambda v: v.number, reverse=True)
    ids = [version.id]
    current = version
    for earlier in released:
        if earlier.number >= current.number:
            continue
        if current.material:
            break
        ids.append(earlier.id)
        current = earlier
    return ids


def acknowledgement_of(version: StandardVersion, user) -> Acknowledgement | None:
    return db.session.scalar(select(Acknowledgement).where(
        Acknowledgement.standard_version_id.in_(covering_versions(version)),
        Acknowledgement.user_id == user.id).order_by(Acknowledgement.acknowledged_at.desc())
        .limit(1))


def pending_acknowledgements(user) -> list:
    """The person's open acknowledgement tasks, soonest due first."""
    if party_scope(user) is None:
        return []
    return campaigns.tasks_of(user)


# --- acknowledging ------------------------------------------------------------------------

def acknowledge(version: StandardVersion, user, *, ip: str, user_agent: str) -> Acknowledgement:
    if version.status is not VersionStatus.PUBLISHED:
        raise ServiceError(_("Only a published version, in force or scheduled, can be "
                             "acknowledged."))
    if party_scope(user) is None or not may_see_standard(user, version.standard):
        raise ServiceError(_("This standard is not addressed to your organisation."))
    if acknowledgement_of(version, user) is not None:
        raise ServiceError(_("You already acknowledged %(label)s.", label=version.label))
    if version.standard.ack_requires_training:
        from portal.training.certificates import qualified_for
        from portal.training.courses import linked_courses

        if not qualified_for(user, version):
            courses = ", ".join(c.code for c in linked_courses(version.standard)) or "—"
            raise ServiceError(_("%(code)s can be acknowledged only after passing its training "
                                 "course (%(courses)s).", code=version.standard.code,
                                 courses=courses))
    text_hash = version.compute_text_hash()
    if text_hash != version.text_hash:  # the stored text no longer matches what was published
        raise ServiceError(_("The text of this version fails its integrity check; tell CS."))
    ack = Acknowledgement(standard_version=version, user_id=user.id, party_id=user.party_id,
                          acknowledged_at=utcnow(), ip=(ip or "")[:64],
                          user_agent=(user_agent or "")[:400], text_hash=text_hash)
    db.session.add(ack)
    campaigns.close_task(version, user, ack)
    record("acknowledgement.recorded", ack, after={
        "version": version.label, "user": user.username, "party_id": user.party_id,
        "ip": ack.ip, "text_hash": text_hash})
    return ack
