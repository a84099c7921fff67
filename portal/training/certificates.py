"""Completing a course, its certificate, the printable PDF and the public check of a code.

A course is complete when everything it asks for is done in the current cycle of the person's
task: the quiz passed (if it has one) and, for an offline course, attendance at a session
recorded. Completion issues a certificate with a verification code; the code is all a third
party needs to confirm the certificate is genuine, and the public page shows nothing else.
"""
from __future__ import annotations

import calendar
import secrets
from datetime import date

import segno
from flask import current_app, render_template
from flask_babel import gettext as _
from sqlalchemy import select

from portal.core.audit import record
from portal.core.db import utcnow
from portal.core.errors import ServiceError
from portal.core.pdf import render_pdf
from portal.core.timeutil import local_today
from portal.extensions import db
from portal.training.models import (
    AttemptStatus,
    Certificate,
    CertificateVersion,
    Course,
    CourseMode,
    Enrolment,
    QuizAttempt,
    TrainingSession,
    TrainingStatus,
    TrainingTask,
)

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: read aloud and typed by hand


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(12))  # 60 bits
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def normalise_code(text: str) -> str | None:
    raw = "".join(ch for ch in (text or "").upper() if ch.isalnum())
    if len(raw) != 12 or any(ch not in ALPHABET for ch in raw):
        return None
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def add_months(day: date, months: int) -> date:
    """Same day ``months`` later, or the month's last day (31 Jan + 1 month = 28/29 Feb)."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def requirements(course: Course, task: TrainingTask) -> dict[str, bool]:
    """What the course asks for in this cycle, and whether each is done."""
    needs = {}
    if course.has_quiz:
        needs["quiz"] = db.session.scalar(select(QuizAttempt.id).where(
            QuizAttempt.course_id == course.id, QuizAttempt.user_id == task.user_id,
            QuizAttempt.status == AttemptStatus.SUBMITTED, QuizAttempt.passed.is_(True),
            QuizAttempt.started_at >= task.opened_at).limit(1)) is not None
    if course.mode is CourseMode.OFFLINE:
        needs["attendance"] = db.session.scalar(
            select(Enrolment.id).join(TrainingSession)
            .where(TrainingSession.course_id == course.id, Enrolment.user_id == task.user_id,
                   Enrolment.attended.is_(True), Enrolment.recorded_at >= task.opened_at)
            .limit(1)) is not None
    return needs


def complete_if_done(course: Course, task: TrainingTask | None, user, *,
                     attempt: QuizAttempt | None = None) -> Certificate | None:
    """Close the task and issue the certificate if every requirement is met."""
    if task is None or task.status is not TrainingStatus.OPEN:
        return None
    if not all(requirements(course, task).values()):
        return None
    now = utcnow()
    issued_on = local_today()
    cert = Certificate(
        code=_unique_code(), course_id=course.id, user_id=task.user_id, party_id=task.party_id,
        attempt_id=attempt.id if attempt else None, issued_at=now, issued_on=issued_on,
        expires_on=add_months(issued_on, course.validity_months)
        if course.validity_months else None,
        holder_name=user.display_name, score=attempt.score if attempt else None)
    db.session.add(cert)
    db.session.flush()
    for link in course.links:
        db.session.add(CertificateVersion(certificate_id=cert.id,
                                          standard_version_id=link.standard_version_id))
    previous = task.certificate_id
    task.status, task.done_at, task.certificate = TrainingStatus.DONE, now, cert
    record("certificate.issued", cert, after={
        "code": cert.code, "course": course.code, "user": user.username,
        "expires_on": cert.expires_on, "score": cert.score, "replaces": previous,
        "standards": [link.standard_version.label for link in course.links]})
    return cert


def _unique_code() -> str:
    while True:
        code = new_code()
        if db.session.scalar(select(Certificate.id).where(Certificate.code == code)) is None:
            return code


def revoke(cert: Certificate, reason: str, user) -> None:
    """Withdraw a certificate (issued in error, misconduct); the holder must train again."""
    from portal.training.assignments import newcomer_due_on, reopen

    if not (reason or "").strip():
        raise ServiceError(_("Give the reason for revoking the certificate."), "reason")
    if cert.revoked_at is not None:
        raise ServiceError(_("This certificate is already revoked."))
    cert.revoked_at, cert.revoked_reason = utcnow(), reason.strip()
    task = db.session.scalar(select(TrainingTask).where(TrainingTask.certificate_id == cert.id))
    if task is not None and task.status is TrainingStatus.DONE:
        reopen(task, "revoked", newcomer_due_on(task.course, None))
    record("certificate.revoked", cert, after={"code": cert.code, "reason": cert.revoked_reason,
                                               "task_reopened": task is not None})


def certificates_of(user) -> list[Certificate]:
    return db.session.scalars(select(Certificate).where(Certificate.user_id == user.id)
                              .order_by(Certificate.issued_at.desc())).all()


def by_code(text: str) -> Certificate | None:
    code = normalise_code(text)
    if code is None:
        return None
    return db.session.scalar(select(Certificate).where(Certificate.code == code))


def masked_name(name: str) -> str:
    """张三丰 -> 张*丰, Li Na -> L*** N*: enough to match the paper, not to learn a name."""
    name = (name or "").strip()
    if " " in name:
        return " ".join(part[:1] + "*" * (len(part) - 1) for part in name.split())
    if len(name) <= 2:
        return name[:1] + "*"
    return name[:1] + "*" * (len(name) - 2) + name[-1:]


def qualified_for(user, version) -> bool:
    """Whether ``user`` holds a valid certificate of a course covering ``version`` of a standard
    (through non-material changes, as acknowledgements are)."""
    from portal.standards.services import covering_versions

    today = local_today()
    certs = db.session.scalars(
        select(Certificate).join(CertificateVersion)
        .where(Certificate.user_id == user.id, Certificate.revoked_at.is_(None),
               CertificateVersion.standard_version_id.in_(covering_versions(version)))).all()
    return any(c.state(today) == "valid" for c in certs)


def verify_url(cert: Certificate) -> str:
    return f"{current_app.config['PORTAL_BASE_URL'].rstrip('/')}/verify/{cert.code}"


def render_certificate(cert: Certificate) -> bytes:
    qr = segno.make(verify_url(cert), error="m")
    html = render_template("training/certificate_pdf.html", cert=cert,
                           qr=qr.svg_data_uri(scale=4, border=1), verify_url=verify_url(cert))
    return render_pdf(html)
