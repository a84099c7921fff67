"""Images uploaded to the portal (lesson illustrations), kept in the database.

Kept as rows rather than files so that an upload commits or rolls back with the action that
made it, and backups hold everything. Pillow checks that the bytes really are an image of an
allowed format (the file name and the browser's content type are not trusted) and gives the
content type the file is served with; a random key names it, so ids cannot be walked.
"""
from __future__ import annotations

import hashlib
import io
import secrets
from datetime import datetime

from flask import current_app
from flask_babel import gettext as _
from PIL import Image, UnidentifiedImageError
from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, deferred, mapped_column

from portal.core.audit import record
from portal.core.db import Base, utcnow
from portal.core.errors import ServiceError
from portal.extensions import db

FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}


class Upload(Base):
    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(40), unique=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(60))
    size: Mapped[int]
    width: Mapped[int]
    height: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    owner_type: Mapped[str] = mapped_column(String(40), default="")
    owner_id: Mapped[int | None]
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[datetime]

    @property
    def url(self) -> str:
        return f"/files/{self.key}"


def store_image(filename: str, data: bytes, *, owner, user) -> Upload:
    """Keep an uploaded image for ``owner`` (any model). Refuses what is not a real image."""
    name = (filename or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1].strip()[:200] or "image"
    limit = current_app.config["UPLOAD_MAX_BYTES"]
    if not data:
        raise ServiceError(_("The file %(name)s is empty.", name=name), "image")
    if len(data) > limit:
        raise ServiceError(_("The file %(name)s is larger than %(mb)s MB.", name=name,
                             mb=round(limit / 1_000_000, 1)), "image")
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format
            img.verify()
            width, height = img.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ServiceError(_("The file %(name)s is not an image the portal can show "
                             "(PNG, JPEG, GIF or WebP).", name=name), "image") from None
    if fmt not in FORMATS:
        raise ServiceError(_("The file %(name)s is not an image the portal can show "
                             "(PNG, JPEG, GIF or WebP).", name=name), "image")
    upload = Upload(key=secrets.token_urlsafe(18), filename=name, content_type=FORMATS[fmt],
                    size=len(data), width=width, height=height,
                    sha256=hashlib.sha256(data).hexdigest(), data=data,
                    owner_type=owner.__tablename__, owner_id=owner.id,
                    uploaded_by_id=getattr(user, "id", None), uploaded_at=utcnow())
    db.session.add(upload)
    record("upload.stored", upload, after={"filename": name, "size": len(data),
                                           "content_type": upload.content_type,
                                           "owner": f"{owner.__tablename__}:{owner.id}"})
    return upload


def uploads_of(owner) -> list[Upload]:
    return db.session.scalars(db.select(Upload).where(
        Upload.owner_type == owner.__tablename__, Upload.owner_id == owner.id)
        .order_by(Upload.id)).all()
