"""The part-size schedule of streamed S3 uploads (a pure function)."""

from __future__ import annotations

from tiffin.targets.s3parts import (
    FIRST_PART,
    IN_FLIGHT_BYTES,
    IN_FLIGHT_PARTS,
    MAX_PART,
    MAX_PARTS,
    MIN_PART,
    PART_CAP,
    PARTS_PER_STEP,
    part_size,
)

MiB = 1 << 20
GiB = 1 << 30
TiB = 1 << 40


def schedule(first: int) -> list[int]:
    return [part_size(n, first) for n in range(1, MAX_PARTS + 1)]


def test_ten_thousand_parts_hold_5_tib_from_the_smallest_first_part() -> None:
    assert sum(schedule(MIN_PART)) >= 5 * TiB


def test_ten_thousand_parts_hold_5_tib_from_the_default_first_part() -> None:
    assert FIRST_PART // MiB == 8
    assert sum(schedule(FIRST_PART)) >= 5 * TiB


def test_a_larger_first_part_never_makes_a_part_smaller() -> None:
    # So the 5 TiB bound proven for 5 MiB holds for every first part size from 5 MiB up.
    for n in (1, 700, 701, 1400, 4900, 5600, 5601, 9999, 10_000):
        sizes = [part_size(n, first) for first in (MIN_PART, 6 * MiB, FIRST_PART, 64 * MiB, GiB)]
        assert sizes == sorted(sizes)


def test_parts_stay_within_s3_limits_and_never_shrink() -> None:
    for first in (MIN_PART, FIRST_PART, 100 * MiB, MAX_PART):
        sizes = schedule(first)
        assert all(MIN_PART <= s <= MAX_PART for s in sizes)
        assert sizes == sorted(sizes)


def test_parts_double_every_step_up_to_the_cap() -> None:
    assert part_size(1) == part_size(PARTS_PER_STEP) == 8 * MiB
    assert part_size(PARTS_PER_STEP + 1) == 16 * MiB
    assert part_size(3 * PARTS_PER_STEP + 1) == 64 * MiB
    assert part_size(MAX_PARTS) == PART_CAP == GiB
    assert part_size(10**9) == PART_CAP


def test_dumps_up_to_80_gib_use_parts_of_at_most_64_mib() -> None:
    total, n = 0, 0
    while total < 80 * GiB:
        n += 1
        total += part_size(n)
    assert part_size(n) <= 64 * MiB
    # ... so that the four parts held in memory fit the in-flight budget.
    assert IN_FLIGHT_PARTS * 64 * MiB <= IN_FLIGHT_BYTES


def test_tests_may_grow_parts_faster() -> None:
    sizes = [part_size(n, 5 * MiB, 4) // MiB for n in range(1, 14)]
    assert sizes == [5] * 4 + [10] * 4 + [20] * 4 + [40]
