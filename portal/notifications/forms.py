from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField
from wtforms.validators import DataRequired, Length

from portal.core.forms import choices
from portal.core.webhooks import EVENTS
from portal.standards.forms import Locked, MultiCheckboxField


class EndpointForm(FlaskForm):
    name = StringField(_l("Endpoint name"), validators=[DataRequired(), Length(max=120)],
                       description=_l("The system that receives the events, e.g. HR system"))
    url = StringField(_l("URL"), validators=[DataRequired(), Length(max=500)],
                      description=_l("Where the portal POSTs the events: an http:// or "
                                     "https:// address of a system you trust."))
    events = MultiCheckboxField(_l("Events"), choices=choices(EVENTS.items()))
    active = BooleanField(_l("Active"), default=True)


class EndpointEditForm(Locked, EndpointForm):
    pass
