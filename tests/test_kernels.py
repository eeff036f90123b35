"""Tests of the manifest kernels.

* parity: ``icechunk_fast._kernels`` (compiled) against ``icechunk_fast._kernels_py``
  (pure NumPy) on random inputs, including identical error messages; skipped when the
  compiled module is not built;
* correctness: every implementation (whatever ``icechunk_fast.kernels`` selects, the
  fallback, and the compiled module when present) against plain-Python references;
* the selector's environment variable and its warning when the extension is missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from icechunk_fast import _kernels_py, kernels

_compiled_or_none: ModuleType | None
try:
    from icechunk_fast import _kernels as _compiled_or_none
except ImportError:
    _compiled_or_none = None

INT64_MAX = 2**63 - 1
# Example counts follow the active hypothesis profile (tests/conftest.py: 50 in CI, 100 by
# default, more with HYPOTHESIS_PROFILE=thorough); the key parser gets twice as many.
SETTINGS = settings(deadline=None)
PARSE_SETTINGS = settings(deadline=None, max_examples=2 * settings().max_examples)

IMPLS = [
    pytest.param(kernels, id="selected"),
    pytest.param(_kernels_py, id="numpy"),
    pytest.param(
        _compiled_or_none,
        id="cython",
        marks=pytest.mark.skipif(_compiled_or_none is None, reason="extension not built"),
    ),
]


@pytest.fixture(scope="module")
def compiled() -> ModuleType:
    return pytest.importorskip("icechunk_fast._kernels")


# ---------------------------------------------------------------------- strategies

# Mostly tiny values (so rows collide), sometimes huge ones (so the fallback's packed
# keys overflow 63 bits and it switches to dense ranks).
values = st.one_of(
    st.integers(0, 3),
    st.integers(0, 3),
    st.sampled_from([2**31, 2**62, INT64_MAX]),
    st.integers(0, INT64_MAX),
)
ndims = st.integers(0, 4)


def rows_of(d: int, max_size: int = 25) -> st.SearchStrategy[list[tuple[int, ...]]]:
    return st.lists(st.tuples(*[values] * d), max_size=max_size)


def arr(rows: Any, d: int) -> np.ndarray:
    return np.array(list(rows), dtype=np.int64).reshape(len(rows), d)


def call(fn: Any, *args: Any) -> tuple[str, Any]:
    """Outcome of a call, comparable across implementations."""
    try:
        result = fn(*args)
    except (ValueError, TypeError) as exc:
        return type(exc).__name__, str(exc)
    if isinstance(result, np.ndarray):
        assert result.dtype == np.int64
        return "ok", (result.shape, result.tolist())
    return "ok", result


@st.composite
def lookup_case(draw: st.DrawFn) -> tuple[int, list[tuple[int, ...]], list[tuple[int, ...]]]:
    d = draw(ndims)
    base = sorted(set(draw(rows_of(d))))
    extra = draw(rows_of(d))
    picked = draw(st.lists(st.sampled_from(base), max_size=10)) if base else []
    queries = draw(st.permutations(extra + picked))
    if draw(st.booleans()):
        queries = sorted(queries)
    return d, base, queries


@st.composite
def merge_case(draw: st.DrawFn) -> tuple[int, list[Any], list[Any], list[bool]]:
    d = draw(ndims)
    base = sorted(set(draw(rows_of(d))))
    new = draw(rows_of(d))
    overlap = draw(st.lists(st.sampled_from(base), max_size=10)) if base else []
    changes = sorted(set(new + overlap))
    delete = draw(st.lists(st.booleans(), min_size=len(changes), max_size=len(changes)))
    return d, base, changes, delete


# ------------------------------------------------------------------------ references


def ref_lookup(base: list[Any], queries: list[Any]) -> list[int]:
    index = {row: i for i, row in enumerate(base)}
    return [index.get(q, -1) for q in queries]


def ref_merge(base: list[Any], changes: list[Any], delete: list[bool]) -> list[int]:
    merged = {row: i for i, row in enumerate(base)}
    for j, (row, dead) in enumerate(zip(changes, delete, strict=True)):
        if dead:
            merged.pop(row, None)
        else:
            merged[row] = len(base) + j
    return [merged[row] for row in sorted(merged)]


def ref_format(rows: list[Any], prefix: str, sep: str) -> list[str]:
    return [prefix + sep.join(str(v) for v in row) for row in rows]


def ref_parse(keys: list[bytes], n: int, ndim: int, sep: bytes, skip: int) -> Any:
    """("ok", rows) | ("key", index) | ("count", found)."""
    if n == 0 and keys == [b""]:
        keys = []
    rows = []
    for i, key in enumerate(keys[:n]):
        body = key[skip:]
        fields = body.split(sep) if ndim else ([] if body == b"" else [body])
        ok = len(key) >= skip and len(fields) == ndim
        for f in fields:
            ok = ok and f.isdigit() and (f == b"0" or not f.startswith(b"0"))
            ok = ok and int(f) <= INT64_MAX
        if not ok:
            return "key", i
        rows.append(tuple(int(f) for f in fields))
    if len(keys) != n:
        return "count", len(keys)
    return "ok", rows


# ----------------------------------------------------------------- lookup_coords


@pytest.mark.parametrize("impl", IMPLS)
@SETTINGS
@given(case=lookup_case())
def test_lookup_matches_reference(impl: ModuleType, case: Any) -> None:
    d, base, queries = case
    got = impl.lookup_coords(arr(base, d), arr(queries, d))
    assert got.dtype == np.int64
    assert got.tolist() == ref_lookup(base, queries)


@SETTINGS
@given(case=lookup_case())
def test_lookup_fallback_strategies(case: Any) -> None:
    # the fallback picks one of two strategies by size; check both on every input
    d, base, queries = case
    if d == 0 or not base or not queries:
        return
    expected = ref_lookup(base, queries)
    b, q = arr(base, d), arr(queries, d)
    assert _kernels_py._lookup_by_search(b, q).tolist() == expected
    assert _kernels_py._lookup_by_keys(b, q).tolist() == expected


@SETTINGS
@given(case=lookup_case())
def test_lookup_parity(compiled: ModuleType, case: Any) -> None:
    d, base, queries = case
    args = (arr(base, d), arr(queries, d))
    assert call(compiled.lookup_coords, *args) == call(_kernels_py.lookup_coords, *args)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("d", [1, 2, 3])
def test_lookup_large_random(impl: ModuleType, d: int) -> None:
    rng = np.random.default_rng(d)
    base = np.unique(rng.integers(0, 40, (5000, d)), axis=0)
    queries = rng.integers(0, 42, (1037, d))
    expected = ref_lookup([tuple(r) for r in base.tolist()], [tuple(r) for r in queries.tolist()])
    assert impl.lookup_coords(base, queries).tolist() == expected
    order = np.lexsort(queries.T[::-1])
    sorted_q = queries[order]
    assert impl.lookup_coords(base, sorted_q).tolist() == [expected[i] for i in order]


@pytest.mark.parametrize("impl", IMPLS)
def test_lookup_edge_cases(impl: ModuleType) -> None:
    empty2 = np.empty((0, 2), dtype=np.int64)
    assert impl.lookup_coords(empty2, [[1, 2]]).tolist() == [-1]
    assert impl.lookup_coords([[1, 2]], empty2).tolist() == []
    one0 = np.empty((1, 0), dtype=np.int64)
    assert impl.lookup_coords(one0, np.empty((3, 0), dtype=np.int64)).tolist() == [0, 0, 0]
    none0 = np.empty((0, 0), dtype=np.int64)
    assert impl.lookup_coords(none0, np.empty((2, 0), dtype=np.int64)).tolist() == [-1, -1]
    # other integer dtypes and non-contiguous inputs are accepted
    base = np.asfortranarray(np.array([[0, 5], [3, 1]], dtype=np.int32))
    queries = np.array([[3, 1, 9], [0, 5, 9], [0, 6, 9]], dtype=np.uint16)[:, :2]
    assert impl.lookup_coords(base, queries).tolist() == [1, 0, -1]
    big = np.array([[0], [INT64_MAX]], dtype=np.int64)
    assert impl.lookup_coords(big, [[INT64_MAX], [1]]).tolist() == [1, -1]


@pytest.mark.parametrize("impl", IMPLS)
def test_lookup_rejects_bad_shapes(impl: ModuleType) -> None:
    base = np.zeros((2, 2), dtype=np.int64)
    with pytest.raises(ValueError, match="same number of dimensions"):
        impl.lookup_coords(base, np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="2-D"):
        impl.lookup_coords(base, np.zeros(2, dtype=np.int64))
    with pytest.raises(ValueError, match="2-D"):
        impl.lookup_coords(np.zeros((1, 1, 1), dtype=np.int64), base)
    with pytest.raises(TypeError, match="integer dtype"):
        impl.lookup_coords(base.astype(np.float64), base)
    with pytest.raises(ValueError, match="cannot be unique"):
        impl.lookup_coords(np.empty((2, 0), dtype=np.int64), np.empty((1, 0), dtype=np.int64))


# -------------------------------------------------------------------- merge_plan


@pytest.mark.parametrize("impl", IMPLS)
@SETTINGS
@given(case=merge_case(), as_uint8=st.booleans())
def test_merge_matches_reference(impl: ModuleType, case: Any, as_uint8: bool) -> None:
    d, base, changes, delete = case
    flags = np.array(delete, dtype=np.uint8 if as_uint8 else np.bool_)
    perm = impl.merge_plan(arr(base, d), arr(changes, d), flags)
    assert perm.dtype == np.int64
    assert perm.tolist() == ref_merge(base, changes, delete)
    merged = np.concatenate([arr(base, d), arr(changes, d)])[perm]
    assert [tuple(r) for r in merged.tolist()] == sorted(
        {*base, *(c for c, dead in zip(changes, delete, strict=True) if not dead)}
        - {c for c, dead in zip(changes, delete, strict=True) if dead}
    )


@SETTINGS
@given(case=merge_case())
def test_merge_parity(compiled: ModuleType, case: Any) -> None:
    d, base, changes, delete = case
    args = (arr(base, d), arr(changes, d), np.array(delete, dtype=np.bool_))
    assert call(compiled.merge_plan, *args) == call(_kernels_py.merge_plan, *args)


@pytest.mark.parametrize("impl", IMPLS)
def test_merge_large_random(impl: ModuleType) -> None:
    rng = np.random.default_rng(7)
    base = np.unique(rng.integers(0, 60, (3000, 2)), axis=0)
    changes = np.unique(rng.integers(0, 62, (700, 2)), axis=0)
    delete = rng.random(len(changes)) < 0.3
    expected = ref_merge(
        [tuple(r) for r in base.tolist()], [tuple(r) for r in changes.tolist()], delete.tolist()
    )
    assert impl.merge_plan(base, changes, delete).tolist() == expected


@pytest.mark.parametrize("impl", IMPLS)
def test_merge_edge_cases_and_errors(impl: ModuleType) -> None:
    e = np.empty((0, 1), dtype=np.int64)
    assert impl.merge_plan(e, e, np.zeros(0, dtype=bool)).tolist() == []
    assert impl.merge_plan([[1], [2]], e, []).tolist() == [0, 1]
    assert impl.merge_plan(e, [[1], [2]], [True, False]).tolist() == [1]
    # delete of a missing row produces nothing; replace keeps position
    assert impl.merge_plan([[1], [3]], [[2], [3]], [True, False]).tolist() == [0, 3]
    z = np.empty((1, 0), dtype=np.int64)
    assert impl.merge_plan(z, z, [False]).tolist() == [1]
    assert impl.merge_plan(z, z, [True]).tolist() == []
    with pytest.raises(ValueError, match="length 2"):
        impl.merge_plan([[1]], [[1], [2]], [True])
    with pytest.raises(ValueError, match="same number of dimensions"):
        impl.merge_plan([[1]], [[1, 2]], [True])
    with pytest.raises(TypeError, match="bool or integer"):
        impl.merge_plan([[1]], [[1]], [0.5])


# ------------------------------------------------------- parse / format chunk keys

PREFIXES = [("c/", "/"), ("c.", "."), ("", "."), ("", "/"), ("c", "/")]


@st.composite
def key_case(draw: st.DrawFn) -> tuple[int, list[Any], str, str]:
    d = draw(ndims)
    rows = draw(rows_of(d))
    prefix, sep = draw(st.sampled_from(PREFIXES))
    if d == 0 and prefix.endswith(sep) and prefix:
        prefix = prefix[:-1]
    return d, rows, prefix, sep


@pytest.mark.parametrize("impl", IMPLS)
@SETTINGS
@given(case=key_case())
def test_format_parse_roundtrip(impl: ModuleType, case: Any) -> None:
    d, rows, prefix, sep = case
    keys = impl.format_chunk_keys(arr(rows, d), prefix, sep)
    assert keys == ref_format(rows, prefix, sep)
    joined = "\n".join(keys).encode("ascii")
    got = impl.parse_chunk_keys(joined, len(rows), d, sep.encode(), len(prefix))
    assert got.dtype == np.int64
    assert got.shape == (len(rows), d)
    assert [tuple(r) for r in got.tolist()] == rows


# Bytes that can appear in (mal)formed keys; includes both separators and the newline.
key_bytes = st.text(alphabet="0123456789/.c\n +-x", max_size=30).map(str.encode)


@st.composite
def parse_case(draw: st.DrawFn) -> tuple[bytes, int, int, bytes, int]:
    ndim = draw(st.integers(0, 3))
    sep = draw(st.sampled_from([b"/", b"."]))
    skip = draw(st.integers(0, 2))
    if draw(st.booleans()):
        # nearly valid: well-formed keys with a few bytes mutated
        rows = draw(st.lists(st.tuples(*[st.integers(0, 120)] * ndim), min_size=1, max_size=6))
        keys = ["c/"[:skip] + sep.decode().join(map(str, r)) for r in rows]
        data = bytearray("\n".join(keys).encode())
        for _ in range(draw(st.integers(0, 2))):
            if data:
                i = draw(st.integers(0, len(data) - 1))
                data[i] = draw(st.sampled_from(list(b"0/.\n+x9")))
        joined = bytes(data)
        n = len(rows) + draw(st.sampled_from([0, 0, 0, -1, 1]))
    else:
        joined = draw(key_bytes)
        n = draw(st.integers(0, 5))
    return joined, max(n, 0), ndim, sep, skip


@pytest.mark.parametrize("impl", IMPLS)
@PARSE_SETTINGS
@given(case=parse_case())
def test_parse_matches_reference(impl: ModuleType, case: Any) -> None:
    joined, n, ndim, sep, skip = case
    kind, detail = ref_parse(joined.split(b"\n"), n, ndim, sep, skip)
    if kind == "ok":
        got = impl.parse_chunk_keys(joined, n, ndim, sep, skip)
        assert got.shape == (n, ndim)
        assert [tuple(r) for r in got.tolist()] == detail
        return
    with pytest.raises(ValueError) as info:
        impl.parse_chunk_keys(joined, n, ndim, sep, skip)
    msg = str(info.value)
    if kind == "key":
        key = joined.split(b"\n")[detail].decode()
        assert msg.startswith(f"invalid chunk key {key!r} at index {detail}: ")
    else:
        assert msg == f"expected {n} chunk keys, found {detail}"


@PARSE_SETTINGS
@given(case=parse_case())
def test_parse_parity(compiled: ModuleType, case: Any) -> None:
    assert call(compiled.parse_chunk_keys, *case) == call(_kernels_py.parse_chunk_keys, *case)


@SETTINGS
@given(case=key_case(), negative=st.lists(st.integers(-(2**63), -1), max_size=3))
def test_format_parity(compiled: ModuleType, case: Any, negative: list[int]) -> None:
    d, rows, prefix, sep = case
    if d:
        rows = rows + [(v,) * d for v in negative]
    for p, s in [(prefix, sep), ("é/", "→")]:
        args = (arr(rows, d), p, s)
        assert call(compiled.format_chunk_keys, *args) == call(_kernels_py.format_chunk_keys, *args)


GOOD_KEYS = [
    (b"c/0/0", 2, b"/", 2, [[0, 0]]),
    (b"c/9223372036854775807/10", 2, b"/", 2, [[INT64_MAX, 10]]),
    (b"c/1/2\nc/30/4", 2, b"/", 2, [[1, 2], [30, 4]]),
    (b"1.2.3", 3, b".", 0, [[1, 2, 3]]),
    (b"c", 0, b"/", 1, [[]]),
    (b"c\nc", 0, b"/", 1, [[], []]),
    (b"", 0, b"/", 0, [[]]),
    (b"c/7", 1, "/", 2, [[7]]),
    (bytearray(b"c/7"), 1, b"/", 2, [[7]]),
    (memoryview(b"xyc/7"), 1, b"/", 4, [[7]]),
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("joined", "ndim", "sep", "skip", "expected"), GOOD_KEYS)
def test_parse_valid_keys(
    impl: ModuleType, joined: Any, ndim: int, sep: Any, skip: int, expected: list[Any]
) -> None:
    got = impl.parse_chunk_keys(joined, len(expected), ndim, sep, skip)
    assert got.dtype == np.int64
    assert got.shape == (len(expected), ndim)
    assert got.tolist() == expected


BAD_KEYS = [
    # (keys, ndim, sep, skip, offending index, reason fragment)
    ([b"c/1"], 2, b"/", 2, 0, "expected 2 coordinates, found 1"),
    ([b"c/0/0", b"c/1/2/3"], 2, b"/", 2, 1, "expected 2 coordinates, found 3"),
    ([b"c/1/"], 2, b"/", 2, 0, "coordinate 1 is empty"),
    ([b"c//2"], 2, b"/", 2, 0, "coordinate 0 is empty"),
    ([b"c/"], 1, b"/", 2, 0, "coordinate 0 is empty"),
    ([b"c/+1/2"], 2, b"/", 2, 0, "coordinate 0 is not a non-negative decimal integer"),
    ([b"c/-1/2"], 2, b"/", 2, 0, "coordinate 0 is not a non-negative decimal integer"),
    ([b"c/ 1/2"], 2, b"/", 2, 0, "coordinate 0 is not a non-negative decimal integer"),
    ([b"c/1 /2"], 2, b"/", 2, 0, "coordinate 0 is not a non-negative decimal integer"),
    ([b"c/1/2x"], 2, b"/", 2, 0, "coordinate 1 is not a non-negative decimal integer"),
    ([b"c/1.2"], 2, b"/", 2, 0, "expected 2 coordinates, found 1"),
    ([b"c/\xff/2"], 2, b"/", 2, 0, "coordinate 0 is not a non-negative decimal integer"),
    ([b"c/01/2"], 2, b"/", 2, 0, "coordinate 0 has a leading zero"),
    ([b"c/00"], 1, b"/", 2, 0, "coordinate 0 has a leading zero"),
    ([b"c/9223372036854775808"], 1, b"/", 2, 0, "coordinate 0 does not fit in int64"),
    ([b"c/99999999999999999999999"], 1, b"/", 2, 0, "coordinate 0 does not fit in int64"),
    ([b"c/1", b"c"], 1, b"/", 2, 1, "shorter than the 2-byte prefix"),
    ([b"c/1", b""], 1, b"/", 2, 1, "shorter than the 2-byte prefix"),
    ([b"c/"], 0, b"/", 1, 0, "expected no coordinates after the prefix"),
    ([b"c", b"c0"], 0, b"/", 1, 1, "expected no coordinates after the prefix"),
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("keys", "ndim", "sep", "skip", "index", "reason"), BAD_KEYS)
def test_parse_rejects_malformed_keys(
    impl: ModuleType, keys: list[bytes], ndim: int, sep: bytes, skip: int, index: int, reason: str
) -> None:
    shown = keys[index].decode("ascii", "backslashreplace")
    expected = f"invalid chunk key {shown!r} at index {index}: {reason}"
    with pytest.raises(ValueError) as info:
        impl.parse_chunk_keys(b"\n".join(keys), len(keys), ndim, sep, skip)
    assert str(info.value) == expected


@pytest.mark.parametrize("impl", IMPLS)
def test_parse_rejects_wrong_count_and_arguments(impl: ModuleType) -> None:
    with pytest.raises(ValueError, match="expected 3 chunk keys, found 2"):
        impl.parse_chunk_keys(b"c/1\nc/2", 3, 1, b"/", 2)
    with pytest.raises(ValueError, match="expected 1 chunk keys, found 2"):
        impl.parse_chunk_keys(b"c/1\nc/2", 1, 1, b"/", 2)
    with pytest.raises(ValueError, match="expected 0 chunk keys, found 1"):
        impl.parse_chunk_keys(b"c/1", 0, 1, b"/", 2)
    with pytest.raises(ValueError, match="expected 1 chunk keys, found 2"):
        impl.parse_chunk_keys(b"c/1\n", 1, 1, b"/", 2)  # trailing newline = extra key
    # a malformed key is reported before a count mismatch
    with pytest.raises(ValueError, match="at index 1"):
        impl.parse_chunk_keys(b"c/1\nc/x", 3, 1, b"/", 2)
    assert impl.parse_chunk_keys(b"", 0, 2, b"/", 2).shape == (0, 2)
    for sep in (b"", b"//", b"\n", b"1", "ab"):
        with pytest.raises(ValueError, match="sep"):
            impl.parse_chunk_keys(b"1", 1, 1, sep, 0)
    for n, ndim, skip in ((-1, 1, 0), (1, -1, 0), (1, 1, -1)):
        with pytest.raises(ValueError, match="non-negative"):
            impl.parse_chunk_keys(b"1", n, ndim, b"/", skip)
    with pytest.raises(TypeError):
        impl.parse_chunk_keys("c/1", 1, 1, b"/", 2)


@pytest.mark.parametrize("impl", IMPLS)
def test_format_examples(impl: ModuleType) -> None:
    coords = np.array([[1, 2], [0, INT64_MAX]], dtype=np.int64)
    assert impl.format_chunk_keys(coords, "c/", "/") == ["c/1/2", f"c/0/{INT64_MAX}"]
    assert impl.format_chunk_keys(coords, "", ".") == ["1.2", f"0.{INT64_MAX}"]
    assert impl.format_chunk_keys(np.empty((2, 0), dtype=np.int64), "c", "/") == ["c", "c"]
    assert impl.format_chunk_keys(np.empty((0, 3), dtype=np.int64), "c/", "/") == []
    with pytest.raises(ValueError, match="2-D"):
        impl.format_chunk_keys(np.array([1, 2]), "c/", "/")


# ------------------------------------------------------------------- sort_coords


@pytest.mark.parametrize("impl", IMPLS)
@SETTINGS
@given(d=ndims, data=st.data())
def test_sort_matches_reference(impl: ModuleType, d: int, data: st.DataObject) -> None:
    rows = data.draw(rows_of(d, max_size=40))  # duplicates exercise stability
    perm = impl.sort_coords(arr(rows, d))
    assert perm.dtype == np.int64
    assert perm.tolist() == sorted(range(len(rows)), key=lambda i: rows[i])


@SETTINGS
@given(d=ndims, data=st.data())
def test_sort_parity(compiled: ModuleType, d: int, data: st.DataObject) -> None:
    coords = arr(data.draw(rows_of(d, max_size=40)), d)
    assert call(compiled.sort_coords, coords) == call(_kernels_py.sort_coords, coords)


@pytest.mark.parametrize("impl", IMPLS)
def test_sort_large(impl: ModuleType) -> None:
    rng = np.random.default_rng(3)
    for coords in (
        rng.integers(0, 50, (4000, 2)),
        rng.integers(0, 2**40, (3000, 3)),  # 120 bits: not packable into one key
        np.sort(rng.integers(0, 9, (2000, 1)), axis=0),  # already sorted
    ):
        expected = np.lexsort(coords.T[::-1])
        assert impl.sort_coords(coords).tolist() == expected.tolist()


# ----------------------------------------------------------------------- selector


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    root = Path(kernels.__file__).resolve().parents[1]
    full_env = {k: v for k, v in os.environ.items() if k != "ICECHUNK_FAST_PURE_PYTHON"}
    full_env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(root), os.environ.get("PYTHONPATH")])
    )
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


CAPTURE = """
    import sys, warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        {setup}
        from icechunk_fast import kernels
    runtime = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    print(kernels.HAVE_CYTHON, kernels.parse_chunk_keys.__module__, len(runtime))
    for w in runtime:
        print(w.message)
"""


def test_selector_exports() -> None:
    assert set(kernels.__all__) == {
        "HAVE_CYTHON",
        "format_chunk_keys",
        "lookup_coords",
        "lookup_one",
        "merge_plan",
        "parse_chunk_keys",
        "sort_coords",
    }
    assert isinstance(kernels.HAVE_CYTHON, bool)
    forced = os.environ.get("ICECHUNK_FAST_PURE_PYTHON", "").strip().lower()
    if forced not in {"1", "true", "yes"}:
        assert (_compiled_or_none is not None) == kernels.HAVE_CYTHON


@pytest.mark.parametrize("value", ["1", "Yes"])
def test_selector_pure_python_env(value: str) -> None:
    proc = _run(CAPTURE.format(setup="pass"), ICECHUNK_FAST_PURE_PYTHON=value)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "icechunk_fast._kernels_py", "0"]


def test_selector_warns_once_when_extension_missing() -> None:
    setup = 'sys.modules["icechunk_fast._kernels"] = None  # makes the import fail'
    proc = _run(CAPTURE.format(setup=setup))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["False", "icechunk_fast._kernels_py", "1"]
    assert "compiled kernels" in lines[1]
    assert "pip install --force-reinstall --no-binary icechunk_fast" in lines[1]


@SETTINGS
@given(st.integers(0, 3), st.integers(0, 60), st.data())
def test_lookup_one_matches_lookup_coords(ndim: int, n: int, data: st.DataObject) -> None:
    rows = data.draw(
        st.lists(st.tuples(*[st.integers(0, 6)] * ndim), max_size=n if ndim else 1, unique=True)
    )
    base = np.array(sorted(rows), dtype=np.int64).reshape(len(rows), ndim)
    query = data.draw(st.tuples(*[st.integers(0, 7)] * ndim))
    queries = np.array([query], dtype=np.int64).reshape(1, ndim)
    expected = int(_kernels_py.lookup_coords(base, queries)[0])
    assert _kernels_py.lookup_one(base, query) == expected
    if _compiled_or_none is not None:
        assert _compiled_or_none.lookup_one(base, query) == expected
    with pytest.raises(ValueError):
        kernels.lookup_one(base, (*query, 1))
