"""The coordinators' forms of an incident (Flask-WTF): moving a session, adding a person."""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from wtforms import EmailField, RadioField, SelectField, StringField
from wtforms.validators import InputRequired, Length, Optional, Regexp, ValidationError

from service.accounts.forms import ConsoleForm, email_address, one_of_the_choices
from service.fields import _IDENTIFIER as IDENTIFIER
from service.vocabulary import EXPOSURES, LANGUAGES, ROLES

PERSON_ROLES = {
    "officer": _l("Police officer"), "dispatcher": _l("Dispatcher"), "supervisor": _l("Supervisor"),
    "command": _l("Command staff"), "firefighter": _l("Firefighter"), "paramedic": _l("Paramedic"),
    "civilian_staff": _l("Civilian staff"),
}
PERSON_EXPOSURES = {"direct": _l("Directly involved"), "witness": _l("Witness"), "support": _l("In support")}
PERSON_LANGUAGES = {"fr": "Français", "en": "English"}
assert set(PERSON_ROLES) == set(ROLES) and set(PERSON_EXPOSURES) == set(EXPOSURES) and set(PERSON_LANGUAGES) == set(LANGUAGES)


def _stripped(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


class RescheduleForm(ConsoleForm):
    """A new start among those offered (ISO 8601 values)."""

    starts_at = RadioField(_l("New time"), validate_choice=False,
                           validators=[InputRequired(message=_l("Choose one of the times."))])

    def set_choices(self, starts: list[datetime]) -> None:
        """The offered starts."""
        self.starts_at.choices = [(start.isoformat(), start.isoformat()) for start in starts]

    def validate_starts_at(self, field: RadioField) -> None:
        """One of the times offered."""
        if field.data not in {value for value, _label in field.choices}:
            raise ValidationError(_l("That time can no longer be offered. Choose one of the times."))

    def chosen(self) -> datetime:
        """The start chosen (once valid)."""
        return datetime.fromisoformat(self.starts_at.data)


def _select(label, message) -> SelectField:
    return SelectField(label, validate_choice=False, validators=[InputRequired(message=message), one_of_the_choices])


class PersonnelForm(ConsoleForm):
    """A person to add to the incident: they get the invitation and follow-ups like the others."""

    external_id = StringField(_l("Badge or employee number"), filters=[_stripped], validators=[
        InputRequired(message=_l("Enter the person’s badge or employee number.")),
        Length(max=64, message=_l("At most 64 characters.")),
        Regexp(IDENTIFIER, message=_l("Use letters, digits and punctuation, without spaces.")),
    ])
    name = StringField(_l("Name"), filters=[_stripped], validators=[
        InputRequired(message=_l("Enter the person’s name.")), Length(max=200, message=_l("At most 200 characters.")),
    ])
    email = EmailField(_l("Email address"), filters=[_stripped], validators=[
        InputRequired(message=_l("Enter an email address.")),
        Length(max=254, message=_l("An email address has at most 254 characters.")),
        email_address,
    ])
    role = _select(_l("Role"), _l("Choose a role."))
    exposure = _select(_l("Exposure"), _l("Choose how the person was exposed."))
    language = _select(_l("Language"), _l("Choose a language."))
    unit = StringField(_l("Unit (optional)"), filters=[_stripped], validators=[
        Optional(), Length(max=64, message=_l("At most 64 characters.")),
    ])

    def set_choices(self) -> None:
        """The vocabulary, in words."""
        blank = [("", str(_l("Choose…")))]
        self.role.choices = blank + [(k, str(v)) for k, v in PERSON_ROLES.items()]
        self.exposure.choices = blank + [(k, str(v)) for k, v in PERSON_EXPOSURES.items()]
        self.language.choices = blank + list(PERSON_LANGUAGES.items())

    def person(self) -> dict[str, object]:
        """The person as `PATCH /v1/incidents/{id}` takes them in `add_personnel`."""
        return {"external_id": self.external_id.data, "name": self.name.data, "email": self.email.data,
                "role": self.role.data, "exposure": self.exposure.data, "language": self.language.data,
                "unit": self.unit.data or None, "phone": None}
