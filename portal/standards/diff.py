"""Clause-by-clause comparison of two versions of a standard, for the side-by-side view.

Clauses are matched by number. Text is compared character by character with the standard
library's ``difflib`` (Chinese has no spaces to split words on), so each side comes back as
segments ``(kind, text)`` with kind ``same``, ``del`` (only on the left) or ``ins`` (only right).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from difflib import SequenceMatcher

from portal.standards.models import Clause, StandardVersion


@dataclass
class ClauseDiff:
    number: str
    change: str  # added | removed | changed | same
    left: Clause | None
    right: Clause | None
    title: tuple[list, list] = field(default_factory=lambda: ([], []))
    body: tuple[list, list] = field(default_factory=lambda: ([], []))
    rules_left: list[str] = field(default_factory=list)
    rules_right: list[str] = field(default_factory=list)


def _segments(a: str, b: str) -> tuple[list, list]:
    left, right = [], []
    for op, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            left.append(("same", a[i1:i2]))
            right.append(("same", b[j1:j2]))
        else:
            if i2 > i1:
                left.append(("del", a[i1:i2]))
            if j2 > j1:
                right.append(("ins", b[j1:j2]))
    return left, right


def _sort_key(number: str):
    return tuple(int(part) for part in number.split("."))


def diff_versions(left: StandardVersion, right: StandardVersion,
                  locale: str = "zh_CN") -> list[ClauseDiff]:
    """Titles are compared in ``locale`` (English titles fall back to Chinese); bodies are the
    Chinese text, which is the binding one."""
    a = {c.number: c for c in left.clauses}
    b = {c.number: c for c in right.clauses}
    rows = []
    for number in sorted(a.keys() | b.keys(), key=_sort_key):
        lc, rc = a.get(number), b.get(number)
        rules_l = [r.describe() for r in lc.rules] if lc else []
        rules_r = [r.describe() for r in rc.rules] if rc else []
        if lc is None:
            change = "added"
        elif rc is None:
            change = "removed"
        elif (lc.title_zh, lc.title_en, lc.body) == (rc.title_zh, rc.title_en, rc.body) and \
                [r.describe_canonical() for r in lc.rules] == \
                [r.describe_canonical() for r in rc.rules]:
            change = "same"
        else:
            change = "changed"
        row = ClauseDiff(number, change, lc, rc, rules_left=rules_l, rules_right=rules_r)
        row.title = _segments(lc.title(locale) if lc else "", rc.title(locale) if rc else "")
        row.body = _segments(lc.body if lc else "", rc.body if rc else "")
        rows.append(row)
    return rows
