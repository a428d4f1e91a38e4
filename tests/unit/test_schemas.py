"""Validation of incoming bodies, without a database."""

import marshmallow as ma
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.agencies.schemas import AgencyCreate, AgencyPatch
from service.errors import flatten_messages
from service.facilitators.schemas import FacilitatorCreate, WeeklyWindowSchema
from service.fields import RecordList
from service.incidents.schemas import IntakeHeaders, IncidentCreate, IncidentPatch, PersonnelCreate
from tests.factories import facilitator_body, incident_body, person


def errors_of(schema, body):
    with pytest.raises(ma.ValidationError) as info:
        schema.load(body)
    return flatten_messages(info.value.messages)


def test_valid_report_loads():
    data = IncidentCreate().load(incident_body())
    assert data["occurred_at"].utcoffset() is not None
    assert len(data["personnel"]) == 3


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"occurred_at": "2026-11-22T10:00:00"}, "occurred_at"),  # naive
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"severity": 0}, "severity"),
        ({"severity": 6}, "severity"),
        ({"severity": "3"}, "severity"),
        ({"severity": 3.5}, "severity"),
        ({"severity": True}, "severity"),
        ({"type": "fire"}, "type"),
        ({"region": ""}, "region"),
        ({"region": "north\x00"}, "region"),
        ({"region": " north"}, "region"),
        ({"external_id": "x" * 65}, "external_id"),
        ({"external_id": "has space"}, "external_id"),
        ({"personnel": []}, "personnel"),
        ({"personnel": "B1"}, "personnel"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_bad_top_level_fields_are_named(change, field):
    assert field in errors_of(IncidentCreate(), incident_body(**change))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"email": "not-an-email"}, "personnel.0.email"),
        ({"role": "sheriff"}, "personnel.0.role"),
        ({"exposure": "indirect"}, "personnel.0.exposure"),
        ({"language": "de"}, "personnel.0.language"),
        ({"phone": "call me"}, "personnel.0.phone"),
        ({"name": "A" * 201}, "personnel.0.name"),
        ({"name": "Line\nBreak"}, "personnel.0.name"),
        ({"nickname": "Al"}, "personnel.0.nickname"),
    ],
)
def test_bad_personnel_fields_are_named_with_their_index(change, field):
    body = incident_body(personnel=[person(1, **change)])
    assert field in errors_of(IncidentCreate(), body)


def test_personnel_listed_twice_is_refused():
    body = incident_body(personnel=[person(1), person(1)])
    assert "personnel.1.external_id" in errors_of(IncidentCreate(), body)


def test_more_than_500_personnel_is_refused():
    body = incident_body(personnel=[person(i) for i in range(501)])
    assert "personnel" in errors_of(IncidentCreate(), body)


def test_patch_needs_a_change_and_cancels_alone():
    assert "_schema" in errors_of(IncidentPatch(), {})
    assert "_schema" in errors_of(IncidentPatch(), {"status": "cancelled", "severity": 2})
    assert "status" in errors_of(IncidentPatch(), {"status": "planned"})
    assert IncidentPatch().load({"status": "cancelled"}) == {"status": "cancelled"}


def test_flatten_messages_builds_dotted_paths():
    nested = {"personnel": {0: {"email": ["bad"]}}, "severity": ["low"], "_schema": ["x"]}
    assert flatten_messages(nested) == {"personnel.0.email": ["bad"], "severity": ["low"], "_schema": ["x"]}


# -- every pattern matches the whole value; no control, format or separator character gets in ---------


@pytest.mark.parametrize(
    ("schema", "body", "field"),
    [
        (IncidentCreate(), incident_body(external_id="CAD-1\n"), "external_id"),
        (IncidentCreate(), incident_body(personnel=[person(1, phone="+1 416 555 0100\n")]), "personnel.0.phone"),
        (AgencyCreate(), {"code": "east\n", "name": "East", "timezone": "America/Halifax"}, "code"),
        (FacilitatorCreate(), facilitator_body(agency="north\n"), "agency"),
        (FacilitatorCreate(), facilitator_body(certifications=[{"name": "GCI\n", "expires_on": "2027-12-31"}]),
         "certifications.0.name"),
        (WeeklyWindowSchema(), {"day": "mon", "start": "08:00\n", "end": "18:00"}, "start"),
        (IntakeHeaders(), {"Idempotency-Key": "key-1\n"}, "Idempotency-Key"),
    ],
)
def test_a_trailing_newline_does_not_pass_a_pattern(schema, body, field):
    assert field in errors_of(schema, body)


@pytest.mark.parametrize("address", [
    '"a\u0001b"@example.org', '"a\u007fb"@example.org', '"a\u202eb"@example.org', "ab\u200b@example.org",
    "ops@exa\u2028mple.org", "ops@example.org\n",
])
def test_email_addresses_refuse_control_and_format_characters(address):
    assert "personnel.0.email" in errors_of(IncidentCreate(), incident_body(personnel=[person(1, email=address)]))
    assert "coordinator_email" in errors_of(AgencyPatch(), {"coordinator_email": address})
    assert "email" in errors_of(FacilitatorCreate(), facilitator_body(email=address))


@pytest.mark.parametrize("char", ["\u202e", "\u2066", "\u200b", "\ufeff", "\u00ad", "\u2028", "\u2029", "\u0085", "\u001b"])
def test_free_text_refuses_format_characters_and_separators(char):
    assert "personnel.0.name" in errors_of(IncidentCreate(), incident_body(personnel=[person(1, name=f"Ann{char}Lee")]))
    assert "region" in errors_of(IncidentCreate(), incident_body(region=f"north{char}east"))
    assert "personnel.0.unit" in errors_of(IncidentCreate(), incident_body(personnel=[person(1, unit=f"a{char}b")]))
    assert "name" in errors_of(AgencyPatch(), {"name": f"North{char}Police"})
    assert "regions.0" in errors_of(FacilitatorCreate(), facilitator_body(regions=[f"n{char}e"]))


def test_free_text_keeps_letters_of_every_script():
    names = ["Émilie Côté-Tremblay", "Łukasz Wójcik", "Nguyễn Thị Minh", "ᐊᓂᕐᓂᐊᖅ", "Σοφία", "李小龍", "O'Brien"]
    loaded = IncidentCreate().load(incident_body(personnel=[person(n, name=name) for n, name in enumerate(names)]))
    assert [p["name"] for p in loaded["personnel"]] == names


# -- an incident's personnel: loaded field by field when plainly valid, as the schema loads them ---------

class _SchemaLoaded(ma.Schema):
    personnel = ma.fields.List(ma.fields.Nested(PersonnelCreate), required=True)


class _RecordLoaded(ma.Schema):
    personnel = RecordList(ma.fields.Nested(PersonnelCreate), required=True)


def _outcome(schema, body):
    try:
        return "loaded", schema.load(body)
    except ma.ValidationError as error:
        return "refused", error.messages


_ODD = st.one_of(st.none(), st.integers(), st.booleans(), st.lists(st.integers(), max_size=1), st.text(max_size=8))
# Per field: values the schema accepts, then values it refuses.
_VALUES = {
    "external_id": (["B1", "x" * 64, "B-2.3:4/5#6"], ["x" * 65, "has space", " B1", "", "B1\n", "Bé"]),
    "name": (["Ann Lee", "A" * 200, "Zoë Łukasz", "李小龍"], ["A" * 201, "Line\nBreak", " Al", "Al ", "Ann\u202eLee", ""]),
    "email": (["a@example.org", "émilie@exemple.ca", "o'brien+cisd@north.example.org"],
              ['"q r"@example.org', "not-an-email", "ab\u200b@example.org", f"x@{'a' * 250}.org", "ops@example.org\n"]),
    "phone": ([None, "+1 416 555 0100", "416.555.0100", "12345"], ["call me", "1234", "(416) 555-0100", "+1 416 555 0100\n"]),
    "role": (["officer", "dispatcher"], ["sheriff", "Officer", None]),
    "unit": ([None, "patrol-3", "A" * 64], ["", "A" * 65, " u", "u\u2028v"]),
    "exposure": (["direct", "witness"], ["indirect", None]),
    "language": (["en", "fr"], ["de", "EN"]),
}


@st.composite
def _personnel(draw):
    """Up to 4 records with values the schema accepts, and at most one thing wrong: a value it refuses, a field
    missing or odd, a key too many, a record not a dict."""
    records = [{name: draw(st.sampled_from(accepted)) for name, (accepted, _) in _VALUES.items()}
               for _ in range(draw(st.integers(0, 4)))]
    if not records:
        return records
    at, name = draw(st.integers(0, len(records) - 1)), draw(st.sampled_from(sorted(_VALUES)))
    spoil = draw(st.sampled_from(("none", "refused", "missing", "odd", "key", "record")))
    if spoil == "refused":
        records[at][name] = draw(st.sampled_from(_VALUES[name][1]))
    elif spoil == "missing":
        del records[at][name]
    elif spoil == "odd":
        records[at][name] = draw(_ODD)
    elif spoil == "key":
        records[at]["nickname"] = "Al"
    elif spoil == "record":
        records[at] = draw(_ODD)
    return records


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(personnel=_personnel())
def test_personnel_load_as_the_schema_loads_them(personnel):
    assert _outcome(_RecordLoaded(), {"personnel": personnel}) == _outcome(_SchemaLoaded(), {"personnel": personnel})


def test_plainly_valid_personnel_skip_the_schema(monkeypatch):
    body = {"personnel": [person(1), person(2, phone=None, unit=None), {k: v for k, v in person(3).items() if k != "unit"}]}
    expected = _SchemaLoaded().load(body)
    monkeypatch.setattr(PersonnelCreate, "load", lambda *_a, **_k: pytest.fail("the schema loaded a plainly valid record"))
    assert _RecordLoaded().load(body) == expected


def test_a_record_schema_with_hooks_is_loaded_by_the_schema():
    class Hooked(ma.Schema):
        name = ma.fields.String(required=True)

        @ma.validates_schema
        def _not_bob(self, data, **_kwargs):
            if data["name"] == "Bob":
                raise ma.ValidationError("Not Bob.")

    class Listed(ma.Schema):
        people = RecordList(ma.fields.Nested(Hooked))

    assert errors_of(Listed(), {"people": [{"name": "Ann"}, {"name": "Bob"}]}) == {"people.1._schema": ["Not Bob."]}
    assert Listed().load({"people": [{"name": "Ann"}]}) == {"people": [{"name": "Ann"}]}
