"""Splitting an incident's personnel into homogeneous debriefing groups."""

from __future__ import annotations

import math
from typing import Iterable

from service.planning.policy import PlanningPolicy
from service.planning.types import Group, Participant

# Most exposed first: the order in which groups are planned and listed.
EXPOSURE_ORDER = ("direct", "witness", "support")
# People who command others meet apart from them, so that nobody speaks in front of their boss.
COMMAND_ROLES = frozenset({"supervisor", "command"})


def is_command(participant: Participant) -> bool:
    """True for supervisors and command staff."""
    return participant.role in COMMAND_ROLES


def split_into_groups(participants: Iterable[Participant], policy: PlanningPolicy) -> list[Group]:
    """Split personnel by exposure, command and language; most exposed first, large sets split evenly."""
    buckets: dict[tuple[str, bool, str], list[Participant]] = {}
    for p in participants:
        buckets.setdefault((p.exposure, is_command(p), p.language), []).append(p)

    def order(key: tuple[str, bool, str]) -> tuple[int, str, bool, str]:
        exposure, command, language = key
        rank = EXPOSURE_ORDER.index(exposure) if exposure in EXPOSURE_ORDER else len(EXPOSURE_ORDER)
        return rank, exposure, command, language

    groups: list[Group] = []
    for key in sorted(buckets, key=order):
        exposure, command, language = key
        # Colleagues of one unit stay together when a large set is split.
        members = sorted(buckets[key], key=lambda p: (p.unit or "", p.key))
        base = f"{exposure}-command-{language}" if command else f"{exposure}-{language}"
        parts = _even_parts(members, policy.max_group_size)
        for i, part in enumerate(parts, start=1):
            name = base if len(parts) == 1 else f"{base}-{i}"
            groups.append(Group(name, exposure, command, language, tuple(part)))
    return groups


def _even_parts(members: list[Participant], limit: int) -> list[list[Participant]]:
    count = math.ceil(len(members) / limit)
    size, extra = divmod(len(members), count)
    parts, at = [], 0
    for i in range(count):
        n = size + (1 if i < extra else 0)
        parts.append(members[at:at + n])
        at += n
    return parts
