"""Liveness, readiness, metrics and the OpenAPI document."""

from flask import Response, request
from flask.views import MethodView
from service.api import Blueprint
from sqlalchemy import text

from service.errors import Unavailable
from service.health.schemas import DEGRADED, OK, UNAVAILABLE, HealthRead
from service.metrics import check_scraper
from service.web import db_session, services

blp = Blueprint("health", __name__, url_prefix="", description="Operations endpoints.")


@blp.route("/healthz", endpoint="healthz")
class Healthz(MethodView):
    """Liveness."""

    @blp.response(200, HealthRead)
    def get(self):
        """The process is up."""
        return {"status": "ok"}


@blp.route("/readyz", endpoint="readyz")
class Readyz(MethodView):
    """Readiness."""

    @blp.response(200, HealthRead)
    @blp.alt_response(503, response="SERVICE_UNAVAILABLE", description="The database does not answer")
    def get(self):
        """Ready while the database answers; Redis (when configured) is reported, and its outage is not fatal."""
        checks = {}
        try:
            db_session().execute(text("SELECT 1"))
            checks["database"] = OK
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            checks["database"] = UNAVAILABLE
            failure = f"The database does not answer ({type(exc).__name__})."
        redis = services().redis
        if redis is not None:
            try:
                redis.ping()
                checks["redis"] = OK
            except Exception:  # noqa: BLE001
                # Intake and pages need only the database: messages wait in the outbox for Redis to return.
                checks["redis"] = UNAVAILABLE
        if checks["database"] != OK:
            raise Unavailable(failure, checks=checks)
        return {"status": OK if all(v == OK for v in checks.values()) else DEGRADED, "checks": checks}


@blp.route("/metrics", endpoint="metrics")
class Metrics(MethodView):
    """Prometheus metrics."""

    @blp.response(200, content_type="text/plain", description="Prometheus text exposition")
    @blp.alt_response(401, response="UNAUTHORIZED", description="METRICS_TOKEN is set and was not presented")
    @blp.alt_response(404, response="NOT_FOUND", description="No METRICS_TOKEN is set and the client is not on this host")
    def get(self):
        """Request counts and latencies per route, for the bearer of METRICS_TOKEN (without one: for this host only)."""
        check_scraper(token=services().config.metrics_token, authorization=request.headers.get("Authorization", ""),
                      remote_addr=request.remote_addr)
        body, content_type = services().metrics.exposition()
        return Response(body, content_type=content_type)


@blp.route("/openapi.yaml", endpoint="openapi_yaml")
class OpenApiYaml(MethodView):
    """The API contract."""

    @blp.response(200, content_type="application/yaml", description="OpenAPI 3 document")
    def get(self):
        """The OpenAPI document of this API."""
        return Response(services().openapi_yaml(), content_type="application/yaml")
