"""Loads the rulebook in ``standards/*.toml`` (see ``standards/README.md`` for the format).

Loading is idempotent: a file whose text matches the version in force changes nothing; a changed
file becomes a new version that supersedes the old one. A malformed file is reported with its
name, line and reason, and nothing from it is loaded (each file loads in its own savepoint).
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from flask_babel import gettext as _

from portal.core.errors import ServiceError
from portal.extensions import db
from portal.standards import services
from portal.standards.models import Standard, StandardVersion


class StandardFileError(ValueError):
    def __init__(self, path: Path, line: int | None, reason: str):
        self.path, self.line, self.reason = path, line, reason
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {reason}")


@dataclass
class LoadResult:
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    errors: list[StandardFileError]


REQUIRED_TOP = ("code", "title_zh", "audience", "effective_from", "clauses")
REQUIRED_CLAUSE = ("number", "title_zh", "body_zh")


def _line_of(text: str, pattern: str) -> int | None:
    m = re.search(pattern, text, re.MULTILINE)
    return text.count("\n", 0, m.start()) + 1 if m else None


def parse_file(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or _line_from_message(str(exc))
        reason = getattr(exc, "msg", str(exc))
        raise StandardFileError(path, line, _("not valid TOML: %(reason)s", reason=reason)) from None
    for key in REQUIRED_TOP:
        if key not in data:
            raise StandardFileError(path, None, _("missing key '%(key)s'", key=key))
    for key in ("audience", "parties"):
        if key in data and not (isinstance(data[key], list)
                                and all(isinstance(x, str) for x in data[key])):
            raise StandardFileError(path, _line_of(text, rf"^{key}\s*="),
                                    _('%(key)s must be a list of strings, e.g. ["carrier"]',
                                      key=key))
    if not isinstance(data["clauses"], list) or not data["clauses"]:
        raise StandardFileError(path, _line_of(text, r"^\[\[clauses\]\]"),
                                _("a standard needs at least one [[clauses]] entry"))
    try:
        data["effective_from"] = _as_date(data["effective_from"])
    except ValueError:
        raise StandardFileError(path, _line_of(text, r"^effective_from\s*="),
                                _("effective_from must be a date like 2026-01-01")) from None
    for i, clause in enumerate(data["clauses"], start=1):
        number = str(clause.get("number", ""))
        line = _line_of(text, rf'^number\s*=\s*"{re.escape(number)}"') if number else None
        for key in REQUIRED_CLAUSE:
            if not str(clause.get(key, "")).strip():
                raise StandardFileError(path, line,
                                        _("clause #%(n)s is missing '%(key)s'", n=i, key=key))
        clause["_line"] = line
    return data


def _line_from_message(msg: str) -> int | None:
    m = re.search(r"line (\d+)", msg)
    return int(m.group(1)) if m else None


def _as_date(value) -> date:
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _build_draft(data: dict, draft: StandardVersion, path: Path) -> None:
    for clause in data["clauses"]:
        try:
            services.add_clause(draft, number=str(clause["number"]), title_zh=clause["title_zh"],
                                title_en=clause.get("title_en", ""), body=clause["body_zh"],
                                fine=clause.get("fine"), rules=clause.get("rules"),
                                check=clause.get("check"))
        except ServiceError as err:
            raise StandardFileError(path, clause.get("_line"),
                                    _("clause %(number)s: %(reason)s", number=clause["number"],
                                      reason=err.message)) from None


def load_file(path: Path, user=None, owner=None) -> str:
    """Load one file; return 'created', 'updated' or 'unchanged'. Raises StandardFileError."""
    data = parse_file(path)
    code = str(data["code"]).strip().upper()
    std = db.session.scalar(db.select(Standard).where(Standard.code == code))
    meta = {"audience": list(data["audience"]), "party_codes": list(data.get("parties", [])),
            "title_zh": data["title_zh"], "title_en": data.get("title_en", ""),
            "category": data.get("category", ""), "summary": data.get("summary_zh", "")}
    try:
        if std is None:
            std = services.create_standard(code=code, effective_from=data["effective_from"],
                                           owner=owner, author=user, **meta)
            db.session.flush()
            _build_draft(data, std.versions[0], path)
            services.publish_version(std.versions[0], user,
                                     review_skipped=f"loaded from {path.name}")
            return "created"
        if std.pending is not None:
            raise StandardFileError(path, None, _("%(code)s has an unpublished draft in the "
                                                  "portal; publish or discard it first",
                                                  code=code))
        trial = db.session.begin_nested()  # the new text, kept only if it differs
        draft = services.new_draft(std, data["effective_from"],
                                   change_note=f"loaded from {path.name}", author=user)
        for c in list(draft.clauses):  # rebuild from the file, not from the old version
            draft.clauses.remove(c)
        db.session.flush()
        _build_draft(data, draft, path)
        db.session.flush()
        latest = std.scheduled_version or std.current_version
        same = latest is not None and latest.effective_from == draft.effective_from and \
            _same_text(latest, draft)
        if same:
            trial.rollback()
        else:
            trial.commit()
        described = services.update_standard(std, owner=owner or std.owner, **meta)
        if same:
            return "updated" if described["changed"] else "unchanged"
        services.publish_version(draft, user, review_skipped=f"loaded from {path.name}")
        return "updated"
    except ServiceError as err:
        raise StandardFileError(path, None, err.message) from None


def _same_text(a: StandardVersion, b: StandardVersion) -> bool:
    def body(v):
        return v.canonical_text().split("\n", 1)[1]  # ignore the version-number line
    return body(a) == body(b)


def load_directory(directory: Path, user=None, owner=None) -> LoadResult:
    result = LoadResult([], [], [], [])
    for path in sorted(directory.glob("*.toml")):
        savepoint = db.session.begin_nested()
        try:
            outcome = load_file(path, user, owner)
        except StandardFileError as err:
            savepoint.rollback()
            result.errors.append(err)
            continue
        if outcome == "unchanged":
            savepoint.rollback()  # drop the throw-away draft and its audit events
            result.unchanged.append(path.name)
        else:
            savepoint.commit()
            getattr(result, outcome).append(path.name)
    return result
