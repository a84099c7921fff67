"""The dashboard (温度计 / 晴雨表) for CS and auditors, and a party's own scorecard.

Both read ``reports.metrics``; every table can be downloaded with
``?export=<table>&format=csv|xlsx`` (the page's filters apply), and every number links to the
list of the records behind it (cases, the penalty ledger, HR notices, or the tickets' CSV).
"""
from __future__ import annotations

import io
from datetime import date

from flask import Response, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import func, or_, select

from portal.core import filters
from portal.core.i18n import select_locale
from portal.core.permissions import Perm, allowed, party_scope, require_any
from portal.core.web import csv_response, spreadsheet_safe
from portal.extensions import db
from portal.intake.models import Ticket
from portal.parties.models import Party, PartyKind
from portal.reports import charts, metrics
from portal.reports.views import bp

TICKETS_EXPORT_MAX = 100_000


# --- reading the filters ------------------------------------------------------------------


def _month(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw + "-01")
    except ValueError:
        return None


def _period(args, errors: dict) -> metrics.Period:
    """``year=2026``, or ``from=2026-01&to=2026-06`` (months), else the last twelve months."""
    year = args.get("year", "").strip()
    if year:
        if year.isdigit() and 2000 <= int(year) <= 2100:
            return metrics.Period.year(int(year))
        errors["year"] = _("Enter a year, e.g. 2026.")
    start, end = args.get("from", "").strip(), args.get("to", "").strip()
    if start or end:
        first, last = _month(start or end), _month(end or start)
        if first and last and first <= last and (last.year - first.year) * 12 \
                + last.month - first.month < 36:
            return metrics.Period.months(first, last)
        errors["from"] = _("Enter a range of up to 36 months as YYYY-MM, e.g. 2026-01 to "
                           "2026-06.")
    return metrics.Period.last_twelve_months()


def _party_by_code(code: str) -> Party | None:
    return db.session.scalar(select(Party).where(func.lower(Party.code) == code.lower()))


def _filters(args, *, own_party: Party | None = None
             ) -> tuple[metrics.DashboardFilters, Party | None, dict[str, str]]:
    errors: dict[str, str] = {}
    f = metrics.DashboardFilters(_period(args, errors))
    f.standard_id, f.clause_number = filters.clause(args, errors)
    party = own_party
    if own_party is None:
        f.kind = filters.party_kind(args, errors)
        code = filters.text(args, "party", 20)
        if code:
            party = _party_by_code(code)
            if party is None:
                errors["party"] = _("No party has this code.")
    if party is not None:
        f.party_id = party.id
    return f, party, errors


# --- links to the records behind a number -------------------------------------------------


def _days(f: metrics.DashboardFilters) -> dict:
    return {"from": f.period.start.isoformat(), "to": f.period.end.isoformat()}


def _clause_arg(f: metrics.DashboardFilters) -> dict:
    return {"clause": f"{f.standard_id}:{f.clause_number}"} if f.has_clause else {}


def _page_args() -> dict:
    """The page's own filters, for the links that keep them: a party's own scorecard reads no
    party or kind, so whatever else was typed into its address never reaches its links."""
    names = ("year", "from", "to", "clause")
    if party_scope(current_user) is None:
        names += ("kind", "party")
    return {k: request.args[k] for k in names if k in request.args}


def links(f: metrics.DashboardFilters, party: Party | None):
    """URL builders for the numbers on the page (party codes, clause keys)."""
    scoped = {"party": party.code} if party is not None else (
        {"kind": f.kind.value} if f.kind else {})

    def cases(**extra):
        return url_for("cases.index", **{**_days(f), **scoped, **_clause_arg(f), **extra})

    def penalties(code: str | None = None):
        who = {"party": code} if code else scoped
        return url_for("cases.penalties", **{**_days(f), **who})

    def appeals(which: str):
        """The cases with an appeal filed (or decided ``which`` way) in the period, of the
        parties on the page, whenever the incident happened."""
        days = {"appeal_from": f.period.start.isoformat(), "appeal_to": f.period.end.isoformat()}
        return url_for("cases.index", **{**scoped, **_clause_arg(f), **days, "appeal": which})

    def tickets(code: str | None = None):
        args = _page_args()
        if code:
            args["party"] = code
        return url_for(request.endpoint, **{**args, "export": "tickets", "format": "csv"})

    def export(table: str, fmt: str):
        args = _page_args()
        return url_for(request.endpoint, **{**args, "export": table, "format": fmt})

    return {"cases": cases, "penalties": penalties, "appeals": appeals, "tickets": tickets,
            "export": export}


# --- exports ------------------------------------------------------------------------------


def _money(value):
    return value if value is not None else ""


def _tables(d: metrics.Dashboard, locale: str, *, with_offenders: bool = True) -> dict:
    """table name -> (title, header, rows): what the page shows, for the exports."""
    kinds = _kind_labels()
    out = {
        "parties": (_("Complaint rate by party"),
                    [_("Party code"), _("Party"), _("Kind"), _("Complaints"), _("Orders"),
                     _("Complaints per 1,000 orders")],
                    [[p.code, p.name(locale), kinds[p.kind], p.complaints, p.orders,
                      _money(p.rate)] for p in d.rates.parties]),
        "kinds": (_("Complaint rate by kind of party"),
                  [_("Kind"), _("Complaints"), _("Orders"), _("Complaints per 1,000 orders")],
                  [[kinds[r.key], r.complaints, r.orders, _money(r.rate)]
                   for r in d.rates.by_kind]),
        "trend": (_("Complaint rate by month"),
                  [_("Month"), _("Complaints"), _("Orders"), _("Complaints per 1,000 orders")],
                  [[r.key.strftime("%Y-%m"), r.complaints, r.orders, _money(r.rate)]
                   for r in d.rates.trend]),
        "clauses": (_("Violations and fines by clause"),
                    [_("Standard"), _("Clause"), _("Title"), _("Violations"), _("Fines"),
                     _("Compensation")],
                    [[c.standard_code, c.clause_number, c.title(locale), c.violations, c.fines,
                      c.compensation] for c in d.clauses]),
        "appeals": (_("Appeals"),
                    [_("Penalties"), _("Appeals filed"), _("Appeal rate %"), _("Appeals decided"),
                     _("Upheld"), _("Reduced"), _("Overturned"), _("Overturn rate %")],
                    [[d.appeals.penalties, d.appeals.filed, _money(d.appeals.appeal_rate),
                      d.appeals.decided, d.appeals.upheld, d.appeals.reduced,
                      d.appeals.overturned, _money(d.appeals.overturn_rate)]]),
        "coverage": (_("Acknowledgement and training coverage"),
                     [_("Kind"), _("Reading tasks"), _("Acknowledged"), _("Acknowledged %"),
                      _("Training tasks"), _("Completed"), _("Completion %")],
                     [[kinds[c.kind], c.acknowledgements.total, c.acknowledgements.done,
                       c.acknowledgements.percent, c.training.total, c.training.done,
                       c.training.percent] for c in d.coverage]),
        "hr": (_("HR notices"),
               [_("Department code"), _("Department"), _("Notices"), _("Still open"), _("Acted on"),
                _("Withdrawn by CS")],
               [[h.code, h.name(locale), h.notices, h.open, h.acted, h.withdrawn]
                for h in d.hr]),
    }
    if with_offenders:
        out["offenders"] = (_("Top offenders"),
                            [_("Party code"), _("Party"), _("Kind"), _("Penalties"),
                             _("Amount"), _("Points")],
                            [[o.code, o.name(locale), kinds[o.kind], o.penalties, o.amount,
                              o.points] for o in d.offenders])
    return out


def _xlsx_response(filename: str, title: str, header: list[str], rows) -> Response:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title[:31])
    sheet.append(header)
    for row in rows:
        sheet.append([spreadsheet_safe(v) for v in row])
    buf = io.BytesIO()
    book.save(buf)
    return Response(buf.getvalue(), mimetype="application/vnd.openxmlformats-officedocument."
                    "spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _tickets_export(f: metrics.DashboardFilters, fmt: str):
    """The tickets behind a complaint count: opened in the period, naming the party (or a
    party of the kind)."""
    lo, hi = f.period.bounds()
    columns = (Ticket.carrier_id, Ticket.merchant_id, Ticket.warehouse_id, Ticket.request_to_id)
    q = select(Ticket.ticket_no, Ticket.order_no, Ticket.opened_at, Ticket.category,
               Ticket.carrier_id, Ticket.merchant_id, Ticket.warehouse_id,
               Ticket.request_to_id).where(Ticket.opened_at.between(lo, hi))
    if f.party_id is not None:
        q = q.where(or_(*(c == f.party_id for c in columns)))
    elif f.kind is not None:
        of_kind = select(Party.id).where(Party.kind == f.kind)
        q = q.where(or_(*(c.in_(of_kind) for c in columns)))
    rows = db.session.execute(q.order_by(Ticket.opened_at).limit(TICKETS_EXPORT_MAX)).all()
    scope = party_scope(current_user)
    if scope is None:
        codes = dict(db.session.execute(select(Party.id, Party.code)).all())
    else:   # a party's own export names no other party of its tickets (as its case pages)
        codes = dict(db.session.execute(select(Party.id, Party.code)
                                        .where(Party.id == scope)).all())
    tz = metrics.portal_zone()
    header = [_("Ticket"), _("Order"), _("Opened at"), _("Category"), _("Carrier"),
              _("Merchant"), _("Warehouse"), _("CS request to")]
    body = [[r.ticket_no, r.order_no, r.opened_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
             r.category, *(codes.get(pid, "") for pid in r[4:])] for r in rows]
    return _download("tickets", _("Tickets"), header, body, fmt, f)


def _download(table: str, title: str, header, rows, fmt: str, f: metrics.DashboardFilters):
    name = f"dashboard-{table}-{f.period.start:%Y%m%d}-{f.period.end:%Y%m%d}"
    if fmt == "xlsx":
        return _xlsx_response(name + ".xlsx", title, header, rows)
    return csv_response(name + ".csv", header, rows)


def _export(d_or_f, table: str, fmt: str, locale: str, *, with_offenders: bool):
    if fmt not in ("csv", "xlsx"):
        abort(400)
    if table == "tickets":
        return _tickets_export(d_or_f, fmt)
    d = metrics.dashboard(d_or_f)
    tables = _tables(d, locale, with_offenders=with_offenders)
    if table not in tables:
        abort(404)
    title, header, rows = tables[table]
    return _download(table, title, header, rows, fmt, d_or_f)


# --- pages --------------------------------------------------------------------------------


def _kind_labels() -> dict:
    return {PartyKind.CARRIER: _("Carrier"), PartyKind.MERCHANT: _("Merchant"),
            PartyKind.WAREHOUSE: _("Warehouse"), PartyKind.DEPARTMENT: _("Department")}


def _charts(d: metrics.Dashboard, locale: str, *, parties: bool) -> dict:
    unit = _("Complaints per 1,000 orders")
    out = {"trend": Markup(charts.line_chart(  # nosec B704  # charts escape all text
        _("Complaint rate by month") + f" ({unit})",
        [(r.key.strftime("%Y-%m"), r.rate) for r in d.rates.trend])),
        "clauses": Markup(charts.bar_chart(  # nosec B704  # charts escape all text
            _("Violations by clause"),
            [(f"{c.standard_code} §{c.clause_number} {c.title(locale)}", c.violations)
             for c in d.clauses[:10]]))}
    if parties:
        out["parties"] = Markup(charts.bar_chart(  # nosec B704  # charts escape all text
            _("Highest complaint rates") + f" ({unit})",
            [(f"{p.code} {p.name(locale)}", p.rate) for p in d.rates.parties[:10]
             if p.rate is not None]))
    return out


@bp.get("/dashboard")
@require_any(Perm.PRINT_REPORTS)
def dashboard():
    f, party, errors = _filters(request.args)
    locale = select_locale()
    if request.args.get("export"):
        return _export(f, request.args["export"], request.args.get("format", "csv"), locale,
                       with_offenders=True)
    from portal.intake.review import clause_options

    d = metrics.dashboard(f)
    return render_template("reports/dashboard.html", d=d, f=f, party=party, errors=errors,
                           args=request.args, kinds=list(PartyKind), kind_labels=_kind_labels(),
                           clauses=clause_options(locale, everything=True), locale=locale,
                           charts=_charts(d, locale, parties=True), link=links(f, party),
                           may_see_hr=allowed(current_user, Perm.VIEW_HR_NOTICES))


@bp.get("/scorecard")
@require_any(Perm.PRINT_REPORTS, Perm.VIEW_PENALTIES)
def scorecard():
    """A party's own numbers and its place among its peers (never named). Party staff see
    their own party; CS and auditors may open any party's (``?party=CODE``)."""
    scope = party_scope(current_user)
    if scope is None:
        if not allowed(current_user, Perm.PRINT_REPORTS):
            abort(403)
        code = filters.text(request.args, "party", 20)
        party = _party_by_code(code) if code else None
        if party is None:
            return redirect(url_for("reports.dashboard", **request.args))
    else:
        party = db.session.get(Party, scope) or abort(404)
    f, party, errors = _filters(request.args, own_party=party)
    locale = select_locale()
    if request.args.get("export"):
        return _export(f, request.args["export"], request.args.get("format", "csv"), locale,
                       with_offenders=False)
    d = metrics.dashboard(f)
    rank = metrics.rank_among_peers(party, f.period)
    return render_template("reports/scorecard.html", d=d, f=f, party=party, errors=errors,
                           args=request.args, rank=rank, kind_labels=_kind_labels(),
                           locale=locale, charts=_charts(d, locale, parties=False),
                           link=links(f, party), may_see_hr=allowed(current_user,
                                                                    Perm.VIEW_HR_NOTICES),
                           own=scope is not None)
