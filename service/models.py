"""Every model, imported so the metadata is complete (for Alembic and tests)."""

from service.accounts.models import Account, ConsoleSession, SigninLink
from service.agencies.models import Agency
from service.audit.models import AuditEntry
from service.auth.models import ApiKey
from service.calendars.models import FeedEvent
from service.db import Base
from service.facilitators.models import Facilitator
from service.followups.models import Escalation, Followup
from service.incidents.models import IdempotencyRecord, Incident, Personnel
from service.outbox.models import OutboxMessage
from service.sessions.models import Assignment, Session, SessionParticipant

metadata = Base.metadata

__all__ = [
    "Account", "Agency", "ApiKey", "Assignment", "AuditEntry", "ConsoleSession", "Escalation", "Facilitator", "FeedEvent",
    "Followup", "IdempotencyRecord", "Incident", "OutboxMessage", "Personnel", "Session",
    "SessionParticipant", "SigninLink", "metadata",
]
