"""Intake operations the views, the API and the CLI share."""
from __future__ import annotations

from flask_babel import gettext as _

from portal.core.audit import record
from portal.core.errors import ServiceError
from portal.intake import importer
from portal.intake.fields import reasons
from portal.intake.models import BatchKind, BatchSource, ImportBatch, ImportRejection


class ImportRefused(ServiceError):
    pass


def file_problem_text(problem: str) -> str:
    if problem.startswith("missing:"):
        return _("The file lacks the column(s): %(cols)s. The first row must name the columns.",
                 cols=problem.split(":", 1)[1])
    return {
        "encoding": _("The file is neither UTF-8 nor GB18030 text; save it as CSV UTF-8."),
        "empty": _("The file is empty."),
        "not_csv": _("The file is not a CSV file."),
        "not_xlsx": _("The file is not a readable XLSX workbook."),
    }.get(problem, problem)


def run_import(data: bytes, filename: str, kind: BatchKind, source: BatchSource, *, user=None,
               token=None, progress=None) -> ImportBatch:
    """Read and import one file; raises ``ImportRefused`` if the file as a whole is unusable
    (nothing is stored then)."""
    batch = importer.new_batch(kind, source, filename=filename, user=user, token=token,
                               size=len(data))
    try:
        rows = importer.rows_from_file(data, filename, kind)
        if kind is BatchKind.TICKETS:
            importer.import_tickets(batch, rows, progress=progress)
        else:
            importer.import_volumes(batch, rows)
    except importer.FileProblem as err:
        raise ImportRefused(file_problem_text(str(err))) from None
    return batch


class _Engine:
    """What a re-evaluation's audit event is about: the rule engine itself."""

    __tablename__ = "rule_engine"
    id = ""


def reevaluate(where, scope) -> dict:
    counts = importer.evaluate_tickets(where, scope)
    record("rule_engine.reevaluated", _Engine(), after=counts)
    return counts


def rejection_text(r: ImportRejection) -> str:
    reason = reasons().get(r.reason, r.reason)
    if r.field:
        text = f"{r.field}: {reason}"
    else:
        text = reason
    return f"{text} ({r.value})" if r.value else text


def summary(batch: ImportBatch) -> str:
    return _("Created %(created)d, updated %(updated)d, unchanged %(unchanged)d, rejected "
             "%(rejected)d; %(violations)d violations proposed or revised.",
             created=batch.created, updated=batch.updated, unchanged=batch.unchanged,
             rejected=batch.rejected, violations=batch.violations)
