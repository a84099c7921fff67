"""What triggered a proposed violation, said in plain words and as data.

The engine stores the facts it judged by on each violation (``fact_from``, ``fact_to``,
``fact_value``, ``fact_limit``, tier and repeat); these functions turn them into the sentence a
CS officer reads in the review queue ("promised 2026-03-02 18:00, delivered 2026-03-04 09:12:
2 days late -> tier 2") and the structured form the API returns to other systems.
"""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from flask_babel import ngettext

from portal.core.money import format_yuan
from portal.standards.rules import Check


def _at(moment: datetime | None, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M") if moment else "—"


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "—"
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def describe(v, tz: ZoneInfo, ticket=None) -> str:
    """One sentence: the facts, the breach, the amounts; times in ``tz``. With the ``ticket``
    an unanswered request is told from an answered one."""
    if v.check == Check.DAYS_LATE:
        text = _("promised %(promised)s, delivered %(delivered)s: %(late)s",
                 promised=_at(v.fact_from, tz), delivered=_at(v.fact_to, tz),
                 late=ngettext("%(num)d day late", "%(num)d days late", v.fact_value or 0))
        if v.tier_no:
            text += " → " + _("tier %(n)d", n=v.tier_no)
    elif v.check == Check.FALSE_FEEDBACK:
        text = _("carrier reported signed at %(at)s; the customer says not received and no "
                 "proxy signature", at=_at(v.fact_to, tz))
    elif v.check == Check.RESPONSE_TIME:
        if ticket is not None and ticket.responded_at is None:
            text = _("requested %(asked)s, no answer as of %(checked)s: %(took)s, limit "
                     "%(limit)s", asked=_at(v.fact_from, tz), checked=_at(v.fact_to, tz),
                     took=_duration(v.fact_value), limit=_duration(v.fact_limit))
        else:
            text = _("requested %(asked)s, answered %(answered)s: %(took)s, limit %(limit)s",
                     asked=_at(v.fact_from, tz), answered=_at(v.fact_to, tz),
                     took=_duration(v.fact_value), limit=_duration(v.fact_limit))
    else:
        return _("recorded by hand")
    amounts = []
    if v.customer_compensation:
        amounts.append(_("compensation %(amount)s", amount=format_yuan(v.customer_compensation)))
    if v.party_fine:
        amounts.append(_("fine %(amount)s", amount=format_yuan(v.party_fine)))
    if v.repeat_no and v.repeat_no > 1 and v.multiplier and v.multiplier != 1:
        amounts.append(_("repeat no. %(n)d in the window: fine ×%(m)s", n=v.repeat_no,
                         m=f"{v.multiplier.normalize():f}"))
    if not amounts:
        return text
    return _("%(facts)s; %(amounts)s", facts=text, amounts=_(", ").join(amounts))


def as_data(v) -> dict:
    """The same facts for machines: UTC ISO times, whole numbers, no wording."""
    def iso(moment):
        return moment.isoformat().replace("+00:00", "Z") if moment else None

    return {"check": v.check or None, "from": iso(v.fact_from), "to": iso(v.fact_to),
            "value": v.fact_value, "limit": v.fact_limit, "tier": v.tier_no,
            "repeat_no": v.repeat_no, "multiplier": str(v.multiplier) if v.multiplier else None,
            "order_value": str(v.order_value) if v.order_value is not None else None}
