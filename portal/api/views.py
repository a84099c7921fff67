"""The JSON API (``/api/v1``, token auth, no CSRF) and the API token admin page.

The API answers in JSON only, errors included (``{"error": code, "message": text, ...}``), in
the language the caller's ``Accept-Language`` prefers of Chinese and English (English when it
names neither: most callers are machines). It ignores the browser session: a request is who
its bearer token says, nothing else. Each request is one transaction, committed at the end.
"""
from __future__ import annotations

import base64
import binascii
import json
from datetime import date, timedelta
from decimal import Decimal
from functools import wraps
from types import SimpleNamespace

from flask import (
    Blueprint,
    abort,
    current_app,
    jsonify,
    make_response,
    render_template,
    request,
    url_for,
)
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.exceptions import HTTPException

from portal.api import openapi, services
from portal.api.forms import IssueTokenForm
from portal.cases import sanctions
from portal.cases.models import ViolationStatus
from portal.core.permissions import Perm, require
from portal.core.timeutil import local_day_bounds_utc, zone
from portal.core.web import ConfirmForm, one_click, submit
from portal.extensions import db, login_manager
from portal.intake import facts
from portal.intake.models import ApiToken
from portal.intake.services import rejection_text, summary
from portal.parties.models import PartyKind

api_bp = Blueprint("api", __name__, url_prefix="/api/v1")
tokens_bp = Blueprint("tokens", __name__, url_prefix="/admin/api-tokens")

MAX_TICKETS = 10_000
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
MAX_ID = 2**31 - 1                     # the largest INTEGER id
LANGUAGES = ["en", "zh_CN"]            # the first is the default


# --- the JSON API: plumbing ------------------------------------------------------------------

def api_locale() -> str:
    return request.accept_languages.best_match(LANGUAGES, default=LANGUAGES[0])


def error(status: int, code: str, message: str, **extra):
    resp = jsonify({"error": code, "message": message, **extra})
    resp.status_code = status
    if status == 401:
        resp.headers["WWW-Authenticate"] = (
            'Bearer realm="api"' if code == "missing_token"
            else 'Bearer realm="api", error="invalid_token"')
    return resp


class BadParameter(Exception):
    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name, self.message = name, message


@api_bp.before_request
def _ignore_the_session():
    # Flask-Login's own way to set the request's user: anonymous, whatever cookie came along,
    # so nothing here (audit events included) acts as a signed-in browser user.
    login_manager._update_request_context_with_user()


@api_bp.errorhandler(413)
def _body_too_large(exc: HTTPException):
    with force_locale(api_locale()):
        return error(413, "body_too_large", _(
            "The request body is larger than %(n)d bytes.",
            n=current_app.config.get("MAX_CONTENT_LENGTH") or 0))


@api_bp.errorhandler(500)
def _server_error(exc: HTTPException):
    db.session.rollback()
    with force_locale(api_locale()):
        return error(500, "server_error", _("Something went wrong on the portal's side; "
                                            "nothing of this request was stored."))


def token_required(view):
    """Run ``view(token, ...)`` for a request with a valid bearer token, in the caller's
    language, as one transaction (rolled back if anything fails)."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        with force_locale(api_locale()):
            header = request.headers.get("Authorization")
            if not header:
                return error(401, "missing_token", _(
                    "Send an API token in the header Authorization: Bearer <token>."))
            token = services.authenticate(header)
            if token is None:
                return error(401, "invalid_token", _(
                    "The API token is not valid or has been revoked."))
            try:
                resp = view(token, *args, **kwargs)
                db.session.commit()
            except Exception:
                db.session.rollback()
                raise
            return resp
    return wrapped


# --- POST /api/v1/tickets --------------------------------------------------------------------

def _reject_constant(name):
    raise ValueError(f"{name} is not a number")


def _as_text(value) -> str:
    """A JSON value as the text a CSV cell would hold (what ``parse_ticket`` reads)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (dict, list)):     # numbers inside were read as Decimal too
        return json.dumps(value, ensure_ascii=False, default=lambda d: format(d, "f"))
    return str(value)


def _as_row(item):
    if not isinstance(item, dict):
        return item             # the importer rejects it as "not_object"
    return {key: _as_text(value) for key, value in item.items()}


@api_bp.post("/tickets")
@token_required
def import_tickets(token: ApiToken):
    if not request.is_json:
        return error(415, "unsupported_media_type",
                     _("Send the tickets as JSON with Content-Type: application/json."))
    data = request.get_data(cache=False)
    try:
        body = json.loads(data, parse_float=Decimal, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        return error(400, "malformed_json", _("The body is not valid JSON (line %(line)d, "
                                              "column %(column)d).", line=exc.lineno,
                                              column=exc.colno))
    except (ValueError, RecursionError):     # bad UTF-8, NaN/Infinity, absurd nesting
        return error(400, "malformed_json", _("The body is not valid JSON."))
    if not isinstance(body, dict):
        return error(400, "not_an_object", _('The body must be a JSON object: '
                                              '{"tickets": [...]}.'))
    if "tickets" not in body:
        return error(400, "tickets_missing", _('The body has no "tickets" array.'))
    items = body["tickets"]
    if not isinstance(items, list):
        return error(400, "tickets_not_array", _('"tickets" must be an array of ticket '
                                                 'objects.'))
    if not items:
        return error(400, "tickets_empty", _('"tickets" is empty: send at least one ticket.'))
    if len(items) > MAX_TICKETS:
        return error(413, "too_many_tickets", _(
            "At most %(limit)d tickets per request; this one has %(count)d. Split it into "
            "several requests.", limit=MAX_TICKETS, count=len(items)),
            limit=MAX_TICKETS, count=len(items))
    if any(isinstance(v, str) and "\x00" in v
           for item in items if isinstance(item, dict) for v in item.values()):
        # PostgreSQL cannot store the character in text at all
        return error(400, "nul_character", _("Text values must not contain the NUL character "
                                             "(\\u0000)."))
    batch, counts = services.import_tickets([_as_row(i) for i in items], token, len(data))
    return jsonify({
        "batch_id": batch.id, "created": batch.created, "updated": batch.updated,
        "unchanged": batch.unchanged, "rejected": batch.rejected,
        "violations": batch.violations, "message": summary(batch),
        "rejections": [{"index": r["line"] - 1, "ticket_no": r["ticket_no"] or None,
                        "field": r["field"] or None, "reason": r["reason"],
                        "value": r["value"], "message": rejection_text(SimpleNamespace(**r))}
                       for r in counts.rejections]})


# --- GET /api/v1/violations ------------------------------------------------------------------

def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    tag, _sep, number = text.partition(":")
    # ids are INTEGER columns: a larger number is no cursor this API gave out (and PostgreSQL
    # refuses to compare with it)
    if tag != "v1" or not (number.isascii() and number.isdigit()) or int(number) > MAX_ID:
        raise BadParameter("after", _("after: not a cursor this API gave out (use the "
                                      "\"next\" value of the previous page)."))
    return int(number)


def clause_code(clause) -> str:
    """A clause in any version, as the portal prints it without the version: "CAR-DLV §1"."""
    return f"{clause.standard_version.standard.code} §{clause.number}"


def parse_clause(text: str) -> tuple[str, str, int | None]:
    """"CAR-DLV §1" (the clause in any version) or "CAR-DLV v2 §1" (the portal's clause label:
    that version's clause) -> (standard code, clause number, version or None)."""
    head, sep, number = text.partition("§")
    code, _sp, version = head.strip().partition(" ")
    version = version.strip()
    number = number.strip()
    if not sep or not code or not number or (
            version and not (version[:1] in "vV" and version[1:].isdigit())):
        raise BadParameter("clause", _(
            "clause: write a clause as the portal does, e.g. \"CAR-DLV §1\" (any version) or "
            "\"CAR-DLV v2 §1\" (that version)."))
    return code.upper(), number, int(version[1:]) if version else None


_FIRST_DAY, _LAST_DAY = date.min + timedelta(days=1), date.max - timedelta(days=1)


def _date_arg(name: str) -> date | None:
    text = request.args.get(name, "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadParameter(name, _("%(name)s: not a date (use YYYY-MM-DD).",
                                   name=name)) from None


def refuse_nul(args) -> None:
    """No stored value holds the NUL character, and PostgreSQL refuses it in a query."""
    for name, value in args.items(multi=True):
        if "\x00" in value:
            raise BadParameter(name, _("%(name)s: must not contain the NUL character.",
                                       name=name))


def parse_violation_args(args, tz) -> tuple[services.ViolationQuery, int, int]:
    """The query, the id to continue after and the page size; ``BadParameter`` names the
    first parameter at fault."""
    refuse_nul(args)
    q = services.ViolationQuery()
    party = args.get("party", "").strip()
    if party:
        q.party_id = services.party_id_by_code(party.upper())
        if q.party_id is None:
            raise BadParameter("party", _("party: no party has the code %(code)s.",
                                          code=party))
    clause = args.get("clause", "").strip()
    if clause:
        code, number, version = parse_clause(clause)
        found = services.clause_filter(code, number, version)
        if found is None:
            raise BadParameter("clause", _("clause: there is no clause %(clause)s.",
                                           clause=clause))
        for key, value in found.items():
            setattr(q, key, value)
    status = args.get("status", "").strip()
    if status:
        try:
            q.status = ViolationStatus(status)
        except ValueError:
            raise BadParameter("status", _("status: use one of %(values)s.", values=", ".join(
                s.value for s in ViolationStatus))) from None
    q.ticket_no = args.get("ticket", "").strip() or None
    start, end = _date_arg("from"), _date_arg("to")
    if start and end and end < start:
        raise BadParameter("to", _("to: the end date is before the start date."))
    if start or end:
        # days at the ends of the calendar (0001-01-01, 9999-12-31) have no UTC bound in every
        # zone: clamped a day in, they still mean "from the beginning" / "to the end"
        lo, hi = local_day_bounds_utc(max(start or end, _FIRST_DAY), min(end or start, _LAST_DAY),
                                      tz)
        q.incident_from = lo if start else None
        q.incident_to = hi if end else None
    return q, *page_args(args)


def page_args(args) -> tuple[int, int]:
    """The id to continue after (``after``) and the page size (``limit``)."""
    limit_text = args.get("limit", "").strip()
    try:
        limit = int(limit_text) if limit_text else DEFAULT_LIMIT
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise BadParameter("limit", _("limit: a whole number from 1 to %(max)d.",
                                      max=MAX_LIMIT))
    after = args.get("after", "").strip()
    return decode_cursor(after) if after else 0, limit


def _iso(moment) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def violation_json(v, ticket, tz) -> dict:
    clause, version = v.clause, v.clause.standard_version
    return {
        "id": v.id,
        "ticket_no": v.ticket_no,
        "order_no": v.order_no or None,
        "party": {"code": v.party.code, "kind": v.party.kind.value},
        "clause": {"code": clause_code(clause), "label": clause.label,
                   "standard": version.standard.code, "number": clause.number,
                   "version": version.number},
        "status": v.status.value,
        "source": v.source.value,
        "customer_compensation": f"{v.customer_compensation:.2f}",
        "party_fine": f"{v.party_fine:.2f}",
        "points": v.points,
        "case_number": v.case.number if v.case else None,
        "incident_at": _iso(v.incident_at),
        "facts": {**facts.as_data(v), "text": facts.describe(v, tz, ticket)},
    }


@api_bp.get("/violations")
@token_required
def violations(token: ApiToken):
    tz = zone(current_app.config.get("PORTAL_DEFAULT_TIMEZONE"))
    try:
        q, after, limit = parse_violation_args(request.args, tz)
    except BadParameter as bad:
        return error(400, "bad_parameter", bad.message, parameter=bad.name)
    rows = services.find_violations(q, after=after, limit=limit + 1)
    page, more = rows[:limit], len(rows) > limit
    tickets = services.tickets_by_no(v.ticket_no for v in page)
    return jsonify({"items": [violation_json(v, tickets.get(v.ticket_no), tz) for v in page],
                    "next": encode_cursor(page[-1].id) if more else None})


# --- GET /api/v1/parties ---------------------------------------------------------------------

def parse_party_args(args) -> tuple[services.PartyQuery, int, int]:
    refuse_nul(args)
    q = services.PartyQuery()
    kind = args.get("kind", "").strip()
    if kind:
        try:
            q.kind = PartyKind(kind)
        except ValueError:
            raise BadParameter("kind", _("kind: use one of %(values)s.", values=", ".join(
                k.value for k in PartyKind))) from None
    q.code = args.get("code", "").strip().upper() or None
    flag = args.get("new_business", "").strip().lower()
    if flag:
        if flag not in ("true", "false"):
            raise BadParameter("new_business", _("new_business: use true or false."))
        q.new_business = flag == "true"
    return q, *page_args(args)


@api_bp.get("/parties")
@token_required
def parties(token: ApiToken):
    try:
        q, after, limit = parse_party_args(request.args)
    except BadParameter as bad:
        return error(400, "bad_parameter", bad.message, parameter=bad.name)
    rows = services.find_parties(q, after=after, limit=limit + 1)
    page, more = rows[:limit], len(rows) > limit
    year = sanctions.current_year()
    points = sanctions.points_by_party([p.id for p in page], year)
    return jsonify({"year": year,
                    "items": [party_json(p, points.get(p.id, sanctions.YearPoints()))
                              for p in page],
                    "next": encode_cursor(page[-1].id) if more else None})


def party_json(party, points) -> dict:
    return {"code": party.code, "kind": party.kind.value, "name_zh": party.name_zh,
            "name_en": party.name_en, "active": party.active, "sanction": party.sanction or None,
            "new_business": party.new_business, "points": points.points,
            "serious_carried": points.serious_carried}


# --- GET /api/v1/openapi.json ----------------------------------------------------------------

@api_bp.get("/openapi.json")
def openapi_document():
    with force_locale(api_locale()):
        doc = openapi.document(MAX_TICKETS, DEFAULT_LIMIT, MAX_LIMIT)
    # in the order written (jsonify sorts keys): the ticket fields as TICKET_FIELDS lists them
    return current_app.response_class(json.dumps(doc, ensure_ascii=False, indent=1),
                                      mimetype="application/json")


# --- the token admin page --------------------------------------------------------------------

@tokens_bp.route("/", methods=["GET", "POST"])
@require(Perm.MANAGE_API_TOKENS)
def index():
    """The tokens, and the form to issue one. A new token's plaintext is in the response to
    the POST that issued it and nowhere else (no flash, no session, not cached)."""
    form, issued, status = IssueTokenForm(), None, 200
    if request.method == "POST":
        done = submit(form, lambda: services.issue_token(form.name.data, current_user))
        if done.ok:
            token, plaintext = done.result
            issued = {"token": token, "plaintext": plaintext}
            form = IssueTokenForm(formdata=None)
        else:
            status = 400
    resp = make_response(render_template(
        "api/tokens.html", tokens=services.list_tokens(), form=form, issued=issued,
        confirm=ConfirmForm(), openapi_url=url_for("api.openapi_document")), status)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@tokens_bp.post("/<int:token_id>/revoke")
@require(Perm.MANAGE_API_TOKENS)
def revoke(token_id: int):
    token = db.session.get(ApiToken, token_id) or abort(404)
    return one_click(lambda: services.revoke_token(token, current_user),
                     _("Token %(name)s (%(prefix)s) revoked: it no longer opens the API.",
                       name=token.name, prefix=token.prefix), url_for("tokens.index"))
