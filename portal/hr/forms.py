from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length


class ActionForm(FlaskForm):
    action_taken = TextAreaField(_l("Action taken"), validators=[DataRequired(), Length(max=2000)],
                                 description=_l("e.g. written warning issued on 2026-03-05, "
                                                "¥200 deducted from the March salary"))
