"""Penalty rules (处罚规则): how a breach of a clause is priced, as validated data.

A rule is a kind plus parameters. ``parse_rule`` turns a plain dict (from a standards file or the
clause form) into checked parameters or raises ``ServiceError`` naming the field at fault;
``describe`` says the rule in plain language in the user's language; ``canonical`` gives the
stable text that goes into the version's hash, so a rule is frozen with its version.

Kinds:
- ``fixed_fine``  a fine on the party per occurrence (false delivery feedback: ¥500);
- ``tiered``      amounts by a measured quantity (days late: 1 -> ¥5, 2 -> ¥10, >=3 -> the
                  order value, at least ¥10), keeping what the customer is compensated apart
                  from what the party is fined;
- ``time_limit``  something must be done within a time (answer within 2 h); a breach fines;
- ``points``      points per occurrence; ``serious = true`` marks them serious (严重违规): they
                  are kept past the yearly reset of a party's points (see ``cases.sanctions``);
- ``escalation``  from the Nth breach of the clause by the same party within a window, the
                  fine is multiplied (x2 for the third breach in 30 days);
- ``hr_sanction`` prices nothing: the sanction CS proposes to HR for the employee a ruling names
                  on an internal department (``proposal``: one of ``HrSanction``, with an
                  optional ``text``), carried by the HR penalty notice (see ``portal.hr``).
"""
from __future__ import annotations

import enum
import json
from decimal import Decimal

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from portal.core.errors import ServiceError
from portal.core.money import MoneyError, to_money


class RuleKind(enum.StrEnum):
    FIXED_FINE = "fixed_fine"
    TIERED = "tiered"
    TIME_LIMIT = "time_limit"
    POINTS = "points"
    ESCALATION = "escalation"
    HR_SANCTION = "hr_sanction"


class HrSanction(enum.StrEnum):
    """The sanctions CS may propose to HR for an employee, from the mildest to the gravest."""

    VERBAL_WARNING = "verbal_warning"      # 口头警告
    TRAINING = "training"                  # 培训
    WRITTEN_WARNING = "written_warning"    # 书面警告
    FINE = "fine"                          # 罚款
    DEMOTION = "demotion"                  # 降职
    DISMISSAL = "dismissal"                # 解除劳动合同


SANCTION_LABELS = {
    HrSanction.VERBAL_WARNING: _l("Verbal warning"),
    HrSanction.TRAINING: _l("Training"),
    HrSanction.WRITTEN_WARNING: _l("Written warning"),
    HrSanction.FINE: _l("Fine"),
    HrSanction.DEMOTION: _l("Demotion"),
    HrSanction.DISMISSAL: _l("Dismissal"),
}
HR_SANCTION_TEXT_MAX = 500


class Check(enum.StrEnum):
    """Which facts of a complaint ticket the rule engine checks a clause against."""

    FALSE_FEEDBACK = "false_feedback"   # reported signed, customer did not sign, no proxy
    DAYS_LATE = "days_late"             # delivered after the promised calendar day
    RESPONSE_TIME = "response_time"     # a CS request answered late or not at all


def default_check(parsed_rules: list[dict]) -> str:
    """The check a clause's rules imply: a days-late tier, or a time limit (answer a request)."""
    kinds = {p["kind"] for p in parsed_rules}
    if RuleKind.TIERED in kinds:
        return Check.DAYS_LATE.value
    if RuleKind.TIME_LIMIT in kinds:
        return Check.RESPONSE_TIME.value
    return ""


def parse_check(value, parsed_rules: list[dict]) -> str:
    if value in (None, ""):
        return default_check(parsed_rules)
    try:
        check = Check(value)
    except ValueError:
        raise ServiceError(_("Unknown check %(check)s (use one of: %(checks)s).", check=value,
                             checks=", ".join(c.value for c in Check)), "check") from None
    kinds = {p["kind"] for p in parsed_rules}
    if check is Check.DAYS_LATE and RuleKind.TIERED not in kinds:
        raise ServiceError(_("The days-late check needs a tiered rule (days late -> amounts)."),
                           "check")
    if check is Check.RESPONSE_TIME and RuleKind.TIME_LIMIT not in kinds:
        raise ServiceError(_("The response-time check needs a time_limit rule."), "check")
    if check is Check.FALSE_FEEDBACK and not ({RuleKind.FIXED_FINE, RuleKind.POINTS} & kinds):
        raise ServiceError(_("The false-feedback check needs a fine or points to apply."),
                           "check")
    return check.value


class Measure(enum.StrEnum):
    DAYS_LATE = "days_late"


ORDER_VALUE = "order_value"
MAX_LIMIT_MINUTES = 7 * 24 * 60


def _fail(message: str):
    raise ServiceError(message, "rules")


def _money(value, what: str, *, allow_zero: bool = False) -> Decimal:
    try:
        amount = to_money(value)
    except MoneyError:
        _fail(_("%(what)s must be an amount in yuan, e.g. 500 or 500.00.", what=what))
    if amount < 0 or (amount == 0 and not allow_zero):
        _fail(_("%(what)s must be greater than zero.", what=what))
    return amount


def _int(value, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            if isinstance(value, str) and value.strip().isdigit():
                value = int(value.strip())
            else:
                raise ValueError
        except ValueError:
            _fail(_("%(what)s must be a whole number.", what=what))
    if not lo <= value <= hi:
        _fail(_("%(what)s must be from %(lo)d to %(hi)d.", what=what, lo=lo, hi=hi))
    return value


def _only(data: dict, allowed: set[str], kind: str) -> None:
    unknown = sorted(set(data) - allowed - {"kind"})
    if unknown:
        _fail(_("Rule %(kind)s does not take: %(keys)s.", kind=kind, keys=", ".join(unknown)))


def parse_rule(data: dict) -> dict:
    """Check one rule given as a dict; return ``{"kind": RuleKind, "amount", "points", "params"}``."""
    if not isinstance(data, dict):
        _fail(_("A rule must be a table of settings."))
    raw_kind = data.get("kind")
    try:
        kind = RuleKind(raw_kind)
    except ValueError:
        _fail(_("Unknown rule kind %(kind)s (use one of: %(kinds)s).", kind=raw_kind,
                kinds=", ".join(k.value for k in RuleKind)))
    out = {"kind": kind, "amount": None, "points": None, "params": {}}
    if kind is RuleKind.FIXED_FINE:
        _only(data, {"amount"}, kind)
        out["amount"] = _money(data.get("amount"), _("Fine"))
    elif kind is RuleKind.TIME_LIMIT:
        _only(data, {"amount", "limit_minutes"}, kind)
        out["params"]["limit_minutes"] = _int(data.get("limit_minutes"), _("Time limit (minutes)"),
                                              1, MAX_LIMIT_MINUTES)
        out["amount"] = _money(data.get("amount"), _("Fine"))
    elif kind is RuleKind.POINTS:
        _only(data, {"points", "serious"}, kind)
        out["points"] = _int(data.get("points"), _("Points"), 1, 100)
        serious = data.get("serious", False)
        if not isinstance(serious, bool):
            _fail(_("serious must be true or false."))
        if serious:        # only when set, so the text (and hash) of other rules is unchanged
            out["params"]["serious"] = True
    elif kind is RuleKind.ESCALATION:
        _only(data, {"nth", "window_days", "multiplier"}, kind)
        out["params"]["nth"] = _int(data.get("nth"), _("Repeat number"), 2, 100)
        out["params"]["window_days"] = _int(data.get("window_days"), _("Window (days)"), 1, 366)
        factor = _money(data.get("multiplier"), _("Multiplier"))
        if not Decimal(1) < factor <= Decimal(10):
            _fail(_("The multiplier must be more than 1 and at most 10."))
        out["params"]["multiplier"] = str(factor.normalize())
    elif kind is RuleKind.HR_SANCTION:
        _only(data, {"proposal", "text"}, kind)
        try:
            out["params"]["proposal"] = HrSanction(data.get("proposal")).value
        except ValueError:
            _fail(_("Unknown HR sanction %(value)s (use one of: %(values)s).",
                    value=data.get("proposal"), values=", ".join(s.value for s in HrSanction)))
        text = data.get("text", "")
        if not isinstance(text, str) or len(text.strip()) > HR_SANCTION_TEXT_MAX:
            _fail(_("The text of an HR sanction is at most %(n)d characters.",
                    n=HR_SANCTION_TEXT_MAX))
        if text.strip():   # only when given, so the canonical text stays short
            out["params"]["text"] = text.strip()
    else:
        _only(data, {"measure", "tiers"}, kind)
        out["params"] = _parse_tiers(data)
    return out


def _parse_tiers(data: dict) -> dict:
    try:
        measure = Measure(data.get("measure"))
    except ValueError:
        _fail(_("A tiered rule needs measure = \"days_late\"."))
    tiers = data.get("tiers")
    if not isinstance(tiers, list) or not tiers:
        _fail(_("A tiered rule needs at least one tier."))
    parsed, last_to = [], 0
    for i, tier in enumerate(tiers, start=1):
        if not isinstance(tier, dict):
            _fail(_("Tier %(i)d must be a table of settings.", i=i))
        unknown = sorted(set(tier) - {"from", "to", "compensation", "minimum", "fine"})
        if unknown:
            _fail(_("Tier %(i)d does not take: %(keys)s.", i=i, keys=", ".join(unknown)))
        lo = _int(tier.get("from"), _("Tier %(i)d 'from'", i=i), 1, 10_000)
        hi = tier.get("to")
        hi = None if hi is None else _int(hi, _("Tier %(i)d 'to'", i=i), lo, 10_000)
        if lo <= last_to or (parsed and parsed[-1]["to"] is None):
            _fail(_("Tiers must go up without overlapping (tier %(i)d).", i=i))
        if hi is None and i != len(tiers):
            _fail(_("Only the last tier may be open-ended (tier %(i)d).", i=i))
        comp = tier.get("compensation")
        if comp is None and tier.get("fine") is None:
            _fail(_("Tier %(i)d needs a compensation, a fine or both.", i=i))
        entry = {"from": lo, "to": hi, "compensation": None, "minimum": None, "fine": None}
        if comp == ORDER_VALUE:
            entry["compensation"] = ORDER_VALUE
            if tier.get("minimum") is not None:
                entry["minimum"] = str(_money(tier["minimum"], _("Minimum"), allow_zero=True))
        elif comp is not None:
            entry["compensation"] = str(_money(comp, _("Compensation"), allow_zero=True))
            if tier.get("minimum") is not None:
                _fail(_("'minimum' goes only with compensation = \"order_value\" (tier %(i)d).",
                        i=i))
        if tier.get("fine") is not None:
            entry["fine"] = str(_money(tier["fine"], _("Fine"), allow_zero=True))
        parsed.append(entry)
        last_to = hi if hi is not None else lo
    return {"measure": measure.value, "tiers": parsed}


def parse_rules(items) -> list[dict]:
    if items is None:
        return []
    if not isinstance(items, list):
        _fail(_("Rules must be a list of [[rules]] tables."))
    parsed = [parse_rule(item) for item in items]
    kinds = [p["kind"] for p in parsed]
    for kind in (RuleKind.FIXED_FINE, RuleKind.TIME_LIMIT, RuleKind.POINTS,
                 RuleKind.ESCALATION, RuleKind.TIERED, RuleKind.HR_SANCTION):
        if kinds.count(kind) > 1:
            _fail(_("A clause can have only one rule of kind %(kind)s.", kind=kind.value))
    if RuleKind.ESCALATION in kinds and not ({RuleKind.FIXED_FINE, RuleKind.TIME_LIMIT}
                                             & set(kinds)):
        _fail(_("An escalation rule needs a fine to multiply (a fixed_fine or time_limit "
                "rule)."))
    return parsed


def canonical(kind: RuleKind, amount: Decimal | None, points: int | None, params: dict) -> str:
    return "rule " + json.dumps({"kind": kind.value, "amount": str(amount) if amount is not None
                                 else None, "points": points, "params": params},
                                sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _yuan(value) -> str:
    return f"¥{Decimal(value):,.2f}"


def _duration(minutes: int) -> str:
    if minutes % 60 == 0:
        return _("%(n)d hours", n=minutes // 60) if minutes != 60 else _("1 hour")
    return _("%(n)d minutes", n=minutes)


def describe(kind: RuleKind, amount: Decimal | None, points: int | None, params: dict) -> str:
    """The rule in plain language, in the current user's language."""
    if kind is RuleKind.FIXED_FINE:
        return _("Fine of %(amount)s on the party per occurrence.", amount=_yuan(amount))
    if kind is RuleKind.TIME_LIMIT:
        return _("Must be done within %(limit)s; each breach fines the party %(amount)s.",
                 limit=_duration(params["limit_minutes"]), amount=_yuan(amount))
    if kind is RuleKind.POINTS:
        if params.get("serious"):
            return _("%(n)d points per occurrence (serious: kept past the yearly reset).",
                     n=points)
        return _("%(n)d points per occurrence.", n=points)
    if kind is RuleKind.ESCALATION:
        return _("From breach number %(nth)d within %(days)d days by the same party, the fine "
                 "is multiplied by %(factor)s.", nth=params["nth"], days=params["window_days"],
                 factor=params["multiplier"])
    if kind is RuleKind.HR_SANCTION:
        label = str(SANCTION_LABELS[HrSanction(params["proposal"])])
        if params.get("text"):
            return _("Sanction proposed to HR for the responsible employee: %(sanction)s "
                     "(%(text)s).", sanction=label, text=params["text"])
        return _("Sanction proposed to HR for the responsible employee: %(sanction)s.",
                 sanction=label)
    parts = [_describe_tier(t) for t in params["tiers"]]
    return _("By days late: %(tiers)s.", tiers="; ".join(parts))


def _describe_tier(t: dict) -> str:
    if t["to"] is None:
        span = _("%(n)d days or more", n=t["from"])
    elif t["from"] == t["to"]:
        span = ngettext("%(num)d day", "%(num)d days", t["from"])
    else:
        span = _("%(lo)d to %(hi)d days", lo=t["from"], hi=t["to"])
    bits = []
    if t["compensation"] == ORDER_VALUE:
        bits.append(_("customer compensated the order value (the package is free)")
                    + (_(", at least %(min)s", min=_yuan(t["minimum"])) if t["minimum"] else ""))
    elif t["compensation"] is not None:
        bits.append(_("customer compensated %(amount)s", amount=_yuan(t["compensation"])))
    if t["fine"] is not None:
        bits.append(_("party fined %(amount)s", amount=_yuan(t["fine"])))
    return f"{span}: " + ", ".join(bits)
