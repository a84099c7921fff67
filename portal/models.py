"""Imports every domain's models so that metadata (Alembic, create_all) sees all tables."""
from portal.accounts.models import User  # noqa: F401
from portal.cases.evidence import Evidence  # noqa: F401
from portal.cases.models import (  # noqa: F401
    Appeal,
    Case,
    Penalty,
    ResponsibilityShare,
    Ruling,
    Violation,
)
from portal.core.audit import AuditEvent  # noqa: F401
from portal.core.outbox import DeliveryAttempt, OutboxMessage  # noqa: F401
from portal.core.uploads import Upload  # noqa: F401
from portal.core.webhooks import WebhookEndpoint  # noqa: F401
from portal.hr.models import HrNotice  # noqa: F401
from portal.intake.models import (  # noqa: F401
    ApiToken,
    Chase,
    ImportBatch,
    ImportRejection,
    ShipmentVolume,
    Ticket,
)
from portal.parties.models import Party  # noqa: F401
from portal.reports.models import ComplaintRollup, RollupMonth  # noqa: F401
from portal.standards.models import (  # noqa: F401
    Acknowledgement,
    AckTask,
    Clause,
    PenaltyRule,
    Standard,
    StandardAudience,
    StandardVersion,
)
from portal.training.models import (  # noqa: F401
    AssignmentAudience,
    Certificate,
    CertificateVersion,
    Course,
    CourseAssignment,
    CourseStandard,
    Enrolment,
    Lesson,
    Question,
    QuestionOption,
    QuizAttempt,
    TrainingSession,
    TrainingTask,
)
