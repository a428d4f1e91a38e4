"""What every page of the staff console shares: its blueprints, the signed-in person, forms' CSRF,
the sign-in rate limits, the console's language, its navigation and error pages.

A domain adds console pages with `console_blueprint` (templates under `templates/<domain>/`,
extending `console.html`), lists each page in `service.accounts.access.PAGE_MATRIX`, and, if it
belongs in the navigation, in `NAV`. Only console blueprints get the session cookie, CSRF checks
(Flask-WTF) and the access table: participants' and facilitators' signed-link pages and the API
do not.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from datetime import timedelta
from hashlib import sha256
from typing import Any, Callable, TypeVar
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Request, current_app, g, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_babel import gettext
from flask_limiter import Limiter
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from service import i18n, ui
from service.accounts import access
from service.accounts import service as accounts
from service.errors import Conflict, DomainError, Unavailable
from service.i18n import N_
from service.signing import MissingSecretKey
from service.web import db_session, now, services

log = logging.getLogger(__name__)
T = TypeVar("T")

CONSOLE_BLUEPRINTS: set[str] = set()
SESSION_COOKIE = "debrief_session"
# Flask's own signed cookie: it holds only the forms' CSRF token and the chosen language.
FORMS_COOKIE = "debrief_forms"
SECRET_LABEL = b"debrief.console.flask-secret-key.v1"
# Sign-in link requests: per address typed, and per client (the address of the request).
SIGNIN_PER_ADDRESS = "5 per 15 minutes"
SIGNIN_PER_CLIENT = "30 per hour"

# The console's navigation: each entry is shown to the roles that PAGE_MATRIX lets see its page,
# once a blueprint provides the endpoint (the coordinators' roster and agency pages come later).
NAV: tuple[tuple[str, str], ...] = (
    ("incident_pages.index", N_("Incidents")),
    ("roster_pages.index", N_("Roster")),
    ("agency_settings.index", N_("Agency")),
    ("agency_pages.index", N_("Agencies")),
    ("accounts.index", N_("Accounts")),
    ("key_pages.index", N_("API keys")),
    ("console.my_sessions", N_("My sessions")),
)


def console_blueprint(name: str, import_name: str, **options: Any) -> Blueprint:
    """A blueprint of console pages: signed-in people, CSRF-checked forms, the access table."""
    CONSOLE_BLUEPRINTS.add(name)
    blueprint = ui.page_blueprint(name, import_name, **options)
    blueprint.register_error_handler(HTTPException, _http_error)
    blueprint.register_error_handler(DomainError, _domain_error)
    return blueprint


def person() -> accounts.Person | None:
    """Who is signed in on this console page (None on the sign-in pages)."""
    return g.get("person")


def signed_in() -> accounts.Person:
    """The signed-in person of a page the access table keeps for signed-in people."""
    found = g.get("person")
    assert found is not None, "the access table lets no signed-out person here"
    return found


def is_console() -> bool:
    """Whether this request is for a console page."""
    return request.blueprint in CONSOLE_BLUEPRINTS


def local_path(target: str | None) -> str | None:
    """`target` if it is a path of this site (where to go after signing in), else None."""
    if not target or len(target) > 512 or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    if any(c in target for c in "\r\n\t\\") or target.startswith("/signin"):
        return None
    parts = urlsplit(target)
    return target if not (parts.scheme or parts.netloc) else None


def cookie_secure() -> bool:
    """Cookies only over HTTPS when the service is published on HTTPS."""
    return services().config.public_base_url.startswith("https://")


def set_session_cookie(response: Response, session_id: str) -> None:
    """The cookie of a new console session: HttpOnly, SameSite=Lax, whole site; no expiry (the server's idle limit decides)."""
    response.set_cookie(SESSION_COOKIE, session_id, httponly=True, samesite="Lax", secure=cookie_secure(), path="/")


def clear_session_cookie(response: Response) -> None:
    """Remove the console session cookie from the browser."""
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="Lax", secure=cookie_secure(), path="/")


def save_form(form: Any, save: Callable[[], T], *, conflict: tuple[Any, str]) -> T | None:
    """Run `save` when the form was posted and is valid; a Conflict becomes `conflict`'s field's error.

    None: show the form again (with its errors, what was typed kept).
    """
    if request.method != "POST" or not form.validate():
        return None
    try:
        return save()
    except Conflict:
        field, message = conflict
        field.errors.append(message)
        return None


def form_page(template: str, form: Any, **context: Any) -> Response:
    """A page with a form: 422 when it comes back from a post with errors."""
    return ui.render(template, form=form, status=422 if request.method == "POST" else 200, **context)


# -- the nav and the language ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NavItem:
    """One link of the console's navigation."""

    url: str
    label: str
    current: bool


def console_nav() -> list[NavItem]:
    """The navigation of the signed-in person's role."""
    who = person()
    if who is None:
        return []
    return [
        NavItem(url_for(endpoint), gettext(label), request.endpoint == endpoint)
        for endpoint, label in NAV
        if endpoint in current_app.view_functions and access.may_see(who.role, endpoint)
    ]


def _choose_language() -> None:
    # The switch (?lang=) is remembered for the next pages; else the browser's language.
    chosen = request.args.get(ui.LANG_PARAM)
    if chosen in i18n.LANGUAGES:
        session["lang"] = chosen
    remembered = session.get("lang")
    ui.use_language(remembered if remembered in i18n.LANGUAGES else None)


# -- before and after every console page -----------------------------------------------------------------


def _open_console() -> Response | None:
    if not is_console():
        return None
    if not current_app.secret_key:
        raise Unavailable("The console has no key: SECRET_KEY is not set.")
    _choose_language()
    session_id = request.cookies.get(SESSION_COOKIE)
    g.person = None
    if session_id:
        g.person = accounts.signed_in(db_session(), session_id=session_id, now=now())
        g.drop_session_cookie = g.person is None
    refused = access.enforce_page_access()
    if refused is not None:
        return refused
    if request.method == "POST":
        current_app.extensions["csrf"].protect()
    return None


def _after_console(response: Response) -> Response:
    if is_console() and g.get("drop_session_cookie"):
        clear_session_cookie(response)
    return response


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    reason = "csrf" if isinstance(error, CSRFError) else None
    return error_page(status, reason=reason)


def _domain_error(error: DomainError) -> Response:
    return error_page(error.status)


def error_page(status: int, *, reason: str | None = None) -> Response:
    """An error in the console: what happened, with the console's navigation."""
    if status not in (400, 403, 404, 405, 409, 429, 503):
        return ui.error_page(status)
    response = ui.render("console/error.html", status=status, status_code=status, reason=reason)
    if status == 429:
        response.headers["Retry-After"] = "60"
    return response


# -- Flask's key: derived, never the response links' key itself --------------------------------------------


def derive_secret_key(key: str) -> str:
    """Flask's (and so Flask-WTF's) secret key: an HMAC of the service key under a label of its own."""
    return hmac.new(key.encode("utf-8"), SECRET_LABEL, sha256).hexdigest()


def _ensure_secret_key(app: Flask) -> None:
    if app.secret_key:
        return
    try:
        keys = [derive_secret_key(key) for key in services_of(app).signing_keys()]
    except MissingSecretKey:
        # Pages of the console answer 503; `debrief serve` refuses to start without a key anyway.
        log.warning("the console has no key: SECRET_KEY is not set")
        return
    # Older keys still open the forms' cookie and check their CSRF tokens, so that a rotation signs
    # no one's form out. Flask-WTF hands its setting to itsdangerous, which wants the newest last.
    app.config.update(SECRET_KEY_FALLBACKS=keys[1:], WTF_CSRF_SECRET_KEY=keys[::-1])
    app.secret_key = keys[0]


class ConsoleSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, named for the console, its key derived from the service's key on first use."""

    def open_session(self, app: Flask, request: Request):  # type: ignore[override]
        _ensure_secret_key(app)
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            # No cookie (every API request): an empty session, without building the signer Flask would.
            return self.session_class()
        return super().open_session(app, request)


# -- the sign-in rate limits ------------------------------------------------------------------------------


def _client() -> str:
    return request.remote_addr or "unknown"


def _address() -> str:
    # Hashed: the limiter's storage (Redis) never holds an address.
    typed = accounts.normalize_email(request.form.get("email", ""))
    return "address:" + sha256(typed.encode("utf-8")).hexdigest()


def _not_a_link_request() -> bool:
    return request.endpoint != "signin.form"


def limit_signin(app: Flask, blueprint: Blueprint) -> Limiter:
    """Flask-Limiter on the sign-in blueprint's POSTs: Redis when REDIS_URL is set, memory otherwise."""
    limiter = Limiter(
        key_func=_client, storage_uri=services_of(app).config.redis_url or "memory://", strategy="moving-window",
        key_prefix="debrief-signin", in_memory_fallback_enabled=True, headers_enabled=False,
        storage_options={"socket_timeout": 2, "socket_connect_timeout": 2} if services_of(app).config.redis_url else {},
    )
    # Its hook runs before every request of the app: the others leave at once, not after resolving limits.
    limiter.request_filter(lambda: request.blueprint != blueprint.name)
    limiter.limit(SIGNIN_PER_CLIENT, methods=["POST"], scope="client")(blueprint)
    limiter.limit(SIGNIN_PER_ADDRESS, key_func=_address, methods=["POST"], scope="address",
                  exempt_when=_not_a_link_request)(blueprint)
    limiter.init_app(app)
    return limiter


def services_of(app: Flask):
    """The composition root of an app (outside a request)."""
    return app.extensions["debrief"]


def install(app: Flask, signin_blueprint: Blueprint) -> None:
    """The console's cookies, CSRF, access check, rate limits and template helpers (console blueprints only)."""
    secure = services_of(app).config.public_base_url.startswith("https://")
    app.config.update(
        SESSION_COOKIE_NAME=FORMS_COOKIE, SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        # Flask-WTF checks only where the console asks it to (see _open_console), never on the API
        # or the signed-link pages; a form stays good as long as a console session may.
        WTF_CSRF_CHECK_DEFAULT=False, WTF_CSRF_TIME_LIMIT=int(accounts.IDLE_TIMEOUT / timedelta(seconds=1)),
        # Not the Referer check Flask-WTF adds on HTTPS: pages send no Referer (Referrer-Policy:
        # no-referrer), and the token with SameSite=Lax cookies is the protection.
        WTF_CSRF_SSL_STRICT=False,
    )
    app.session_interface = ConsoleSessionInterface()
    CSRFProtect(app)
    app.before_request(_open_console)
    app.after_request(_after_console)
    # After the access check: a refused request is not counted.
    limit_signin(app, signin_blueprint)
    app.jinja_env.globals.update(person=person, console_nav=console_nav)
