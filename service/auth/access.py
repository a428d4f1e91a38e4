"""Who may call what: the one access matrix of the API, enforced before every view."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from apispec import BasePlugin
from flask import Flask, Response, g, request
from sqlalchemy.exc import DBAPIError

from service.auth.service import KeyCheck, well_formed
from service.errors import DomainError, Unauthenticated, handle_domain_error
from service.ui import is_page
from service.web import ONE_STATEMENT_REQUESTS, db_session, now, principal, services

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Access:
    """Roles allowed on one endpoint and method; `public` needs no key at all.

    `participant_data`: answers show participants' own data, which no cache (a browser's, a proxy's) may keep.
    """

    roles: frozenset[str] = frozenset()
    public: bool = False
    participant_data: bool = False


def roles(*names: str, participant_data: bool = False) -> Access:
    """Access for the given API-key roles."""
    return Access(roles=frozenset(names), participant_data=participant_data)


PUBLIC = Access(public=True)

# (endpoint, method) -> who. Agency scope is applied by the services: another agency's
# resource answers 404, so its existence does not leak.
MATRIX: dict[tuple[str, str], Access] = {
    ("health.healthz", "GET"): PUBLIC,
    ("health.readyz", "GET"): PUBLIC,
    ("health.metrics", "GET"): PUBLIC,
    ("health.openapi_yaml", "GET"): PUBLIC,
    ("api-docs.openapi_json", "GET"): PUBLIC,
    ("api-docs.openapi_swagger_ui", "GET"): PUBLIC,
    ("api-docs.swagger_ui_asset", "GET"): PUBLIC,
    ("agencies.Agencies", "POST"): roles("admin"),
    ("agencies.AgencyByCode", "GET"): roles("admin"),
    ("agencies.AgencyByCode", "PATCH"): roles("admin"),
    ("agencies.AgencyWebhookSecret", "POST"): roles("admin"),
    ("keys.Keys", "POST"): roles("admin"),
    ("keys.Keys", "GET"): roles("admin"),
    ("keys.KeyById", "DELETE"): roles("admin"),
    ("incidents.Incidents", "POST"): roles("dispatch", "coordinator"),
    ("incidents.Incidents", "GET"): roles("dispatch", "coordinator", "supervisor"),
    ("incidents.IncidentById", "GET"): roles("dispatch", "coordinator"),
    ("incidents.IncidentById", "PATCH"): roles("dispatch", "coordinator"),
    ("incidents.IncidentReplan", "POST"): roles("coordinator"),
    # Counts only, small ones masked: what supervisors may know.
    ("incidents.IncidentStatus", "GET"): roles("supervisor", "coordinator", "dispatch"),
    ("facilitators.Facilitators", "POST"): roles("coordinator", "admin"),
    ("facilitators.Facilitators", "GET"): roles("coordinator", "admin"),
    ("facilitators.FacilitatorById", "GET"): roles("coordinator", "admin", "facilitator"),
    ("facilitators.FacilitatorById", "PATCH"): roles("coordinator", "admin", "facilitator"),
    ("facilitators.FacilitatorAvailability", "PUT"): roles("coordinator", "admin", "facilitator"),
    ("facilitators.FacilitatorCalendarToken", "POST"): roles("coordinator", "admin", "facilitator"),
    # The feed's secret URL is its credential: calendar servers cannot send an API key.
    ("calendars.CalendarFeed", "GET"): PUBLIC,
    ("sessions.SessionById", "GET"): roles("coordinator", "facilitator"),
    ("sessions.SessionCancel", "POST"): roles("coordinator"),
    ("sessions.SessionReschedule", "POST"): roles("coordinator"),
    ("sessions.SessionComplete", "POST"): roles("coordinator", "facilitator"),
    ("sessions.SessionDecline", "POST"): roles("facilitator"),
    # Participant-level data: the CISM coordinators only, and every read is audited.
    ("followups.IncidentFollowups", "GET"): roles("coordinator", participant_data=True),
    ("audit.AuditLog", "GET"): roles("admin", participant_data=True),
    # The signed link is the participant's credential: they have no API key.
    ("followups.Response", "GET"): Access(public=True, participant_data=True),
    ("followups.Response", "POST"): Access(public=True, participant_data=True),
}


def access_for(endpoint: str | None, method: str) -> Access | None:
    """The matrix entry of a request, HEAD counting as GET."""
    if endpoint is None:
        return None
    return MATRIX.get((endpoint, "GET" if method == "HEAD" else method))


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def enforce_access() -> None:
    """Authenticate the caller and check the matrix; unknown endpoints are closed."""
    if request.endpoint is None or request.method == "OPTIONS":
        return  # routing answers 404/405 itself; OPTIONS reveals only the allowed methods
    if request.endpoint == "static" or is_page():
        return  # pages check their own credential (a signed link) and never take an API key
    rule = access_for(request.endpoint, request.method)
    if rule is not None and rule.public:
        return
    token = _bearer_token()
    if token is None:
        raise Unauthenticated("Send `Authorization: Bearer <api key>`.")
    check = KeyCheck(token, rule.roles if rule is not None else frozenset(), request.method)
    if (request.endpoint, request.method) in ONE_STATEMENT_REQUESTS and well_formed(token) \
            and services().statement_session_factory is not None:
        g.pending_key = check  # its statement checks it; web.principal() does, if anything needs the caller before
        return
    g.principal = check.authenticate(db_session(), now())


def settle_pending_key(response: Response) -> Response:
    """after_request, to run before every other: a request that ended before its statement checked its
    key (refused input, say) is answered as any other, a caller without a valid key learning that first."""
    if g.get("pending_key") is None or response.status_code >= 500:
        return response  # checked, or not checkable now (the database is down)
    try:
        principal()
    except DomainError as refused:
        return handle_domain_error(refused)
    except DBAPIError:
        log.warning("the key of a refused request could not be checked: the database is unavailable")
    return response


def _no_store(response: Response) -> Response:
    rule = access_for(request.endpoint, request.method)
    if rule is not None and rule.participant_data:
        response.headers["Cache-Control"] = "no-store"
    return response


def install(app: Flask) -> None:
    """Run the access check before every request; keep participants' data out of caches."""
    app.before_request(enforce_access)
    app.after_request(_no_store)


class AccessDocPlugin(BasePlugin):
    """Documents the matrix in the OpenAPI spec: security, allowed roles, 401 and 403."""

    def operation_helper(self, path: str | None = None, operations: dict[str, Any] | None = None, **kwargs: Any) -> None:
        rule = kwargs.get("rule")
        if rule is None or not operations:
            return
        for method, operation in operations.items():
            access = access_for(rule.endpoint, method.upper())
            if access is None or access.public:
                operation["security"] = []
                continue
            operation["security"] = [{"bearerAuth": []}]
            operation["x-roles"] = sorted(access.roles)
            responses = operation.setdefault("responses", {})
            responses.setdefault("401", "UNAUTHORIZED")
            responses.setdefault("403", "FORBIDDEN")
