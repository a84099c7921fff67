from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from portal.api.services import NAME_MAX


class IssueTokenForm(FlaskForm):
    name = StringField(_l("Token name"), validators=[DataRequired(), Length(max=NAME_MAX)],
                       description=_l("Which system will use it, e.g. “Ticketing system (prod)”."))
