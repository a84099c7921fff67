"""Evidence files of a case (证据): photos, PDFs, spreadsheets uploaded to the portal.

A file is part of the case's record: it is never changed or deleted, and its SHA-256, taken as
it arrives, shows later that the bytes are the ones uploaded. Its type is judged by its content
(``core.filetypes.sniff``), never by its name or the browser's word; it is kept in
``core.storage`` under a generated key, outside the web root, and only served by
``cases.download_evidence`` to those allowed to see it.

Who sees what: CS and auditors see every file of a case they may open; a party's staff see a
case only when their party is involved in it, and then only the files CS uploaded and the files
their own party uploaded (``party_id``), never another party's.

Who adds files: CS officers (``Perm.HANDLE_CASES``) and the staff of a party involved in the
case, whatever the state of the case: a party puts its side (a signed delivery note, a photo)
before the ruling, and the grounds of an appeal after it. A file is never taken from a party
that is not in the case, and no party sees another's. ``appeal_id`` links a file to the appeal
it supports (set by the appeals side; the column has no foreign key yet, see below).

Orphans: the file is stored before the row is flushed, through
``storage.put_in_transaction``, so a transaction that does not commit (a failed flush or
commit, a refusal later in the same action) deletes the file again.
"""
from __future__ import annotations

import enum
import hashlib
import io
import tempfile
from datetime import datetime
from typing import BinaryIO

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import BigInteger, ForeignKey, Select, String, or_, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.cases.models import Case
from portal.core.audit import record
from portal.core.db import Base, enum_column, utcnow
from portal.core.errors import ServiceError
from portal.core.filetypes import (
    download_name,
    extensions_of,
    is_archive,
    safe_filename,
    sniff,
)
from portal.core.permissions import Perm, allowed, party_scope
from portal.core.storage import CHUNK, new_key, put_in_transaction
from portal.extensions import db

NOTE_MAX = 500
SPOOL_BYTES = 1 << 20   # an upload is held in memory up to this size, beyond it in a temp file


class EvidenceKind(enum.StrEnum):
    IMAGE = "image"
    PDF = "pdf"
    SPREADSHEET = "spreadsheet"


class Evidence(Base):
    """One file of a case's record."""

    __tablename__ = "evidence_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    # The appeal the file came with (NULL for the case's own files). A plain integer for now:
    # the appeals table comes later, and its migration adds the foreign key.
    appeal_id: Mapped[int | None] = mapped_column(index=True)
    storage_key: Mapped[str] = mapped_column(String(100), unique=True)
    filename: Mapped[str] = mapped_column(String(200))       # as uploaded, made safe to show
    content_type: Mapped[str] = mapped_column(String(100))   # as detected from the bytes
    kind: Mapped[EvidenceKind] = mapped_column(enum_column(EvidenceKind))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(String(NOTE_MAX), default="")
    # The uploader's party when a party's staff uploaded it; NULL when CS did.
    party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"))
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[datetime]

    case: Mapped[Case] = relationship()
    party = relationship("Party")
    uploaded_by = relationship("User")

    @property
    def download_name(self) -> str:
        return download_name(self.filename, extensions_of(self.content_type))

    @property
    def inline(self) -> bool:
        """Shown in the browser rather than saved: images only (never anything that runs)."""
        return self.kind is EvidenceKind.IMAGE

    def snapshot(self) -> dict:
        return {"case_id": self.case_id, "appeal_id": self.appeal_id, "filename": self.filename,
                "content_type": self.content_type, "kind": self.kind, "size": self.size,
                "sha256": self.sha256, "party_id": self.party_id, "note": self.note}


# --- who may see and add ------------------------------------------------------------------

def visible_evidence(case: Case, scope: int | None) -> Select:
    """The files of ``case`` a viewer with party ``scope`` may see (all when ``scope`` is None):
    CS's and their own party's. The caller has checked that the viewer may see the case."""
    query = select(Evidence).where(Evidence.case_id == case.id)
    if scope is not None:
        query = query.where(or_(Evidence.party_id.is_(None), Evidence.party_id == scope))
    return query.order_by(Evidence.id)


def evidence_of(case: Case, scope: int | None) -> list[Evidence]:
    return list(db.session.scalars(visible_evidence(case, scope)))


def find_evidence(case: Case, scope: int | None, evidence_id: int) -> Evidence | None:
    return db.session.scalar(visible_evidence(case, scope).where(Evidence.id == evidence_id))


def may_add_evidence(user, case: Case) -> bool:
    """CS officers on any case; a party's staff on a case their party is involved in."""
    if allowed(user, Perm.HANDLE_CASES):
        return True
    scope = party_scope(user)
    return scope is not None and allowed(user, Perm.VIEW_CASES) and scope in case.party_ids()


# --- adding a file --------------------------------------------------------------------------

def add_evidence(case: Case, filename: str, data: bytes | BinaryIO, user,
                 note: str = "") -> Evidence:
    """Keep the file ``data`` (bytes or a binary stream) as evidence of ``case``.

    Refused, with nothing stored: an empty or too large file, a file that is not an image, a
    PDF or a spreadsheet by its content, an archive (zip, rar, 7z...: a case's evidence is the
    files themselves, each with its own type, size and SHA-256, not a package of them), and a
    workbook too much to unpack (``filetypes.zip_problem``: a zip bomb). The caller has checked
    ``may_add_evidence``."""
    name = safe_filename(filename, default="")
    if not name:
        raise ServiceError(_("Choose a file to upload."), "file")
    note = " ".join((note or "").split())
    if len(note) > NOTE_MAX:
        raise ServiceError(_("The evidence note may be at most %(n)d characters.",
                             n=NOTE_MAX), "note")
    party_id = user.party_id if party_scope(user) is not None else None
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        size, sha256 = _receive(data, spool, name)
        filetype = sniff(spool)   # raises UnsafeArchive for a zip bomb
        if filetype is None and is_archive(spool):
            raise ServiceError(_(
                "The file %(name)s is an archive (zip, rar, 7z, tar, gz…), which is not "
                "accepted as evidence: unpack it and upload the files one by one.", name=name),
                "file")
        if filetype is None:
            raise ServiceError(_(
                "The file %(name)s is not accepted as evidence: send an image (PNG, JPEG, GIF "
                "or WebP), a PDF, or a spreadsheet (XLSX without macros, or CSV). The portal "
                "goes by what the file contains, not by its name.", name=name), "file")
        spool.seek(0)
        key = new_key("evidence")
        put_in_transaction(key, spool)
    evidence = Evidence(case_id=case.id, storage_key=key, filename=name,
                        content_type=filetype.content_type, kind=EvidenceKind(filetype.kind),
                        size=size, sha256=sha256, note=note, party_id=party_id,
                        uploaded_by_id=user.id, uploaded_at=utcnow(),
                        appeal_id=_open_appeal_id(case, party_id))
    db.session.add(evidence)
    record("evidence.added", evidence, after=evidence.snapshot())  # flushes
    return evidence


def _open_appeal_id(case: Case, party_id: int | None) -> int | None:
    """A party's file added while its appeal waits for a decision belongs to that appeal."""
    if party_id is None:
        return None
    from portal.cases.models import Appeal, AppealStatus

    return db.session.scalar(select(Appeal.id).where(
        Appeal.case_id == case.id, Appeal.party_id == party_id,
        Appeal.status == AppealStatus.OPEN))


def _receive(data: bytes | BinaryIO, out: BinaryIO, name: str) -> tuple[int, str]:
    """Copy ``data`` to ``out`` up to the size limit; answers its size and SHA-256."""
    limit = current_app.config["EVIDENCE_MAX_BYTES"]
    source = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    digest, size = hashlib.sha256(), 0
    while chunk := source.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise ServiceError(_("The file %(name)s is larger than %(mb)s MB.", name=name,
                                 mb=megabytes(limit)), "file")
        digest.update(chunk)
        out.write(chunk)
    if size == 0:
        raise ServiceError(_("The file %(name)s is empty.", name=name), "file")
    return size, digest.hexdigest()


def megabytes(n: int) -> str:
    return f"{n / 1_000_000:g}"
