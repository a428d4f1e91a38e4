"""Writing and reading the audit log."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session as DbSession

from service.audit.models import AuditEntry
from service.auth.service import Principal


def record_read(db: DbSession, *, caller: Principal, action: str, incident_id: uuid.UUID | None, now: datetime) -> None:
    """Note that the caller read participant-level data of an incident; the caller commits."""
    db.add(AuditEntry(at=now, api_key_id=caller.key_id, actor_role=caller.role, agency_id=caller.agency_id,
                      action=action, incident_id=incident_id))
