"""The console's forms of sign-in and accounts (Flask-WTF), validated on the server."""

from __future__ import annotations

from typing import Sequence

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, SelectField
from wtforms.validators import InputRequired, Length, ValidationError

from service.accounts import service as accounts
from service.accounts.models import ADMIN, COORDINATOR, SUPERVISOR


class ConsoleForm(FlaskForm):
    """A console form. Its CSRF token is checked before the page runs, for every POST of the console
    (CSRFProtect, see service.console), so the form itself does not check it again."""

    class Meta:
        csrf = False


def email_address(_form: FlaskForm, field: EmailField) -> None:
    """An email address, as accounts keep it."""
    if field.data and not accounts.is_email(accounts.normalize_email(field.data)):
        raise ValidationError(_l("Enter an email address in the form name@example.org."))


def _email_field(label) -> EmailField:
    return EmailField(label, filters=[lambda value: value.strip() if isinstance(value, str) else value], validators=[
        InputRequired(message=_l("Enter an email address.")),
        Length(max=254, message=_l("An email address has at most 254 characters.")),
        email_address,
    ])


class SigninForm(ConsoleForm):
    """Ask for a sign-in link."""

    email = _email_field(_l("Email address"))
    next = HiddenField()


def role_choices() -> list[tuple[str, str]]:
    """The roles an account may have, in words."""
    return [(COORDINATOR, str(_l("Coordinator (CISM team)"))), (SUPERVISOR, str(_l("Supervisor"))),
            (ADMIN, str(_l("Administrator")))]


def one_of_the_choices(_form: FlaskForm, field: SelectField) -> None:
    """A choice among those offered (said in the catalogs' words, not WTForms' own)."""
    if field.data and field.data not in {value for value, _label in field.choices}:
        raise ValidationError(_l("Choose one of the options."))


def _role_field() -> SelectField:
    return SelectField(_l("Role"), validate_choice=False,
                       validators=[InputRequired(message=_l("Choose a role.")), one_of_the_choices])


def _agency_field() -> SelectField:
    return SelectField(_l("Agency"), validate_choice=False, validators=[one_of_the_choices])


class AccountScopeForm(ConsoleForm):
    """A role and, except for administrators, an agency."""

    role = _role_field()
    agency = _agency_field()

    def set_choices(self, agencies: Sequence[tuple[str, str]]) -> None:
        """The roles, and the agencies to choose from as (code, name)."""
        self.role.choices = role_choices()
        self.agency.choices = [("", str(_l("None (administrators)")))] + [(code, name) for code, name in agencies]

    def validate_agency(self, field: SelectField) -> None:
        """Coordinators and supervisors belong to one agency; administrators to none."""
        if self.role.data == ADMIN and field.data:
            raise ValidationError(_l("An administrator has no agency: choose \u201cNone\u201d."))
        if self.role.data in (COORDINATOR, SUPERVISOR) and not field.data:
            raise ValidationError(_l("Choose the agency this person works for."))


class AccountCreateForm(AccountScopeForm):
    """A new account: the address first."""

    email = _email_field(_l("Email address"))
    role = _role_field()
    agency = _agency_field()
