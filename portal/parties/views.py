from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from portal.accounts.models import User
from portal.cases import sanctions
from portal.cases.models import Sanction, SanctionLevel
from portal.core.permissions import Perm, allowed, party_scope, require
from portal.core.web import submit
from portal.extensions import db
from portal.parties import services
from portal.parties.forms import LiftSanctionForm, PartyForm
from portal.parties.models import Party

bp = Blueprint("parties", __name__, url_prefix="/parties")


# the party list's sanction filter: a level, any standing sanction, none, or no new business
SANCTION_FILTERS = [*(level.value for level in SanctionLevel), "any", "none", "no_new_business"]


@bp.get("/")
@require(Perm.VIEW_PARTIES)
def index():
    wanted = request.args.get("sanction", "")
    parties = services.list_parties()
    if wanted in SANCTION_FILTERS:
        parties = [p for p in parties if _matches(p, wanted)]
    else:
        wanted = ""
    year = sanctions.current_year()
    return render_template("parties/index.html", parties=parties, wanted=wanted,
                           filters=SANCTION_FILTERS, levels=sanctions.LEVEL_LABELS, year=year,
                           points=sanctions.points_by_party(None, year))


def _matches(party: Party, wanted: str) -> bool:
    if wanted == "any":
        return bool(party.sanction)
    if wanted == "none":
        return not party.sanction
    if wanted == "no_new_business":
        return not party.new_business
    return party.sanction == wanted


@bp.route("/new", methods=["GET", "POST"])
@require(Perm.MANAGE_PARTIES)
def new():
    form = PartyForm()
    done = submit(form, lambda: services.create_party(
        code=form.code.data, name_zh=form.name_zh.data, name_en=form.name_en.data,
        kind=form.kind.data), lambda party: _("Party %(code)s created.", code=party.code))
    if done.ok:
        return redirect(url_for("parties.detail", party_id=done.result.id))
    return render_template("parties/form.html", form=form)


@bp.get("/<int:party_id>")
@require(Perm.VIEW_PARTIES)
def detail(party_id: int, lift_forms: dict | None = None):
    party = db.session.get(Party, party_id) or abort(404)
    staff = db.session.scalars(select(User).where(User.party_id == party.id)
                               .order_by(User.username)).all()
    from portal.standards import campaigns
    from portal.standards.services import visible_standards

    live = [v for s in visible_standards(current_user) for v in s.live_versions
            if s.addresses(party)]
    counts = campaigns.totals_by_version([v.id for v in live], party_id=party.id)
    coverage = [(v, counts.get(v.id, campaigns.Totals())) for v in live]
    overdue, _n = campaigns.overdue_tasks([v.id for v in live], party_id=party.id,
                                          per_page=200)
    lift_forms = lift_forms or {}
    if allowed(current_user, Perm.MANAGE_SANCTIONS):
        for s in sanctions.sanctions_of(party.id):
            if s.active:
                lift_forms.setdefault(s.id, LiftSanctionForm(formdata=None))
    return render_template("parties/detail.html", party=party, staff=staff, coverage=coverage,
                           overdue=overdue, lift_forms=lift_forms, **_standing(party))


@bp.get("/standing")
@require(Perm.VIEW_PENALTIES)
def standing():
    """A party's own points, thresholds and sanctions, for its staff and managers."""
    scope = party_scope(current_user)
    if scope is None:                 # CS and auditors: every party's, on the party pages
        return redirect(url_for("parties.index"))
    party = db.session.get(Party, scope) or abort(404)
    return render_template("parties/standing.html", party=party, **_standing(party))


@bp.post("/<int:party_id>/sanctions/<int:sanction_id>/lift")
@require(Perm.MANAGE_SANCTIONS)
def lift_sanction(party_id: int, sanction_id: int):
    sanction = db.session.get(Sanction, sanction_id)
    if sanction is None or sanction.party_id != party_id:
        abort(404)
    form = LiftSanctionForm()
    done = submit(form, lambda: sanctions.lift_sanction(sanction, current_user, form.reason.data),
                  _("Sanction lifted: %(level)s (%(year)d).",
                    level=sanctions.level_label(sanction.level), year=sanction.year))
    if done.ok:
        return redirect(url_for("parties.detail", party_id=party_id) + "#sanctions")
    return detail(party_id, lift_forms={sanction_id: form}), 400


def _standing(party: Party) -> dict:
    """What the party pages show of a party's points and sanctions this year."""
    year = sanctions.current_year()
    points = sanctions.year_points(party.id, year)
    return {"year": year, "points": points, "ladder": sanctions.ladder(points.points),
            "carry_years": sanctions.carry_years(), "sanctions": sanctions.sanctions_of(party.id),
            "levels": sanctions.LEVEL_LABELS}
