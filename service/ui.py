"""What every page for people shares: its blueprints, language, headers and error pages.

Pages are server-rendered HTML forms (no JavaScript needed). A page blueprint is made with
`page_blueprint`, so that the app knows which requests are pages: they take form posts,
answer errors as HTML pages instead of problem+json, and carry the page security headers.
"""

from __future__ import annotations

import http
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, Response, current_app, g, render_template, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from flask_babel import Babel

from service import i18n

PAGE_BLUEPRINTS: set[str] = set()
# Pages opened by a signed link: what they cannot find is "this link is not valid", not a missing page.
SIGNED_LINK_BLUEPRINTS: set[str] = set()
LANG_PARAM = "lang"
API_PREFIXES = ("/v1/", "/openapi", "/docs", "/metrics", "/healthz", "/readyz")
# No inline script or style, nothing from another host, never framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


def page_blueprint(name: str, import_name: str, *, signed_link: bool = False, **options: Any) -> Blueprint:
    """A blueprint of pages for people (HTML, forms, HTML errors); `signed_link` when a link in a message opens them."""
    PAGE_BLUEPRINTS.add(name)
    if signed_link:
        SIGNED_LINK_BLUEPRINTS.add(name)
    return Blueprint(name, import_name, **options)


def is_page() -> bool:
    """Whether the current request is for a page rather than the API."""
    if request.blueprint in PAGE_BLUEPRINTS:
        return True
    if request.url_rule is None and isinstance(request.routing_exception, MethodNotAllowed):
        # A page's path with a method it does not take: still that page's blueprint.
        endpoint = _endpoint_of(request.path)
        return endpoint is not None and endpoint.partition(".")[0] in PAGE_BLUEPRINTS
    # An unrouted path outside the API (a mistyped link) gets a page when a browser asks for it.
    return (request.url_rule is None and not request.path.startswith(API_PREFIXES)
            and request.accept_mimetypes.best_match(("application/json", "text/html")) == "text/html")


def _endpoint_of(path: str) -> str | None:
    adapter = current_app.url_map.bind("localhost")
    for method in ("GET", "POST"):
        try:
            return adapter.match(path, method=method)[0]
        except HTTPException:
            continue
    return None


def use_language(lang: str | None) -> str:
    """Speak `lang` on this page, unless the person chose the other one with the switch."""
    chosen = request.args.get(LANG_PARAM)
    g.lang = chosen if chosen in i18n.LANGUAGES else i18n.language(lang) if lang else _preferred()
    return g.lang


def _preferred() -> str:
    return request.accept_languages.best_match(i18n.LANGUAGES) or i18n.DEFAULT_LANGUAGE


def current_language() -> str:
    """The language of the page being rendered."""
    if "lang" not in g:
        chosen = request.args.get(LANG_PARAM) if request else None
        g.lang = chosen if chosen in i18n.LANGUAGES else _preferred()
    return g.lang


def switch_url() -> str:
    """This page in the other language (the same path, the other `lang`)."""
    args = {k: v for k, v in request.args.items() if k != LANG_PARAM}
    args[LANG_PARAM] = i18n.other(current_language())
    return f"{request.path}?{urlencode(args)}"


def with_language(url: str) -> str:
    """A URL of this site that keeps the page's language (for forms' actions and links)."""
    return f"{url}{'&' if '?' in url else '?'}{urlencode({LANG_PARAM: current_language()})}"


def render(template: str, *, status: int = 200, **context: Any) -> Response:
    """A page, in the current language."""
    return Response(render_template(template, **context), status=status, content_type="text/html; charset=utf-8")


def error_page(status: int, *, reason: str | None = None) -> Response:
    """The plain page of an error: what happened and how to reach the CISM team."""
    if status not in (400, 403, 404, 405, 409, 410, 413, 415, 422, 429, 500, 503):
        status = 400 if status < 500 else 500
    if status == 404 and reason is None and request.blueprint in SIGNED_LINK_BLUEPRINTS:
        reason = "link_invalid"
    response = render("error.html", status=status, status_code=status, reason=reason,
                      phrase=http.HTTPStatus(status).phrase)
    if status == 503:
        response.headers["Retry-After"] = "5"
    return response


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.mimetype == "text/html" and request.blueprint != "api-docs":
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        # Pages are reached by secret links and show personal data: never cached, never referred.
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
    return response


def install(app: Flask) -> None:
    """Flask-Babel with the page's language, the template helpers and the security headers."""
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(i18n.TRANSLATIONS_DIR))
    Babel(app, locale_selector=lambda: i18n.LOCALES[current_language()])
    app.jinja_env.globals.update(
        current_language=current_language, switch_url=switch_url, with_language=with_language,
        when=lambda moment, zone: i18n.when(moment, zone, current_language()),
        day=lambda moment, zone: i18n.day(moment, zone, current_language()),
        clock=lambda moment, zone: i18n.clock(moment, zone, current_language()),
    )
    app.after_request(_security_headers)
