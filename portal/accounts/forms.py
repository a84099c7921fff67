from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Email, Length, Optional

from portal.core.forms import choices
from portal.core.permissions import Role

ROLE_LABELS = {
    Role.CS_ADMIN: _l("CS administrator"),
    Role.CS_SUPERVISOR: _l("CS supervisor"),
    Role.CS_OFFICER: _l("CS officer"),
    Role.CS_DIRECTOR: _l("CS director"),
    Role.AUDITOR: _l("Auditor"),
    Role.PARTY_STAFF: _l("Party staff (carrier / merchant / warehouse)"),
    Role.PARTY_MANAGER: _l("Party manager (carrier / merchant / warehouse)"),
    Role.DEPARTMENT_MANAGER: _l("Department manager"),
    Role.HR_OFFICER: _l("HR officer"),
}


class LoginForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired()])
    password = PasswordField(_l("Password"), validators=[DataRequired()])


class UserForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(3, 64)])
    display_name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    email = EmailField(_l("Email"), validators=[Optional(), Email(), Length(max=254)])
    employee_no = StringField(_l("Employee number"), validators=[Optional(), Length(max=32)])
    role = SelectField(_l("Role"), choices=choices((r.value, label) for r, label in ROLE_LABELS.items()),
                       validators=[DataRequired()])
    party_id = SelectField(_l("Party"), coerce=int, validators=[Optional()])
    password = PasswordField(_l("Initial password"), validators=[DataRequired()],
                             description=_l("At least 12 characters; not a common password and "
                                            "not containing the username."))


class EmailLanguageForm(FlaskForm):
    email_locale = SelectField(_l("Language of my emails"), choices=choices([
        ("", _l("The language of my pages")), ("zh_CN", "中文"), ("en", "English")]),
        description=_l("Reminders, notices and updates are written in this language."))


class CodeForm(FlaskForm):
    """The second step of signing in, or the first code of a new authenticator app."""
    code = StringField(_l("Verification code"), validators=[DataRequired(), Length(max=32)],
                       description=_l("The 6-digit code from your authenticator app, or one of "
                                      "your recovery codes."))


class ReauthForm(FlaskForm):
    """A change to how one signs in is confirmed with the password (and a code if 2FA is on)."""
    current_password = PasswordField(_l("Current password"), validators=[DataRequired()])
    current_code = StringField(_l("Code from your authenticator app"),
                               validators=[Optional(), Length(max=32)],
                               description=_l("Needed when two-factor sign-in is on (a "
                                              "recovery code also works)."))


class EnrolForm(ReauthForm):
    code = StringField(_l("Code the app shows for the new key"),
                       validators=[DataRequired(), Length(max=32)])


class ChangePasswordForm(ReauthForm):
    password = PasswordField(_l("New password"), validators=[DataRequired()],
                             description=_l("At least 12 characters; not a common password and "
                                            "not containing your username."))
    confirm = PasswordField(_l("New password again"), validators=[DataRequired()])
