from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, StringField
from wtforms.validators import DataRequired, Length, Optional, ValidationError


class PeriodForm(FlaskForm):
    class Meta:
        csrf = False  # a GET form that changes nothing

    start = DateField(_l("From"), validators=[DataRequired()])
    end = DateField(_l("To"), validators=[DataRequired()])

    def validate_end(self, field):
        if self.start.data and field.data and field.data < self.start.data:
            raise ValidationError(_l("The end date must not be before the start date."))
        if self.start.data and field.data and (field.data - self.start.data).days > 3660:
            raise ValidationError(_l("Choose a period of at most ten years."))


class AuditJobForm(FlaskForm):
    """Asks for the audit report of a period, made in the background."""

    start = DateField(_l("From"), validators=[DataRequired()])
    end = DateField(_l("To"), validators=[DataRequired()])
    validate_end = PeriodForm.validate_end


class ScorecardJobForm(AuditJobForm):
    """A party's scorecard for a period; CS and auditors name the party by its code."""

    party = StringField(_l("Party code"), validators=[Optional(), Length(max=20)])


class ConfirmForm(FlaskForm):
    """A one-click action (print a case dossier, print again): the CSRF token only."""
