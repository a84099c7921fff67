from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import RadioField

from portal.intake.models import BatchKind


class UploadForm(FlaskForm):
    file = FileField(_l("File (CSV or XLSX)"),
                     description=_l("The first row names the columns; see the field list "
                                    "below. CSV may be UTF-8 or GB18030 (as saved by Excel)."))
    kind = RadioField(_l("What the file holds"), default=BatchKind.TICKETS.value, choices=[
        (BatchKind.TICKETS.value, _l("Complaint tickets")),
        (BatchKind.VOLUMES.value, _l("Shipment volumes (orders per party per day)"))])
