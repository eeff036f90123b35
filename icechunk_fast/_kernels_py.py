"""Pure-NumPy implementation of the manifest kernels.

This module is the fallback for :mod:`icechunk_fast._kernels` (the compiled Cython
module). Both modules expose the same functions with the same signatures, return
identical results and raise the same exceptions with the same messages; the test-suite
checks this. Do not import anything else from ``icechunk_fast`` here.

Coordinates are int64 chunk-grid coordinates stored as C-contiguous arrays of shape
``(n, ndim)``; "sorted" always means sorted lexicographically, like tuples.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._kernel_args import (
    _as_buffer,
    _as_coords,
    _as_flags,
    _check_parse_args,
    _check_same_ndim,
    _check_zero_dim_unique,
    _count_error,
    _key_error,
)

__all__ = [
    "format_chunk_keys",
    "lookup_coords",
    "lookup_one",
    "merge_plan",
    "parse_chunk_keys",
    "sort_coords",
]

_INT64_MAX = (1 << 63) - 1
# Exclusive upper bound a linearized row key may reach (keys live in [0, 2**63)).
_KEY_LIMIT = 1 << 63


# ----------------------------------------------------------------- row-key encoding


def _densify(key: NDArray[np.int64]) -> tuple[NDArray[np.int64], int]:
    uniq, inverse = np.unique(key, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64, copy=False), int(uniq.shape[0])


def _row_keys(arrays: list[NDArray[np.int64]]) -> list[NDArray[np.int64]]:
    """Order-preserving int64 keys for the rows of several ``(., d)`` arrays.

    For rows ``r``, ``s`` of any of the arrays, ``key(r) < key(s)`` iff ``r < s``
    lexicographically, and equal keys mean equal rows. Dimensions are combined in
    mixed radix (dimension 0 most significant) using the value range of each
    dimension; when the product no longer fits in 63 bits, dimensions (and the
    partial key) are replaced by their dense ranks, which always fit.
    """
    sizes = [a.shape[0] for a in arrays]
    total = sum(sizes)
    d = arrays[0].shape[1]
    if d == 0 or total == 0:
        return [np.zeros(s, dtype=np.int64) for s in sizes]
    stacked = np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
    key = np.zeros(total, dtype=np.int64)
    bound = 1  # every key value lies in [0, bound)
    for k in range(d):
        col = stacked[:, k]
        lo = int(col.min())
        extent = int(col.max()) - lo + 1
        if bound * extent <= _KEY_LIMIT:
            # col - lo lies in [0, extent) so the wrapping int64 arithmetic is exact.
            shifted = col - np.int64(lo)
            key = shifted if bound == 1 else key * np.int64(extent) + shifted
            bound *= extent
            continue
        uniq, ranks = np.unique(col, return_inverse=True)
        extent = int(uniq.shape[0])
        if bound * extent > _KEY_LIMIT:
            key, bound = _densify(key)
        key = key * np.int64(extent) + ranks.reshape(-1).astype(np.int64, copy=False)
        bound *= extent
    out = []
    offset = 0
    for s in sizes:
        out.append(key[offset : offset + s])
        offset += s
    return out


# ------------------------------------------------------------------------- kernels


def _rows_less(a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Row-wise ``a[i] < b[i]`` lexicographically (loops over dimensions, not rows)."""
    lt = np.zeros(a.shape[0], dtype=np.bool_)
    eq = np.ones(a.shape[0], dtype=np.bool_)
    for k in range(a.shape[1]):
        lt |= eq & (a[:, k] < b[:, k])
        eq &= a[:, k] == b[:, k]
    return lt


def _lookup_by_search(base: NDArray[np.int64], q: NDArray[np.int64]) -> NDArray[np.int64]:
    """Vectorized lower-bound binary search of all queries at once: O(m log n) work, so
    a few queries against a big manifest do not pay for touching every row."""
    n = base.shape[0]
    lo = np.zeros(q.shape[0], dtype=np.int64)
    hi = np.full(q.shape[0], n, dtype=np.int64)
    for _ in range(n.bit_length()):
        active = lo < hi
        if not active.any():
            break
        mid = (lo + hi) >> 1
        less = _rows_less(base[np.minimum(mid, n - 1)], q)
        lo = np.where(active & less, mid + 1, lo)
        hi = np.where(active & ~less, mid, hi)
    at = np.minimum(lo, n - 1)
    found = (lo < n) & (base[at] == q).all(axis=1)
    return np.where(found, lo, np.int64(-1)).astype(np.int64, copy=False)


def _lookup_by_keys(base: NDArray[np.int64], q: NDArray[np.int64]) -> NDArray[np.int64]:
    """Pack rows into order-preserving int64 keys, then one ``np.searchsorted``."""
    kb, kq = _row_keys([base, q])
    pos = np.minimum(np.searchsorted(kb, kq), base.shape[0] - 1)
    found = kb[pos] == kq
    return np.where(found, pos, np.int64(-1)).astype(np.int64, copy=False)


def lookup_coords(sorted_coords: ArrayLike, queries: ArrayLike) -> NDArray[np.int64]:
    """Row index of each query in ``sorted_coords`` (sorted, unique), or -1 if absent."""
    base = _as_coords(sorted_coords, "sorted_coords")
    q = _as_coords(queries, "queries")
    _check_same_ndim(base, q, "sorted_coords", "queries")
    _check_zero_dim_unique(base, "sorted_coords")
    n = base.shape[0]
    m = q.shape[0]
    if n == 0 or m == 0:
        return np.full(m, -1, dtype=np.int64)
    if base.shape[1] == 0:
        return np.zeros(m, dtype=np.int64)
    # Packing keys costs O(n + m); the batched binary search O(m log n) with a larger
    # constant: use the search when the queries are few compared with the rows.
    if 4 * m * n.bit_length() <= n:
        return _lookup_by_search(base, q)
    return _lookup_by_keys(base, q)


def merge_plan(base: ArrayLike, changes: ArrayLike, delete: ArrayLike) -> NDArray[np.int64]:
    """Permutation of ``concatenate([base, changes])`` rows giving the merged manifest.

    ``base`` and ``changes`` are sorted and unique. A change replaces the equal base
    row; a change flagged in ``delete`` removes it instead (and produces nothing when
    there is no equal base row). Values ``< len(base)`` index base rows, values
    ``>= len(base)`` index change rows offset by ``len(base)``.
    """
    b = _as_coords(base, "base")
    c = _as_coords(changes, "changes")
    _check_same_ndim(b, c, "base", "changes")
    _check_zero_dim_unique(b, "base")
    _check_zero_dim_unique(c, "changes")
    flags = _as_flags(delete, c.shape[0])
    nb = b.shape[0]
    nc = c.shape[0]
    keep_change = np.flatnonzero(~flags)
    if nc == 0:
        return np.arange(nb, dtype=np.int64)
    if nb == 0:
        return (keep_change + nb).astype(np.int64, copy=False)
    kb, kc = _row_keys([b, c])
    pos = np.searchsorted(kb, kc)
    pos_c = np.minimum(pos, nb - 1)
    matched = kb[pos_c] == kc
    keep_base = np.ones(nb, dtype=np.bool_)
    keep_base[pos_c[matched]] = False
    base_idx = np.flatnonzero(keep_base)
    # Number of surviving base rows before each kept change, plus its rank among
    # the kept changes, is its slot in the output.
    before = np.cumsum(keep_base, dtype=np.int64)
    kept_pos = pos[keep_change]
    n_before = np.where(kept_pos > 0, before[np.maximum(kept_pos - 1, 0)], 0)
    slots = n_before + np.arange(keep_change.shape[0], dtype=np.int64)
    out = np.empty(base_idx.shape[0] + keep_change.shape[0], dtype=np.int64)
    is_base = np.ones(out.shape[0], dtype=np.bool_)
    is_base[slots] = False
    out[slots] = keep_change + nb
    out[is_base] = base_idx
    return out


def _parse_vectorized(
    data: bytes, count: int, ndim: int, sep: int, skip: int
) -> tuple[NDArray[np.int64], int, int]:
    """Parse the first ``count`` keys of ``data``.

    Returns ``(coords, bad, start)`` where ``bad`` is the index of the first malformed
    key and ``start`` its offset in ``data``, or ``bad == -1`` if all ``count`` keys are
    valid (then ``coords`` has shape (count, ndim)).
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 0x0A)[:count]
    ends = np.empty(count, dtype=np.int64)
    ends[: count - 1] = newlines[: count - 1]
    ends[count - 1] = newlines[count - 1] if newlines.shape[0] >= count else buf.shape[0]
    starts = np.empty(count, dtype=np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    bad_key = (ends - starts) < skip
    empty = np.empty((count, ndim), dtype=np.int64)
    if ndim == 0:
        bad_key |= (ends - starts) > skip
        return _first_bad(empty, bad_key, starts)

    body_start = np.minimum(starts + skip, ends)
    limit = int(ends[-1])
    # Work on the first `count` keys followed by a sentinel newline.
    work = np.empty(limit + 1, dtype=np.uint8)
    work[:limit] = buf[:limit]
    work[limit] = 0x0A
    # +1 where a body starts, -1 where its key ends (indices are unique per array).
    marker = np.zeros(limit + 2, dtype=np.int8)
    marker[body_start] += 1
    marker[ends] -= 1
    in_body = np.cumsum(marker[: limit + 1], dtype=np.int8) > 0
    is_sep = (work == sep) & in_body
    is_digit = (work - np.uint8(0x30)) <= 9
    invalid_pos = np.flatnonzero(in_body & ~is_sep & ~is_digit)
    if invalid_pos.shape[0]:
        bad_key[np.searchsorted(ends, invalid_pos)] = True
    sep_pos = np.flatnonzero(is_sep)
    sep_count = np.bincount(np.searchsorted(ends, sep_pos), minlength=count)
    bad_key |= sep_count != ndim - 1

    # Field boundaries: every in-body separator and every key end, in buffer order.
    is_delim = is_sep
    is_delim[ends] = True
    fend = np.flatnonzero(is_delim)
    delim_is_end = work[fend] == 0x0A
    first = np.empty(fend.shape[0], dtype=np.bool_)
    first[0] = True
    first[1:] = delim_is_end[:-1]
    fstart = np.empty(fend.shape[0], dtype=np.int64)
    fstart[1:] = fend[:-1] + 1
    fstart[first] = body_start
    field_key = np.cumsum(first, dtype=np.int64) - 1
    flen = fend - fstart
    bad_field = (flen == 0) | (flen > 19)
    bad_field |= (flen > 1) & (work[np.minimum(fstart, limit)] == 0x30)
    value = np.zeros(fend.shape[0], dtype=np.uint64)
    max_len = min(int(flen.max()), 19)
    ten = np.uint64(10)
    for j in range(max_len):
        active = flen > j
        digit = work[np.where(active, fstart + j, limit)].astype(np.uint64) - np.uint64(0x30)
        value = np.where(active, value * ten + digit, value)
    bad_field |= value > np.uint64(_INT64_MAX)
    bad_key[field_key[bad_field]] = True
    if bad_key.any():
        return _first_bad(empty, bad_key, starts)
    return value.astype(np.int64).reshape(count, ndim), -1, 0


def _first_bad(
    empty: NDArray[np.int64], bad_key: NDArray[np.bool_], starts: NDArray[np.int64]
) -> tuple[NDArray[np.int64], int, int]:
    bad = np.flatnonzero(bad_key)
    if bad.shape[0] == 0:
        return empty, -1, 0
    return empty, int(bad[0]), int(starts[bad[0]])


def parse_chunk_keys(
    joined: bytes | bytearray | memoryview, n: int, ndim: int, sep: bytes | str, skip: int
) -> NDArray[np.int64]:
    """Parse ``n`` newline-joined chunk keys into an int64 array of shape (n, ndim).

    The first ``skip`` bytes of each key are ignored; the rest must be exactly
    ``ndim`` canonical non-negative decimal integers (no sign, no leading zeros)
    separated by the single byte ``sep``. Raises ValueError naming the first
    malformed key and its index, or if the number of keys is not ``n``.
    """
    sep_c = _check_parse_args(n, ndim, sep, skip)
    data = _as_buffer(joined)
    if n == 0:
        if data:
            raise _count_error(data, n)
        return np.empty((0, ndim), dtype=np.int64)
    found = data.count(b"\n") + 1
    count = min(n, found)
    coords, bad, start = _parse_vectorized(data, count, ndim, sep_c, skip)
    if bad >= 0:
        raise _key_error(data, start, bad, ndim, sep_c, skip)
    if found != n:
        raise _count_error(data, n)
    return coords


def format_chunk_keys(coords: ArrayLike, prefix: str, sep: str) -> list[str]:
    """``[prefix + sep.join(map(str, row)) for row in coords]``."""
    c = _as_coords(coords, "coords")
    if not isinstance(prefix, str) or not isinstance(sep, str):
        raise TypeError("prefix and sep must be str")
    if c.shape[1] == 0:
        return [prefix] * c.shape[0]
    return [prefix + sep.join(map(str, row)) for row in c.tolist()]


def sort_coords(coords: ArrayLike) -> NDArray[np.int64]:
    """Stable permutation sorting the rows of ``coords`` lexicographically."""
    c = _as_coords(coords, "coords")
    n, d = c.shape
    if d == 0 or n <= 1:
        return np.arange(n, dtype=np.int64)
    (key,) = _row_keys([c])
    return np.argsort(key, kind="stable").astype(np.int64, copy=False)


def lookup_one(sorted_coords: NDArray[np.int64], query: tuple[int, ...]) -> int:
    """Row of one ``query`` tuple in ``sorted_coords`` (int64, C order, sorted, unique), or -1."""
    if sorted_coords.ndim != 2 or len(query) != sorted_coords.shape[1]:
        raise ValueError(f"query has {len(query)} coordinates, the manifest {sorted_coords.shape}")
    n, d = sorted_coords.shape
    if n == 0:
        return -1
    if d == 0:
        return 0
    lo, hi = 0, n
    while lo < hi:  # binary search on rows compared as tuples
        mid = (lo + hi) // 2
        row = tuple(sorted_coords[mid].tolist())
        if row == query:
            return mid
        if row < query:
            lo = mid + 1
        else:
            hi = mid
    return -1
