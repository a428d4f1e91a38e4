"""Facilitator calendar feeds over the API: contents, changes, tokens, caching and confidentiality."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select, update

from service.calendars import service as calendars
from service.calendars.models import FeedEvent
from service.calendars.render import AgendaPhase, CalendarEntry, render_feed
from service.facilitators.models import Facilitator
from service.sessions.models import Assignment, Session
from tests.factories import NOW, facilitator_body, incident_body, person, report_planned
from tests.integration.planning_helpers import facilitator_key
from tests.unit.test_ics_parsers import ics_parsers  # noqa: F401

UTC = timezone.utc
NNBSP = "\u202f"  # CLDR en_CA: "8:00\u202fa.m."


@dataclass(frozen=True)
class Member:
    """A facilitator of the test roster and the path of their feed."""

    id: int
    kind: str
    feed: str


def roster(client, keys, *, clinicians: int = 2, peers: int = 4, **overrides) -> list[Member]:
    """Post facilitators (clinicians first); keep the feed path each creation answer carries."""
    members = []
    for n in range(1, clinicians + peers + 1):
        kind = "clinician" if n <= clinicians else "peer"
        response = client.post("/v1/facilitators", json=facilitator_body(n, kind=kind, **overrides), headers=keys.auth("coordinator"))
        assert response.status_code == 201, response.get_json()
        body = response.get_json()
        members.append(Member(body["id"], kind, urlsplit(body["calendar_url"]["https"]).path))
    return members


def report(client, keys, **overrides) -> dict:
    return report_planned(client, incident_body(**overrides), keys.auth("dispatch"))


def team(session: dict, members: list[Member]) -> list[Member]:
    ids = {f["id"] for f in session["facilitators"]}
    return [m for m in members if m.id in ids]


def fetch(client, member: Member, **headers):
    response = client.get(member.feed, headers=headers)
    assert response.status_code in (200, 304), response.get_data(as_text=True)
    return response


def events(ics_parsers, client, member: Member) -> list[dict]:
    """The member's feed as all three parsers read it."""
    return ics_parsers.everywhere(fetch(client, member).get_data())["events"]


def http_date(response) -> datetime:
    """Last-Modified (at least the latest change shown; the facilitator's own row counts too)."""
    return parsedate_to_datetime(response.headers["Last-Modified"])


def english_clock(hh_mm: str) -> str:
    """A 24-hour "08:00" as the English feed writes it (CLDR en_CA): "8:00 a.m."."""
    hour, minute = (int(part) for part in hh_mm.split(":"))
    return f"{hour % 12 or 12}:{minute:02d}{NNBSP}{'a.m.' if hour < 12 else 'p.m.'}"


def utc(text: str) -> str:
    return datetime.fromisoformat(text).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_creation_answer_carries_the_feed_url_once(app, client, keys):
    response = client.post("/v1/facilitators", json=facilitator_body(1), headers=keys.auth("coordinator"))
    created = response.get_json()
    https, webcal = created["calendar_url"]["https"], created["calendar_url"]["webcal"]
    base = urlsplit(app.extensions["debrief"].config.public_base_url)
    assert urlsplit(https).scheme == base.scheme and urlsplit(https).netloc == base.netloc
    assert webcal == "webcal" + https[https.index(":"):]
    token = urlsplit(https).path.removeprefix("/v1/calendars/").removesuffix(".ics")
    assert len(token) >= 43  # secrets.token_urlsafe(32): 256 random bits
    read = client.get(f"/v1/facilitators/{created['id']}", headers=keys.auth("coordinator")).get_json()
    assert "calendar_url" not in read
    with app.extensions["debrief"].session_factory() as db:
        stored = db.scalar(select(Facilitator.calendar_token_hash).where(Facilitator.id == created["id"]))
    assert stored == hashlib.sha256(token.encode()).hexdigest() and token not in stored


def test_a_new_facilitator_has_a_valid_empty_feed(client, keys, ics_parsers):
    [member] = roster(client, keys, clinicians=0, peers=1)
    response = fetch(client, member)
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    parsed = ics_parsers.everywhere(response.get_data())
    assert parsed["events"] == [] and parsed["method"] == "PUBLISH" and parsed["name"] == "Debrief sessions – Facilitator 1"


def test_feed_shows_the_planned_debriefing_to_its_team_only(client, keys, ics_parsers):
    members = roster(client, keys)
    session = report(client, keys)["sessions"][0]
    on_team = team(session, members)
    assert len(on_team) == 2
    for member in on_team:
        response = fetch(client, member)
        assert response.headers["Cache-Control"] == "private, no-cache"
        document = response.get_data()
        assert b"\r\nMETHOD:PUBLISH\r\n" in document and b"\r\nX-PUBLISHED-TTL:PT1H\r\n" in document
        assert b"ATTENDEE" not in document
        [event] = ics_parsers.everywhere(document)["events"]
        assert event["uid"] == f"{session['id']}-{member.id}@debrief"
        assert (event["start"], event["end"]) == (utc(session["starts_at"]), utc(session["ends_at"]))
        assert event["status"] == "CONFIRMED" and event["sequence"] == 0 == session["sequence"]
        assert event["summary"] == "Group debriefing (CISD)" and event["location"] == "north-east"
        assert f"8:00{NNBSP}a.m. Introduction (15 min)\n8:15{NNBSP}a.m. Facts (20 min)" in event["description"]
        assert event["stamp"] == "2026-11-22T15:00:00Z"
    for member in members:
        if member not in on_team:
            assert ics_parsers.everywhere(fetch(client, member).get_data())["events"] == []


@pytest.mark.parametrize(
    ("now", "before", "after"),
    [
        # Toronto springs forward on 2026-03-08 and falls back on 2026-11-01.
        (datetime(2026, 3, 6, 15, tzinfo=UTC), "2026-03-07T08:00:00-05:00", "2026-03-08T08:00:00-04:00"),
        (datetime(2026, 10, 30, 15, tzinfo=UTC), "2026-10-31T09:00:00-04:00", "2026-11-01T08:00:00-05:00"),
    ],
)
def test_times_round_trip_across_dst_changes(client, keys, clock, ics_parsers, now, before, after):
    clock.now = now
    members = roster(client, keys, clinicians=1, peers=1)
    occurred = (now - timedelta(hours=2)).isoformat()
    first = report(client, keys, external_id="CAD-1", occurred_at=occurred)["sessions"][0]
    second = report(client, keys, external_id="CAD-2", occurred_at=occurred)["sessions"][0]
    # The same two facilitators, one group session a day: the second lands on the other side of the change.
    assert (first["starts_at"], second["starts_at"]) == (before, after)
    for member in members:
        read = events(ics_parsers, client, member)
        assert [(e["start"], e["end"]) for e in read] == [
            (utc(s["starts_at"]), utc(s["ends_at"])) for s in (first, second)]
        for event, session in zip(read, (first, second)):
            local = english_clock(session["starts_at"][11:16])
            assert f"Local time (America/Toronto): {local} to " in event["description"]
            assert f"\n{local} Introduction (15 min)\n" in event["description"]


def test_the_served_feed_is_the_pure_rendering_of_the_sessions(app, client, keys, clock):
    members = roster(client, keys, clinicians=3, peers=6)
    people = [person(1), person(2, exposure="witness"), person(3, role="supervisor")]
    incident = report(client, keys, severity=4, personnel=people)
    planned = {s["id"]: team(s, members) for s in incident["sessions"]}
    busiest = max(members, key=lambda m: sum(m in t for t in planned.values()))
    mine = [sid for sid, t in planned.items() if busiest in t]
    assert len(mine) >= 2
    clock.advance(minutes=20)
    client.post(f"/v1/sessions/{mine[-1]}/cancel", headers=keys.auth("coordinator"))
    sessions = [client.get(f"/v1/sessions/{sid}", headers=keys.auth("coordinator")).get_json() for sid in mine]
    entries = sorted(
        (CalendarEntry(
            session_id=uuid.UUID(s["id"]), facilitator_id=busiest.id, kind=s["kind"],
            state="cancelled" if s["status"] == "cancelled" else "confirmed",
            starts_at=datetime.fromisoformat(s["starts_at"]).astimezone(UTC),
            ends_at=datetime.fromisoformat(s["ends_at"]).astimezone(UTC),
            mode=s["location"]["mode"], region=s["location"]["region"], sequence=s["sequence"],
            agenda=tuple(AgendaPhase(a["phase"], datetime.fromisoformat(a["starts_at"]).astimezone(UTC), a["minutes"])
                         for a in s["agenda"]),
            timezone="America/Toronto", modified_at=clock.now if s["status"] == "cancelled" else NOW,
        ) for s in sessions),
        key=lambda e: (e.starts_at, e.session_id),
    )
    assert [e.state for e in entries].count("cancelled") == 1
    name = client.get(f"/v1/facilitators/{busiest.id}", headers=keys.auth("coordinator")).get_json()["name"]
    expected = render_feed(facilitator_name=name, languages=["en"], entries=entries,
                           organizer=calendars.organizer_for(app.extensions["debrief"].config.mail_from))
    assert fetch(client, busiest).get_data() == expected
    calendars._BLOCKS.clear()
    assert fetch(client, busiest).get_data() == expected


def test_french_facilitators_read_french(client, keys, ics_parsers):
    members = roster(client, keys, languages=["fr", "en"])
    session = report(client, keys)["sessions"][0]
    [event] = events(ics_parsers, client, team(session, members)[0])
    assert event["summary"] == "Débriefing de groupe (CISD)"
    assert "Déroulement\u00a0:\n8\u00a0h Introduction (15\u00a0min)\n8\u00a0h\u00a015 Faits (20\u00a0min)" in event["description"]
    assert event["description"].endswith(f"Référence\u00a0: {session['id']}")


def test_reschedule_raises_the_sequence_and_moves_the_event(client, keys, clock, ics_parsers):
    members = roster(client, keys)
    session = report(client, keys)["sessions"][0]
    member = team(session, members)[0]
    before = fetch(client, member)
    clock.advance(hours=1)
    moved = client.post(f"/v1/sessions/{session['id']}/reschedule", json={"starts_at": "2026-11-24T13:30:00-05:00"},
                        headers=keys.auth("coordinator")).get_json()
    after = fetch(client, member, **{"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and after.headers["ETag"] != before.headers["ETag"]
    [event] = ics_parsers.everywhere(after.get_data())["events"]
    assert event["sequence"] == moved["sequence"] == 1
    assert (event["start"], event["end"]) == ("2026-11-24T18:30:00Z", "2026-11-24T21:00:00Z")
    assert event["stamp"] == "2026-11-22T16:00:00Z" and f"1:30{NNBSP}p.m. Introduction" in event["description"]
    assert http_date(after) >= max(http_date(before), datetime(2026, 11, 22, 16, tzinfo=UTC))


def test_decline_cancels_the_event_for_the_decliner_and_adds_it_for_the_replacement(app, client, keys, clock, ics_parsers):
    members = roster(client, keys)
    session = report(client, keys)["sessions"][0]
    peer = next(m for m in team(session, members) if m.kind == "peer")
    clinician = next(m for m in team(session, members) if m.kind == "clinician")
    clock.advance(minutes=30)
    response = client.post(f"/v1/sessions/{session['id']}/decline", headers=facilitator_key(app, peer.id))
    after = response.get_json()
    replacement = next(m for m in team(after, members) if m.kind == "peer")
    assert replacement != peer

    [gone] = events(ics_parsers, client, peer)
    assert gone["status"] == "CANCELLED" and gone["sequence"] == 1 > session["sequence"]
    assert gone["summary"] == "Cancelled: Group debriefing (CISD)"
    assert gone["description"].startswith("This session is no longer assigned to you.")
    assert (gone["start"], gone["end"]) == (utc(session["starts_at"]), utc(session["ends_at"]))
    assert gone["stamp"] == "2026-11-22T15:30:00Z"
    [added] = events(ics_parsers, client, replacement)
    assert added["status"] == "CONFIRMED" and added["sequence"] == 1 and added["uid"] == f"{session['id']}-{replacement.id}@debrief"
    [kept] = events(ics_parsers, client, clinician)
    assert kept["status"] == "CONFIRMED" and kept["sequence"] == 1

    # Moving the session later moves it for the team; the decliner keeps the times they were given.
    moved = client.post(f"/v1/sessions/{session['id']}/reschedule", json={"starts_at": "2026-11-24T13:30:00-05:00"},
                        headers=keys.auth("coordinator")).get_json()
    assert moved["sequence"] == 2
    [still_gone] = events(ics_parsers, client, peer)
    assert (still_gone["start"], still_gone["status"]) == (gone["start"], "CANCELLED") and still_gone["sequence"] == 2
    [added] = events(ics_parsers, client, replacement)
    assert (added["start"], added["sequence"]) == ("2026-11-24T18:30:00Z", 2)

    # A released session stays 14 days after the release, then drops out.
    clock.advance(days=14, seconds=-1)
    assert len(events(ics_parsers, client, peer)) == 1
    clock.advance(seconds=2)
    assert events(ics_parsers, client, peer) == []
    assert len(events(ics_parsers, client, replacement)) == 1


def test_an_active_assignment_wins_over_an_earlier_release_of_the_same_session(app, client, keys, clock, ics_parsers):
    members = roster(client, keys)
    session = report(client, keys)["sessions"][0]
    peer = next(m for m in team(session, members) if m.kind == "peer")
    client.post(f"/v1/sessions/{session['id']}/decline", headers=facilitator_key(app, peer.id))
    [released] = events(ics_parsers, client, peer)
    assert released["status"] == "CANCELLED"
    # A later re-plan can bring the same facilitator back: a second, active assignment row.
    clock.advance(hours=1)
    with app.extensions["debrief"].session_factory() as db:
        row = db.get(Session, uuid.UUID(session["id"]))
        for assignment in row.assignments:
            if assignment.active and assignment.facilitator.kind == "peer":
                assignment.active, assignment.released_at, assignment.release_reason = False, clock.now, "replanned"
        row.assignments.append(Assignment(facilitator_id=peer.id, active=True, group_session=True,
                                          starts_at=row.starts_at, ends_at=row.ends_at))
        row.sequence += 1
        row.updated_at = clock.now
        db.commit()
    [back] = events(ics_parsers, client, peer)
    assert back["status"] == "CONFIRMED" and back["sequence"] == 2 and back["uid"] == released["uid"]


def test_a_cancelled_session_stays_14_days_as_cancelled(client, keys, clock, ics_parsers):
    members = roster(client, keys)
    session = report(client, keys)["sessions"][0]
    clock.advance(hours=2)
    cancelled = client.post(f"/v1/sessions/{session['id']}/cancel", headers=keys.auth("coordinator")).get_json()
    for member in team(session, members):
        [event] = events(ics_parsers, client, member)
        assert event["status"] == "CANCELLED" and event["sequence"] == cancelled["sequence"] == 1
        assert event["description"].startswith("Cancelled: this session will not take place.")
        assert event["stamp"] == "2026-11-22T17:00:00Z"
    clock.advance(days=13, hours=23)
    assert all(len(events(ics_parsers, client, m)) == 1 for m in team(session, members))
    etag = fetch(client, team(session, members)[0]).headers["ETag"]
    clock.advance(hours=1, seconds=1)
    assert all(events(ics_parsers, client, m) == [] for m in team(session, members))
    # Dropping out changes the bytes, so it changes the ETag.
    assert fetch(client, team(session, members)[0], **{"If-None-Match": etag}).status_code == 200


def test_sessions_leave_the_feed_30_days_after_they_end(client, keys, clock, ics_parsers):
    members = roster(client, keys)
    session = report(client, keys)["sessions"][0]
    member = team(session, members)[0]
    ends_at = datetime.fromisoformat(session["ends_at"])
    clock.now = ends_at + timedelta(days=30)
    assert [e["status"] for e in events(ics_parsers, client, member)] == ["CONFIRMED"]
    clock.advance(seconds=1)
    assert events(ics_parsers, client, member) == []


def test_rotating_the_token_ends_the_old_url(app, client, keys, ics_parsers):
    members = roster(client, keys, clinicians=1, peers=1)
    me, other = members
    url = f"/v1/facilitators/{me.id}/calendar-token"
    rotated = client.post(url, headers=facilitator_key(app, me.id))
    assert rotated.status_code == 200
    body = rotated.get_json()
    assert body["facilitator_id"] == me.id and set(body["calendar_url"]) == {"https", "webcal"}
    new = Member(me.id, me.kind, urlsplit(body["calendar_url"]["https"]).path)
    assert new.feed != me.feed
    gone = client.get(me.feed)
    assert gone.status_code == 404 and gone.content_type == "application/problem+json"
    assert gone.get_json()["status"] == 404
    assert ics_parsers.everywhere(fetch(client, new).get_data())["events"] == []
    # Who may rotate: the coordinator of the facilitator's agency, an admin, the facilitator itself.
    assert client.post(url, headers=keys.auth("coordinator")).status_code == 200
    assert client.post(url, headers=keys.auth("admin")).status_code == 200
    assert client.get(new.feed).status_code == 404
    assert client.post(url, headers=facilitator_key(app, other.id)).status_code == 404
    assert client.post(url, headers=keys.auth("other_coordinator")).status_code == 404
    assert client.post(url, headers=keys.auth("dispatch")).status_code == 403
    assert client.post(url).status_code == 401
    assert client.post("/v1/facilitators/999999/calendar-token", headers=keys.auth("admin")).status_code == 404


@pytest.mark.parametrize("path", ["/v1/calendars/not-a-token.ics", "/v1/calendars/" + "A" * 43 + ".ics", "/v1/calendars/%00.ics"])
def test_unknown_tokens_are_404_problems(client, keys, path):
    response = client.get(path)
    assert response.status_code == 404 and response.content_type == "application/problem+json"
    assert response.get_json()["detail"] == "No calendar at this address."


def test_etag_answers_304_without_rendering(client, keys, clock, ics_parsers, monkeypatch):
    members = roster(client, keys)
    session = report(client, keys)["sessions"][0]
    member = team(session, members)[0]
    first = fetch(client, member)
    etag = first.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")  # strong
    assert http_date(first) >= datetime(2026, 11, 22, 15, tzinfo=UTC)
    assert fetch(client, member).get_data() == first.get_data()  # the same bytes for the same data

    def no_rendering(*_args, **_kwargs):
        raise AssertionError("a 304 must not render")

    monkeypatch.setattr(calendars, "event_block", no_rendering)
    monkeypatch.setattr(calendars, "feed_from_blocks", no_rendering)
    for sent in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        cached = fetch(client, member, **{"If-None-Match": sent})
        assert cached.status_code == 304 and cached.get_data() == b"" and cached.headers["ETag"] == etag
    monkeypatch.undo()

    assert fetch(client, member, **{"If-None-Match": '"other"'}).status_code == 200
    assert client.head(member.feed).status_code == 200
    # Time passing changes nothing until a session leaves the window.
    clock.advance(hours=1)
    calendars._BLOCKS.clear()  # and the process cache of rendered events changes no byte
    again = fetch(client, member, **{"If-None-Match": etag})
    assert again.status_code == 304
    assert fetch(client, member).get_data() == first.get_data()
    client.patch(f"/v1/facilitators/{member.id}", json={"name": "Renamed"}, headers=keys.auth("coordinator"))
    renamed = fetch(client, member, **{"If-None-Match": etag})
    assert renamed.status_code == 200 and b"Renamed" in renamed.get_data()


def test_escaping_of_user_text_in_the_feed(client, keys, ics_parsers):
    region = 'Nord, secteur 3; édifice "B" \\ porte 2'
    members = roster(client, keys, regions=[region], name='Tremblay, Émilie; CISM \\ "pair"')
    session = report(client, keys, region=region)["sessions"][0]
    parsed = ics_parsers.everywhere(fetch(client, team(session, members)[0]).get_data())
    assert parsed["name"] == 'Debrief sessions – Tremblay, Émilie; CISM \\ "pair"'
    [event] = parsed["events"]
    assert event["location"] == region and f"region {region}." in event["description"]


def test_no_personal_data_in_any_feed(client, keys, ics_parsers):
    members = roster(client, keys, clinicians=4, peers=8)
    people = [
        person(1, name="Zoé Lachance-Ouellet", email="zoe.lachance@north.example.org", external_id="B7731", phone="+1 416 555 0199"),
        person(2, name="Marc-André Nguyễn", email="ma.nguyen@north.example.org", external_id="B7732", language="fr"),
        person(3, name="Aisha O'Connor", email="aisha.oconnor@north.example.org", external_id="W-0009", exposure="witness"),
        person(4, name="Sgt. Robert Kowalski", email="r.kowalski@north.example.org", external_id="S-0441", role="supervisor"),
    ]
    incident = report(client, keys, external_id="CAD-2026-SECRET-7731", severity=4, personnel=people, type="child_death")
    assert len(incident["sessions"]) >= 4
    secrets = [incident["external_id"], incident["id"], "child_death", "patrol-3"]
    for p in people:
        secrets += [p["name"], p["email"], p["external_id"], p["phone"], *p["name"].split()]
    secrets += [s["group"] for s in incident["sessions"]]
    seen = 0
    for member in members:
        document = fetch(client, member).get_data()
        parsed = ics_parsers.everywhere(document)
        seen += len(parsed["events"])
        unfolded = document.decode("utf-8").replace("\r\n ", "")
        values = " ".join(str(v) for e in parsed["events"] for v in e.values())
        for secret in secrets:
            for text in (unfolded, values, parsed["name"]):
                assert secret.lower() not in text.lower(), f"{secret!r} appears in the feed of facilitator {member.id}"
    assert seen == sum(len(s["facilitators"]) for s in incident["sessions"])


def stored_events(app, member: Member) -> dict[int, str]:
    """The feed_events rows of a facilitator's assignments: rendered_from by assignment id."""
    with app.extensions["debrief"].session_factory() as db:
        return dict(db.execute(
            select(FeedEvent.assignment_id, FeedEvent.rendered_from)
            .join(Assignment, Assignment.id == FeedEvent.assignment_id)
            .where(Assignment.facilitator_id == member.id)
        ).all())


def test_rendered_events_are_stored_for_other_processes(app, client, keys, monkeypatch):
    members = roster(client, keys)
    incident = report(client, keys, severity=4, personnel=[person(1), person(2, exposure="witness")])
    member = team(incident["sessions"][0], members)[0]
    first = fetch(client, member).get_data()
    shown = stored_events(app, member)
    assert len(shown) == first.count(b"BEGIN:VEVENT") >= 1

    def no_rendering(*_args, **_kwargs):
        raise AssertionError("a stored event must not be rendered again")

    # Another gunicorn worker starts with an empty memory: it assembles the stored events.
    calendars._BLOCKS.clear()
    monkeypatch.setattr(calendars, "event_block", no_rendering)
    assert fetch(client, member).get_data() == first


def test_a_stale_stored_event_is_rendered_again(app, client, keys, clock, ics_parsers):
    members = roster(client, keys)
    session = report(client, keys)["sessions"][0]
    member = team(session, members)[0]
    fetch(client, member)
    before = stored_events(app, member)
    clock.advance(hours=1)
    client.post(f"/v1/sessions/{session['id']}/reschedule", json={"starts_at": "2026-11-24T13:30:00-05:00"},
                headers=keys.auth("coordinator"))
    calendars._BLOCKS.clear()
    [event] = events(ics_parsers, client, member)
    assert event["start"] == "2026-11-24T18:30:00Z" and event["sequence"] == 1
    after = stored_events(app, member)
    assert after.keys() == before.keys() and after != before
    # A row whose digest does not match what it says is never served as it is.
    with app.extensions["debrief"].session_factory() as db:
        db.execute(update(FeedEvent).values(body="BEGIN:VEVENT\r\nSUMMARY:stale\r\nEND:VEVENT\r\n", rendered_from="0" * 32))
        db.commit()
    calendars._BLOCKS.clear()
    [event] = events(ics_parsers, client, member)
    assert event["start"] == "2026-11-24T18:30:00Z" and event["summary"] != "stale"
    assert stored_events(app, member) == after
