"""Supervisors' counts: no masked count can be worked out, by subtraction or by knowing the rule.

Every combination of counts 0..6 in a set of 2 to 5 cells (the sizes of the status's sets) is
masked, and then read back as a supervisor who knows the total (the people involved), the cells
shown, and `mask_counts` itself would: every split of the masked total among the masked cells
that the rule would have masked the same way is a possibility. Each masked cell must keep at
least two possible values.
"""

from __future__ import annotations

import itertools
from typing import Iterator

import pytest

from service.incidents.status import MASK, SMALL, mask_counts

LARGEST = 6


def splits(total: int, cells: int) -> Iterator[tuple[int, ...]]:
    """Every way to share `total` among `cells` counts (stars and bars)."""
    for bars in itertools.combinations(range(total + cells - 1), cells - 1):
        edges = (-1, *bars, total + cells - 1)
        yield tuple(edges[i + 1] - edges[i] - 1 for i in range(cells))


def masked_of(counts: tuple[int, ...]) -> tuple[int | str, ...]:
    names = [f"c{i}" for i in range(len(counts))]
    shown = mask_counts(dict(zip(names, counts)))
    assert list(shown) == names
    return tuple(shown.values())


@pytest.mark.parametrize("cells", [2, 3, 4, 5])
def test_no_masked_count_can_be_recovered_from_the_total_and_the_rule(cells):
    possible: dict[tuple, list[set[int]]] = {}
    for counts in itertools.product(range(LARGEST + 1), repeat=cells):
        shown = masked_of(counts)
        hidden = [i for i, value in enumerate(shown) if value == MASK]
        if any(0 < n < SMALL for n in counts):
            assert len(hidden) >= 2, f"{counts} -> {shown}: the total minus the others gives the masked cell"
        else:
            assert shown == counts
            continue
        assert all(shown[i] == counts[i] for i in range(cells) if i not in hidden)
        total = sum(counts[i] for i in hidden)
        key = (shown, total)
        if key not in possible:
            values: list[set[int]] = [set() for _ in hidden]
            for split in splits(total, len(hidden)):
                candidate = list(shown)
                for i, value in zip(hidden, split):
                    candidate[i] = value
                if masked_of(tuple(candidate)) == shown:
                    for seen, value in zip(values, split):
                        seen.add(value)
            possible[key] = values
        for i, seen in zip(hidden, possible[key]):
            assert len(seen) >= 2, f"{counts} -> {shown}: cell {i} can only be {seen}"


def test_small_counts_and_the_zeros_beside_them_are_masked():
    assert mask_counts({"a": 5, "b": 0, "c": 7}) == {"a": 5, "b": 0, "c": 7}
    assert mask_counts({"a": 5, "b": 1, "c": 0}) == {"a": 5, "b": MASK, "c": MASK}


def test_a_lone_masked_count_takes_the_smallest_shown_with_it_and_every_equal_one():
    assert mask_counts({"a": 2, "b": 3}) == {"a": MASK, "b": MASK}
    assert mask_counts({"a": 9, "b": 1, "c": 4, "d": 4}) == {"a": 9, "b": MASK, "c": MASK, "d": MASK}
    assert mask_counts({"a": 9, "b": 1, "c": 4, "d": 5}) == {"a": 9, "b": MASK, "c": MASK, "d": 5}


def test_masked_counts_that_could_only_all_be_2_take_another_with_them():
    assert mask_counts({"a": 2, "b": 2, "c": 8}) == {"a": MASK, "b": MASK, "c": MASK}
    assert mask_counts({"a": 1, "b": 1, "c": 8}) == {"a": MASK, "b": MASK, "c": 8}
