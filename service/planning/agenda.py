"""Per-kind rules: when a session may happen, how long it lasts, its agenda and its team."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

from service.planning.policy import PlanningPolicy
from service.planning.types import AgendaItem, Interval, SessionKind, TeamRequirement

UTC = timezone.utc


def session_window(kind: SessionKind, occurred_at: datetime, policy: PlanningPolicy) -> Interval:
    """The UTC interval a session of `kind` must lie in; for "individual" pass the acceptance time."""
    anchor = occurred_at.astimezone(UTC)
    if kind == "debriefing":
        return Interval(anchor + policy.debriefing_opens_after, anchor + policy.debriefing_closes_after)
    if kind == "defusing":
        return Interval(anchor + policy.defusing_opens_after, anchor + policy.defusing_closes_after)
    if kind == "individual":
        return Interval(anchor, anchor + policy.individual_within)
    raise ValueError(f"kind: unknown session kind {kind!r}")


def session_minutes(kind: SessionKind, policy: PlanningPolicy) -> int:
    """How long a session of `kind` lasts."""
    if kind == "debriefing":
        return sum(m for _, m in policy.debriefing_phases)
    if kind == "defusing":
        return sum(m for _, m in policy.defusing_phases)
    if kind == "individual":
        return policy.individual_minutes
    raise ValueError(f"kind: unknown session kind {kind!r}")


def build_agenda(kind: SessionKind, starts_at: datetime, policy: PlanningPolicy) -> tuple[AgendaItem, ...]:
    """Every phase of the session with its start time; an individual session has none."""
    if kind == "debriefing":
        phases = policy.debriefing_phases
    elif kind == "defusing":
        phases = policy.defusing_phases
    elif kind == "individual":
        return ()
    else:
        raise ValueError(f"kind: unknown session kind {kind!r}")
    at = starts_at.astimezone(UTC)
    items = []
    for phase, minutes in phases:
        items.append(AgendaItem(phase, at, minutes))
        at += timedelta(minutes=minutes)
    return tuple(items)


def team_requirements(kind: SessionKind, participant_count: int, policy: PlanningPolicy) -> TeamRequirement:
    """Team size clamp(ceil(n/6), 2, 4); a debriefing needs a clinician and a peer, a defusing two peers."""
    if kind == "individual":
        return TeamRequirement(size=1, min_clinicians=0, min_peers=0)
    wanted = math.ceil(participant_count / policy.participants_per_facilitator)
    size = min(max(wanted, policy.min_team), policy.max_team)
    if kind == "debriefing":
        return TeamRequirement(size=size, min_clinicians=1, min_peers=1)
    if kind == "defusing":
        return TeamRequirement(size=size, min_clinicians=0, min_peers=2)
    raise ValueError(f"kind: unknown session kind {kind!r}")
