"""Where the portal keeps uploaded files: one small interface, so the backend can change.

``storage()`` answers the configured backend (``FILE_STORAGE``): ``LocalStorage``, a folder
outside the web root (``FILE_STORAGE_DIR``, by default ``<instance>/files``), or ``S3Storage``,
a bucket of any S3-compatible store (AWS S3, MinIO, Ceph, ...: ``S3_BUCKET``,
``S3_ENDPOINT_URL``, ``S3_REGION``, ``S3_ACCESS_KEY_ID``/``S3_SECRET_ACCESS_KEY`` or boto3's own
credential chain, ``S3_PREFIX``), which every app server and worker reach alike. A file is
named by a key the portal generates (``new_key``), never by the name the user gave it, and a
key names one file that never changes (``put(..., replace=True)`` is for the portal's own
bookkeeping files, such as a report job's manifest). Reads are streams in both backends: a
download is sent in chunks, never held whole in memory.

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
import io
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
# Path-like keys ("evidence/Ab3_x...", "<job>/report.pdf"): letters, digits, "_", "-" and inner
# dots between slashes, a part never starting with a dot, so a key can never climb out of the
# storage root (no "..") and never looks like a temporary file (".part-...").
_KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*")

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
    def put(self, key: str, data: bytes | BinaryIO, *, replace: bool = False) -> int:
        """Store ``data`` (bytes or a binary stream, read from where it is) under ``key``, which
        must be new unless ``replace``; answers the number of bytes stored. All or nothing: a
        reader never sees half a file."""

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO:
        """The stored file, for reading; the caller closes it."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the file; a key that names nothing is not an error."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def list_keys(self, prefix: str = "") -> list[str]:
        """Every stored key under the folder ``prefix`` (all keys if empty), sorted."""

    def read_bytes(self, key: str) -> bytes:
        """A small file whole (manifests, snapshots; never for uploads)."""
        with self.open(key) as f:
            return f.read()


class LocalStorage(Storage):
    """Files in a folder: ``<root>/<key>``, written to a temporary file beside it, then renamed
    into place (a rename within one folder is atomic). Files are readable by the portal's own
    user only."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes | BinaryIO, *, replace: bool = False) -> int:
        path = self.path(key)
        if path.exists() and not replace:
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

    def list_keys(self, prefix: str = "") -> list[str]:
        top = self.path(prefix) if prefix else self.root
        if not top.is_dir():
            return []
        found = (p.relative_to(self.root).as_posix() for p in top.rglob("*") if p.is_file())
        return sorted(k for k in found if _KEY.fullmatch(k))   # not the ".part-" files


def _copy(data: bytes | BinaryIO, out: BinaryIO) -> int:
    if isinstance(data, (bytes, bytearray, memoryview)):
        out.write(data)
        return len(data)
    size = 0
    while chunk := data.read(CHUNK):
        out.write(chunk)
        size += len(chunk)
    return size


class S3Storage(Storage):
    """Objects in an S3 bucket, named ``<S3_PREFIX><key>``. An S3 PUT is atomic (a reader sees
    the whole object or none); large streams go up in parts (boto3's managed upload) without
    being read into memory, and ``open`` answers the object's body as a stream."""

    def __init__(self, bucket: str, *, prefix: str = "", endpoint_url: str | None = None,
                 region: str | None = None, access_key_id: str | None = None,
                 secret_access_key: str | None = None, client=None):
        if not bucket:
            raise ValueError("S3_BUCKET is not set: FILE_STORAGE=s3 needs the bucket's name")
        if bool(access_key_id) != bool(secret_access_key):
            raise ValueError("S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together: set both, "
                             "or neither (boto3's credential chain: environment, profile, role)")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        self.bucket, self.prefix, self.endpoint_url = bucket, prefix, endpoint_url or None
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.session.Session().client(
                "s3", endpoint_url=self.endpoint_url, region_name=region or None,
                aws_access_key_id=access_key_id or None,
                aws_secret_access_key=secret_access_key or None,
                config=Config(signature_version="s3v4", retries={"mode": "standard"},
                              # MinIO, Ceph and most other S3 servers want /bucket/key
                              s3={"addressing_style": "path" if endpoint_url else "auto"}))
        self.client = client

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _failed(self, err, key: str):
        """A clear error for what the settings got wrong; FileNotFoundError for a missing key."""
        code = err.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404", "NotFound"):
            return FileNotFoundError(key)
        if code == "NoSuchBucket":
            return RuntimeError(f"S3_BUCKET: no bucket {self.bucket!r} at "
                                f"{self.endpoint_url or 'AWS S3'}")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
            return PermissionError(f"S3 refused {code} for bucket {self.bucket!r}: check "
                                   f"S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY and the bucket policy")
        return err

    def put(self, key: str, data: bytes | BinaryIO, *, replace: bool = False) -> int:
        from botocore.exceptions import ClientError

        name = self._name(key)
        if not replace and self.exists(key):
            raise FileExistsError(key)
        try:
            if isinstance(data, (bytes, bytearray, memoryview)):
                self.client.put_object(Bucket=self.bucket, Key=name, Body=bytes(data))
                return len(data)
            counted = _Counting(data)
            self.client.upload_fileobj(counted, self.bucket, name)
            return counted.size
        except ClientError as err:
            raise self._failed(err, key) from None

    def open(self, key: str) -> BinaryIO:
        from botocore.exceptions import ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._name(key))["Body"]
        except ClientError as err:
            raise self._failed(err, key) from None
        return io.BufferedReader(_BodyReader(body), CHUNK)

    def delete(self, key: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._name(key))
        except ClientError as err:
            failure = self._failed(err, key)
            if not isinstance(failure, FileNotFoundError):
                raise failure from None

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._name(key))
        except ClientError as err:
            failure = self._failed(err, key)
            if isinstance(failure, FileNotFoundError):
                return False
            raise failure from None
        return True

    def list_keys(self, prefix: str = "") -> list[str]:
        from botocore.exceptions import ClientError

        start = self.prefix + (check_key(prefix) + "/" if prefix else "")
        found = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=start):
                found.extend(o["Key"][len(self.prefix):] for o in page.get("Contents", ()))
        except ClientError as err:
            raise self._failed(err, prefix) from None
        return sorted(found)


class _Counting:
    """A stream that counts what is read from it (boto3 reads the upload itself)."""

    def __init__(self, stream: BinaryIO):
        self.stream, self.size = stream, 0

    def read(self, n: int = -1) -> bytes:
        chunk = self.stream.read(n)
        self.size += len(chunk)
        return chunk


class _BodyReader(io.RawIOBase):
    """An S3 object's body (botocore ``StreamingBody``) as a standard binary stream."""

    def __init__(self, body):
        self.body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self.body.read(len(buffer))
        buffer[:len(chunk)] = chunk
        return len(chunk)

    def close(self) -> None:
        if not self.closed:
            self.body.close()
        super().close()


def make_storage(config) -> Storage:
    """The backend the settings name; a clear error for what is missing."""
    kind = str(config.get("FILE_STORAGE") or "local").strip().lower()
    if kind == "local":
        return LocalStorage(config["FILE_STORAGE_DIR"])
    if kind == "s3":
        return S3Storage(config.get("S3_BUCKET", ""), prefix=config.get("S3_PREFIX", ""),
                         endpoint_url=config.get("S3_ENDPOINT_URL"),
                         region=config.get("S3_REGION"),
                         access_key_id=config.get("S3_ACCESS_KEY_ID"),
                         secret_access_key=config.get("S3_SECRET_ACCESS_KEY"))
    raise ValueError(f"FILE_STORAGE: {kind!r} is neither local nor s3")


_SETTINGS = ("FILE_STORAGE", "FILE_STORAGE_DIR", "S3_BUCKET", "S3_PREFIX", "S3_ENDPOINT_URL",
             "S3_REGION", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY")


def storage() -> Storage:
    """The configured backend (kept on the app; made again if its settings change)."""
    setting = tuple(str(current_app.config.get(name) or "") for name in _SETTINGS)
    cached = current_app.extensions.get("portal.storage")
    if cached is None or cached[0] != setting:
        cached = current_app.extensions["portal.storage"] = (setting,
                                                             make_storage(current_app.config))
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
