"""Interactive API docs at /docs: Swagger UI served from this host, under a CSP that allows only it.

Swagger UI's files come from the flask-swagger-ui package (its `dist`, nothing of its blueprint, whose
page initializes Swagger UI with an inline script); the page and its initializer are ours.
"""

from __future__ import annotations

from pathlib import Path

import flask
import flask_swagger_ui

HERE = Path(__file__).parent
SWAGGER_DIST = Path(flask_swagger_ui.__file__).parent / "dist"
# Only what the page loads: nothing else of the package is reachable.
SWAGGER_FILES = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"})
INITIALIZER = "swagger-initializer.js"
# Scripts, styles and the spec from this host only; Swagger UI's stylesheet embeds its icons as data: images.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
ASSET_MAX_AGE = 24 * 3600


def swagger_ui() -> flask.Response:
    """The docs page: Swagger UI over this API's openapi.json."""
    page = flask.render_template_string(
        (HERE / "index.html").read_text(encoding="utf-8"),
        spec_url=flask.url_for(".openapi_json"),
        asset=lambda name: flask.url_for(".swagger_ui_asset", name=name),
    )
    return flask.Response(page, content_type="text/html; charset=utf-8")


def swagger_ui_asset(name: str) -> flask.Response:
    """One of Swagger UI's files, or the page's initializer."""
    if name == INITIALIZER:
        return flask.send_file(HERE / INITIALIZER, mimetype="text/javascript", max_age=ASSET_MAX_AGE)
    if name not in SWAGGER_FILES:
        flask.abort(404)
    return flask.send_from_directory(SWAGGER_DIST, name, max_age=ASSET_MAX_AGE)


def _docs_headers(response: flask.Response) -> flask.Response:
    if flask.request.endpoint in ("api-docs.openapi_swagger_ui", "api-docs.swagger_ui_asset"):
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["Referrer-Policy"] = "no-referrer"
    return response


def register(blueprint: flask.Blueprint, path: str) -> None:
    """Add the docs page at `path`, and its files under it, to flask-smorest's doc blueprint."""
    blueprint.add_url_rule(path, endpoint="openapi_swagger_ui", view_func=swagger_ui)
    blueprint.add_url_rule(f"{path}/<name>", endpoint="swagger_ui_asset", view_func=swagger_ui_asset)
    blueprint.after_request(_docs_headers)
