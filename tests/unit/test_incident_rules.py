"""Pure rules of the incident intake: window, fingerprint, cursor."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from service.errors import InvalidInput
from service.incidents.schemas import IncidentCreate
from service.incidents.service import debriefing_window, fingerprint
from service.pagination import decode_cursor, encode_cursor, row_id
from tests.factories import incident_body

TORONTO = ZoneInfo("America/Toronto")


def test_window_is_24_to_72_elapsed_hours():
    occurred = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
    window = debriefing_window(occurred)
    assert window.opens_at - occurred == timedelta(hours=24)
    assert window.closes_at - occurred == timedelta(hours=72)


def test_window_across_fall_back_keeps_elapsed_hours_and_shifts_wall_clock():
    # 2026-11-01 02:00 EDT -> 01:00 EST in Toronto.
    occurred = datetime(2026, 10, 31, 9, 0, tzinfo=TORONTO)  # EDT, -04:00
    window = debriefing_window(occurred)
    closes_local = window.closes_at.astimezone(TORONTO)
    assert closes_local.utcoffset() == timedelta(hours=-5)
    assert closes_local.hour == 8  # 72 elapsed hours later, one wall-clock hour earlier
    assert window.closes_at - occurred == timedelta(hours=72)


def test_window_across_spring_forward():
    occurred = datetime(2026, 3, 7, 9, 0, tzinfo=TORONTO)  # EST, the day before the change
    opens_local = debriefing_window(occurred).opens_at.astimezone(TORONTO)
    assert opens_local.utcoffset() == timedelta(hours=-4)
    assert opens_local.hour == 10


def _loaded(body):
    return IncidentCreate().load(body)


def test_fingerprint_ignores_offset_spelling_and_personnel_order():
    body = incident_body()
    other = incident_body()
    other["occurred_at"] = datetime.fromisoformat(body["occurred_at"]).astimezone(timezone.utc).isoformat()
    other["personnel"] = list(reversed(other["personnel"]))
    assert fingerprint(_loaded(body)) == fingerprint(_loaded(other))


def test_fingerprint_changes_with_content():
    assert fingerprint(_loaded(incident_body())) != fingerprint(_loaded(incident_body(severity=4)))
    assert fingerprint(_loaded(incident_body())) != fingerprint(_loaded(incident_body(people=2)))


def test_cursor_round_trips():
    import uuid

    ident = uuid.uuid4()
    when = datetime(2026, 11, 22, 15, 0, 0, 123456, tzinfo=timezone.utc)
    assert decode_cursor(encode_cursor(when, ident), uuid.UUID) == (when, ident)
    assert decode_cursor(encode_cursor(when, 42), row_id) == (when, 42)


@pytest.mark.parametrize("cursor", ["", "###", "e30", "bm90IGpzb24", "WyIyMDI2LTExLTIyVDE1OjAwOjAwIiwgIngiXQ", "W10", "WzEsIDJd"])
def test_malformed_cursor_is_invalid_input(cursor):
    import uuid

    with pytest.raises(InvalidInput):
        decode_cursor(cursor, uuid.UUID)


@pytest.mark.parametrize("ident", ["\u00b2", "-1", "2147483648", "1.5", ""])
def test_cursor_row_ids_are_small_ascii_integers(ident):
    with pytest.raises(InvalidInput):
        decode_cursor(encode_cursor(datetime(2026, 1, 1, tzinfo=timezone.utc), ident), row_id)


def test_cursor_dates_outside_the_service_range_are_invalid():
    import base64
    import json

    raw = base64.urlsafe_b64encode(json.dumps(["0001-01-01T00:00:00+05:00", "1"]).encode()).decode()
    with pytest.raises(InvalidInput):
        decode_cursor(raw, row_id)
