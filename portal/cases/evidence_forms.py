"""The form that adds an evidence file to a case."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import StringField
from wtforms.validators import Length, Optional

from portal.cases.evidence import NOTE_MAX, EvidenceKind

KIND_LABELS = {EvidenceKind.IMAGE: _l("Image"), EvidenceKind.PDF: _l("PDF"),
               EvidenceKind.SPREADSHEET: _l("Spreadsheet")}


class EvidenceForm(FlaskForm):
    file = FileField(_l("File"), validators=[FileRequired(_l("Choose a file to upload."))])
    note = StringField(_l("Note"), validators=[Optional(), Length(max=NOTE_MAX)],
                       description=_l("What the file shows, in a few words (optional)."))
