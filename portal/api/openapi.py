"""The OpenAPI 3.0.3 document of ``/api/v1``, built from the same definitions the API runs on.

The ticket item schema comes from ``intake.fields.TICKET_FIELDS`` (the one list of ticket
fields), so a field added there is documented here without another edit. Descriptions are in
the request's language.
"""
from __future__ import annotations

from flask_babel import gettext as _

from portal.cases.models import SanctionLevel, ViolationSource, ViolationStatus
from portal.intake.fields import TICKET_FIELDS, reasons
from portal.parties.models import PartyKind
from portal.standards.rules import Check

# How each kind of ticket field is written in JSON. JSON numbers are accepted for amounts
# (read exactly, never as binary floats) but a string is what the schema asks for.
_KINDS = {
    "text": {"type": "string"},
    "code": {"type": "string"},
    "money": {"type": "string", "format": "decimal", "pattern": r"^\d{1,10}(\.\d{1,2})?$"},
    "time": {"type": "string", "format": "iso-8601"},
    "bool": {"type": "boolean"},
    "zone": {"type": "string", "format": "iana-time-zone"},
    "int": {"type": "integer", "minimum": 0},
    "date": {"type": "string", "format": "date"},
}
_BOOL_EXAMPLES = {"1": True, "0": False}

ERROR_CODES = ["missing_token", "invalid_token", "unsupported_media_type", "malformed_json",
               "not_an_object", "tickets_missing", "tickets_not_array", "tickets_empty",
               "nul_character", "too_many_tickets", "body_too_large", "bad_parameter",
               "server_error"]


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def ticket_field_schema(field) -> dict:
    schema = dict(_KINDS[field.kind])
    if schema["type"] == "string":
        schema["maxLength"] = field.max_len
    if not field.required:
        schema["nullable"] = True
    description = str(field.help)
    if field.kind == "time":
        description += " " + _("(ISO 8601, e.g. 2026-03-02 18:00 or 2026-03-02T18:00:00+08:00; "
                               "without an offset, in the ticket's customer_tz)")
    elif field.kind == "bool":
        description += " " + _("(also \"1\"/\"0\", \"yes\"/\"no\", \"是\"/\"否\"; null: "
                               "unknown)")
    elif field.kind == "money":
        description += " " + _("(a string such as \"199.00\"; a JSON number is read exactly)")
    schema["description"] = description
    if field.example != "":
        schema["example"] = (_BOOL_EXAMPLES.get(field.example, False) if field.kind == "bool"
                             else field.example)
    return schema


def ticket_item_schema() -> dict:
    return {
        "type": "object",
        "description": _("One complaint ticket. Its ticket_no is its key: posting the same "
                         "ticket again updates it, or changes nothing if nothing changed. "
                         "Other properties are ignored."),
        "required": [f.name for f in TICKET_FIELDS if f.required],
        "properties": {f.name: ticket_field_schema(f) for f in TICKET_FIELDS},
    }


def _money(description: str) -> dict:
    return {"type": "string", "format": "decimal", "example": "12.50",
            "description": description}


def _schemas(max_tickets: int) -> dict:
    return {
        "Error": {
            "type": "object", "required": ["error", "message"],
            "properties": {
                "error": {"type": "string", "enum": ERROR_CODES,
                          "description": _("What went wrong, as a code to program against.")},
                "message": {"type": "string",
                            "description": _("What went wrong, in the request's language.")},
                "parameter": {"type": "string",
                              "description": _("bad_parameter: the query parameter at fault.")},
                "limit": {"type": "integer",
                          "description": _("too_many_tickets: the most tickets per request.")},
                "count": {"type": "integer",
                          "description": _("too_many_tickets: the tickets this request "
                                           "held.")},
            },
        },
        "TicketItem": ticket_item_schema(),
        "TicketBatch": {
            "type": "object", "required": ["tickets"],
            "properties": {"tickets": {"type": "array", "minItems": 1, "maxItems": max_tickets,
                                       "items": _ref("TicketItem")}},
        },
        "Rejection": {
            "type": "object", "required": ["index", "reason", "message"],
            "properties": {
                "index": {"type": "integer", "minimum": 0, "description": _(
                    "Position of the ticket in the posted array, counted from 0 (the "
                    "portal's batch page shows it as row index + 1).")},
                "ticket_no": {"type": "string", "nullable": True},
                "field": {"type": "string", "nullable": True,
                          "description": _("The first field at fault.")},
                "reason": {"type": "string", "enum": sorted(reasons()),
                           "description": _("Why, as a code.")},
                "value": {"type": "string", "description": _("The value refused, if any.")},
                "message": {"type": "string",
                            "description": _("Why, in the request's language.")},
            },
        },
        "ImportResult": {
            "type": "object",
            "required": ["batch_id", "created", "updated", "unchanged", "rejected",
                         "violations", "rejections"],
            "properties": {
                "batch_id": {"type": "integer", "description": _(
                    "The import batch, as listed in the portal's intake pages.")},
                "created": {"type": "integer"},
                "updated": {"type": "integer"},
                "unchanged": {"type": "integer"},
                "rejected": {"type": "integer"},
                "violations": {"type": "integer", "description": _(
                    "Violations the rule engine proposed or revised for these tickets.")},
                "message": {"type": "string", "description": _(
                    "The counts in a sentence, in the request's language.")},
                "rejections": {"type": "array", "items": _ref("Rejection"), "description": _(
                    "The tickets refused; the others were stored.")},
            },
        },
        "Violation": {
            "type": "object",
            "required": ["id", "party", "clause", "status", "source", "customer_compensation",
                         "party_fine", "points", "facts"],
            "properties": {
                "id": {"type": "integer"},
                "ticket_no": {"type": "string", "nullable": True},
                "order_no": {"type": "string", "nullable": True, "example": "O20260302001"},
                "party": {"type": "object", "required": ["code", "kind"], "properties": {
                    "code": {"type": "string", "example": "C001"},
                    "kind": {"type": "string", "enum": [k.value for k in PartyKind]}}},
                "clause": {"type": "object",
                           "required": ["code", "label", "standard", "number", "version"],
                           "properties": {
                               "code": {"type": "string", "example": "CAR-DLV §1",
                                        "description": _(
                                            "The clause in any version: the value the clause "
                                            "filter takes.")},
                               "label": {"type": "string", "example": "CAR-DLV v2 §1",
                                         "description": _("The clause of this version, as "
                                                          "the portal prints it.")},
                               "standard": {"type": "string", "example": "CAR-DLV"},
                               "number": {"type": "string", "example": "1"},
                               "version": {"type": "integer", "example": 2}}},
                "status": {"type": "string", "enum": [s.value for s in ViolationStatus]},
                "source": {"type": "string", "enum": [s.value for s in ViolationSource]},
                "customer_compensation": _money(_("Paid to the customer, in yuan.")),
                "party_fine": _money(_("Fined to the party, in yuan.")),
                "points": {"type": "integer"},
                "case_number": {"type": "string", "nullable": True, "example": "CASE-000012"},
                "incident_at": {"type": "string", "format": "date-time", "nullable": True,
                                "description": _("When it happened (UTC).")},
                "facts": _ref("Facts"),
            },
        },
        "Facts": {
            "type": "object", "required": ["text"],
            "description": _("What the rule engine judged by, as data and as a sentence."),
            "properties": {
                "check": {"type": "string", "nullable": True,
                          "enum": [c.value for c in Check] + [None]},
                "from": {"type": "string", "format": "date-time", "nullable": True,
                         "description": _("Promised or requested (UTC).")},
                "to": {"type": "string", "format": "date-time", "nullable": True,
                       "description": _("Delivered, answered (or as of) or reported signed "
                                        "(UTC).")},
                "value": {"type": "integer", "nullable": True,
                          "description": _("Days late or seconds to answer.")},
                "limit": {"type": "integer", "nullable": True,
                          "description": _("The limit in seconds.")},
                "tier": {"type": "integer", "nullable": True},
                "repeat_no": {"type": "integer", "nullable": True},
                "multiplier": {"type": "string", "format": "decimal", "nullable": True},
                "order_value": {"type": "string", "format": "decimal", "nullable": True},
                "text": {"type": "string", "description": _(
                    "The facts in a sentence, in the request's language.")},
            },
        },
        "Party": {
            "type": "object",
            "required": ["code", "kind", "name_zh", "name_en", "active", "sanction",
                         "new_business", "points", "serious_carried"],
            "properties": {
                "code": {"type": "string", "example": "C001"},
                "kind": {"type": "string", "enum": [k.value for k in PartyKind]},
                "name_zh": {"type": "string", "example": "顺丰速运"},
                "name_en": {"type": "string", "example": "SF Express"},
                "active": {"type": "boolean"},
                "sanction": {"type": "string", "nullable": True,
                             "enum": [level.value for level in SanctionLevel] + [None],
                             "description": _("The gravest sanction standing, null for "
                                              "none.")},
                "new_business": {"type": "boolean", "description": _(
                    "May the party receive new business? False when it is inactive, "
                    "suspended or terminated.")},
                "points": {"type": "integer", "minimum": 0, "description": _(
                    "Points counted this year against the sanction thresholds, including the "
                    "serious points carried over.")},
                "serious_carried": {"type": "integer", "minimum": 0, "description": _(
                    "Of those, the points of serious violations of earlier years.")},
            },
        },
        "PartyPage": {
            "type": "object", "required": ["year", "items", "next"],
            "properties": {
                "year": {"type": "integer", "description": _(
                    "The calendar year the points are counted for (the portal's time "
                    "zone).")},
                "items": {"type": "array", "items": _ref("Party")},
                "next": {"type": "string", "nullable": True, "description": _(
                    "Pass as after= for the next page; null on the last page.")},
            },
        },
        "ViolationPage": {
            "type": "object", "required": ["items", "next"],
            "properties": {
                "items": {"type": "array", "items": _ref("Violation")},
                "next": {"type": "string", "nullable": True, "description": _(
                    "Pass as after= for the next page; null on the last page.")},
            },
        },
    }


def _error(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": _ref("Error")}}}


def _query(name: str, description: str, schema: dict | None = None) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}}


def document(max_tickets: int, default_limit: int, max_limit: int) -> dict:
    unauthorized = _error(_("No token, or a token that is not valid or has been revoked."))
    return {
        "openapi": "3.0.3",
        "info": {
            "title": _("Service Standards Portal API"),
            "version": "1",
            "description": _("Import complaint tickets, read the violations the rule "
                             "engine proposes and the parties' points and sanctions. Ask a CS administrator for a token and send it "
                             "as Authorization: Bearer <token>. Messages follow "
                             "Accept-Language (zh-CN or en; en by default)."),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": {
            "/tickets": {"post": {
                "operationId": "importTickets",
                "summary": _("Import a batch of tickets"),
                "description": _("Stores the good tickets and evaluates them; a bad ticket "
                                 "is reported by its index and does not fail the others. "
                                 "At most %(n)d tickets per request.", n=max_tickets),
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": _ref("TicketBatch")}}},
                "responses": {
                    "200": {"description": _("The batch was imported."), "content": {
                        "application/json": {"schema": _ref("ImportResult")}}},
                    "400": _error(_("The body is not JSON, not an object, or has no "
                                    "non-empty \"tickets\" array.")),
                    "401": unauthorized,
                    "413": _error(_("More than %(n)d tickets, or a body too large.",
                                    n=max_tickets)),
                    "415": _error(_("The body is not sent as application/json.")),
                },
            }},
            "/violations": {"get": {
                "operationId": "listViolations",
                "summary": _("List violations"),
                "description": _("By id, oldest first, a page at a time: pass the response's "
                                 "next as after to get the following page."),
                "parameters": [
                    _query("party", _("Party code, e.g. C001.")),
                    _query("clause", _("Clause: \"CAR-DLV §1\" (in any version) or "
                                       "\"CAR-DLV v2 §1\" (that version's clause).")),
                    _query("status", _("Status."), {
                        "type": "string", "enum": [s.value for s in ViolationStatus]}),
                    _query("ticket", _("Ticket number.")),
                    _query("from", _("First day of the incident (the portal's time zone), "
                                     "inclusive."), {"type": "string", "format": "date"}),
                    _query("to", _("Last day of the incident (the portal's time zone), "
                                   "inclusive."), {"type": "string", "format": "date"}),
                    _query("limit", _("Items per page."), {
                        "type": "integer", "minimum": 1, "maximum": max_limit,
                        "default": default_limit}),
                    _query("after", _("The next value of the previous page.")),
                ],
                "responses": {
                    "200": {"description": _("One page of violations."), "content": {
                        "application/json": {"schema": _ref("ViolationPage")}}},
                    "400": _error(_("A parameter is not valid; parameter names it.")),
                    "401": unauthorized,
                },
            }},
            "/parties": {"get": {
                "operationId": "listParties",
                "summary": _("List parties with their points and sanctions"),
                "description": _("By id, a page at a time: pass the response's next as after "
                                 "to get the following page. new_business tells an ordering "
                                 "or listing system whether to route new business to the "
                                 "party."),
                "parameters": [
                    _query("kind", _("Kind of party."), {
                        "type": "string", "enum": [k.value for k in PartyKind]}),
                    _query("code", _("Party code, e.g. C001.")),
                    _query("new_business", _("Only parties that may (true) or may not (false) "
                                             "receive new business."), {"type": "boolean"}),
                    _query("limit", _("Items per page."), {
                        "type": "integer", "minimum": 1, "maximum": max_limit,
                        "default": default_limit}),
                    _query("after", _("The next value of the previous page.")),
                ],
                "responses": {
                    "200": {"description": _("One page of parties."), "content": {
                        "application/json": {"schema": _ref("PartyPage")}}},
                    "400": _error(_("A parameter is not valid; parameter names it.")),
                    "401": unauthorized,
                },
            }},
            "/openapi.json": {"get": {
                "operationId": "openapi",
                "summary": _("This document"),
                "security": [],
                "responses": {"200": {"description": _("The OpenAPI document."), "content": {
                    "application/json": {"schema": {"type": "object"}}}}},
            }},
        },
        "components": {
            "securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer",
                "description": _("An API token issued on the portal's API tokens page or "
                                 "with flask tokens issue.")}},
            "schemas": _schemas(max_tickets),
        },
    }
