"""Where the portal keeps uploaded files: one small interface, so the backend can change.

``storage()`` answers the configured backend. Today that is ``LocalStorage``, a folder outside
the web root (``FILE_STORAGE_DIR``, by default ``<instance>/files``); an S3-compatible backend
will implement the same four methods. A file is named by a key the portal generates
(``new_key``), never by the name the user gave it, and a key names one file that never changes.

Files and transactions: a file is written before the row that names it is committed, and the
file system has no rollback. ``put_in_transaction`` therefore ties a new file to the current
database transaction: when that transaction (or the savepoint the file was stored in) rolls
back, or the session is closed without committing, the file is deleted. What can still leave an
orphan is the process dying between the write and the commit; such a file is never served
(nothing names it) and can be found by comparing the keys in storage with the rows.
"""
from __future__ import annotations

import abc
import contextlib
import logging
import os
import re
import secrets
import tempfile
from pathlib import Path
from typing import BinaryIO

from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

CHUNK = 1 << 20
# Path-like keys ("evidence/Ab3_x..."): letters, digits, "_" and "-" between slashes, so a key
# can never climb out of the storage root, and never has a dot (temporary files do).
_KEY = re.compile(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*")

log = logging.getLogger(__name__)


def new_key(prefix: str) -> str:
    """A fresh, unguessable key under ``prefix`` (a folder in local storage, an S3 prefix)."""
    return f"{prefix}/{secrets.token_urlsafe(24)}"


def check_key(key: str) -> str:
    if not (isinstance(key, str) and len(key) <= 200 and _KEY.fullmatch(key)):
        raise ValueError(f"not a storage key: {key!r}")
    return key


class Storage(abc.ABC):
    """What every backend does. ``open`` and a missing key raise ``FileNotFoundError``."""

    @abc.abstractmethod
    def put(self, key: str, data: bytes | BinaryIO) -> int:
        """Store ``data`` (bytes or a binary stream, read from where it is) under ``key``, which
        must be new; answers the number of bytes stored. All or nothing: a reader never sees
        half a file."""

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO:
        """The stored file, for reading; the caller closes it."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the file; a key that names nothing is not an error."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...


class LocalStorage(Storage):
    """Files in a folder: ``<root>/<key>``, written to a temporary file beside it, then renamed
    into place (a rename within one folder is atomic). Files are readable by the portal's own
    user only."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes | BinaryIO) -> int:
        path = self.path(key)
        if path.exists():
            raise FileExistsError(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as out:
                size = _copy(data, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return size

    def open(self, key: str) -> BinaryIO:
        return self.path(key).open("rb")

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()


def _copy(data: bytes | BinaryIO, out: BinaryIO) -> int:
    if isinstance(data, (bytes, bytearray, memoryview)):
        out.write(data)
        return len(data)
    size = 0
    while chunk := data.read(CHUNK):
        out.write(chunk)
        size += len(chunk)
    return size


def storage() -> Storage:
    """The configured backend (kept on the app; made again if its setting changes)."""
    setting = str(current_app.config["FILE_STORAGE_DIR"])
    cached = current_app.extensions.get("portal.storage")
    if cached is None or cached[0] != setting:
        cached = current_app.extensions["portal.storage"] = (setting, LocalStorage(setting))
    return cached[1]


# --- files tied to the database transaction ---------------------------------------------------

_PENDING = "portal.storage.pending"  # session.info: [(key, backend, transaction)]


def put_in_transaction(key: str, data: bytes | BinaryIO, *, session: Session | None = None,
                       backend: Storage | None = None) -> int:
    """``put`` the file, to be deleted again unless the transaction of ``session`` (by default
    the request's) commits."""
    from portal.extensions import db

    session = session or db.session()
    backend = backend or storage()
    transaction = (session.get_nested_transaction() or session.get_transaction()
                   or session.begin())
    size = backend.put(key, data)
    session.info.setdefault(_PENDING, []).append((key, backend, transaction))
    return size


def _discard(session: Session, pending: list) -> None:
    for entry in pending:
        key, backend, _transaction = entry
        try:
            backend.delete(key)
        except Exception:  # never let clean-up hide the error that caused the rollback
            log.exception("could not delete %s after a rollback; it is an orphan", key)
        session.info[_PENDING].remove(entry)


def _inside(transaction, outer) -> bool:
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(Session, "after_commit")
def _kept(session):
    if session.info.get(_PENDING) and not session.in_nested_transaction():
        session.info[_PENDING].clear()  # the outermost transaction committed: files stay


@event.listens_for(Session, "after_soft_rollback")
def _savepoint_rolled_back(session, previous_transaction):
    pending = session.info.get(_PENDING)
    if pending and previous_transaction.nested:
        _discard(session, [p for p in pending if _inside(p[2], previous_transaction)])


@event.listens_for(Session, "after_transaction_end")
def _ended(session, transaction):
    pending = session.info.get(_PENDING)
    if pending and transaction.parent is None:  # rolled back or closed: a commit cleared it
        _discard(session, list(pending))
