"""Value types of the planning core: its inputs, outputs and reason codes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Literal

SessionKind = Literal["debriefing", "defusing", "individual"]
FacilitatorKind = Literal["peer", "clinician"]
Mode = Literal["in_person", "virtual"]

GROUP_KINDS = frozenset({"debriefing", "defusing"})
IN_PERSON: Mode = "in_person"
VIRTUAL: Mode = "virtual"

# Why one facilitator cannot take one session (ineligibility_reasons), in checking order.
INACTIVE = "inactive"
CERTIFICATION_MISSING = "certification_missing"
CERTIFICATION_EXPIRED = "certification_expired"
LANGUAGE_MISMATCH = "language_mismatch"
REGION_NOT_SERVED = "region_not_served"
CONFLICT_OF_INTEREST = "conflict_of_interest"
UNIT_CONFLICT = "unit_conflict"
UNAVAILABLE = "unavailable"
TIME_OFF = "time_off"
DOUBLE_BOOKED = "double_booked"
DAILY_CAP = "daily_cap"
WEEKLY_CAP = "weekly_cap"
FACILITATOR_REASONS = (
    INACTIVE, CERTIFICATION_MISSING, CERTIFICATION_EXPIRED, LANGUAGE_MISMATCH, REGION_NOT_SERVED,
    CONFLICT_OF_INTEREST, UNIT_CONFLICT, UNAVAILABLE, TIME_OFF, DOUBLE_BOOKED, DAILY_CAP, WEEKLY_CAP,
)

# Why a group's session could not be planned (Problem.reasons).
WINDOW_CLOSED = "window_closed"
LANGUAGE_NOT_COVERED = "language_not_covered"
REGION_NOT_COVERED = "region_not_covered"
ALL_CANDIDATES_CONFLICTED = "all_candidates_conflicted"
NO_CLINICIAN_AVAILABLE = "no_clinician_available"
NOT_ENOUGH_PEERS = "not_enough_peers"
NO_COMMON_SLOT = "no_common_slot"
GROUP_REASONS = (
    WINDOW_CLOSED, LANGUAGE_NOT_COVERED, REGION_NOT_COVERED, ALL_CANDIDATES_CONFLICTED,
    NO_CLINICIAN_AVAILABLE, NOT_ENOUGH_PEERS, NO_COMMON_SLOT,
)


def require_aware(name: str, value: datetime) -> None:
    """ValueError naming `name` unless `value` is a timezone-aware datetime."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name}: expected a timezone-aware datetime")


@dataclass(frozen=True, slots=True)
class Participant:
    """One involved person; `key` is their personnel external_id."""

    key: str
    email: str
    role: str
    unit: str | None
    exposure: str
    language: str


@dataclass(frozen=True, slots=True)
class Certification:
    """A facilitator's certification, valid up to and including `expires_on`."""

    name: str
    expires_on: date


@dataclass(frozen=True, slots=True)
class WeeklyWindow:
    """A recurring availability window in the facilitator's zone; end <= start runs past midnight."""

    day: int  # 0 = Monday .. 6 = Sunday
    start: time
    end: time

    def __post_init__(self) -> None:
        if not 0 <= self.day <= 6:
            raise ValueError("day: expected 0 (Monday) to 6 (Sunday)")


def require_span(start: datetime, end: datetime) -> None:
    """Both ends aware, and the end after the start."""
    require_aware("start", start)
    require_aware("end", end)
    if end <= start:
        raise ValueError("end: must be after start")


@dataclass(frozen=True, slots=True)
class Interval:
    """A half-open UTC interval [start, end)."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        require_span(self.start, self.end)


@dataclass(frozen=True, slots=True)
class FacilitatorProfile:
    """What planning needs to know about one peer or clinician."""

    id: int
    kind: FacilitatorKind
    agency_id: int | None
    unit: str | None
    email: str
    personnel_id: str | None
    active: bool
    languages: frozenset[str]
    regions: frozenset[str]
    virtual_ok: bool
    timezone: str
    certifications: tuple[Certification, ...]
    weekly: tuple[WeeklyWindow, ...]
    exceptions: tuple[Interval, ...]


@dataclass(frozen=True, slots=True)
class Booking:
    """One facilitator's existing commitment to a session."""

    facilitator_id: int
    session_ref: str
    start: datetime
    end: datetime
    group: bool

    def __post_init__(self) -> None:
        require_span(self.start, self.end)


@dataclass(frozen=True, slots=True)
class IncidentFacts:
    """An incident as planning sees it; `timezone` is the agency's IANA zone."""

    ref: str
    agency_id: int
    severity: int
    occurred_at: datetime
    region: str
    timezone: str
    participants: tuple[Participant, ...]

    def __post_init__(self) -> None:
        require_aware("occurred_at", self.occurred_at)


@dataclass(frozen=True, slots=True)
class TeamRequirement:
    """How many facilitators a session needs, and of which kinds at least."""

    size: int
    min_clinicians: int
    min_peers: int


@dataclass(frozen=True, slots=True)
class AgendaItem:
    """One phase of a session and when it starts."""

    phase: str
    starts_at: datetime
    minutes: int


@dataclass(frozen=True, slots=True)
class Group:
    """A homogeneous set of participants who meet together."""

    key: str
    exposure: str
    command: bool
    language: str
    participants: tuple[Participant, ...]


@dataclass(frozen=True, slots=True)
class PlannedSession:
    """A session with its time, place, team and agenda; `ref` is the bookings' session_ref."""

    kind: SessionKind
    group_key: str | None
    starts_at: datetime
    ends_at: datetime
    mode: Mode
    region: str
    facilitator_ids: tuple[int, ...]
    agenda: tuple[AgendaItem, ...]
    ref: str = ""


@dataclass(frozen=True, slots=True)
class Problem:
    """A session that could not be planned, with machine-readable reasons."""

    group_key: str | None
    kind: str
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IncidentPlan:
    """The sessions planned for one incident and the problems left for a coordinator."""

    sessions: tuple[PlannedSession, ...]
    problems: tuple[Problem, ...]

    @property
    def needs_attention(self) -> bool:
        """True when a coordinator has something to resolve."""
        return bool(self.problems)
