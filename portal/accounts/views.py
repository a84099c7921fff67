from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from portal.accounts import services
from portal.accounts.forms import ROLE_LABELS, EmailLanguageForm, LoginForm, UserForm
from portal.accounts.models import User
from portal.core.forms import choices
from portal.core.permissions import Perm, require
from portal.core.web import submit
from portal.extensions import db
from portal.parties.models import Party
from portal.parties.services import list_parties

bp = Blueprint("accounts", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    form = LoginForm()
    if form.validate_on_submit():
        user = services.authenticate(form.username.data, form.password.data)
        if user is None:
            flash(_("Wrong username or password."), "error")
        else:
            lang = session.get("lang")
            session.clear()  # a fresh session at sign-in
            if lang:
                session["lang"] = lang
            login_user(user)
            target = request.args.get("next", "")
            if not target.startswith("/") or target.startswith("//") or urlsplit(target).netloc:
                target = url_for("main.home")
            return redirect(target)
    return render_template("accounts/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    lang = session.get("lang")
    logout_user()
    session.clear()
    if lang:
        session["lang"] = lang
    flash(_("You are signed out."), "info")
    return redirect(url_for("accounts.login"))


@bp.get("/users")
@require(Perm.MANAGE_USERS)
def users():
    rows = db.session.scalars(select(User).order_by(User.role, User.username)).all()
    return render_template("accounts/users.html", users=rows, role_labels=ROLE_LABELS)


@bp.route("/users/new", methods=["GET", "POST"])
@require(Perm.MANAGE_USERS)
def new_user():
    form = UserForm()
    form.party_id.choices = choices([(0, "—")] + [(p.id, f"{p.code} {p.name_zh}")
                                          for p in list_parties()])
    done = submit(form, lambda: services.create_user(
        username=form.username.data, display_name=form.display_name.data,
        password=form.password.data, role=form.role.data,
        party=db.session.get(Party, form.party_id.data) if form.party_id.data else None,
        email=form.email.data or "", employee_no=form.employee_no.data or ""),
        lambda user: _("User %(name)s created.", name=user.username))
    if done.ok:
        return redirect(url_for("accounts.users"))
    return render_template("accounts/user_form.html", form=form)


@bp.route("/account/settings", methods=["GET", "POST"])
@login_required
def settings():
    """The signed-in user's own settings: the language of their emails."""
    form = EmailLanguageForm(data={"email_locale": current_user.email_locale or ""})
    done = submit(form, lambda: services.set_email_locale(
        current_user, form.email_locale.data or None), _("Your settings are saved."))
    if done.ok:
        return redirect(url_for("accounts.settings"))
    return render_template("accounts/settings.html", form=form), \
        (400 if request.method == "POST" else 200)
