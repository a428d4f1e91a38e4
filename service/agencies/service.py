"""Agency use cases."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.agencies.models import Agency
from service.agencies.policy import policy_from_overrides
from service.agencies.webhook_address import RefusedAddress, WebhookRules, check_webhook_url
from service.errors import Conflict, InvalidInput, NotFound
from service.fields import AGENCY_CODE

# How long a rotated-out webhook secret keeps signing (beside the new one): a day to update receivers.
WEBHOOK_SECRET_OVERLAP = timedelta(hours=24)


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


def update(*, db: Session, code: str, changes: Mapping[str, Any], webhook_rules: WebhookRules = WebhookRules()) -> Agency:
    """Rename an agency, change its zone, its addresses, or replace its planning-policy overrides."""
    agency = get_by_code(db=db, code=code)
    if changes.get("webhook_url"):
        try:
            check_webhook_url(changes["webhook_url"], webhook_rules)
        except RefusedAddress as refused:
            raise InvalidInput("The webhook address is refused.", errors={"webhook_url": [refused.reason]}) from None
    if changes.get("webhook_url") and agency.webhook_secret is None:
        # Every event is signed with the agency's own secret, never a shared one: issue it first, so
        # that the receiver can check the very first event.
        raise Conflict(
            "The agency has no webhook signing secret yet: issue one (POST /v1/agencies/{code}/webhook-secret), "
            "give it to the receiver, then set webhook_url.",
            errors={"webhook_url": ["Issue a webhook secret first."]},
        )
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


@dataclass(frozen=True, slots=True)
class WebhookSecret:
    """A new signing secret (shown once) and until when the previous one still signs deliveries."""

    webhook_secret: str
    previous_valid_until: datetime | None


def rotate_webhook_secret(*, db: Session, code: str, now: datetime) -> WebhookSecret:
    """Give the agency a new Standard Webhooks secret (whsec_ + 32 random bytes); the old one signs too for a day."""
    agency = get_by_code(db=db, code=code)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")
    if agency.webhook_secret is not None:
        agency.webhook_previous_secret = agency.webhook_secret
        agency.webhook_previous_until = now + WEBHOOK_SECRET_OVERLAP
    agency.webhook_secret = secret
    db.commit()
    return WebhookSecret(secret, agency.webhook_previous_until if agency.webhook_previous_secret else None)
