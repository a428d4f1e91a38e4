"""An independent check of planned group sessions against the hard rules of DESIGN.md section 3.

It reads only raw data: the roster (profiles), the existing bookings, the incidents, the policy's
numbers and the clock, and re-derives everything else (groups, windows, the local-time grid,
availability, caps, conflicts of interest) from the design's wording. It deliberately imports
nothing from the planner's rules (groups, agenda, eligibility, availability, schedule, timegrid):
a plan that passes here was not merely judged by the code that made it.

Readings of the design where it leaves a detail open, chosen to match the product's contract:
- a weekly window whose end is not after its start runs past midnight into the next day;
- units are an agency's own: a facilitator's unit conflicts only with the units of an incident of
  their own agency (a provincial facilitator has no agency, hence no unit conflict);
- group keys are `<exposure>[-command]-<language>[-<n>]`, and when a set is split evenly the
  first parts take the extra person (the product's naming, needed to tie a session to its group);
- the debriefing window closes for the session's end, the defusing's too; nothing starts before `now`
  plus the notice (`notice_minutes`, 60 by default: "at least 60 minutes after the plan is made").
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Collection, Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

from service.planning.policy import PlanningPolicy
from service.planning.types import Booking, FacilitatorProfile, IncidentFacts, PlannedSession

UTC = timezone.utc
EXPOSURE_TIERS = ("direct", "witness", "support")
COMMAND_ROLES = {"supervisor", "command"}


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken hard rule, with where it was found."""

    rule: str
    incident: str
    session: str
    facilitator: int | None
    detail: str

    def __str__(self) -> str:
        who = f" facilitator {self.facilitator}" if self.facilitator is not None else ""
        return f"{self.rule}: {self.incident} {self.session}{who}: {self.detail}"


@dataclass(frozen=True, slots=True)
class ExpectedGroup:
    """A group as the design defines it: its language and head count."""

    key: str
    language: str
    size: int


def expected_groups(incident: IncidentFacts, policy: PlanningPolicy) -> dict[str, ExpectedGroup]:
    """Groups by exposure tier, command apart, language; at most max_group_size each, split evenly."""
    buckets: dict[tuple[str, bool, str], int] = defaultdict(int)
    for p in incident.participants:
        buckets[(p.exposure, p.role in COMMAND_ROLES, p.language)] += 1
    groups = {}
    for (exposure, command, language), n in buckets.items():
        base = f"{exposure}-command-{language}" if command else f"{exposure}-{language}"
        parts = math.ceil(n / policy.max_group_size)
        for i in range(parts):
            size = n // parts + (1 if i < n % parts else 0)
            key = base if parts == 1 else f"{base}-{i + 1}"
            groups[key] = ExpectedGroup(key, language, size)
    return groups


def team_rule(kind: str, size: int, policy: PlanningPolicy) -> tuple[int, int, int]:
    """(team size, least clinicians, least peers): clamp(ceil(n/6), 2, 4); 1 clinician + 1 peer, or 2 peers."""
    team = min(max(math.ceil(size / policy.participants_per_facilitator), policy.min_team), policy.max_team)
    return (team, 1, 1) if kind == "debriefing" else (team, 0, 2)


def phases(kind: str, policy: PlanningPolicy) -> tuple[tuple[str, int], ...]:
    """The agenda of a group session kind."""
    return policy.debriefing_phases if kind == "debriefing" else policy.defusing_phases


def window(kind: str, incident: IncidentFacts, policy: PlanningPolicy) -> tuple[datetime, datetime]:
    """(opens, closes) after the incident: 24-72 h for a debriefing, 0-8 h for a defusing."""
    at = incident.occurred_at.astimezone(UTC)
    if kind == "debriefing":
        return at + policy.debriefing_opens_after, at + policy.debriefing_closes_after
    return at + policy.defusing_opens_after, at + policy.defusing_closes_after


def valid_on(profile: FacilitatorProfile, name: str, day: date) -> bool:
    """Some certificate of that name is still valid on `day` (valid through its expiry date)."""
    return any(c.name == name and c.expires_on >= day for c in profile.certifications)


def weekly_spans(profile: FacilitatorProfile, around: datetime) -> list[tuple[datetime, datetime]]:
    """The UTC spans of the facilitator's weekly windows starting within three local days of `around`."""
    tz = ZoneInfo(profile.timezone)
    today = around.astimezone(tz).date()
    spans = []
    for offset in range(-3, 4):
        day = today + timedelta(days=offset)
        for w in profile.weekly:
            if w.day != day.weekday():
                continue
            end_day = day + timedelta(days=1) if w.end <= w.start else day
            start = datetime.combine(day, w.start, tzinfo=tz).astimezone(UTC)
            end = datetime.combine(end_day, w.end, tzinfo=tz).astimezone(UTC)
            if end > start:
                spans.append((start, end))
    return spans


def available(profile: FacilitatorProfile, lo: datetime, hi: datetime) -> bool:
    """[lo, hi] is covered without a gap by weekly windows (back-to-back windows join)."""
    spans = weekly_spans(profile, lo)
    reached = lo
    # Sweep forward: extend the covered prefix with any window that starts inside it.
    progress = True
    while reached < hi and progress:
        progress = False
        for start, end in spans:
            if start <= reached < end:
                reached, progress = end, True
    return reached >= hi


def _involved(incident: IncidentFacts) -> tuple[set[str], set[str], set[str]]:
    keys = {p.key for p in incident.participants}
    emails = {p.email.casefold() for p in incident.participants if p.email}
    units = {p.unit for p in incident.participants if p.unit}
    return keys, emails, units


def check_plans(*, profiles: Iterable[FacilitatorProfile], bookings: Iterable[Booking],
                incidents: Iterable[IncidentFacts], plans: Mapping[str, Sequence[PlannedSession]],
                policy: PlanningPolicy, now: datetime,
                declined: Mapping[str, Collection[int]] | None = None,
                planned_at: Mapping[str, datetime] | None = None) -> list[Violation]:
    """Every hard-rule violation of the planned sessions (`plans`: incident ref -> its sessions).

    `planned_at` gives, per incident ref, when its plan was made where that is not `now` (an
    incident planned as it was reported): its sessions owe the notice from then.

    `declined` maps a session ref (`<incident>/<group>/<kind>`) to the facilitators who declined
    it: DESIGN says they are never put back on it.
    """
    roster = {p.id: p for p in profiles}
    by_ref = {i.ref: i for i in incidents}
    out: list[Violation] = []
    # Every commitment per facilitator: (start, end, is_group, label, planned?)
    commitments: dict[int, list[tuple[datetime, datetime, bool, str, bool]]] = defaultdict(list)
    for b in bookings:
        commitments[b.facilitator_id].append((b.start.astimezone(UTC), b.end.astimezone(UTC), b.group,
                                              f"booking {b.session_ref}", False))
    where: dict[str, tuple[str, str]] = {}
    for ref, sessions in plans.items():
        incident = by_ref.get(ref)
        if incident is None:
            out.append(Violation("unknown_incident", ref, "-", None, "planned for an incident not in the scenario"))
            continue
        seen: set[tuple[str | None, str]] = set()
        for s in sessions:
            label = f"{s.group_key}/{s.kind}"
            where[f"{ref}/{label}"] = (ref, label)
            out += _check_session(incident, s, label, roster, policy, (planned_at or {}).get(ref, now), seen)
            for fid in sorted(set(s.facilitator_ids) & set((declined or {}).get(f"{ref}/{label}", ()))):
                out.append(Violation("declined", ref, label, fid, "put back on a session they declined"))
            for fid in set(s.facilitator_ids):
                commitments[fid].append((s.starts_at.astimezone(UTC), s.ends_at.astimezone(UTC), True,
                                         f"{ref}/{label}", True))
    out += _check_commitments(commitments, roster, policy, where)
    return out


def _check_session(incident: IncidentFacts, s: PlannedSession, label: str, roster: Mapping[int, FacilitatorProfile],
                   policy: PlanningPolicy, now: datetime, seen: set[tuple[str | None, str]]) -> list[Violation]:
    out: list[Violation] = []

    def bad(rule: str, detail: str, fid: int | None = None) -> None:
        out.append(Violation(rule, incident.ref, label, fid, detail))

    if s.kind not in ("debriefing", "defusing"):
        bad("session_kind", f"{s.kind!r} is not a group session")
        return out
    if (s.group_key, s.kind) in seen:
        bad("duplicate_session", "the group has this kind of session twice")
    seen.add((s.group_key, s.kind))
    if s.kind == "defusing" and incident.severity < policy.defusing_min_severity:
        bad("defusing_not_due", f"severity {incident.severity} < {policy.defusing_min_severity}")
    groups = expected_groups(incident, policy)
    group = groups.get(s.group_key or "")
    if group is None:
        bad("unknown_group", f"no group {s.group_key!r}; expected one of {sorted(groups)}")
        return out
    start, end = s.starts_at.astimezone(UTC), s.ends_at.astimezone(UTC)
    tz = ZoneInfo(incident.timezone)

    # Time: window, length, agenda, grid.
    opens, closes = window(s.kind, incident, policy)
    if start < opens or end > closes:
        bad("window", f"{start:%Y-%m-%d %H:%M}-{end:%H:%M} UTC outside {opens:%m-%d %H:%M}..{closes:%m-%d %H:%M} UTC")
    if start < now:
        bad("in_the_past", f"starts {start:%Y-%m-%d %H:%M} UTC before now {now:%Y-%m-%d %H:%M} UTC")
    elif start < now + timedelta(minutes=policy.notice_minutes):
        bad("notice", f"starts {start:%Y-%m-%d %H:%M} UTC, less than {policy.notice_minutes} min after now "
                      f"{now:%Y-%m-%d %H:%M} UTC")
    agenda = phases(s.kind, policy)
    minutes = sum(m for _, m in agenda)
    if end - start != timedelta(minutes=minutes):
        bad("length", f"{(end - start).total_seconds() / 60:.0f} min instead of {minutes}")
    at, expected = start, []
    for phase, m in agenda:
        expected.append((phase, at, m))
        at += timedelta(minutes=m)
    got = [(a.phase, a.starts_at.astimezone(UTC), a.minutes) for a in s.agenda]
    if got != expected:
        bad("agenda", f"phases {[(p, f'{t:%H:%M}', m) for p, t, m in got]} do not follow the {s.kind} agenda")
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    minute_of_day = local_start.hour * 60 + local_start.minute
    first = policy.earliest_start.hour * 60 + policy.earliest_start.minute
    last = policy.latest_start.hour * 60 + policy.latest_start.minute
    # A latest end of 00:00 means midnight at the end of the session's day.
    end_day = local_start.date() + timedelta(days=1) if policy.latest_end == time(0) else local_start.date()
    end_limit = datetime.combine(end_day, policy.latest_end, tzinfo=tz).astimezone(UTC)
    if (minute_of_day % policy.grid_minutes or local_start.second or not first <= minute_of_day <= last
            or end > end_limit):
        bad("time_grid", f"local {local_start:%a %H:%M}-{local_end:%H:%M} {incident.timezone}: not a "
                         f"{policy.grid_minutes}-minute start between {policy.earliest_start:%H:%M} and "
                         f"{policy.latest_start:%H:%M} ending by {policy.latest_end:%H:%M}")
    if s.region != incident.region:
        bad("region", f"session in {s.region}, incident in {incident.region}")
    if s.mode not in ("in_person", "virtual"):
        bad("mode", f"unknown mode {s.mode!r}")

    # Team.
    size, least_clinicians, least_peers = team_rule(s.kind, group.size, policy)
    team = [roster.get(fid) for fid in s.facilitator_ids]
    if len(set(s.facilitator_ids)) != len(s.facilitator_ids):
        bad("team_repeat", f"a facilitator is listed twice: {s.facilitator_ids}")
    if len(s.facilitator_ids) != size:
        bad("team_size", f"{len(s.facilitator_ids)} facilitators for {group.size} participants, expected {size}")
    clinicians = sum(1 for p in team if p is not None and p.kind == "clinician")
    peers = sum(1 for p in team if p is not None and p.kind == "peer")
    if clinicians < least_clinicians or peers < least_peers:
        bad("team_kinds", f"{clinicians} clinician(s) and {peers} peer(s); needs at least "
                          f"{least_clinicians} and {least_peers}")

    # Each facilitator.
    keys, emails, units = _involved(incident)
    held_on = local_start.date()  # certificates count dates as the agency does
    buffer = timedelta(minutes=policy.buffer_minutes)
    for fid, p in zip(s.facilitator_ids, team):
        if p is None:
            bad("unknown_facilitator", "not on the roster", fid)
            continue
        if not p.active:
            bad("inactive", "facilitator is not active", fid)
        if not valid_on(p, "GCI", held_on):
            bad("certification", f"no GCI valid on {held_on}", fid)
        if p.kind == "clinician" and not valid_on(p, "LICENSE", held_on):
            bad("certification", f"no licence valid on {held_on}", fid)
        if group.language not in p.languages:
            bad("language", f"group speaks {group.language}, facilitator {sorted(p.languages)}", fid)
        if incident.region not in p.regions and not (s.mode == "virtual" and p.virtual_ok):
            bad("region_not_served", f"{s.mode} session in {incident.region}; serves {sorted(p.regions)}, "
                                     f"virtual_ok={p.virtual_ok}", fid)
        same_agency = p.agency_id is not None and p.agency_id == incident.agency_id
        if same_agency and p.personnel_id is not None and p.personnel_id in keys:
            bad("conflict_of_interest", f"personnel {p.personnel_id} of agency {p.agency_id} is involved", fid)
        if p.email.casefold() in emails:
            bad("conflict_of_interest", f"{p.email} is an involved person's e-mail", fid)
        if same_agency and p.unit is not None and p.unit in units:
            bad("unit_conflict", f"unit {p.unit} of agency {p.agency_id} is involved", fid)
        lo, hi = start - buffer, end + buffer
        if not available(p, lo, hi):
            bad("unavailable", f"{lo:%a %H:%M}-{hi:%H:%M} UTC (session with buffers) not inside weekly "
                               f"availability ({p.timezone})", fid)
        for off in p.exceptions:
            if off.start < hi and lo < off.end:
                bad("time_off", f"buffered session meets time off {off.start:%m-%d %H:%M}-{off.end:%m-%d %H:%M}", fid)
    return out


def _check_commitments(commitments: Mapping[int, list[tuple[datetime, datetime, bool, str, bool]]],
                       roster: Mapping[int, FacilitatorProfile], policy: PlanningPolicy,
                       where: Mapping[str, tuple[str, str]]) -> list[Violation]:
    """No double booking (buffer between a new session and anything else) and the day / rolling-week caps."""
    out: list[Violation] = []
    buffer = timedelta(minutes=policy.buffer_minutes)
    for fid, items in commitments.items():
        planned = [c for c in items if c[4]]
        if not planned:
            continue
        for i, (start, end, _, label, _) in enumerate(planned):
            incident, session = where[label]
            for other in items:
                if other[3] == label:
                    continue
                # A planned pair is reported once, from its earlier-listed session.
                if other[4] and planned.index(other) < i:
                    continue
                if start - buffer < other[1] and other[0] < end + buffer:
                    out.append(Violation("double_booked", incident, session, fid,
                                         f"{start:%m-%d %H:%M}-{end:%H:%M} UTC within {policy.buffer_minutes} min "
                                         f"of {other[3]} {other[0]:%m-%d %H:%M}-{other[1]:%H:%M}"))
        profile = roster.get(fid)
        if profile is None:
            continue
        tz = ZoneInfo(profile.timezone)
        days = [c[0].astimezone(tz).date() for c in items if c[2]]
        reported: set[tuple[str, date]] = set()
        for start, _, _, label, _ in planned:
            incident, session = where[label]
            day = start.astimezone(tz).date()
            if days.count(day) > policy.max_group_sessions_per_day and ("day", day) not in reported:
                reported.add(("day", day))
                out.append(Violation("daily_cap", incident, session, fid,
                                     f"{days.count(day)} group sessions on local {day} ({profile.timezone})"))
            for back in range(7):
                first = day - timedelta(days=back)
                n = sum(1 for d in days if first <= d <= first + timedelta(days=6))
                if n > policy.max_group_sessions_per_7_days and ("week", first) not in reported:
                    reported.add(("week", first))
                    out.append(Violation("weekly_cap", incident, session, fid,
                                         f"{n} group sessions in the 7 local days from {first}"))
    return out
