"""HR's forms on a notice. Each carries the notice's version as the page showed it, so a step
taken on a notice someone else changed meanwhile is refused (``services._check``)."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from portal.hr.models import ACTION_LABELS, ActionKind


class NoticeStepForm(FlaskForm):
    """A one-click step (acknowledge, close): the CSRF token and the version seen."""

    version = HiddenField()


class ActionForm(NoticeStepForm):
    action_kind = SelectField(_l("Action taken"),
                              choices=[(k.value, v) for k, v in ACTION_LABELS.items()],
                              default=ActionKind.OTHER.value)
    action_taken = TextAreaField(_l("What was done"),
                                 validators=[DataRequired(), Length(max=2000)],
                                 description=_l("e.g. written warning issued on 2026-03-05, "
                                                "¥200 deducted from the March salary"))
    reason = TextAreaField(_l("Reason for differing from the proposal"),
                           validators=[Optional(), Length(max=2000)],
                           description=_l("Required when the action differs from the "
                                          "sanction proposed."))
