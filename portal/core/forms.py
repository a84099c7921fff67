"""Form pieces shared by the domains."""
from __future__ import annotations

from datetime import UTC, datetime

from flask_babel import lazy_gettext as _l
from wtforms import DateTimeLocalField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import ValidationError

from portal.core.timeutil import zone


class LocalDateTimeField(DateTimeLocalField):
    """A date-time typed in the user's own zone, handed to services as aware UTC."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("format", ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"])
        super().__init__(*args, **kwargs)

    def utc(self, tz_name: str) -> datetime | None:
        if self.data is None:
            return None
        return self.data.replace(tzinfo=zone(tz_name)).astimezone(UTC)


def whole_number(form, field):
    if field.data is not None and int(field.data) != field.data:
        raise ValidationError(_l("Enter a whole number."))


def choices(pairs) -> list[SelectChoice]:
    """Select options from (value, label) pairs."""
    return [SelectChoice(value, label) for value, label in pairs]
