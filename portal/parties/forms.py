from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from portal.core.forms import choices
from portal.parties.models import PartyKind

KIND_LABELS = {
    PartyKind.CARRIER: _l("Carrier"),
    PartyKind.MERCHANT: _l("Merchant"),
    PartyKind.WAREHOUSE: _l("Warehouse"),
    PartyKind.DEPARTMENT: _l("Internal department"),
}


class PartyForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=20)])
    name_zh = StringField(_l("Name (Chinese)"), validators=[DataRequired(), Length(max=120)])
    name_en = StringField(_l("Name (English)"), validators=[Optional(), Length(max=120)])
    kind = SelectField(_l("Kind"), choices=choices((k.value, v) for k, v in KIND_LABELS.items()),
                       validators=[DataRequired()])


class LiftSanctionForm(FlaskForm):
    reason = TextAreaField(_l("Why is it lifted?"), validators=[Length(max=2000)],
                           render_kw={"rows": 2})
