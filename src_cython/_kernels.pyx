# cython: language_level=3, embedsignature=True
"""Compiled manifest kernels (built as ``icechunk_fast._kernels``).

Same functions, signatures, results and exceptions as the pure-NumPy fallback
``icechunk_fast._kernels_py``; the test-suite checks parity. Argument checks come
from ``icechunk_fast._kernel_args``, shared with the fallback so that both raise
identical errors; the hot loops run on raw pointers without the GIL.

Coordinates are int64 chunk-grid coordinates stored as C-contiguous arrays of shape
``(n, ndim)``; "sorted" always means sorted lexicographically, like tuples.
"""

from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t, uint8_t, uint64_t

import numpy as np

__all__ = [
    "format_chunk_keys",
    "lookup_coords",
    "lookup_one",
    "merge_plan",
    "parse_chunk_keys",
    "sort_coords",
]


# int64 max is 9223372036854775807: a value v followed by digit g overflows iff
# v > _OVF_DIV or (v == _OVF_DIV and g > _OVF_LAST).
cdef uint64_t _OVF_DIV = 922337203685477580ULL
cdef uint64_t _OVF_LAST = 7


from icechunk_fast._kernel_args import (
    _as_coords,
    _check_same_ndim,
    _check_zero_dim_unique,
    _as_flags,
    _as_buffer,
    _check_parse_args,
    _diagnose_key,
    _key_error,
    _count_error,
)


# --------------------------------------------------------------------- C-level core


cdef inline int _cmp_rows(const int64_t* a, const int64_t* b, Py_ssize_t d) noexcept nogil:
    """Three-way lexicographic comparison of two rows of length d."""
    cdef Py_ssize_t k
    for k in range(d):
        if a[k] != b[k]:
            return -1 if a[k] < b[k] else 1
    return 0


cdef bint _rows_sorted(const int64_t* a, Py_ssize_t n, Py_ssize_t d) noexcept nogil:
    """True if the n rows are in non-decreasing lexicographic order."""
    cdef Py_ssize_t i
    for i in range(1, n):
        if _cmp_rows(a + (i - 1) * d, a + i * d, d) > 0:
            return False
    return True


cdef inline bint _row_less(const int64_t* a, const int64_t* b, Py_ssize_t d) noexcept nogil:
    """a < b lexicographically, computed without data-dependent branches."""
    cdef Py_ssize_t k
    cdef bint lt = 0, eq = 1
    for k in range(d):
        lt = lt | (eq & (a[k] < b[k]))
        eq = eq & (a[k] == b[k])
    return lt


cdef enum:
    _BATCH = 32  # queries searched in lock-step, so their cache misses overlap


cdef void _lookup_random(const int64_t* base, Py_ssize_t n, const int64_t* q, Py_ssize_t m,
                         Py_ssize_t d, int64_t* out) noexcept nogil:
    """Branch-free lower-bound search, _BATCH queries at a time.

    The number of halving steps depends only on n, so a batch of queries can advance
    together and the memory loads of different queries are independent.
    """
    cdef Py_ssize_t g, t, cnt, length, half, lo
    cdef Py_ssize_t pos[_BATCH]
    cdef const int64_t* qi
    g = 0
    while g < m:
        cnt = m - g if m - g < _BATCH else _BATCH
        for t in range(cnt):
            pos[t] = 0
        length = n
        while length > 1:
            half = length >> 1
            for t in range(cnt):
                pos[t] += half * _row_less(base + (pos[t] + half) * d, q + (g + t) * d, d)
            length -= half
        for t in range(cnt):
            qi = q + (g + t) * d
            lo = pos[t] + _row_less(base + pos[t] * d, qi, d)
            if lo < n and _cmp_rows(base + lo * d, qi, d) == 0:
                out[g + t] = lo
            else:
                out[g + t] = -1
        g += _BATCH


cdef void _lookup_sorted(const int64_t* base, Py_ssize_t n, const int64_t* q, Py_ssize_t m,
                         Py_ssize_t d, int64_t* out) noexcept nogil:
    """Queries in non-decreasing order: each search starts from the previous answer and
    probes forward exponentially (galloping), so a sorted batch costs O(log gap) each."""
    cdef Py_ssize_t i, lo = 0, hi, mid, step, probe
    cdef const int64_t* qi
    for i in range(m):
        qi = q + i * d
        # rows before lo are < the previous query <= qi
        step = 1
        while True:
            probe = lo + step - 1
            if probe >= n:
                hi = n
                break
            if _cmp_rows(base + probe * d, qi, d) < 0:
                lo = probe + 1
                step <<= 1
            else:
                hi = probe
                break
        while lo < hi:
            mid = lo + ((hi - lo) >> 1)
            if _cmp_rows(base + mid * d, qi, d) < 0:
                lo = mid + 1
            else:
                hi = mid
        if lo < n and _cmp_rows(base + lo * d, qi, d) == 0:
            out[i] = lo
        else:
            out[i] = -1


cdef Py_ssize_t _merge(const int64_t* b, Py_ssize_t nb, const int64_t* c, Py_ssize_t nc,
                       const uint8_t* tomb, Py_ssize_t d, int64_t* out) noexcept nogil:
    """Two-pointer merge; returns the number of output rows written."""
    cdef Py_ssize_t i = 0, j = 0, k = 0
    cdef int r
    while i < nb and j < nc:
        r = _cmp_rows(b + i * d, c + j * d, d)
        if r < 0:
            out[k] = i
            k += 1
            i += 1
        else:
            if not tomb[j]:
                out[k] = nb + j
                k += 1
            if r == 0:
                i += 1
            j += 1
    while i < nb:
        out[k] = i
        k += 1
        i += 1
    while j < nc:
        if not tomb[j]:
            out[k] = nb + j
            k += 1
        j += 1
    return k


cdef int _parse(const unsigned char* p, Py_ssize_t length, Py_ssize_t n, Py_ssize_t ndim,
                unsigned char sep, Py_ssize_t skip, int64_t* out,
                Py_ssize_t* bad_index, Py_ssize_t* bad_start) noexcept nogil:
    """Single pass over the buffer.

    Returns 0 on success, 1 for a malformed key (its index and offset are stored in
    bad_index / bad_start), 2 when the buffer does not hold exactly n keys.
    """
    cdef Py_ssize_t k, f, s, pos = 0, fstart
    cdef uint64_t v, g
    for k in range(n):
        bad_index[0] = k
        bad_start[0] = pos
        for s in range(skip):
            if pos >= length or p[pos] == 10:
                return 1
            pos += 1
        for f in range(ndim):
            fstart = pos
            v = 0
            while pos < length:
                g = <uint64_t>p[pos] - 48  # wraps around for bytes below '0'
                if g > 9:
                    break
                if v >= _OVF_DIV and (v > _OVF_DIV or g > _OVF_LAST):
                    return 1
                v = v * 10 + g
                pos += 1
            if pos == fstart:
                return 1  # empty coordinate or a non-digit where one should start
            if p[fstart] == 48 and pos - fstart > 1:
                return 1  # leading zero
            out[k * ndim + f] = <int64_t>v
            if f + 1 < ndim:
                if pos < length and p[pos] == sep:
                    pos += 1
                else:
                    return 1
        if pos < length and p[pos] != 10:
            return 1  # anything after the last coordinate
        if k + 1 < n:
            if pos >= length:
                return 2  # fewer keys than n
            pos += 1
        elif pos < length:
            return 2  # more keys than n
    return 0


cdef inline Py_ssize_t _ndigits(uint64_t u) noexcept nogil:
    cdef Py_ssize_t k = 1
    while u >= 10:
        u //= 10
        k += 1
    return k


cdef inline uint64_t _magnitude(int64_t v) noexcept nogil:
    if v >= 0:
        return <uint64_t>v
    return <uint64_t>(-(v + 1)) + 1


cdef Py_ssize_t _format_offsets(const int64_t* c, Py_ssize_t n, Py_ssize_t d,
                                Py_ssize_t plen, Py_ssize_t slen,
                                int64_t* offsets) noexcept nogil:
    """Byte offset of every formatted key in the output buffer; returns total size."""
    cdef Py_ssize_t i, k, total = 0
    cdef int64_t v
    offsets[0] = 0
    for i in range(n):
        total += plen + (d - 1) * slen
        for k in range(d):
            v = c[i * d + k]
            total += _ndigits(_magnitude(v)) + (1 if v < 0 else 0)
        offsets[i + 1] = total
    return total


cdef void _format_write(const int64_t* c, Py_ssize_t n, Py_ssize_t d,
                        const char* prefix, Py_ssize_t plen,
                        const char* sep, Py_ssize_t slen, char* buf) noexcept nogil:
    cdef Py_ssize_t i, k, t, nd, pos = 0
    cdef int64_t v
    cdef uint64_t u
    for i in range(n):
        for t in range(plen):
            buf[pos + t] = prefix[t]
        pos += plen
        for k in range(d):
            if k:
                for t in range(slen):
                    buf[pos + t] = sep[t]
                pos += slen
            v = c[i * d + k]
            if v < 0:
                buf[pos] = 45  # '-'
                pos += 1
            u = _magnitude(v)
            nd = _ndigits(u)
            for t in range(nd - 1, -1, -1):
                buf[pos + t] = <char>(48 + u % 10)
                u //= 10
            pos += nd


# ------------------------------------------------------------------------- kernels


def lookup_coords(sorted_coords, queries):
    """Row index of each query in ``sorted_coords`` (sorted, unique), or -1 if absent."""
    base = _as_coords(sorted_coords, "sorted_coords")
    q = _as_coords(queries, "queries")
    _check_same_ndim(base, q, "sorted_coords", "queries")
    _check_zero_dim_unique(base, "sorted_coords")
    cdef Py_ssize_t n = base.shape[0]
    cdef Py_ssize_t m = q.shape[0]
    cdef Py_ssize_t d = base.shape[1]
    out = np.empty(m, dtype=np.int64)
    if m == 0:
        return out
    if n == 0:
        out.fill(-1)
        return out
    if d == 0:
        out.fill(0)
        return out
    cdef const int64_t[:, ::1] bv = base
    cdef const int64_t[:, ::1] qv = q
    cdef int64_t[::1] ov = out
    with nogil:
        if _rows_sorted(&qv[0, 0], m, d):
            _lookup_sorted(&bv[0, 0], n, &qv[0, 0], m, d, &ov[0])
        else:
            _lookup_random(&bv[0, 0], n, &qv[0, 0], m, d, &ov[0])
    return out


def merge_plan(base, changes, delete):
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
    cdef Py_ssize_t nb = b.shape[0]
    cdef Py_ssize_t nc = c.shape[0]
    cdef Py_ssize_t d = b.shape[1]
    if nc == 0:
        return np.arange(nb, dtype=np.int64)
    if nb == 0:
        return (np.flatnonzero(~flags) + nb).astype(np.int64, copy=False)
    out = np.empty(nb + nc, dtype=np.int64)
    cdef Py_ssize_t k = _merge_arrays(b, c, flags.view(np.uint8), d, out)
    if k == nb + nc:
        return out
    return out[:k].copy()


cdef Py_ssize_t _merge_arrays(b, c, flags, Py_ssize_t d, out):
    cdef Py_ssize_t nb = b.shape[0]
    cdef Py_ssize_t nc = c.shape[0]
    cdef const uint8_t[::1] fv = flags
    cdef int64_t[::1] ov = out
    cdef const int64_t[:, ::1] bv
    cdef const int64_t[:, ::1] cv
    cdef const int64_t* bp = NULL
    cdef const int64_t* cp = NULL
    cdef Py_ssize_t k
    if d > 0:
        bv = b
        cv = c
        bp = &bv[0, 0]
        cp = &cv[0, 0]
    with nogil:
        k = _merge(bp, nb, cp, nc, &fv[0], d, &ov[0])
    return k


def parse_chunk_keys(joined, Py_ssize_t n, Py_ssize_t ndim, sep, Py_ssize_t skip):
    """Parse ``n`` newline-joined chunk keys into an int64 array of shape (n, ndim).

    The first ``skip`` bytes of each key are ignored; the rest must be exactly
    ``ndim`` canonical non-negative decimal integers (no sign, no leading zeros)
    separated by the single byte ``sep``. Raises ValueError naming the first
    malformed key and its index, or if the number of keys is not ``n``.
    """
    cdef unsigned char sep_c = _check_parse_args(n, ndim, sep, skip)
    data = _as_buffer(joined)
    cdef Py_ssize_t length = len(data)
    if n == 0:
        if length:
            raise _count_error(data, n)
        return np.empty((0, ndim), dtype=np.int64)
    out = np.empty((n, ndim), dtype=np.int64)
    cdef const unsigned char[::1] bv = data
    cdef int64_t[:, ::1] ov
    cdef const unsigned char* bp = NULL
    cdef int64_t* op = NULL
    cdef Py_ssize_t bad_index = 0, bad_start = 0
    cdef int status
    if length:
        bp = &bv[0]
    if ndim:
        ov = out
        op = &ov[0, 0]
    with nogil:
        status = _parse(bp, length, n, ndim, sep_c, skip, op, &bad_index, &bad_start)
    if status == 1:
        raise _key_error(data, bad_start, bad_index, ndim, sep_c, skip)
    if status == 2:
        raise _count_error(data, n)
    return out


def format_chunk_keys(coords, prefix, sep):
    """``[prefix + sep.join(map(str, row)) for row in coords]``."""
    c = _as_coords(coords, "coords")
    if not isinstance(prefix, str) or not isinstance(sep, str):
        raise TypeError("prefix and sep must be str")
    cdef Py_ssize_t n = c.shape[0]
    cdef Py_ssize_t d = c.shape[1]
    if d == 0:
        return [prefix] * n
    if n == 0:
        return []
    cdef bytes pb = prefix.encode("utf-8", "surrogatepass")
    cdef bytes sb = sep.encode("utf-8", "surrogatepass")
    cdef const char* pp = pb
    cdef const char* sp = sb
    cdef Py_ssize_t plen = len(pb)
    cdef Py_ssize_t slen = len(sb)
    cdef const int64_t[:, ::1] cv = c
    offsets = np.empty(n + 1, dtype=np.int64)
    cdef int64_t[::1] offv = offsets
    cdef Py_ssize_t total
    with nogil:
        total = _format_offsets(&cv[0, 0], n, d, plen, slen, &offv[0])
    buf = np.empty(total, dtype=np.uint8)
    cdef uint8_t[::1] bufv = buf
    cdef char* base = <char*>&bufv[0]
    with nogil:
        _format_write(&cv[0, 0], n, d, pp, plen, sp, slen, base)
    cdef list result = [None] * n
    cdef Py_ssize_t i
    for i in range(n):
        result[i] = PyUnicode_DecodeUTF8(base + offv[i], offv[i + 1] - offv[i],
                                         "surrogatepass")
    return result


cdef void _column_ranges(const int64_t* c, Py_ssize_t n, Py_ssize_t d,
                         int64_t* lo, int64_t* hi) noexcept nogil:
    cdef Py_ssize_t i, k
    cdef int64_t v
    for k in range(d):
        lo[k] = c[k]
        hi[k] = c[k]
    for i in range(1, n):
        for k in range(d):
            v = c[i * d + k]
            if v < lo[k]:
                lo[k] = v
            elif v > hi[k]:
                hi[k] = v


cdef void _linear_keys(const int64_t* c, Py_ssize_t n, Py_ssize_t d, const int64_t* lo,
                       const uint64_t* extent, uint64_t* key) noexcept nogil:
    """Mixed-radix row keys (dimension 0 most significant); caller checked they fit."""
    cdef Py_ssize_t i, k
    cdef uint64_t acc
    for i in range(n):
        acc = 0
        for k in range(d):
            acc = acc * extent[k] + <uint64_t>(c[i * d + k] - lo[k])
        key[i] = acc


cdef enum:
    _RADIX_BITS = 11
    _RADIX = 2048


cdef void _radix_argsort(uint64_t* key, uint64_t* key_tmp, int64_t* perm, int64_t* perm_tmp,
                         Py_ssize_t n, int bits) noexcept nogil:
    """Stable LSD radix sort of (key, perm) pairs on the low ``bits`` bits of key.

    The sorted permutation ends up in ``perm`` (buffers are swapped back if needed)."""
    cdef Py_ssize_t i, b
    cdef Py_ssize_t count[_RADIX]
    cdef Py_ssize_t total, c
    cdef int shift
    cdef uint64_t digit
    cdef uint64_t* ksrc = key
    cdef uint64_t* kdst = key_tmp
    cdef int64_t* psrc = perm
    cdef int64_t* pdst = perm_tmp
    cdef uint64_t* kswap
    cdef int64_t* pswap
    for i in range(n):
        perm[i] = i
    shift = 0
    while shift < bits:
        for b in range(_RADIX):
            count[b] = 0
        for i in range(n):
            count[(ksrc[i] >> shift) & (_RADIX - 1)] += 1
        total = 0
        for b in range(_RADIX):
            c = count[b]
            count[b] = total
            total += c
        for i in range(n):
            digit = (ksrc[i] >> shift) & (_RADIX - 1)
            kdst[count[digit]] = ksrc[i]
            pdst[count[digit]] = psrc[i]
            count[digit] += 1
        kswap = ksrc
        ksrc = kdst
        kdst = kswap
        pswap = psrc
        psrc = pdst
        pdst = pswap
        shift += _RADIX_BITS
    if psrc != perm:
        for i in range(n):
            perm[i] = psrc[i]


def sort_coords(coords):
    """Stable permutation sorting the rows of ``coords`` lexicographically."""
    c = _as_coords(coords, "coords")
    cdef Py_ssize_t n = c.shape[0]
    cdef Py_ssize_t d = c.shape[1]
    if d == 0 or n <= 1:
        return np.arange(n, dtype=np.int64)
    cdef const int64_t[:, ::1] cv = c
    cdef bint already
    with nogil:
        already = _rows_sorted(&cv[0, 0], n, d)
    if already:
        return np.arange(n, dtype=np.int64)
    lo = np.empty(d, dtype=np.int64)
    hi = np.empty(d, dtype=np.int64)
    cdef int64_t[::1] lov = lo
    cdef int64_t[::1] hiv = hi
    with nogil:
        _column_ranges(&cv[0, 0], n, d, &lov[0], &hiv[0])
    bound = 1
    extents = []
    for lo_k, hi_k in zip(lo.tolist(), hi.tolist()):
        extents.append(hi_k - lo_k + 1)
        bound *= hi_k - lo_k + 1
    if bound > (1 << 63):
        return np.lexsort(c.T[::-1]).astype(np.int64, copy=False)
    ext = np.array(extents, dtype=np.uint64)
    keys = np.empty((2, n), dtype=np.uint64)
    perms = np.empty((2, n), dtype=np.int64)
    cdef const uint64_t[::1] extv = ext
    cdef uint64_t[:, ::1] kv = keys
    cdef int64_t[:, ::1] pv = perms
    cdef int bits = (bound - 1).bit_length()
    with nogil:
        _linear_keys(&cv[0, 0], n, d, &lov[0], &extv[0], &kv[0, 0])
        _radix_argsort(&kv[0, 0], &kv[1, 0], &pv[0, 0], &pv[1, 0], n, bits)
    return perms[0]


def lookup_one(sorted_coords, tuple query):
    """Row of one ``query`` tuple in ``sorted_coords`` (int64, C order, sorted, unique), or -1.

    The single-chunk read path: no argument conversion beyond the memoryview, so a lookup
    costs well under a microsecond. ``sorted_coords`` must already be a C-contiguous int64
    array of shape (n, len(query)) (manifests are); anything else raises ValueError.
    """
    cdef const int64_t[:, ::1] base = sorted_coords
    cdef Py_ssize_t n = base.shape[0], d = base.shape[1], lo = 0, hi, mid, k
    cdef int64_t q[32]
    cdef int c
    if len(query) != d:
        raise ValueError(f"query has {len(query)} coordinates, the manifest {d}")
    if n == 0:
        return -1
    if d == 0:
        return 0
    if d > 32:
        return int(lookup_coords(sorted_coords, np.asarray([query], dtype=np.int64))[0])
    for k in range(d):
        q[k] = query[k]
    hi = n
    with nogil:
        while lo < hi:
            mid = (lo + hi) >> 1
            c = _cmp_rows(&base[mid, 0], q, d)
            if c == 0:
                lo = mid
                break
            if c < 0:
                lo = mid + 1
            else:
                hi = mid
        else:
            lo = -1
    return lo
