"""Domain exceptions and their one mapping to RFC 9457 problem+json answers."""

from __future__ import annotations

import http
import logging
from typing import Any, Mapping

import marshmallow as ma
from flask import Flask, Response, json
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

PROBLEM_CONTENT_TYPE = "application/problem+json"

log = logging.getLogger(__name__)


class DomainError(Exception):
    """A rule of the domain refused the request; `status` says how HTTP reports it."""

    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str, *, errors: Mapping[str, list[str]] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = dict(errors) if errors else None
        self.extra = extra


class NotFound(DomainError):
    """The resource does not exist, or is not visible to the caller."""

    status, slug, title = 404, "not-found", "Not found"


class Conflict(DomainError):
    """The request conflicts with the current state of the resource."""

    status, slug, title = 409, "conflict", "Conflict"


class InvalidInput(DomainError):
    """The request is well-formed but breaks a domain rule about its content."""

    status, slug, title = 422, "validation-error", "Invalid input"


class Unauthenticated(DomainError):
    """No valid API key was presented."""

    status, slug, title = 401, "unauthenticated", "Authentication required"


class Forbidden(DomainError):
    """The caller's role may not do this."""

    status, slug, title = 403, "forbidden", "Forbidden"


class UnsupportedMediaType(DomainError):
    """The body is not JSON."""

    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class Unavailable(DomainError):
    """A backing service is down; the client should retry later."""

    status, slug, title = 503, "unavailable", "Service unavailable"


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details, as every error answer of the API carries them."""

    class Meta:
        # RFC 9457 extension members (e.g. incident_id on a 409) are part of the contract.
        unknown = ma.INCLUDE

    type = ma.fields.String(required=True, metadata={"description": "URI reference identifying the problem type"})
    title = ma.fields.String(required=True)
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String(required=True)
    errors = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.List(ma.fields.String()),
        metadata={"description": "Validation messages per field (dotted path into the request)"},
    )


def problem_type(slug: str) -> str:
    """The problem type URI for a slug."""
    return f"urn:debrief:problem:{slug}"


def problem_response(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    errors: Mapping[str, list[str]] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    """Build a problem+json response."""
    phrase = http.HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": problem_type(slug) if slug else "about:blank",
        "title": title or phrase,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = dict(errors)
    if extra:
        body.update(extra)
    response = Response(json.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def flatten_messages(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Flatten marshmallow's nested messages into {"personnel.0.email": [...]}."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            flat.update(flatten_messages(value, path))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        flat[prefix or "_schema"] = list(messages)
    elif isinstance(messages, list):
        for index, value in enumerate(messages):
            flat.update(flatten_messages(value, f"{prefix}.{index}" if prefix else str(index)))
    else:
        flat[prefix or "_schema"] = [str(messages)]
    return flat


def _validation_errors(data: Mapping[str, Any]) -> dict[str, list[str]]:
    messages = data.get("messages") or data.get("errors") or {}
    flat: dict[str, list[str]] = {}
    # webargs keys messages by location (json, query, headers...); the body is the common case.
    for location, per_location in messages.items():
        prefix = "" if location == "json" else location
        flat.update(flatten_messages(per_location, prefix))
    return flat


def _page_error(status: int) -> Response | None:
    """The HTML error page when the request was for a page, else None."""
    from service import ui

    return ui.error_page(status) if ui.is_page() else None


def handle_http_exception(error: HTTPException) -> Response:
    """Render any werkzeug/flask-smorest HTTP error as problem+json (an HTML page for a page)."""
    status = error.code or 500
    page = _page_error(status)
    if page is not None:
        if status == 405 and error.valid_methods:  # type: ignore[attr-defined]
            page.headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
        return page
    data = getattr(error, "data", None) or {}
    errors = _validation_errors(data) if status in (400, 422) and data else None
    detail = data.get("message") or error.description or http.HTTPStatus(status).phrase
    if errors and status == 422:
        detail = "The request body or parameters are invalid: see `errors`."
    elif status == 400 and errors == {"_schema": ["Invalid JSON body."]}:
        reason = data.get("reason")
        detail, errors = f"The request body is not valid JSON in UTF-8{f' ({reason})' if reason else ''}.", None
    headers = dict(data.get("headers") or {})
    if status == 405 and error.valid_methods:  # type: ignore[attr-defined]
        headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
    slug = {422: "validation-error", 400: "bad-request"}.get(status)
    return problem_response(status, str(detail), slug=slug, errors=errors, headers=headers)


def handle_domain_error(error: DomainError) -> Response:
    """Render a domain exception as problem+json (an HTML page for a page)."""
    page = _page_error(error.status)
    if page is not None:
        return page
    headers = {"Retry-After": "5"} if error.status == 503 else None
    if error.status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="debrief"'}
    return problem_response(
        error.status, error.detail, slug=error.slug, title=error.title, errors=error.errors,
        headers=headers, extra=error.extra,
    )


LOCK_NOT_AVAILABLE = "55P03"


def handle_database_down(error: DBAPIError) -> Response:
    """A lost database connection is an outage (503), never a 500; so is a lock not granted in time."""
    if getattr(error.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
        log.warning("database lock not granted within lock_timeout")
        page = _page_error(503)
        if page is not None:
            return page
        return problem_response(
            503, "The data is busy with another change; retry shortly.", slug="unavailable", headers={"Retry-After": "1"},
        )
    if isinstance(error, OperationalError) or error.connection_invalidated:
        log.warning("database unavailable: %s", type(error.orig).__name__)
        page = _page_error(503)
        if page is not None:
            return page
        return problem_response(
            503, "The database is unavailable; retry shortly.", slug="unavailable",
            headers={"Retry-After": "5"},
        )
    return handle_unexpected(error)


def handle_unexpected(error: Exception) -> Response:
    """Last resort: log the failure and answer a generic 500 without internals."""
    log.exception("unhandled error", exc_info=error)
    return handle_http_exception(InternalServerError())


def register_error_handlers(app: Flask) -> None:
    """Install the problem+json handlers (after flask-smorest's, which they replace)."""
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(DBAPIError, handle_database_down)
    app.register_error_handler(Exception, handle_unexpected)
