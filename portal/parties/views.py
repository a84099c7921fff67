from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, url_for
from flask_login import current_user
from flask_babel import gettext as _
from sqlalchemy import select

from portal.accounts.models import User
from portal.core.permissions import Perm, require
from portal.core.web import submit
from portal.extensions import db
from portal.parties import services
from portal.parties.forms import PartyForm
from portal.parties.models import Party

bp = Blueprint("parties", __name__, url_prefix="/parties")


@bp.get("/")
@require(Perm.VIEW_PARTIES)
def index():
    return render_template("parties/index.html", parties=services.list_parties())


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
def detail(party_id: int):
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
    return render_template("parties/detail.html", party=party, staff=staff, coverage=coverage,
                           overdue=overdue)
