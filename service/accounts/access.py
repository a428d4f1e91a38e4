"""Who sees which console page: the one table of the console, enforced before every console page.

Like the API's `service.auth.access.MATRIX`, a page missing from the table is closed to everyone
(tests/integration/test_console_access.py checks that every console route has its entry). Nobody
signed in is sent to sign in and brought back; a person whose role may not see a page gets 403;
another agency's incident is the page's own business (it answers 404, as for one that does not exist).
"""

from __future__ import annotations

from flask import g, redirect, request, url_for
from werkzeug.exceptions import Forbidden
from werkzeug.wrappers import Response

from service.accounts.models import ADMIN, CONSOLE_ROLES, COORDINATOR, FACILITATOR, SUPERVISOR

ANONYMOUS = "anonymous"
SIGNED_IN = frozenset(CONSOLE_ROLES)
EVERYONE = frozenset({ANONYMOUS, *CONSOLE_ROLES})


def roles(*names: str) -> frozenset[str]:
    """The console roles that may see a page."""
    assert set(names) <= SIGNED_IN, names
    return frozenset(names)


# endpoint -> who may see it (every method of the page). A later page adds its line here.
PAGE_MATRIX: dict[str, frozenset[str]] = {
    "signin.form": EVERYONE,
    "signin.link": EVERYONE,
    "signin.signout": SIGNED_IN,
    "console.home": SIGNED_IN,
    "console.my_sessions": roles(FACILITATOR),
    # Supervisors: their agency's incidents as counts only. Coordinators: the board and each incident's page.
    "incident_pages.index": roles(COORDINATOR, SUPERVISOR),
    "incident_pages.status": roles(SUPERVISOR),
    "incident_pages.show": roles(COORDINATOR),
    "incident_pages.replan": roles(COORDINATOR),
    "incident_pages.reschedule": roles(COORDINATOR),
    "incident_pages.cancel": roles(COORDINATOR),
    "incident_pages.complete": roles(COORDINATOR),
    "incident_pages.add_personnel": roles(COORDINATOR),
    "incident_pages.followups": roles(COORDINATOR),
    "agency_pages.index": roles(ADMIN),
    "agency_pages.create": roles(ADMIN),
    "accounts.index": roles(ADMIN),
    "accounts.create": roles(ADMIN),
    "accounts.edit": roles(ADMIN),
    "accounts.disable": roles(ADMIN),
    "key_pages.index": roles(ADMIN),
    "key_pages.create": roles(ADMIN),
    "key_pages.revoke": roles(ADMIN),
    # The roster of the coordinator's agency (as the API lists it to them).
    "roster_pages.index": roles(COORDINATOR),
    "roster_pages.create": roles(COORDINATOR),
    "roster_pages.edit": roles(COORDINATOR),
    "roster_pages.add_time_off": roles(COORDINATOR),
    "roster_pages.remove_time_off": roles(COORDINATOR),
    "roster_pages.deactivate": roles(COORDINATOR),
    "roster_pages.reactivate": roles(COORDINATOR),
    # The coordinator's own agency: its mailbox, webhook and planning numbers.
    "agency_settings.index": roles(COORDINATOR),
    "agency_settings.contact": roles(COORDINATOR),
    "agency_settings.policy": roles(COORDINATOR),
    "agency_settings.rotate_secret": roles(COORDINATOR),
}


def may_see(role: str | None, endpoint: str) -> bool:
    """Whether a role (None: nobody signed in) may see a console page."""
    return (role or ANONYMOUS) in PAGE_MATRIX.get(endpoint, frozenset())


def enforce_page_access() -> Response | None:
    """Before a console page: send the signed-out to sign in (keeping where they were going); 403 for a wrong role."""
    person = g.get("person")
    if may_see(person.role if person else None, request.endpoint or ""):
        return None
    if person is None:
        return redirect(url_for("signin.form", next=request.full_path.rstrip("?")), 303)
    raise Forbidden()
