"""Health answer schemas."""

import marshmallow as ma

OK, DEGRADED, UNAVAILABLE = "ok", "degraded", "unavailable"


class HealthRead(ma.Schema):
    """Liveness or readiness."""

    status = ma.fields.String(required=True, metadata={
        "enum": [OK, DEGRADED], "example": OK,
        "description": "`degraded`: ready, with a check other than the database failing (see `checks`)"})
    checks = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(metadata={"enum": [OK, UNAVAILABLE]}),
                            metadata={"example": {"database": OK, "redis": OK}})
