"""Agency use cases."""

from __future__ import annotations

import base64
import secrets
from typing import Any, Mapping

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.agencies.models import Agency
from service.agencies.policy import policy_from_overrides
from service.errors import Conflict, InvalidInput, NotFound
from service.fields import AGENCY_CODE


def create(*, db: Session, data: Mapping[str, Any]) -> Agency:
    """Create an agency; its code must be new."""
    agency = Agency(code=data["code"], name=data["name"], timezone=data["timezone"], policy={})
    db.add(agency)
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
        raise Conflict(f"An agency with code {data['code']!r} already exists.") from None
    return agency


def get_by_code(*, db: Session, code: str) -> Agency:
    """The agency with this code."""
    if not AGENCY_CODE.fullmatch(code):
        raise NotFound(f"No agency with code {code!r}.")
    agency = db.scalar(select(Agency).where(Agency.code == code))
    if agency is None:
        raise NotFound(f"No agency with code {code!r}.")
    return agency


def get_or_create(*, db: Session, code: str, name: str, timezone: str) -> Agency:
    """The agency with this code, created when missing (used by the demo seed)."""
    agency = db.scalar(select(Agency).where(Agency.code == code))
    if agency is None:
        agency = create(db=db, data={"code": code, "name": name, "timezone": timezone})
    return agency


def update(*, db: Session, code: str, changes: Mapping[str, Any]) -> Agency:
    """Rename an agency, change its zone, or replace its planning-policy overrides."""
    agency = get_by_code(db=db, code=code)
    if "policy" in changes:
        try:
            policy_from_overrides(changes["policy"])
        except (ValueError, TypeError, OverflowError) as exc:
            setting = str(exc).split(":", 1)[0]
            raise InvalidInput("The planning policy is invalid.", errors={f"policy.{setting}": [str(exc)]}) from None
        agency.policy = dict(changes["policy"])
    for name in ("name", "timezone", "coordinator_email", "webhook_url"):
        if name in changes:
            setattr(agency, name, changes[name])
    db.commit()
    return agency


def rotate_webhook_secret(*, db: Session, code: str) -> str:
    """Give the agency a new Standard Webhooks secret (whsec_ + 32 random bytes) and return it."""
    agency = get_by_code(db=db, code=code)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")
    agency.webhook_secret = secret
    db.commit()
    return secret
