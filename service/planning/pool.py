"""The facilitator pool, indexed by language and region so that planning never scans all of it."""

from __future__ import annotations

from datetime import date
from typing import Iterable, Iterator

from service.planning.availability import FacilitatorCalendar
from service.planning.types import FacilitatorProfile

GCI = "GCI"
LICENSE = "LICENSE"


def _valid_until(profile: FacilitatorProfile, name: str) -> date | None:
    dates = [c.expires_on for c in profile.certifications if c.name == name]
    return max(dates) if dates else None


class CapMemo:
    """The planner's memo of one facilitator's daily/weekly caps, for one state of their bookings."""

    __slots__ = ("state", "days", "capped")

    def __init__(self) -> None:
        self.state: tuple[object, ...] | None = None
        self.days: list[int] = []          # local-date ordinals of their group sessions, sorted
        self.capped: dict[date, bool] = {}


class Facilitator:
    """A profile plus what planning derives from it once: certificate dates, calendar, lower-cased email."""

    __slots__ = ("profile", "id", "is_clinician", "gci_until", "license_until", "email", "calendar", "day_covers",
                 "static_verdicts", "cap_memo")

    def __init__(self, profile: FacilitatorProfile) -> None:
        self.profile = profile
        self.id = profile.id
        self.is_clinician = profile.kind == "clinician"
        self.gci_until = _valid_until(profile, GCI)
        self.license_until = _valid_until(profile, LICENSE)
        self.email = profile.email.casefold()
        self.calendar = FacilitatorCalendar(profile.weekly, profile.exceptions, profile.timezone)
        # The planner's memos. The first two depend on the profile alone; the last is keyed by the
        # schedule's identity and this facilitator's revision in it, so it is never stale.
        self.day_covers: dict[tuple[object, ...], int] = {}
        self.static_verdicts: dict[tuple[object, ...], bool] = {}
        self.cap_memo = CapMemo()


class FacilitatorPool:
    """All facilitators, built once; active ones indexed by (language, region) and by virtual language."""

    def __init__(self, profiles: Iterable[FacilitatorProfile]) -> None:
        self._by_id: dict[int, Facilitator] = {}
        for profile in profiles:
            if profile.id in self._by_id:
                raise ValueError(f"facilitator {profile.id} listed twice")
            self._by_id[profile.id] = Facilitator(profile)
        by_place: dict[tuple[str, str], list[int]] = {}
        virtual: dict[str, list[int]] = {}
        speakers: dict[str, list[int]] = {}
        self._active_kinds: dict[str, int] = {}
        for fid in sorted(self._by_id):
            p = self._by_id[fid].profile
            if not p.active:
                continue
            self._active_kinds[p.kind] = self._active_kinds.get(p.kind, 0) + 1
            for language in p.languages:
                speakers.setdefault(language, []).append(fid)
                if p.virtual_ok:
                    virtual.setdefault(language, []).append(fid)
                for region in p.regions:
                    by_place.setdefault((language, region), []).append(fid)
        # Lists are in id order, the final tie-break of every preference.
        self._by_place = {k: tuple(v) for k, v in by_place.items()}
        self._virtual = {k: tuple(v) for k, v in virtual.items()}
        self._speakers = {k: tuple(v) for k, v in speakers.items()}

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, facilitator_id: object) -> bool:
        return facilitator_id in self._by_id

    def __iter__(self) -> Iterator[FacilitatorProfile]:
        return (f.profile for f in self._by_id.values())

    def get(self, facilitator_id: int) -> FacilitatorProfile | None:
        """The profile with this id, if any."""
        entry = self._by_id.get(facilitator_id)
        return entry.profile if entry else None

    def entry(self, facilitator_id: int) -> Facilitator:
        """The derived record used by the rules (KeyError if unknown)."""
        return self._by_id[facilitator_id]

    def active_count(self, kind: str) -> int:
        """How many active facilitators of a kind ("peer" or "clinician") the pool holds."""
        return self._active_kinds.get(kind, 0)

    def serving(self, language: str, region: str) -> tuple[int, ...]:
        """Active facilitators speaking `language` who serve `region`, by id."""
        return self._by_place.get((language, region), ())

    def virtual(self, language: str) -> tuple[int, ...]:
        """Active facilitators speaking `language` who accept virtual sessions, by id."""
        return self._virtual.get(language, ())

    def speakers(self, language: str) -> tuple[int, ...]:
        """Active facilitators speaking `language`, by id."""
        return self._speakers.get(language, ())
