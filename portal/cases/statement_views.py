"""Monthly statements (对账单): list, issue, show, countersign, export (routes on the cases
blueprint).

CS and auditors see every party's statements; a party's staff only their own party's (another
party's statement answers 404, however its id is guessed). The exports are the frozen lines
of the statement as issued; the preview shows a month's lines as they stand now.
"""
from __future__ import annotations

import io

from flask import abort, make_response, redirect, render_template, request, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import HiddenField, StringField
from wtforms.validators import DataRequired, Length

from portal.cases import statements as service
from portal.cases.models import Statement, StatementStatus
from portal.cases.views import bp
from portal.core.errors import ServiceError
from portal.core.pdf import render_pdf
from portal.core.permissions import Perm, allowed, ensure_visible, party_scope, require
from portal.core.web import csv_response, page_arg, spreadsheet_safe, submit
from portal.extensions import db
from portal.parties.models import Party

PER_PAGE = 25
STATUS_LABELS = {StatementStatus.ISSUED: _l("Awaiting countersignature"),
                 StatementStatus.COUNTERSIGNED: _l("Countersigned")}


class IssueForm(FlaskForm):
    period = StringField(_l("Month (YYYY-MM)"), validators=[DataRequired(), Length(max=7)])


class CountersignForm(FlaskForm):
    name = StringField(_l("Your full name"),
                       validators=[DataRequired(), Length(max=service.NAME_MAX)],
                       description=_l("Typing your name signs the statement text with the hash "
                                      "shown above."))
    seen_hash = HiddenField()


@bp.context_processor
def _statement_context():
    return {"statement_status_labels": STATUS_LABELS}


def _statement_or_404(statement_id: int) -> Statement:
    statement = db.session.get(Statement, statement_id) or abort(404)
    ensure_visible(statement.party_id)
    return statement


# --- list and issue ---------------------------------------------------------------------------

@bp.get("/statements")
@require(Perm.VIEW_PENALTIES)
def statements(issue_form: IssueForm | None = None):
    scope = party_scope(current_user)
    args = {k: (request.args.get(k) or "").strip()[:20] for k in ("period", "party", "status")}
    q = (select(Statement).join(Party, Party.id == Statement.party_id)
         .order_by(Statement.period.desc(), Party.code))
    if scope is not None:
        q = q.where(Statement.party_id == scope)
    elif args["party"]:
        q = q.where(Party.code == args["party"].upper())
    if args["period"]:
        q = q.where(Statement.period == args["period"])
    if args["status"] in {s.value for s in StatementStatus}:
        q = q.where(Statement.status == StatementStatus(args["status"]))
    page = db.paginate(q, page=page_arg(request), per_page=PER_PAGE, error_out=False)
    ctx = {"page": page, "scope": scope, "args": args, "statuses": list(StatementStatus)}
    if allowed(current_user, Perm.HANDLE_CASES):
        form = issue_form or IssueForm(formdata=None)
        if not form.is_submitted():
            form.period.data = service.current_period().previous().text
        ctx["issue_form"] = form
    return render_template("cases/statements.html", **ctx)


@bp.post("/statements/issue")
@require(Perm.HANDLE_CASES)
def issue_statements():
    form = IssueForm()

    def message(issued):
        if not issued:
            return _("No statements to issue for %(p)s: every party with charges or reversals "
                     "that month already has one.", p=form.period.data.strip())
        return _("%(n)d statements issued for %(p)s.", n=len(issued), p=issued[0].period)

    done = submit(form, lambda: service.issue_all(form.period.data, current_user), message)
    if done.ok:
        return redirect(url_for("cases.statements", period=form.period.data.strip()))
    return statements(issue_form=form), 400


# --- one statement ----------------------------------------------------------------------------

@bp.get("/statements/<int:statement_id>")
@require(Perm.VIEW_PENALTIES)
def statement(statement_id: int, countersign_form: CountersignForm | None = None):
    st = _statement_or_404(statement_id)
    ctx = {"st": st, "lines": service.frozen_lines(st), "totals": service.statement_totals(st)}
    if st.status is StatementStatus.ISSUED and service.may_countersign(current_user, st):
        form = countersign_form or CountersignForm(formdata=None)
        form.seen_hash.data = st.text_hash     # what this page shows is what is signed
        ctx["countersign_form"] = form
    return render_template("cases/statement.html", **ctx)


@bp.post("/statements/<int:statement_id>/countersign")
@require(Perm.COUNTERSIGN_STATEMENTS)
def countersign_statement(statement_id: int):
    st = _statement_or_404(statement_id)
    form = CountersignForm()
    done = submit(form, lambda: service.countersign(st, current_user, form.name.data,
                                                    form.seen_hash.data),
                  _("You countersigned statement %(n)s.", n=st.number))
    if done.ok:
        return redirect(url_for("cases.statement", statement_id=st.id))
    return statement(statement_id, countersign_form=form), 400


@bp.get("/statements/preview")
@require(Perm.VIEW_PENALTIES)
def statement_preview():
    """A month's lines as they stand now, for one party: not frozen, not issued."""
    scope = party_scope(current_user)
    code = (request.args.get("party") or "").strip().upper()[:20]
    period_text = (request.args.get("period") or "").strip()[:20]
    ctx = {"scope": scope, "code": code, "period_text": period_text}
    if scope is not None:
        party = db.session.get(Party, scope) or abort(404)
        if code and code != party.code:
            abort(404)
    elif code:
        party = db.session.scalar(select(Party).where(Party.code == code)) or abort(404)
    else:
        return render_template("cases/statement_preview.html", **ctx)
    ctx.update(party=party, code=party.code)
    try:
        period = service.parse_period(period_text or service.current_period().text)
    except ServiceError as err:
        ctx["error"] = err.message
        return render_template("cases/statement_preview.html", **ctx), 400
    lines = service.statement_lines(party.id, period)
    ctx.update(period=period, period_text=period.text, lines=lines,
               totals=service.Totals.of(lines),
               issued=service.find_statement(party.id, period))
    return render_template("cases/statement_preview.html", **ctx)


# --- exports ----------------------------------------------------------------------------------

def _columns() -> list[str]:
    return [_("Time"), _("Kind"), _("Penalty"), _("Case"), _("Ruling"), _("Clauses breached"),
            _("Share %"), _("Fine"), _("Compensation"), _("Amount"), _("Points"), _("Note")]


def _kind(line) -> str:
    return _("Reversal") if line.is_reversal else _("Charge")


def _row(line) -> list:
    return [format_datetime(line.at, "yyyy-MM-dd HH:mm"), _kind(line), line.penalty, line.case,
            line.ruling, "; ".join(line.clauses), line.share, line.fine, line.compensation,
            line.amount, line.points, line.note_text]


def _download(body: bytes, mimetype: str, filename: str):
    response = make_response(body)
    response.headers["Content-Type"] = mimetype
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.cache_control.private = True
    response.cache_control.no_cache = True
    return response


@bp.get("/statements/<int:statement_id>.csv")
@require(Perm.VIEW_PENALTIES)
def statement_csv(statement_id: int):
    st = _statement_or_404(statement_id)
    t = service.statement_totals(st)
    rows = [_row(line) for line in service.frozen_lines(st)]
    rows.append([_("Total"), "", "", "", "", "", "", t.fine, t.compensation, t.amount,
                 t.points, ""])
    response = csv_response(f"{st.number}.csv", _columns(), rows)
    response.cache_control.private = True
    return response


@bp.get("/statements/<int:statement_id>.xlsx")
@require(Perm.VIEW_PENALTIES)
def statement_xlsx(statement_id: int):
    from openpyxl import Workbook
    from openpyxl.styles import Font

    st = _statement_or_404(statement_id)
    t = service.statement_totals(st)
    wb = Workbook()
    ws = wb.active
    ws.title = st.number[:31]
    bold = Font(bold=True)
    for label, value in ((_("Statement"), st.number),
                         (_("Party"), f"{st.party.code} {st.party.name_zh}"),
                         (_("Period"), st.period), (_("Text hash"), st.text_hash)):
        ws.append([label, spreadsheet_safe(value)])
        ws.cell(ws.max_row, 1).font = bold
    ws.append([])
    ws.append(_columns())
    header = ws.max_row
    for cell in ws[header]:
        cell.font = bold
    money_columns = (8, 9, 10)
    for line in service.frozen_lines(st):
        ws.append([spreadsheet_safe(v) for v in _row(line)])
    ws.append([_("Total"), None, None, None, None, None, None, t.fine, t.compensation,
               t.amount, t.points, None])
    for cell in ws[ws.max_row]:
        cell.font = bold
    for row in ws.iter_rows(min_row=header + 1, min_col=money_columns[0],
                            max_col=money_columns[-1]):
        for cell in row:
            cell.number_format = "0.00"
    for letter, width in zip("ABCDEFGHIJKL", (17, 8, 11, 14, 11, 26, 8, 11, 11, 11, 8, 28),
                             strict=True):
        ws.column_dimensions[letter].width = width
    ws.freeze_panes = ws.cell(header + 1, 1)
    buf = io.BytesIO()
    wb.save(buf)
    return _download(buf.getvalue(),
                     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                     f"{st.number}.xlsx")


@bp.get("/statements/<int:statement_id>.pdf")
@require(Perm.VIEW_PENALTIES)
def statement_pdf(statement_id: int):
    st = _statement_or_404(statement_id)
    html = render_template("cases/statement_pdf.html", st=st, lines=service.frozen_lines(st),
                           totals=service.statement_totals(st),
                           tz=service.portal_zone().key)
    return _download(render_pdf(html), "application/pdf", f"{st.number}.pdf")
