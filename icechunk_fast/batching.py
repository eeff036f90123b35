"""Range planning for batched reads: which storage requests serve many byte ranges.

Pure functions over NumPy columns, no I/O. A batch of reads is a list of byte ranges
``[start, end)`` of storage objects. :func:`plan_reads` groups ranges of the same object
whose gaps are small into one coalesced span (one request instead of many), and cuts
spans that are very large into parts that can be fetched in parallel.
:meth:`ReadPlan.serve` turns the fetched parts back into one value per range.

Chunks are usually packed many to an object (see ``packs.py``), so a read of
neighbouring chunks becomes a handful of requests. The defaults follow what other
readers of object storage use: zarr's ``Store.get_ranges`` merges ranges at most 1 MiB
apart into fetches of at most 16 MiB, and object_store (obstore) coalesces ranges at
most 1 MiB apart; Icechunk cuts large reads into parts of about 12 MiB, fetched at once.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import InvalidInputError

__all__ = [
    "DEFAULT_COALESCE_GAP_BYTES",
    "DEFAULT_COALESCE_MAX_BYTES",
    "DEFAULT_SPLIT_BYTES",
    "CoalescePolicy",
    "ReadPlan",
    "plan_reads",
]

DEFAULT_COALESCE_GAP_BYTES = 1 << 20
DEFAULT_COALESCE_MAX_BYTES = 16 << 20
DEFAULT_SPLIT_BYTES = 32 << 20

_I64 = np.int64
_OVERFLOW_GUARD = 1 << 62


@dataclass(frozen=True, slots=True)
class CoalescePolicy:
    """How ranges become requests.

    Parameters
    ----------
    max_gap_bytes
        Two ranges of one object are fetched together if at most this many unrequested
        bytes lie between them (0: only ranges that touch or overlap).
    max_coalesced_bytes
        A coalesced request spans at most this many bytes, unless a single range is
        larger. 0 turns coalescing off: every range is a request of its own.
    split_bytes
        A request longer than this is cut into equal parts of at most this size,
        fetched concurrently. 0 never splits.
    """

    max_gap_bytes: int = DEFAULT_COALESCE_GAP_BYTES
    max_coalesced_bytes: int = DEFAULT_COALESCE_MAX_BYTES
    split_bytes: int = DEFAULT_SPLIT_BYTES

    def __post_init__(self) -> None:
        for name in ("max_gap_bytes", "max_coalesced_bytes", "split_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 0:
                raise InvalidInputError(f"{name} must be a non-negative int, got {value!r}")


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """Requests that serve a batch of ranges, and where each range lies in them.

    Requests are numbered ``0..n_parts-1``; consecutive parts of one coalesced span
    (a *group*) are numbered consecutively, in order.

    Attributes
    ----------
    part_object, part_start, part_end
        One storage request per entry: object index and byte range.
    group_parts
        Index of the first part of every group, plus the total number of parts.
    group_start, group_end
        Byte span of every group in its object.
    member_group, member_offset, member_length
        For every input range, in input order: its group, its start relative to the
        group's start, and its length.
    """

    part_object: np.ndarray
    part_start: np.ndarray
    part_end: np.ndarray
    group_parts: np.ndarray
    group_start: np.ndarray
    group_end: np.ndarray
    member_group: np.ndarray
    member_offset: np.ndarray
    member_length: np.ndarray

    @property
    def n_parts(self) -> int:
        return len(self.part_start)

    def serve(self, parts: Sequence[bytes]) -> list[bytes]:
        """The bytes of every input range, in input order, from the fetched ``parts``.

        A part shorter than requested (an object shorter than the refs say) yields
        short values for the ranges it covers; :meth:`short_members` finds them.
        """
        if len(parts) != self.n_parts:
            raise ValueError(f"expected {self.n_parts} parts, got {len(parts)}")
        if len(self.group_start) == self.n_parts:
            groups: Sequence[bytes] = parts
        else:
            bounds = self.group_parts.tolist()
            groups = [
                parts[a] if b == a + 1 else b"".join(parts[a:b])
                for a, b in itertools.pairwise(bounds)
            ]
        offsets = self.member_offset.tolist()
        ends = (self.member_offset + self.member_length).tolist()
        # a range that is its whole group is the part itself (bytes slicing returns it)
        return [
            groups[g][a:b]
            for g, a, b in zip(self.member_group.tolist(), offsets, ends, strict=True)
        ]

    def complete(self, parts: Sequence[bytes]) -> bool:
        """True if every part has the length requested."""
        got = np.fromiter(map(len, parts), dtype=_I64, count=len(parts))
        return bool(np.array_equal(got, self.part_end - self.part_start))

    def short_members(self, values: Sequence[bytes]) -> np.ndarray:
        """Indices of input ranges whose served value is shorter than the range."""
        got = np.fromiter(map(len, values), dtype=_I64, count=len(values))
        return np.flatnonzero(got != self.member_length)


def plan_reads(
    objects: Sequence[int] | np.ndarray,
    starts: Sequence[int] | np.ndarray,
    ends: Sequence[int] | np.ndarray,
    policy: CoalescePolicy | None = None,
) -> ReadPlan:
    """Plan the requests that fetch byte ranges ``[starts[i], ends[i])`` of ``objects[i]``.

    Ranges of one object are taken in order of their start; a range joins the current
    coalesced span if it lies inside the span, or if the gap to the span's end is at
    most ``max_gap_bytes`` and the grown span stays within ``max_coalesced_bytes``.
    So no span exceeds the limit unless its first range alone does, and no span holds a
    gap larger than ``max_gap_bytes`` between requested bytes. Spans longer than
    ``split_bytes`` are cut into parts.

    Parameters
    ----------
    objects
        Object index of every range (any integers; equal means the same object).
    starts, ends
        Byte ranges, ``0 <= start < end``.
    policy
        Gap, size and split limits (default: :class:`CoalescePolicy`'s defaults).

    Returns
    -------
    ReadPlan

    Raises
    ------
    ValueError
        Columns of different lengths, negative starts or empty ranges.
    """
    policy = policy or CoalescePolicy()
    obj = np.asarray(objects, dtype=_I64)
    start = np.asarray(starts, dtype=_I64)
    end = np.asarray(ends, dtype=_I64)
    n = len(obj)
    if not (len(start) == len(end) == n) or obj.ndim != 1:
        raise ValueError("objects, starts and ends must be 1-d columns of one length")
    if n and (int(start.min()) < 0 or bool(np.any(end <= start))):
        raise ValueError("ranges must satisfy 0 <= start < end")
    if n == 0:
        empty = np.zeros(0, _I64)
        return ReadPlan(empty, empty, empty, np.zeros(1, _I64), empty, empty, empty, empty, empty)

    order = np.lexsort((start, obj))
    s_obj, s_start, s_end = obj[order], start[order], end[order]
    new_object = np.ones(n, dtype=bool)
    new_object[1:] = s_obj[1:] != s_obj[:-1]
    reach = _reach(s_start, s_end, new_object)

    group_first = _group_firsts(s_start, reach, new_object, policy)
    group_of_sorted = np.cumsum(_flags(group_first, n)) - 1
    g_start = s_start[group_first]
    g_end = np.maximum.reduceat(s_end, group_first)
    g_obj = s_obj[group_first]

    member_group = np.empty(n, dtype=_I64)
    member_group[order] = group_of_sorted
    member_offset = start - g_start[member_group]

    part_object, part_start, part_end, group_parts = _split(g_obj, g_start, g_end, policy)
    return ReadPlan(
        part_object,
        part_start,
        part_end,
        group_parts,
        g_start,
        g_end,
        member_group,
        member_offset,
        end - start,
    )


def _flags(indices: np.ndarray, n: int) -> np.ndarray:
    flags = np.zeros(n, dtype=bool)
    flags[indices] = True
    return flags


def _reach(start: np.ndarray, end: np.ndarray, new_object: np.ndarray) -> np.ndarray:
    """Running maximum of ``end`` within each object (ranges sorted by object, start).

    One ``maximum.accumulate`` over ends lifted by ``object rank * stride``, so that no
    object's values leak into the next; ends are taken relative to the object's first
    start to keep the stride small.
    """
    rank = np.cumsum(new_object) - 1
    base = start[new_object][rank]
    rel_end = end - base
    stride = int(rel_end.max()) + 1
    if (int(rank[-1]) + 1) * stride < _OVERFLOW_GUARD:
        lift = rank * stride
        return np.maximum.accumulate(rel_end + lift) - lift + base
    # (objects x span) beyond int64, only with offsets of exabytes: one object at a time
    out = np.empty_like(end)
    firsts = np.append(np.flatnonzero(new_object), len(end))
    for a, b in itertools.pairwise(firsts.tolist()):
        out[a:b] = np.maximum.accumulate(end[a:b])
    return out


def _group_firsts(
    start: np.ndarray, reach: np.ndarray, new_object: np.ndarray, policy: CoalescePolicy
) -> np.ndarray:
    """Sorted indices where a coalesced span begins."""
    n = len(start)
    limit = policy.max_coalesced_bytes
    if limit == 0:
        return np.arange(n, dtype=_I64)
    # runs: a new object, or a gap to everything before in the object above the limit
    breaks = new_object.copy()
    breaks[1:] |= start[1:] - reach[:-1] > policy.max_gap_bytes
    run_first = np.flatnonzero(breaks)
    run_last = np.append(run_first[1:], n) - 1
    too_long = np.flatnonzero(reach[run_last] - start[run_first] > limit)
    if not len(too_long):
        return run_first
    # Only runs longer than the limit are cut, greedily: a span from range i takes every
    # following range whose running end stays within start[i] + limit (or within range
    # i itself, when that alone is longer). ``reach`` is monotone inside a run, so each
    # span is one binary search; the loop runs once per span, not once per range.
    firsts = [run_first]
    for r in too_long.tolist():
        i, last = int(run_first[r]), int(run_last[r])
        window = reach[i : last + 1]
        offset = i
        cuts = []
        while i <= last:
            bound = max(int(start[i]) + limit, int(reach[i]))
            j = offset + int(np.searchsorted(window, bound, side="right")) - 1
            cuts.append(i)
            i = max(j, i) + 1
        firsts.append(np.asarray(cuts[1:], dtype=_I64))
    return np.unique(np.concatenate(firsts))


def _split(
    g_obj: np.ndarray, g_start: np.ndarray, g_end: np.ndarray, policy: CoalescePolicy
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cut spans longer than ``split_bytes`` into parts whose sizes differ by at most 1."""
    length = g_end - g_start
    split = policy.split_bytes
    if split == 0 or int(length.max()) <= split:
        return g_obj, g_start, g_end, np.arange(len(g_start) + 1, dtype=_I64)
    count = np.where(length > split, -(-length // split), 1)
    group_parts = np.zeros(len(count) + 1, dtype=_I64)
    np.cumsum(count, out=group_parts[1:])
    group = np.repeat(np.arange(len(count)), count)
    k = np.arange(int(group_parts[-1]), dtype=_I64) - group_parts[group]
    # the first ``extra`` parts of a span get one byte more (no products that overflow)
    size, extra = np.divmod(length, count)
    size, extra = size[group], extra[group]
    part_start = g_start[group] + k * size + np.minimum(k, extra)
    part_end = part_start + size + (k < extra)
    return g_obj[group], part_start, part_end, group_parts
