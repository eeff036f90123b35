"""The range planner of batched reads: requests serve every range exactly, within limits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from icechunk_fast import RepositoryConfig
from icechunk_fast.batching import CoalescePolicy, ReadPlan, plan_reads
from icechunk_fast.errors import InvalidInputError

KIB = 1024


def fetch(plan: ReadPlan, objects: list[bytes]) -> list[bytes]:
    """What a storage returns for the plan's requests."""
    return [
        objects[o][s:e]
        for o, s, e in zip(
            plan.part_object.tolist(), plan.part_start.tolist(), plan.part_end.tolist(), strict=True
        )
    ]


def spans(plan: ReadPlan) -> list[tuple[int, int, int]]:
    return list(
        zip(
            plan.part_object.tolist(), plan.part_start.tolist(), plan.part_end.tolist(), strict=True
        )
    )


# -- examples ------------------------------------------------------------------------------
def test_neighbours_in_one_object_become_one_request() -> None:
    starts = np.arange(100) * KIB
    plan = plan_reads(np.zeros(100, int), starts, starts + KIB)
    assert spans(plan) == [(0, 0, 100 * KIB)]
    assert plan.member_offset.tolist() == starts.tolist()


def test_objects_are_never_mixed() -> None:
    plan = plan_reads([0, 1, 0, 1], [0, 0, 10, 10], [10, 10, 20, 20])
    assert sorted(spans(plan)) == [(0, 0, 20), (1, 0, 20)]


def test_gap_limit_is_inclusive() -> None:
    policy = CoalescePolicy(max_gap_bytes=100)
    assert len(spans(plan_reads([0, 0], [0, 110], [10, 120], policy))) == 1  # gap of 100
    assert len(spans(plan_reads([0, 0], [0, 111], [10, 121], policy))) == 2  # gap of 101
    touching = CoalescePolicy(max_gap_bytes=0)
    assert len(spans(plan_reads([0, 0], [0, 10], [10, 20], touching))) == 1


def test_size_limit_cuts_long_runs() -> None:
    policy = CoalescePolicy(max_gap_bytes=0, max_coalesced_bytes=4 * KIB, split_bytes=0)
    starts = np.arange(10) * KIB
    plan = plan_reads(np.zeros(10, int), starts, starts + KIB, policy)
    assert spans(plan) == [(0, 0, 4 * KIB), (0, 4 * KIB, 8 * KIB), (0, 8 * KIB, 10 * KIB)]


def test_ranges_inside_a_large_one_ride_along() -> None:
    policy = CoalescePolicy(max_coalesced_bytes=100, split_bytes=0)
    plan = plan_reads([0, 0, 0, 0], [0, 10, 500, 990], [1000, 20, 510, 1000], policy)
    assert spans(plan) == [(0, 0, 1000)]  # over the limit only because one range is


def test_duplicates_and_overlaps_share_a_request() -> None:
    plan = plan_reads([0, 0, 0], [5, 5, 8], [10, 10, 20])
    assert spans(plan) == [(0, 5, 20)]
    assert plan.serve([bytes(range(5, 20))]) == [bytes(range(5, 10))] * 2 + [bytes(range(8, 20))]


def test_coalescing_off_makes_one_request_per_range() -> None:
    policy = CoalescePolicy(max_coalesced_bytes=0)
    plan = plan_reads([0, 0, 0], [0, 0, 10], [10, 10, 20], policy)
    assert sorted(spans(plan)) == [(0, 0, 10), (0, 0, 10), (0, 10, 20)]


def test_large_reads_are_split_into_balanced_parts() -> None:
    policy = CoalescePolicy(split_bytes=32)
    plan = plan_reads([0], [7], [7 + 100])
    assert spans(plan) == [(0, 7, 107)]  # default split: 32 MiB
    plan = plan_reads([0], [7], [7 + 100], policy)
    assert spans(plan) == [(0, 7, 32), (0, 32, 57), (0, 57, 82), (0, 82, 107)]
    data = bytes(range(256))
    assert plan.serve(fetch(plan, [data])) == [data[7:107]]


def test_short_parts_are_reported() -> None:
    plan = plan_reads([0, 0], [0, 10], [10, 20])
    values = plan.serve([b"x" * 15])  # the object ends early
    assert not plan.complete([b"x" * 15])
    assert plan.short_members(values).tolist() == [1]


def test_empty_batch() -> None:
    plan = plan_reads([], [], [])
    assert plan.n_parts == 0 and plan.serve([]) == []


def test_objects_exabytes_apart_take_the_exact_path() -> None:
    # offsets this large overflow the one-pass running maximum: the planner falls back
    big = 1 << 61
    objects, starts, ends = [0, 0, 1, 1, 2, 2], [0, big, 0, 1, 5, 6], [1, big + 1, 1, 2, 6, 7]
    plan = plan_reads(objects, starts, ends)
    assert sorted(spans(plan)) == [(0, 0, 1), (0, big, big + 1), (1, 0, 2), (2, 5, 7)]


@pytest.mark.parametrize(
    ("objects", "starts", "ends"),
    [([0], [-1], [5]), ([0], [5], [5]), ([0, 1], [0], [1]), ([[0]], [[0]], [[1]])],
)
def test_invalid_ranges_are_refused(objects: list, starts: list, ends: list) -> None:
    with pytest.raises(ValueError):
        plan_reads(objects, starts, ends)


def test_policy_limits_must_be_non_negative() -> None:
    with pytest.raises(InvalidInputError):
        CoalescePolicy(max_gap_bytes=-1)


# -- properties ----------------------------------------------------------------------------
@st.composite
def scattered(draw: st.DrawFn) -> tuple[list[bytes], list[int], list[int], list[int]]:
    """Random ranges (overlapping, nested, repeated) of a few small objects."""
    sizes = draw(st.lists(st.integers(1, 4000), min_size=1, max_size=4))
    objs, starts, ends = [], [], []
    for _ in range(draw(st.integers(0, 60))):
        o = draw(st.integers(0, len(sizes) - 1))
        start = draw(st.integers(0, sizes[o] - 1))
        objs.append(o)
        starts.append(start)
        ends.append(draw(st.integers(start + 1, sizes[o])))
    return [_content(i, n) for i, n in enumerate(sizes)], objs, starts, ends


@st.composite
def packed(draw: st.DrawFn) -> tuple[list[bytes], list[int], list[int], list[int]]:
    """Some chunks of packs: objects tiled by chunks back to back, as packs.py writes."""
    objs, starts, ends, sizes = [], [], [], []
    for o in range(draw(st.integers(1, 3))):
        lengths = draw(st.lists(st.integers(1, 400), min_size=1, max_size=40))
        offset = 0
        for length in lengths:
            if draw(st.booleans()):
                objs.append(o)
                starts.append(offset)
                ends.append(offset + length)
            offset += length
        sizes.append(offset)
    order = draw(st.permutations(range(len(objs))))  # zarr asks in any order
    pick = [objs[i] for i in order], [starts[i] for i in order], [ends[i] for i in order]
    return [_content(i, n) for i, n in enumerate(sizes)], *pick


def _content(seed: int, n: int) -> bytes:
    return bytes(np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8))


batches = st.one_of(scattered(), packed())


policies = st.builds(
    CoalescePolicy,
    max_gap_bytes=st.integers(0, 600),
    max_coalesced_bytes=st.integers(0, 3000),
    split_bytes=st.integers(0, 1500),
)


@given(batches, policies)
def test_every_range_is_served_exactly(batch: tuple, policy: CoalescePolicy) -> None:
    objects, objs, starts, ends = batch
    plan = plan_reads(objs, starts, ends, policy)
    parts = fetch(plan, objects)
    assert plan.complete(parts)
    assert plan.serve(parts) == [
        objects[o][s:e] for o, s, e in zip(objs, starts, ends, strict=True)
    ]


@given(batches, policies)
def test_requests_respect_the_limits(batch: tuple, policy: CoalescePolicy) -> None:
    _, objs, starts, ends = batch
    plan = plan_reads(objs, starts, ends, policy)
    assert np.all(plan.part_end > plan.part_start)
    if policy.split_bytes:
        assert np.all(plan.part_end - plan.part_start <= policy.split_bytes)
    members: dict[int, list[tuple[int, int]]] = {}
    for i, g in enumerate(plan.member_group.tolist()):
        members.setdefault(g, []).append((starts[i], ends[i]))
    bounds = plan.group_parts.tolist()
    for g, (g_start, g_end) in enumerate(
        zip(plan.group_start.tolist(), plan.group_end.tolist(), strict=True)
    ):
        own = sorted(members[g])
        # the parts of a group tile its span, in order
        a, b = bounds[g], bounds[g + 1]
        assert plan.part_start[a] == g_start and plan.part_end[b - 1] == g_end
        assert np.array_equal(plan.part_start[a + 1 : b], plan.part_end[a : b - 1])
        assert {objs[i] for i in np.flatnonzero(plan.member_group == g)} == {
            int(plan.part_object[a])
        }
        # the span is exactly what its ranges cover, with no gap above the limit
        assert own[0][0] == g_start and max(e for _, e in own) == g_end
        covered = own[0][1]
        for s, e in own[1:]:
            assert s - covered <= policy.max_gap_bytes
            covered = max(covered, e)
        # over the size limit (or with coalescing off) only as one range and what it holds
        if g_end - g_start > policy.max_coalesced_bytes or policy.max_coalesced_bytes == 0:
            assert (g_start, g_end) in own
            if policy.max_coalesced_bytes == 0:
                assert len(own) == 1


@given(batches)
def test_generous_limits_make_one_request_per_object(batch: tuple) -> None:
    _, objs, starts, ends = batch
    policy = CoalescePolicy(max_gap_bytes=10_000, max_coalesced_bytes=10_000, split_bytes=0)
    plan = plan_reads(objs, starts, ends, policy)
    assert sorted(plan.part_object.tolist()) == sorted(set(objs))


def test_reads_are_split_by_default_only_on_remote_storage() -> None:
    default = RepositoryConfig()
    assert default.read_coalescing(remote=True) == CoalescePolicy()
    assert default.read_coalescing(remote=False) == CoalescePolicy(split_bytes=0)
    chosen = RepositoryConfig(read_coalesce_gap_bytes=5, read_split_bytes=7)
    assert chosen.read_coalescing(remote=False) == CoalescePolicy(5, 16 << 20, 7)
    assert RepositoryConfig.decode(chosen.encode()) == chosen
    with pytest.raises(InvalidInputError):
        RepositoryConfig(read_coalesce_max_bytes=-1)
