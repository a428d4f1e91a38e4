"""Writing and reading the audit log."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from service.audit.models import AuditEntry
from service.auth.service import Principal
from service.pagination import newest_first, row_id


def record_read(db: DbSession, *, caller: Principal, action: str, incident_id: uuid.UUID | None, now: datetime) -> None:
    """Note that the caller read participant-level data of an incident; the caller commits."""
    db.add(AuditEntry(at=now, api_key_id=caller.key_id, actor_role=caller.role, agency_id=caller.agency_id,
                      action=action, incident_id=incident_id))


def record(db: DbSession, *, action: str, actor_role: str, now: datetime, agency_id: int | None = None,
           account_id: int | None = None, facilitator_id: int | None = None, incident_id: uuid.UUID | None = None) -> None:
    """Note what a person of the console did (signed in, signed out, changed an account); the caller commits."""
    db.add(AuditEntry(at=now, actor_role=actor_role, agency_id=agency_id, account_id=account_id,
                      facilitator_id=facilitator_id, action=action, incident_id=incident_id))


def page(db: DbSession, *, limit: int, cursor: str | None, incident_id: uuid.UUID | None = None) -> tuple[list[AuditEntry], str | None]:
    """The audit log, newest first, one page at a time."""
    query = select(AuditEntry)
    if incident_id is not None:
        query = query.where(AuditEntry.incident_id == incident_id)
    return newest_first(db, query, at=AuditEntry.at, id=AuditEntry.id, limit=limit, cursor=cursor, parse_id=row_id)
