"""API tokens: issuing, revoking, and recognising one on a request.

A token is shown once, when it is issued; the portal keeps only its SHA-256 and a short prefix
that tells tokens apart on the admin page and in the CLI. A request's token is hashed and looked
up by that hash (a unique index), so no stored secret is ever compared byte by byte with what
the caller sent.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload, load_only

from portal.cases.models import Violation, ViolationStatus
from portal.core.audit import acting_as, record
from portal.core.db import utcnow
from portal.core.errors import ServiceError
from portal.extensions import db
from portal.intake import importer
from portal.intake.importer import Counts
from portal.intake.models import ApiToken, BatchKind, BatchSource, ImportBatch, Ticket
from portal.parties.models import Party, PartyKind
from portal.standards.models import Clause, Standard, StandardVersion

TOKEN_PREFIX = "ssp_"  # nosec B105  # the public prefix of every token, not a secret
PREFIX_CHARS = 8                         # of the random part shown; ApiToken.prefix holds 12
NAME_MAX = 80                            # ApiToken.name
LAST_USED_EVERY = timedelta(minutes=1)   # last_used_at is written at most this often


def hash_token(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def issue_token(name: str, user) -> tuple[ApiToken, str]:
    """A new token named ``name``; returns it with its plaintext, which is never stored."""
    name = (name or "").strip()
    if not name:
        raise ServiceError(_("A token needs a name, e.g. the system that will use it."),
                           "name")
    if len(name) > NAME_MAX:
        raise ServiceError(_("The name can be at most %(n)d characters long.", n=NAME_MAX), "name")
    taken = db.session.scalar(select(ApiToken.id).where(
        func.lower(ApiToken.name) == name.lower(), ApiToken.revoked_at.is_(None)))
    if taken:
        raise ServiceError(_("An active token is already named %(name)s; revoke it first or "
                             "choose another name.", name=name), "name")
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(name=name, prefix=plaintext[:len(TOKEN_PREFIX) + PREFIX_CHARS],
                     token_hash=hash_token(plaintext), created_by_id=getattr(user, "id", None))
    db.session.add(token)
    record("api_token.issued", token, after=token.snapshot(), actor=user)
    return token, plaintext


def revoke_token(token: ApiToken, user) -> ApiToken:
    if token.revoked_at is not None:
        raise ServiceError(_("Token %(name)s (%(prefix)s) is already revoked.", name=token.name,
                             prefix=token.prefix))
    before = token.snapshot()
    token.revoked_at = utcnow()
    token.revoked_by_id = getattr(user, "id", None)
    record("api_token.revoked", token, before=before, after=token.snapshot(), actor=user)
    return token


def authenticate(authorization: str | None) -> ApiToken | None:
    """The active token named by an ``Authorization: Bearer <token>`` header, else None.
    Marks it used (at most once a minute, so busy integrations do not write on every call)."""
    scheme, _sep, presented = (authorization or "").strip().partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented.startswith(TOKEN_PREFIX):
        return None
    digest = hash_token(presented)
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    if token is None or not hmac.compare_digest(token.token_hash, digest) or not token.active:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY:
        token.last_used_at = now
    return token


def list_tokens() -> list[ApiToken]:
    """Active tokens first, newest first."""
    return db.session.scalars(select(ApiToken).options(
        joinedload(ApiToken.created_by), joinedload(ApiToken.revoked_by)).order_by(
        ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc(), ApiToken.id.desc())).all()


def find_token(prefix_or_id: str) -> ApiToken:
    """The token with this id or display prefix (the CLI's way to name one)."""
    key = (prefix_or_id or "").strip()
    if key.isdigit():
        token = db.session.get(ApiToken, int(key))
        if token is not None:
            return token
    found = db.session.scalars(select(ApiToken).where(ApiToken.prefix == key)).all()
    if not found:
        raise ServiceError(_("No API token has the id or prefix %(key)s.", key=key))
    if len(found) > 1:
        raise ServiceError(_("More than one API token has the prefix %(key)s; use its id.",
                             key=key))
    return found[0]


# --- what the JSON API does ------------------------------------------------------------------

class TokenActor:
    """Who an API call's audit events name: the token (its prefix and name), not a user."""

    id = None

    def __init__(self, token: ApiToken):
        self.username = f"api:{token.prefix} {token.name}"[:120]


def import_tickets(items: list, token: ApiToken, size: int) -> tuple[ImportBatch, Counts]:
    """One batch of tickets posted as JSON; item ``i`` (0-based) is stored as line ``i + 1``.
    The caller commits."""
    with acting_as(TokenActor(token)):
        batch = importer.new_batch(BatchKind.TICKETS, BatchSource.API, token=token, size=size)
        counts = importer.import_tickets(batch, ((i + 1, item) for i, item in enumerate(items)))
    return batch, counts


@dataclass
class ViolationQuery:
    """Filters of ``GET /api/v1/violations``, resolved to ids and UTC bounds."""

    party_id: int | None = None
    standard_id: int | None = None       # with clause_number: that clause in any version
    clause_number: str | None = None
    clause_id: int | None = None         # one clause of one version
    status: ViolationStatus | None = None
    ticket_no: str | None = None
    incident_from: datetime | None = None
    incident_to: datetime | None = None


def party_id_by_code(code: str) -> int | None:
    return db.session.scalar(select(Party.id).where(Party.code == code))


def clause_filter(standard_code: str, number: str, version: int | None) -> dict | None:
    """``ViolationQuery`` fields for a clause reference, or None if there is no such clause."""
    std_id = db.session.scalar(select(Standard.id).where(Standard.code == standard_code))
    if std_id is None:
        return None
    found = select(Clause.id).join(StandardVersion).where(
        StandardVersion.standard_id == std_id, Clause.number == number)
    if version is None:
        if db.session.scalar(found.limit(1)) is None:
            return None
        return {"standard_id": std_id, "clause_number": number}
    clause_id = db.session.scalar(found.where(StandardVersion.number == version))
    return None if clause_id is None else {"clause_id": clause_id}


def find_violations(q: ViolationQuery, *, after: int = 0, limit: int = 100) -> list[Violation]:
    """Up to ``limit`` violations matching ``q`` with ids above ``after``, by id (keyset
    pagination: ``WHERE ... AND id > :after ORDER BY id LIMIT n`` walks an index, however deep
    the page), with everything the API prints loaded in the same query."""
    v = Violation
    conditions = [v.id > after]
    for column, value in ((v.party_id, q.party_id), (v.standard_id, q.standard_id),
                          (v.clause_number, q.clause_number), (v.clause_id, q.clause_id),
                          (v.status, q.status), (v.ticket_no, q.ticket_no)):
        if value is not None:
            conditions.append(column == value)
    if q.incident_from is not None:
        conditions.append(v.incident_at >= q.incident_from)
    if q.incident_to is not None:
        conditions.append(v.incident_at <= q.incident_to)
    stmt = (select(v).where(*conditions).order_by(v.id).limit(limit).options(
        joinedload(v.party), joinedload(v.case),
        joinedload(v.clause).joinedload(Clause.standard_version)
        .joinedload(StandardVersion.standard)))
    return db.session.scalars(stmt).all()


@dataclass
class PartyQuery:
    """Filters of ``GET /api/v1/parties``."""

    kind: PartyKind | None = None
    code: str | None = None
    new_business: bool | None = None


def find_parties(q: PartyQuery, *, after: int = 0, limit: int = 100) -> list[Party]:
    """Up to ``limit`` parties matching ``q`` with ids above ``after``, by id (keyset pages)."""
    from portal.cases.sanctions import new_business_condition

    conditions = [Party.id > after]
    if q.kind is not None:
        conditions.append(Party.kind == q.kind)
    if q.code is not None:
        conditions.append(func.upper(Party.code) == q.code)
    if q.new_business is not None:
        conditions.append(new_business_condition(q.new_business))
    return db.session.scalars(select(Party).where(*conditions).order_by(Party.id)
                              .limit(limit)).all()


def tickets_by_no(numbers) -> dict[str, Ticket]:
    """The tickets behind these violations, in one query (their answer time tells an
    unanswered request from a late answer)."""
    numbers = sorted({n for n in numbers if n})
    if not numbers:
        return {}
    rows = db.session.scalars(select(Ticket).where(Ticket.ticket_no.in_(numbers)).options(
        load_only(Ticket.ticket_no, Ticket.responded_at)))
    return {t.ticket_no: t for t in rows}
