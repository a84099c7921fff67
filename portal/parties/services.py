"""Operations on parties. Every write records an audit event; the caller commits."""
from __future__ import annotations

import re

from flask_babel import gettext as _
from sqlalchemy import func, or_, select

from portal.core.audit import record
from portal.core.errors import ServiceError
from portal.extensions import db
from portal.parties.models import Party, PartyKind

CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,19}$")


def create_party(*, code: str, name_zh: str, name_en: str, kind: PartyKind | str) -> Party:
    code = (code or "").strip().upper()
    name_zh = (name_zh or "").strip()
    if not CODE_RE.match(code):
        raise ServiceError(_("Code must be 1-20 letters, digits, '-' or '_' (e.g. C001)."),
                           "code")
    if not name_zh:
        raise ServiceError(_("Chinese name is required."), "name_zh")
    try:
        kind = PartyKind(kind)
    except ValueError:
        raise ServiceError(_("Unknown party kind: %(kind)s", kind=kind), "kind") from None
    if db.session.scalar(select(Party.id).where(Party.code == code)) is not None:
        raise ServiceError(_("A party with code %(code)s already exists.", code=code), "code")
    party = Party(code=code, name_zh=name_zh, name_en=(name_en or "").strip(), kind=kind)
    db.session.add(party)
    record("party.created", party, after=party.snapshot())
    return party


def get_by_code(code: str) -> Party | None:
    return db.session.scalar(select(Party).where(Party.code == code.strip().upper()))


def list_parties(kind: PartyKind | None = None):
    q = select(Party).order_by(Party.kind, Party.code)
    if kind:
        q = q.where(Party.kind == kind)
    return db.session.scalars(q).all()


def parties_matching(kind=None, term: str = ""):
    """A select of the ids of the parties of ``kind`` whose code is ``term`` or whose name
    contains it (either may be empty: no condition). For list filters."""
    q = select(Party.id)
    if kind is not None:
        q = q.where(Party.kind == kind)
    term = (term or "").strip()
    if term:
        q = q.where(or_(func.lower(Party.code) == term.lower(),
                        Party.name_zh.contains(term, autoescape=True),
                        func.lower(Party.name_en).contains(term.lower(), autoescape=True)))
    return q
