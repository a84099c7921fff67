from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    FieldList,
    Form,
    FormField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from portal.core.forms import LocalDateTimeField

SHARE_ROWS = 4


class CaseForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=200)])
    incident_at = LocalDateTimeField(_l("Incident time"), validators=[InputRequired()])
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=5000)])


class ViolationForm(FlaskForm):
    clause_id = SelectField(_l("Clause"), coerce=int, validators=[DataRequired()])
    party_id = SelectField(_l("Party"), coerce=int, validators=[DataRequired()])
    occurrences = IntegerField(_l("Occurrences"), default=1,
                               validators=[InputRequired(), NumberRange(min=1, max=10000)])
    evidence = TextAreaField(_l("Evidence"), validators=[DataRequired(), Length(max=5000)],
                             description=_l("What happened, ticket numbers, where the proof is."))


class ShareRow(Form):
    party_id = SelectField(_l("Party"), coerce=int, default=0)
    percent = IntegerField(_l("Share (%)"), validators=[Optional(), NumberRange(min=1, max=100)])
    employee_no = StringField(_l("Employee number"), validators=[Optional(), Length(max=32)])
    employee_name = StringField(_l("Employee name"), validators=[Optional(), Length(max=120)])
    override_reason = StringField(_l("Override reason"),
                                  validators=[Optional(), Length(max=2000)])


class RulingForm(FlaskForm):
    rationale = TextAreaField(_l("Rationale"), validators=[DataRequired(), Length(max=5000)])
    shares = FieldList(FormField(ShareRow), min_entries=SHARE_ROWS, max_entries=SHARE_ROWS)
    supersede_reason = TextAreaField(
        _l("Reason for the correction"), validators=[Optional(), Length(max=2000)],
        description=_l("This ruling replaces the one in effect; say what was wrong with it."))
    case_version = HiddenField()


class DeclineForm(FlaskForm):
    reason = TextAreaField(_l("Reason for declining"), validators=[DataRequired(), Length(max=2000)])


class AppealForm(FlaskForm):
    statement = TextAreaField(_l("Why the ruling is wrong for your party"),
                              validators=[DataRequired(), Length(max=5000)],
                              description=_l("Add the files that show it under Evidence above."))


class DecideAppealForm(FlaskForm):
    outcome = SelectField(_l("Outcome"), choices=[
        ("upheld", _l("Uphold: the penalty stands")),
        ("reduced", _l("Reduce: lower the penalty")),
        ("overturned", _l("Overturn: the party owes nothing"))])
    reason = TextAreaField(_l("Reasons"), validators=[DataRequired(), Length(max=5000)])
    fine = StringField(_l("New fine (¥)"), validators=[Optional(), Length(max=20)])
    compensation = StringField(_l("New compensation recovered (¥)"),
                               validators=[Optional(), Length(max=20)])
    points = StringField(_l("New points"), validators=[Optional(), Length(max=10)])
