"""Writing and reading the audit log."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session as DbSession

from service.audit.models import AuditEntry
from service.auth.service import Principal
from service.pagination import decode_cursor, encode_cursor, row_id


def record_read(db: DbSession, *, caller: Principal, action: str, incident_id: uuid.UUID | None, now: datetime) -> None:
    """Note that the caller read participant-level data of an incident; the caller commits."""
    db.add(AuditEntry(at=now, api_key_id=caller.key_id, actor_role=caller.role, agency_id=caller.agency_id,
                      action=action, incident_id=incident_id))


def page(db: DbSession, *, limit: int, cursor: str | None, incident_id: uuid.UUID | None = None) -> tuple[list[AuditEntry], str | None]:
    """The audit log, newest first, one page at a time."""
    query = select(AuditEntry)
    if incident_id is not None:
        query = query.where(AuditEntry.incident_id == incident_id)
    if cursor:
        at, after = decode_cursor(cursor, row_id)
        query = query.where(or_(AuditEntry.at < at, and_(AuditEntry.at == at, AuditEntry.id < after)))
    rows = list(db.scalars(query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1].at, rows[-1].id) if more else None)
