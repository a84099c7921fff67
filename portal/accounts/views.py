from __future__ import annotations

import base64
import time

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from portal.accounts import security, services
from portal.accounts.forms import (
    ROLE_LABELS,
    ChangePasswordForm,
    CodeForm,
    EmailLanguageForm,
    EnrolForm,
    LoginForm,
    ReauthForm,
    UserForm,
)
from portal.accounts.models import User
from portal.core.forms import choices
from portal.core.permissions import Perm, require
from portal.core.web import ActionFailed, ConfirmForm, action, one_click, safe_target, submit
from portal.extensions import db
from portal.parties.models import Party
from portal.parties.services import list_parties

bp = Blueprint("accounts", __name__)

PENDING = "pending_2fa"       # the Flask session's note of a password accepted, code awaited
PENDING_SECONDS = 600         # ... for this long
CANDIDATE = "totp_candidate"  # the new key shown on the set-up page until a code confirms it
# what someone between the password and the code may open (static files are never checked)
PENDING_ENDPOINTS = {"accounts.two_factor", "accounts.two_factor_setup", "accounts.logout",
                     "accounts.login", "main.set_language", "static"}


def _fresh_session() -> None:
    """Empty the Flask session (a new one at each change of who is signed in), keeping only
    the chosen language."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang


def _locked_out():
    """After a wrong current password that reached the sign-in limit (its session was ended
    with the failure): signed out here too, told when to try again."""
    wait = g.pop("reauth_locked", 0)
    logout_user()
    _fresh_session()
    flash(ngettext("Too many wrong passwords: you are signed out. Sign in again in %(num)d "
                   "minute.", "Too many wrong passwords: you are signed out. Sign in again "
                   "in %(num)d minutes.", security.Throttle(wait).minutes), "error")
    return redirect(url_for("accounts.login"))


def pending_sign_in() -> dict | None:
    """The password step's note, if it is still fresh."""
    note = session.get(PENDING)
    if not isinstance(note, dict) or time.time() - note.get("at", 0) > PENDING_SECONDS:
        return None
    return note


def _complete(user: User, method: str) -> None:
    """Sign ``user`` in: a new Flask session holding the id of a new server-side session."""
    with action():
        row = services.finish_sign_in(user, method)
        sid = row.id
    _fresh_session()
    login_user(user, remember=False)
    session[security.SESSION_KEY] = sid
    g.device_cookie = security.device_cookie(user.username)


@bp.after_app_request
def _remember_device(response):
    """A browser that signed in keeps a signed note of it (the device cookie): guesses at
    its account from elsewhere never slow it down (``security.throttle_wait``)."""
    value = g.pop("device_cookie", None)
    if value:
        cfg = current_app.config
        response.set_cookie(cfg["DEVICE_COOKIE_NAME"], value,
                            max_age=cfg["LOGIN_DEVICE_DAYS"] * 86400, path="/",
                            secure=cfg["SESSION_COOKIE_SECURE"], httponly=True, samesite="Lax")
    return response


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    form = LoginForm()
    if form.validate_on_submit():
        with action():
            step = services.sign_in_password(form.username.data, form.password.data)
        target = safe_target(request.args.get("next"))
        if step.wait:
            flash(security.wait_message(step.wait), "error")
        elif step.user is None:
            flash(_("Wrong username or password."), "error")
        elif step.second_factor:
            _fresh_session()
            session[PENDING] = {"uid": step.user.id, "at": time.time(), "next": target,
                                "enrol": step.second_factor == "enrol"}
            return redirect(url_for("accounts.two_factor_setup" if step.second_factor == "enrol"
                                    else "accounts.two_factor"))
        else:
            _complete(step.user, "password")
            return redirect(target)
    return render_template("accounts/login.html", form=form)


@bp.route("/login/2fa", methods=["GET", "POST"])
def two_factor():
    """The second step of signing in: a code from the app, or a recovery code."""
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    note = pending_sign_in()
    if note is None:
        return _pending_lost()
    if note.get("enrol"):
        return redirect(url_for("accounts.two_factor_setup"))
    user = db.session.get(User, note["uid"])
    if user is None or not user.active:
        return _pending_lost()
    form = CodeForm()
    if form.validate_on_submit():
        with action():
            step = services.sign_in_second_factor(user, form.code.data)
        if step.wait:
            flash(security.wait_message(step.wait), "error")
        elif step.user is None:
            form.code.errors = [_("The code is wrong or was already used.")]
        else:
            _complete(user, step.second_factor)
            if step.second_factor == "recovery_code":
                left = security.recovery_codes_left(user)
                flash(ngettext("You signed in with a recovery code; %(num)d is left. New "
                               "codes can be made on your settings page.",
                               "You signed in with a recovery code; %(num)d are left. New "
                               "codes can be made on your settings page.", left), "warning")
            return redirect(safe_target(note.get("next")))
        return render_template("accounts/two_factor.html", form=form), 400
    return render_template("accounts/two_factor.html", form=form)


def _pending_lost():
    session.pop(PENDING, None)
    flash(_("Please sign in again."), "info")
    return redirect(url_for("accounts.login"))


def qr_data_uri(uri: str) -> str:
    """The QR code of ``uri`` as an SVG data: URI (an <img>: no inline style or script)."""
    import io

    import segno

    buf = io.BytesIO()
    segno.make(uri, error="m").save(buf, kind="svg", scale=5, border=3, light="#fff",
                                    xmldecl=False)  # with its namespace: a stand-alone image
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode()


@bp.route("/account/2fa/setup", methods=["GET", "POST"])
def two_factor_setup():
    """Set up an authenticator app: at sign-in when the role requires it (the password was
    just given), or from the settings page (the password, and the current code, again)."""
    note = pending_sign_in()
    if current_user.is_authenticated:
        user, at_sign_in = current_user, False
    elif note and note.get("enrol"):
        user, at_sign_in = db.session.get(User, note["uid"]), True
        if user is None or not user.active:
            return _pending_lost()
    else:
        return redirect(url_for("accounts.login"))
    secret = session.get(CANDIDATE) or security.new_secret()
    session[CANDIDATE] = secret
    form = CodeForm() if at_sign_in else EnrolForm()
    if form.validate_on_submit():
        try:
            with action(form):
                if at_sign_in:
                    codes = services.enable_two_factor(user, secret, form.code.data,
                                                       reauthenticate=False)
                else:
                    codes = services.enable_two_factor(
                        user, secret, form.code.data, password=form.current_password.data,
                        current_code=form.current_code.data)
        except ActionFailed:
            if g.get("reauth_locked"):
                return _locked_out()
        else:
            target = url_for("accounts.settings")
            if at_sign_in:
                target = safe_target(note.get("next"))
                _complete(user, "totp")
            session.pop(CANDIDATE, None)
            return _show_recovery_codes(codes, target)
    status = 400 if request.method == "POST" else 200
    return render_template("accounts/two_factor_setup.html", form=form, secret=secret,
                           qr=qr_data_uri(security.provisioning_uri(user, secret)),
                           at_sign_in=at_sign_in, required=security.two_factor_required(user),
                           enabled=user.two_factor_enabled), status


def _show_recovery_codes(codes: list[str], target: str):
    resp = render_template("accounts/recovery_codes.html", codes=codes, target=target)
    return resp, 200, {"Cache-Control": "no-store"}


@bp.post("/account/2fa/recovery-codes")
@login_required
def recovery_codes():
    form = ReauthForm()
    if form.validate_on_submit():
        try:
            with action():
                codes = services.regenerate_recovery_codes(
                    current_user, password=form.current_password.data,
                    code=form.current_code.data or "")
        except ActionFailed:
            if g.get("reauth_locked"):
                return _locked_out()
            return redirect(url_for("accounts.settings"))
        return _show_recovery_codes(codes, url_for("accounts.settings"))
    flash(_("Enter your current password and a code from your app."), "error")
    return redirect(url_for("accounts.settings"))


@bp.post("/account/2fa/disable")
@login_required
def two_factor_disable():
    form = ReauthForm()
    if form.validate_on_submit():
        try:
            with action(None, _("Two-factor sign-in is off.")):
                services.disable_two_factor(current_user, password=form.current_password.data,
                                            code=form.current_code.data or "")
        except ActionFailed:
            if g.get("reauth_locked"):
                return _locked_out()
    else:
        flash(_("Enter your current password and a code from your app."), "error")
    return redirect(url_for("accounts.settings"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    form = ChangePasswordForm()
    done = submit(form, lambda: services.change_password(
        current_user, current=form.current_password.data, new=form.password.data,
        confirm=form.confirm.data, code=form.current_code.data,
        keep_session=session.get(security.SESSION_KEY)),
        _("Your password is changed; your other sessions are signed out."))
    if done.ok:
        return redirect(url_for("accounts.settings"))
    if g.get("reauth_locked"):
        return _locked_out()
    return render_template("accounts/password.html", form=form,
                           two_factor=current_user.two_factor_enabled), \
        (400 if request.method == "POST" else 200)


@bp.post("/account/sessions/end")
@login_required
def end_all_sessions():
    """Sign out everywhere, this browser included."""
    if ConfirmForm().validate_on_submit():
        with action():
            services.sign_out_everywhere(current_user)
        logout_user()
        _fresh_session()
        flash(_("You are signed out on every device."), "info")
        return redirect(url_for("accounts.login"))
    abort(400)


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        with action():
            services.sign_out(current_user, session.get(security.SESSION_KEY))
        logout_user()
        flash_text = _("You are signed out.")
    else:
        flash_text = None
    _fresh_session()
    if flash_text:
        flash(flash_text, "info")
    return redirect(url_for("accounts.login"))


@bp.get("/users")
@require(Perm.MANAGE_USERS)
def users():
    rows = db.session.scalars(select(User).order_by(User.role, User.username)).all()
    return render_template("accounts/users.html", users=rows, role_labels=ROLE_LABELS,
                           confirm=ConfirmForm())


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


def _user_or_404(user_id: int) -> User:
    return db.session.get(User, user_id) or abort(404)


@bp.post("/users/<int:user_id>/disable")
@require(Perm.MANAGE_USERS)
def disable_user(user_id: int):
    user = _user_or_404(user_id)
    return one_click(lambda: services.set_active(user, False, current_user),
                     _("%(name)s is disabled and signed out.", name=user.username),
                     url_for("accounts.users"))


@bp.post("/users/<int:user_id>/enable")
@require(Perm.MANAGE_USERS)
def enable_user(user_id: int):
    user = _user_or_404(user_id)
    return one_click(lambda: services.set_active(user, True, current_user),
                     _("%(name)s is enabled.", name=user.username), url_for("accounts.users"))


@bp.post("/users/<int:user_id>/2fa/reset")
@require(Perm.MANAGE_USERS)
def reset_two_factor(user_id: int):
    user = _user_or_404(user_id)
    return one_click(lambda: services.reset_two_factor(user, current_user),
                     _("Two-factor sign-in of %(name)s is reset; they set it up again at their "
                       "next sign-in.", name=user.username), url_for("accounts.users"))


@bp.route("/account/settings", methods=["GET", "POST"])
@login_required
def settings():
    """The signed-in user's own settings: the language of their emails, password, two-factor
    sign-in and open sessions."""
    form = EmailLanguageForm(data={"email_locale": current_user.email_locale or ""})
    done = submit(form, lambda: services.set_email_locale(
        current_user, form.email_locale.data or None), _("Your settings are saved."))
    if done.ok:
        return redirect(url_for("accounts.settings"))
    return render_template(
        "accounts/settings.html", form=form, reauth=ReauthForm(formdata=None),
        confirm=ConfirmForm(), sessions=security.open_sessions(current_user),
        this_session=session.get(security.SESSION_KEY),
        two_factor=current_user.two_factor_enabled,
        two_factor_required=security.two_factor_required(current_user),
        codes_left=security.recovery_codes_left(current_user)), \
        (400 if request.method == "POST" else 200)
