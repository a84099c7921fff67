"""Forms of the training pages: CS writing courses, lessons, questions, assignments, sessions.

Numbers whose range a service checks are ``IntegerField`` with ``Optional``: an empty box
reaches the service as ``None`` and its message names the range, beside the field.
"""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    FieldList,
    Form,
    FormField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from portal.accounts.forms import ROLE_LABELS
from portal.core.forms import LocalDateTimeField, choices
from portal.parties.forms import KIND_LABELS
from portal.standards.forms import Locked, MultiCheckboxField
from portal.training.models import CourseKind, CourseMode, QuestionKind

COURSE_KIND_LABELS = {CourseKind.MANDATORY: _l("Mandatory"), CourseKind.OPEN: _l("Open course")}
COURSE_MODE_LABELS = {CourseMode.ONLINE: _l("Online"), CourseMode.OFFLINE: _l("Offline")}
QUESTION_KIND_LABELS = {QuestionKind.SINGLE: _l("Single choice"),
                        QuestionKind.MULTIPLE: _l("Multiple choice"),
                        QuestionKind.TRUE_FALSE: _l("True or false")}
OPTION_ROWS = 6


def _number(label, description=None, default=None) -> IntegerField:
    return IntegerField(label, default=default, validators=[Optional()], description=description)


class CourseForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=32)],
                       description=_l("e.g. TRN-DLV"))
    title_zh = StringField(_l("Title (Chinese)"), validators=[DataRequired(), Length(max=200)])
    title_en = StringField(_l("Title (English)"), validators=[Optional(), Length(max=200)])
    summary = TextAreaField(_l("Summary"), validators=[Optional(), Length(max=2000)])
    kind = SelectField(_l("Type"), choices=choices(
        (k.value, v) for k, v in COURSE_KIND_LABELS.items()),
        description=_l("Mandatory courses are assigned with a due date; anyone may take an "
                       "open course."))
    mode = SelectField(_l("Delivery"), choices=choices(
        (m.value, v) for m, v in COURSE_MODE_LABELS.items()),
        description=_l("Offline: people also attend a session with a date, place and seats."))
    standard_codes = StringField(
        _l("Standards taught"), validators=[Optional(), Length(max=500)],
        description=_l("Standard codes separated by commas, e.g. CAR-DLV, MER-SVC. The course "
                       "teaches the newest published version of each."))
    questions_per_attempt = _number(_l("Questions per quiz"), _l(
        "Drawn at random from the question bank for each attempt. 0: no quiz (offline courses "
        "only)."), 10)
    pass_mark = _number(_l("Pass mark (%)"), default=80)
    max_attempts = _number(_l("Attempts allowed"), default=3)
    cooldown_minutes = _number(_l("Wait after a failed attempt (minutes)"), default=30)
    validity_months = _number(_l("Certificate valid for (months)"),
                              _l("Leave empty if the certificate never expires."))
    due_days = _number(_l("Days to complete"), _l(
        "Time given to people who join later and to those who must train again."), 30)

    NUMBERS = ("questions_per_attempt", "pass_mark", "max_attempts", "cooldown_minutes",
               "due_days")

    def settings(self) -> dict:
        """What ``create_course`` and ``update_course`` take, besides the code and the lock."""
        return {"title_zh": self.title_zh.data, "title_en": self.title_en.data,
                "summary": self.summary.data, "kind": self.kind.data, "mode": self.mode.data,
                "standard_codes": self.standard_codes.data,
                "validity_months": self.validity_months.data,
                **{name: self[name].data for name in self.NUMBERS}}


class CourseEditForm(Locked, CourseForm):
    """A course's code never changes (certificates print it)."""

    code = None


class LessonForm(FlaskForm):
    title_zh = StringField(_l("Title (Chinese)"), validators=[DataRequired(), Length(max=200)])
    title_en = StringField(_l("Title (English)"), validators=[Optional(), Length(max=200)])
    body = TextAreaField(_l("Text (Markdown)"), validators=[Optional()], description=_l(
        "# Heading, ## Subheading, - list item, **bold**, | tables |. Upload images below and "
        "paste their line into the text."))
    save = SubmitField(_l("Save lesson"))
    preview = SubmitField(_l("Preview"))
    upload = SubmitField(_l("Upload image"))


class ImageForm(FlaskForm):
    """The image box inside the lesson form (same page, same CSRF token)."""

    image = FileField(_l("Image"), validators=[FileRequired(_l("Choose an image file."))],
                      description=_l("PNG, JPEG, GIF or WebP. It is kept with the course."))


class OptionRow(Form):
    text_zh = StringField(_l("Option (Chinese)"), validators=[Optional(), Length(max=500)])
    text_en = StringField(_l("Option (English)"), validators=[Optional(), Length(max=500)])
    correct = BooleanField(_l("Right answer"))


class QuestionForm(FlaskForm):
    kind = SelectField(_l("Type"), choices=choices(
        (k.value, v) for k, v in QUESTION_KIND_LABELS.items()))
    text_zh = TextAreaField(_l("Question (Chinese)"), validators=[DataRequired(),
                                                                  Length(max=5000)])
    text_en = TextAreaField(_l("Question (English)"), validators=[Optional(), Length(max=5000)])
    rows = FieldList(FormField(OptionRow), min_entries=OPTION_ROWS, max_entries=OPTION_ROWS)
    # save_question names the option rows "options" when it refuses them: its message lands
    # here and is shown above the rows (a FieldList cannot carry a message of its own).
    options = HiddenField()
    another = SubmitField(_l("Save and add another"))

    def option_rows(self) -> list[tuple[str, str, bool]]:
        return [(r.text_zh.data, r.text_en.data, r.correct.data) for r in self.rows]

    def fill(self, question) -> None:
        self.kind.data = question.kind.value
        self.text_zh.data, self.text_en.data = question.text_zh, question.text_en
        for row, option in zip(self.rows, question.options, strict=False):
            row.text_zh.data, row.text_en.data = option.text_zh, option.text_en
            row.correct.data = option.correct


class AssignForm(FlaskForm):
    due_on = DateField(_l("Complete by"), validators=[Optional()])
    kinds = MultiCheckboxField(_l("Kinds of party"), choices=choices(
        (k.value, v) for k, v in KIND_LABELS.items()), validators=[Optional()])
    party_codes = TextAreaField(
        _l("Named parties or departments"), validators=[Optional(), Length(max=20000)],
        description=_l("Party codes separated by commas or new lines, e.g. C001, D002."))
    roles = MultiCheckboxField(_l("Roles"), choices=choices(
        (r.value, v) for r, v in ROLE_LABELS.items()), validators=[Optional()],
        description=_l("Ticked boxes within a group add up (carriers or merchants); groups "
                       "narrow each other (carriers' party managers). Roles alone reach CS and "
                       "HR staff too."))
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=2000)])


class SessionForm(FlaskForm):
    starts_at = LocalDateTimeField(_l("Starts"), validators=[InputRequired()])
    ends_at = LocalDateTimeField(_l("Ends"), validators=[InputRequired()])
    place = StringField(_l("Place"), validators=[Optional(), Length(max=200)])
    capacity = _number(_l("Seats"), default=30)
    trainer = StringField(_l("Trainer"), validators=[Optional(), Length(max=120)])


class CancelSessionForm(FlaskForm):
    reason = TextAreaField(_l("Reason for cancelling"), validators=[Optional(),
                                                                    Length(max=2000)])


class EnrolForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=64)])


class AttendanceImportForm(FlaskForm):
    file = FileField(_l("Attendance file (CSV)"),
                     validators=[FileRequired(_l("Choose a CSV file."))])


class RevokeForm(FlaskForm):
    reason = TextAreaField(_l("Reason for revoking"), validators=[Optional(), Length(max=2000)])
