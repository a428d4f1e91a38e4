"""The console's own pages: sign-in and sign-out, the home page, a facilitator's sessions, and accounts (admins)."""

from __future__ import annotations

from datetime import timedelta

from flask import flash, redirect, request, session, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.wrappers import Response

from service.accounts import service as accounts
from service.accounts.forms import AccountCreateForm, AccountScopeForm, SigninForm, role_choices
from service.accounts.models import FACILITATOR
from service.agencies.models import Agency
from service.console import (
    SESSION_COOKIE, clear_session_cookie, console_blueprint, console_nav, form_page, local_path, person, save_form,
    set_session_cookie, signed_in,
)
from service.errors import InvalidInput
from service.facilitators import links
from service.followups.outgoing import context
from service.incidents.pages import SESSION_KINDS
from service.ui import current_language, render
from service.web import db_session, now, services

signin_blp = console_blueprint("signin", __name__)
console_blp = console_blueprint("console", __name__)
blp = console_blueprint("accounts", __name__, url_prefix="/accounts")


# A signed-in facilitator's link to their own page lasts as long as an idle console session.
SIGNED_IN_LINK = timedelta(hours=8)


def facilitator_landing(who: accounts.Person) -> str:
    """Where a facilitator lands once signed in: their own page, through a fresh signed link."""
    db, moment = db_session(), now()
    assert who.facilitator_id is not None
    token = links.sign(context(db).keys, facilitator_id=who.facilitator_id,
                       expires_at=moment + SIGNED_IN_LINK)
    return links.own_path(token)


def landing(who: accounts.Person) -> str:
    """The first page of a signed-in person."""
    return facilitator_landing(who) if who.role == FACILITATOR else url_for("console.home")


# -- sign-in and sign-out -------------------------------------------------------------------------------


@signin_blp.route("/signin", methods=["GET", "POST"])
def form() -> Response:
    """Ask for a one-time sign-in link by email; the answer is the same whether the address has an account."""
    form = SigninForm()
    if request.method == "GET":
        who = person()
        if who is not None:
            return redirect(landing(who), 303)
        form.next.data = local_path(request.args.get("next"))
        return render("accounts/signin.html", form=form, signed_out="signed_out" in request.args)
    if not form.validate():
        return render("accounts/signin.html", form=form, status=422)
    accounts.request_link(db_session(), email=form.email.data, next_path=local_path(form.next.data),
                          lang=current_language(), now=now(), base_url=services().config.public_base_url)
    return render("accounts/link_sent.html", email=form.email.data)


@signin_blp.route("/signin/<token>", methods=["GET", "POST"])
def link(token: str) -> Response:
    """The page of an emailed link: a button that signs in (a GET changes nothing, for mail scanners)."""
    try:
        if request.method == "GET":
            accounts.check_link(db_session(), token=token, now=now())
            return render("accounts/link.html", token=token)
        signin = accounts.redeem_link(db_session(), token=token, now=now(), previous_session=request.cookies.get(SESSION_COOKIE))
    except accounts.LinkUnusable:
        return render("accounts/link_unusable.html", form=SigninForm(formdata=None), status=410)
    # A new CSRF token for the new session, as well as a new session id.
    session.pop("csrf_token", None)
    response = redirect(local_path(signin.next_path) or landing(signin.person), 303)
    set_session_cookie(response, signin.session_id)
    return response


@signin_blp.post("/signout")
def signout() -> Response:
    """End the session: its row is deleted and the cookie removed."""
    accounts.sign_out(db_session(), session_id=request.cookies.get(SESSION_COOKIE, ""), person=signed_in(), now=now())
    language = session.get("lang")
    session.clear()
    if language:
        session["lang"] = language
    response = redirect(url_for("signin.form", signed_out=1), 303)
    clear_session_cookie(response)
    return response


# -- the console's home and a facilitator's sessions ------------------------------------------------------------


@console_blp.get("/")
def home() -> Response:
    """The console's first page: what the signed-in person can do here."""
    who = signed_in()
    if who.role == FACILITATOR:
        return redirect(facilitator_landing(who), 303)
    return render("accounts/home.html", items=console_nav())


@console_blp.get("/my-sessions")
def my_sessions() -> Response:
    """A facilitator's upcoming sessions: kind, time and place, never who attends."""
    who = signed_in()
    assert who.facilitator_id is not None
    return render("accounts/my_sessions.html", kinds=SESSION_KINDS,
                  sessions=accounts.upcoming_sessions(db_session(), facilitator_id=who.facilitator_id, now=now()))


# -- accounts (admins) ------------------------------------------------------------------------------------------


def _agency_choices() -> list[tuple[str, str]]:
    return [(code, name) for code, name in db_session().execute(select(Agency.code, Agency.name).order_by(Agency.name))]


@blp.get("")
def index() -> Response:
    """Every account, with its role, agency and state."""
    return render("accounts/list.html", accounts=accounts.list_accounts(db_session()), roles=dict(role_choices()),
                  zone=services().config.default_timezone)


@blp.route("/new", methods=["GET", "POST"])
def create() -> Response:
    """Create an account: address, role and agency."""
    form = AccountCreateForm()
    form.set_choices(_agency_choices())
    account = save_form(form, lambda: accounts.create_account(
        db_session(), email=form.email.data, role=form.role.data, agency_code=form.agency.data or None, now=now(),
        actor=signed_in()), conflict=(form.email, _("There is already an account with this email address.")))
    if account is None:
        return form_page("accounts/create.html", form)
    flash(_("The account of %(email)s was created. They can sign in now.", email=account.email))
    return redirect(url_for("accounts.index"), 303)


@blp.route("/<int:account_id>", methods=["GET", "POST"])
def edit(account_id: int) -> Response:
    """One account: change its role and agency; disable or enable it."""
    account = accounts.get_account(db_session(), account_id=account_id)
    form = AccountScopeForm(data={"role": account.role, "agency": account.agency.code if account.agency else ""})
    form.set_choices(_agency_choices())
    if request.method == "POST" and form.validate():
        try:
            accounts.change_account(db_session(), account_id=account.id, role=form.role.data,
                                    agency_code=form.agency.data or None, actor=signed_in(), now=now())
        except InvalidInput:
            form.role.errors.append(_("You cannot change your own role."))
        else:
            flash(_("The account of %(email)s was changed.", email=account.email))
            return redirect(url_for("accounts.index"), 303)
    return form_page("accounts/edit.html", form, account=account, own=account.id == signed_in().account_id)


@blp.post("/<int:account_id>/access")
def disable(account_id: int) -> Response:
    """Disable an account (it is signed out everywhere at once) or enable it again."""
    disabled = request.form.get("access") != "enable"
    try:
        account = accounts.set_disabled(db_session(), account_id=account_id, disabled=disabled, actor=signed_in(), now=now())
    except InvalidInput:
        flash(_("You cannot disable your own account."), "error")
        return redirect(url_for("accounts.edit", account_id=account_id), 303)
    if disabled:
        flash(_("The account of %(email)s is disabled: it was signed out everywhere.", email=account.email))
    else:
        flash(_("The account of %(email)s is enabled again.", email=account.email))
    return redirect(url_for("accounts.index"), 303)
