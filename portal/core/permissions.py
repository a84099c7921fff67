"""Authorisation in one place: which role may do what, and which rows a user may load.

Views ask ``require(Perm.X)`` (a decorator) or ``allowed(user, Perm.X)``; list queries are
narrowed by ``party_scope(user)``: ``None`` for users who may see every party's rows, otherwise
the one party id their rows must belong to. A party's staff therefore can only ever load their
own party's rows; an object of another party is answered 404, not 403, so ids cannot be probed.
"""
from __future__ import annotations

import enum
from functools import wraps

from flask import abort
from flask_login import current_user, login_required


class Role(enum.StrEnum):
    CS_ADMIN = "cs_admin"
    CS_SUPERVISOR = "cs_supervisor"
    CS_DIRECTOR = "cs_director"          # signs the largest rulings
    CS_OFFICER = "cs_officer"
    AUDITOR = "auditor"
    PARTY_STAFF = "party_staff"
    PARTY_MANAGER = "party_manager"      # a carrier's, merchant's or warehouse's manager
    DEPARTMENT_MANAGER = "department_manager"
    HR_OFFICER = "hr_officer"


class Perm(enum.StrEnum):
    MANAGE_PARTIES = "manage_parties"
    MANAGE_USERS = "manage_users"
    VIEW_PARTIES = "view_parties"
    AUTHOR_STANDARDS = "author_standards"
    APPROVE_STANDARDS = "approve_standards"      # four eyes: never one's own draft
    PUBLISH_STANDARDS = "publish_standards"
    VIEW_STANDARDS = "view_standards"          # scoped: parties see only their audience's
    ACKNOWLEDGE = "acknowledge"
    VIEW_ACK_COVERAGE = "view_ack_coverage"
    VIEW_TEAM_ACKS = "view_team_acks"          # a party's manager: their own staff only
    VIEW_CASES = "view_cases"                  # scoped
    HANDLE_CASES = "handle_cases"              # open cases, record violations, rule
    VIEW_PENALTIES = "view_penalties"          # scoped
    VIEW_HR_NOTICES = "view_hr_notices"        # scoped for department managers
    ACT_ON_HR_NOTICES = "act_on_hr_notices"
    TAKE_TRAINING = "take_training"            # courses assigned to oneself, open courses
    MANAGE_TRAINING = "manage_training"        # courses, question banks, assignments, sessions
    RECORD_ATTENDANCE = "record_attendance"    # offline sessions: enrol people, attendance
    VIEW_TRAINING_REPORTS = "view_training_reports"
    VIEW_TEAM_TRAINING = "view_team_training"  # a party's manager: their own staff only
    PRINT_REPORTS = "print_reports"
    VIEW_AUDIT_LOG = "view_audit_log"
    APPEAL = "appeal"                          # a party's staff: contest its share of a ruling
    VIEW_INTAKE = "view_intake"                # import batches, review and follow-up queues
    IMPORT_TICKETS = "import_tickets"          # upload ticket and volume files
    MANAGE_API_TOKENS = "manage_api_tokens"    # issue and revoke integration tokens
    COUNTERSIGN_STATEMENTS = "countersign_statements"  # a party's manager: its own statements
    MANAGE_SANCTIONS = "manage_sanctions"      # lift a party's sanction by hand, with a reason
    MANAGE_NOTIFICATIONS = "manage_notifications"  # outbox, failures, webhook endpoints


_CS_READ = {Perm.VIEW_PARTIES, Perm.VIEW_STANDARDS, Perm.VIEW_ACK_COVERAGE, Perm.VIEW_CASES,
            Perm.VIEW_PENALTIES, Perm.VIEW_HR_NOTICES, Perm.PRINT_REPORTS,
            Perm.VIEW_TRAINING_REPORTS, Perm.VIEW_INTAKE}
_CS_WORK = _CS_READ | {Perm.HANDLE_CASES, Perm.TAKE_TRAINING, Perm.RECORD_ATTENDANCE,
                       Perm.IMPORT_TICKETS}
_PARTY = {Perm.VIEW_STANDARDS, Perm.ACKNOWLEDGE, Perm.VIEW_CASES, Perm.VIEW_PENALTIES,
          Perm.TAKE_TRAINING, Perm.APPEAL}

ROLE_PERMISSIONS: dict[Role, frozenset[Perm]] = {
    Role.CS_ADMIN: frozenset(_CS_WORK | {Perm.MANAGE_PARTIES, Perm.MANAGE_USERS,
                                         Perm.AUTHOR_STANDARDS, Perm.APPROVE_STANDARDS,
                                         Perm.PUBLISH_STANDARDS, Perm.VIEW_AUDIT_LOG,
                                         Perm.MANAGE_TRAINING, Perm.MANAGE_API_TOKENS,
                                         Perm.MANAGE_SANCTIONS,
                                         Perm.MANAGE_NOTIFICATIONS}),
    Role.CS_SUPERVISOR: frozenset(_CS_WORK | {Perm.AUTHOR_STANDARDS, Perm.APPROVE_STANDARDS,
                                              Perm.PUBLISH_STANDARDS, Perm.MANAGE_TRAINING,
                                              Perm.MANAGE_SANCTIONS}),
    Role.CS_OFFICER: frozenset(_CS_WORK),
    Role.CS_DIRECTOR: frozenset(_CS_WORK | {Perm.MANAGE_SANCTIONS}),
    Role.AUDITOR: frozenset(_CS_READ | {Perm.VIEW_AUDIT_LOG}),
    Role.PARTY_STAFF: frozenset(_PARTY),
    Role.PARTY_MANAGER: frozenset(_PARTY | {Perm.VIEW_TEAM_ACKS, Perm.VIEW_TEAM_TRAINING,
                                            Perm.COUNTERSIGN_STATEMENTS}),
    Role.DEPARTMENT_MANAGER: frozenset(_PARTY | {Perm.VIEW_HR_NOTICES, Perm.VIEW_TEAM_ACKS,
                                                 Perm.VIEW_TEAM_TRAINING,
                                                 Perm.COUNTERSIGN_STATEMENTS}),
    Role.HR_OFFICER: frozenset({Perm.VIEW_HR_NOTICES, Perm.ACT_ON_HR_NOTICES,
                                Perm.TAKE_TRAINING}),
}

# Roles bound to one party: every row they see is narrowed to that party.
PARTY_BOUND_ROLES = frozenset({Role.PARTY_STAFF, Role.PARTY_MANAGER, Role.DEPARTMENT_MANAGER})


def allowed(user, perm: Perm) -> bool:
    if user is None or not getattr(user, "is_authenticated", False) or not user.active:
        return False
    return perm in ROLE_PERMISSIONS.get(user.role, frozenset())


def allowed_any(user, *perms: Perm) -> bool:
    return any(allowed(user, p) for p in perms)


def party_scope(user) -> int | None:
    """``None`` if ``user`` may see all parties' rows, else the id of their own party."""
    if user.role in PARTY_BOUND_ROLES:
        if user.party_id is None:  # a party role without a party sees nothing
            return -1
        return user.party_id
    return None


def _guard(perms: tuple[Perm, ...], passes):
    """A view decorator: log in first, then ``passes(user)`` or 403."""
    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if not passes(current_user):
                abort(403)
            return view(*args, **kwargs)
        wrapped.required_permissions = perms
        return wrapped
    return decorator


def require(*perms: Perm):
    """View decorator: log in first, then every permission in ``perms`` or 403."""
    return _guard(perms, lambda user: all(allowed(user, p) for p in perms))


def require_any(*perms: Perm):
    """View decorator: log in first, then at least one permission in ``perms`` or 403."""
    return _guard(perms, lambda user: allowed_any(user, *perms))


def ensure_visible(obj_party_ids: set[int] | int | None, user=None):
    """404 unless ``user`` may see an object belonging to ``obj_party_ids``."""
    user = user or current_user
    scope = party_scope(user)
    if scope is None:
        return
    ids = obj_party_ids if isinstance(obj_party_ids, set) else {obj_party_ids}
    if scope not in ids:
        abort(404)
