"""The app factory and composition root."""

from __future__ import annotations

import http
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Mapping

import yaml
from apispec import BasePlugin
from flask import Flask, request
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from redis import Redis
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, configure_mappers, sessionmaker

from service import apidocs, console, errors, signing, ui
from service.auth import access
from service.config import Config
from service.db import make_engine, make_session_factory, utcnow
from service.errors import ProblemSchema
from service.followups.outgoing import MessageContext
from service.incidents.schemas import IncidentSummaryRead
from service.metrics import HttpMetrics
from service.web import close_db_session

log = logging.getLogger("service.requests")

API_VERSION = "1.0.0"
JSON_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class DebriefApi(Api):
    """flask-smorest's Api, with problem+json as the documented error format."""

    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, errors.PROBLEM_CONTENT_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        default = {"description": "Problem details (RFC 9457)", "schema": self.ERROR_SCHEMA}
        prepare_response(default, self.spec, errors.PROBLEM_CONTENT_TYPE)
        self.spec.components.response("DEFAULT_ERROR", default, lazy=True)

    def _register_swagger_ui_rule(self, blueprint: Any) -> None:
        # Ours, not flask-smorest's page: that one loads Swagger UI from a CDN and starts it inline.
        apidocs.register(blueprint, "/" + self.config["OPENAPI_SWAGGER_UI_PATH"])


class JsonBodyDocPlugin(BasePlugin):
    """Documents the answers of the app-wide body checks on every operation that can carry a body."""

    def operation_helper(self, path: str | None = None, operations: dict[str, Any] | None = None, **kwargs: Any) -> None:
        for method, operation in (operations or {}).items():
            if method.upper() not in JSON_BODY_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            # _require_json_body refuses any body that is not JSON, even on operations that take none.
            responses.setdefault("415", http.HTTPStatus(415).name)
            if "requestBody" in operation:
                # Only an operation that reads its body can find it malformed or over MAX_CONTENT_LENGTH.
                responses.setdefault("400", http.HTTPStatus(400).name)
                responses.setdefault("413", http.HTTPStatus(413).name)


@dataclass
class Services:
    """What the views and jobs need, built once per app; side effects are injectable."""

    config: Config
    engine: Engine
    session_factory: sessionmaker[Session]
    api: Api
    metrics: HttpMetrics
    redis: Redis | None = None
    clock: Callable[[], datetime] = utcnow
    # PostgreSQL: sessions whose every statement commits on its own (autocommit), for the requests
    # that write in one statement (web.ONE_STATEMENT_REQUESTS); None on SQLite.
    statement_engine: Engine | None = None
    statement_session_factory: sessionmaker[Session] | None = None
    _openapi_yaml: str | None = field(default=None, repr=False)
    _signing_keys: tuple[str, ...] | None = field(default=None, repr=False)

    def close(self) -> None:
        """Release pooled connections (the app stays usable; pools refill on demand)."""
        self.engine.dispose()
        if self.statement_engine is not None:
            self.statement_engine.dispose()
        if self.redis is not None:
            self.redis.close()

    def signing_keys(self) -> tuple[str, ...]:
        """The keys of people's links, newest first; MissingSecretKey on PostgreSQL without SECRET_KEY."""
        if self._signing_keys is None:
            self._signing_keys = signing.load_keys(self.config)
        return self._signing_keys

    def openapi_yaml(self) -> str:
        """The OpenAPI document as YAML (rendered once)."""
        if self._openapi_yaml is None:
            self._openapi_yaml = render_openapi(self.api)
        return self._openapi_yaml


def render_openapi(api: Api) -> str:
    """The OpenAPI document in the committed, stable YAML form."""
    return yaml.safe_dump(api.spec.to_dict(), sort_keys=True, allow_unicode=True, width=100)


def create_app(config: Mapping[str, Any] | Config | None = None, *, clock: Callable[[], datetime] | None = None) -> Flask:
    """Build the Flask app; `config` overrides the environment (used by tests)."""
    if isinstance(config, Config):
        settings = config
    else:
        settings = Config.from_env().updated(config or {})
    app = Flask("service", static_folder="static", static_url_path="/static")
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_content_length,
        API_TITLE="Debrief",
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        API_SPEC_OPTIONS={
            "info": {
                "description": "Schedules critical-incident stress debriefings (CISD) for first responders.",
            },
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
        },
    )
    engine = make_engine(settings.database_url, lock_timeout_ms=settings.lock_timeout_ms)
    statement_engine = None if engine.dialect.name == "sqlite" else make_engine(
        settings.database_url, lock_timeout_ms=settings.lock_timeout_ms, isolation_level="AUTOCOMMIT")
    api = DebriefApi(app, spec_kwargs={"extra_plugins": [access.AccessDocPlugin(), JsonBodyDocPlugin()]})
    metrics = HttpMetrics()
    services = Services(
        config=settings,
        engine=engine,
        session_factory=make_session_factory(engine),
        statement_engine=statement_engine,
        statement_session_factory=make_session_factory(statement_engine) if statement_engine is not None else None,
        api=api,
        metrics=metrics,
        redis=Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2) if settings.redis_url else None,
        clock=clock or utcnow,
    )
    app.extensions["debrief"] = services
    # Every database session can compose messages (links, sender) for the changes it commits.
    services.session_factory.configure(info={"messages": MessageContext(services)})
    if services.statement_session_factory is not None:
        services.statement_session_factory.configure(info={"messages": MessageContext(services)})

    from service.agencies.views import blp as agencies_blp
    from service.audit.views import blp as audit_blp
    from service.auth.views import blp as keys_blp
    from service.calendars.views import blp as calendars_blp
    from service.facilitators.views import blp as facilitators_blp
    from service.followups.views import blp as followups_blp
    from service.health.views import blp as health_blp
    from service.incidents.views import blp as incidents_blp
    from service.sessions.views import blp as sessions_blp

    blueprints = (health_blp, agencies_blp, facilitators_blp, incidents_blp, sessions_blp, calendars_blp, followups_blp, audit_blp,
                  keys_blp)
    for blueprint in blueprints:
        api.register_blueprint(blueprint)
    if settings.demo:
        from service.outbox.pages import blp as demo_pages

        app.register_blueprint(demo_pages)
    # The staff console: one blueprint of pages per domain (see service.console).
    from service.accounts.pages import blp as accounts_pages
    from service.accounts.pages import console_blp, signin_blp
    from service.agencies.pages import blp as agency_pages
    from service.facilitators.roster_pages import blp as roster_pages
    from service.agencies.settings_pages import blp as agency_settings
    from service.incidents.pages import blp as incident_pages

    from service.auth.pages import blp as key_pages

    for blueprint in (signin_blp, console_blp, accounts_pages, agency_pages, incident_pages, key_pages):
        app.register_blueprint(blueprint)
    app.register_blueprint(roster_pages)
    app.register_blueprint(agency_settings)

    # Pages for people: plain Flask blueprints, outside the API and its spec.
    from service.facilitators.pages import blp as facilitator_pages
    from service.followups.pages import blp as followup_pages
    from service.sessions.pages import blp as session_pages

    for pages in (followup_pages, facilitator_pages, session_pages):
        app.register_blueprint(pages)
    # Named by the incident list's items (oneOf), which no operation answers on its own.
    api.spec.components.schema("IncidentSummaryRead", schema=IncidentSummaryRead)

    metrics.install(app)
    metrics.watch_outbox(engine, services.clock)
    access.install(app)
    ui.install(app)
    console.install(app, signin_blp)
    app.before_request(_require_json_body)
    app.teardown_appcontext(close_db_session)
    errors.register_error_handlers(app)
    app.after_request(_log_request)
    # Registered last, so run first: the other hooks see the answer it may give instead.
    app.after_request(access.settle_pending_key)
    # Once per process, at start: otherwise the first request to touch the ORM pays for it
    # (about 50 ms, seen on a worker's first calendar feed).
    configure_mappers()
    return app


def _require_json_body() -> None:
    if request.method in JSON_BODY_METHODS and request.endpoint is not None and not ui.is_page():
        if not request.is_json and (request.content_length or request.headers.get("Transfer-Encoding")):
            raise errors.UnsupportedMediaType("Send the body as application/json.")


def _log_request(response: Any) -> Any:
    # The route template only: paths carry tokens, and bodies carry personal data.
    route = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
    log.info("%s %s %s", request.method, route, response.status_code)
    return response
