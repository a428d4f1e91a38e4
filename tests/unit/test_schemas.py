"""Validation of incoming bodies, without a database."""

import marshmallow as ma
import pytest

from service.errors import flatten_messages
from service.incidents.schemas import IncidentCreate, IncidentPatch
from tests.factories import incident_body, person


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
