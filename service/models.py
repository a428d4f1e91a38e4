"""Every model, imported so the metadata is complete (for Alembic and tests)."""

from service.agencies.models import Agency
from service.auth.models import ApiKey
from service.db import Base
from service.incidents.models import IdempotencyRecord, Incident, Personnel

metadata = Base.metadata

__all__ = ["Agency", "ApiKey", "IdempotencyRecord", "Incident", "Personnel", "metadata"]
