import tomllib

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from portal.core.forms import choices
from portal.parties.forms import KIND_LABELS
from portal.standards.rules import Check
from portal.standards.services import NO_CHECK

CHECK_LABELS = {
    Check.FALSE_FEEDBACK: _l("False delivery feedback: reported signed, the customer did not "
                             "sign"),
    Check.DAYS_LATE: _l("Days late: delivered after the promised day"),
    Check.RESPONSE_TIME: _l("Response time: a CS request answered late or not at all"),
}


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class StandardForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=32)],
                       description=_l("e.g. CAR-DLV"))
    title_zh = StringField(_l("Title (Chinese)"), validators=[DataRequired(), Length(max=200)])
    title_en = StringField(_l("Title (English)"), validators=[Optional(), Length(max=200)])
    category = StringField(_l("Category"), validators=[Optional(), Length(max=40)])
    summary = TextAreaField(_l("Summary"), validators=[Optional(), Length(max=2000)])
    audience = MultiCheckboxField(_l("Addressed to"),
                                  choices=choices((k.value, v) for k, v in KIND_LABELS.items()),
                                  validators=[Optional()])
    party_codes = TextAreaField(_l("Also addressed to these parties"),
                                validators=[Optional(), Length(max=20000)],
                                description=_l("Party codes separated by commas or new lines, "
                                               "e.g. C001, M002. Leave empty for none."))
    owner_id = SelectField(_l("Owner"), coerce=int, validate_choice=False,
                           description=_l("The CS supervisor or administrator who answers for "
                                          "this standard."))
    ack_requires_training = BooleanField(
        _l("Acknowledging needs the training course passed first"),
        description=_l("People must hold a valid certificate of a course teaching this "
                       "standard before they can acknowledge it."))
    effective_from = DateField(_l("Effective from"), validators=[DataRequired()])

    def set_owner_choices(self, users) -> None:
        self.owner_id.choices = [(u.id, u.display_name) for u in users]


class Locked:
    """Carries the row version the page showed (optimistic locking)."""

    lock = HiddenField()

    def expected(self) -> int | None:
        try:
            return int(self.lock.data)
        except (TypeError, ValueError):
            return None


class StandardEditForm(Locked, StandardForm):
    """What describes a standard; its text changes only through a new version."""

    code = None
    effective_from = None


def toml_rules(form, field):
    """The rules box must be TOML with only [[rules]] tables."""
    try:
        data = tomllib.loads(field.data or "")
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(_l("Not valid TOML: %(error)s", error=str(exc))) from None
    if set(data) - {"rules"} or not isinstance(data.get("rules", []), list):
        raise ValidationError(_l("Write each rule as a [[rules]] table."))


class ClauseForm(FlaskForm):
    number = StringField(_l("Clause number"), validators=[DataRequired(), Length(max=20)])
    title_zh = StringField(_l("Title (Chinese)"), validators=[DataRequired(), Length(max=200)])
    title_en = StringField(_l("Title (English)"), validators=[Optional(), Length(max=200)])
    body = TextAreaField(_l("Text"), validators=[DataRequired(), Length(max=10000)])
    fine = StringField(_l("Fine per occurrence (yuan)"), validators=[Optional(), Length(max=20)],
                       description=_l("Leave empty if the clause carries no fixed fine."))
    rules = TextAreaField(_l("More penalty rules (TOML)"),
                          validators=[Optional(), Length(max=5000), toml_rules],
                          description=_l("Tiers, time limits, points, escalation: [[rules]] "
                                         "tables as in standards/README.md."))
    check = SelectField(
        _l("Checked against complaint tickets"),
        choices=choices([("", _l("As the rules imply")), (NO_CHECK, _l("None: not checked"))]
                        + [(c.value, label) for c, label in CHECK_LABELS.items()]),
        validators=[Optional()],
        description=_l("Which facts of a ticket the rule engine checks this clause by. As the "
                       "rules imply: days late for tiers, response time for a time limit, "
                       "otherwise none."))

    def rule_items(self) -> list[dict]:
        return tomllib.loads(self.rules.data or "").get("rules", [])


class NewDraftForm(FlaskForm):
    effective_from = DateField(_l("Effective from"), validators=[DataRequired()])
    change_note = TextAreaField(_l("What changes"), validators=[Optional(), Length(max=2000)])
    material = BooleanField(_l("Material change: everyone in the audience must acknowledge "
                               "again"), default=True)


class LockedForm(Locked, FlaskForm):
    """A one-click workflow action that carries the row version the page showed."""


class PublishForm(LockedForm):
    ack_due_on = DateField(_l("Acknowledge by"), validators=[Optional()],
                           description=_l("Everyone in the audience gets a task to read and "
                                          "acknowledge this version by this date. Empty: two "
                                          "weeks, or the effective date if later."))


class RetireForm(LockedForm):
    reason = TextAreaField(_l("Reason for retiring"), validators=[DataRequired(),
                                                                  Length(max=2000)])


class RejectForm(LockedForm):
    reason = TextAreaField(_l("Reason for rejecting"), validators=[DataRequired(),
                                                                   Length(max=2000)])
