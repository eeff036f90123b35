"""Argument checks shared by the compiled kernels and their NumPy fallback.

Both implementations call these, so they accept the same inputs and raise the same
errors with the same messages. Pure Python; imports nothing from the package.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

_INT64_MAX = (1 << 63) - 1


def _as_coords(a: ArrayLike, name: str) -> NDArray[np.int64]:
    arr = np.asarray(a)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (n, ndim), got shape {arr.shape}")
    if arr.dtype.kind not in "biu" and arr.size:
        raise TypeError(f"{name} must have an integer dtype, got {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _check_same_ndim(a: NDArray[np.int64], b: NDArray[np.int64], na: str, nb: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{na} and {nb} must have the same number of dimensions, "
            f"got {a.shape[1]} and {b.shape[1]}"
        )


def _check_zero_dim_unique(a: NDArray[np.int64], name: str) -> None:
    if a.shape[1] == 0 and a.shape[0] > 1:
        raise ValueError(f"{name} has ndim 0 and {a.shape[0]} rows; it cannot be unique")


def _as_flags(delete: ArrayLike, nc: int) -> NDArray[np.bool_]:
    arr = np.asarray(delete)
    if arr.ndim != 1 or arr.shape[0] != nc:
        raise ValueError(f"delete must be a 1-D array of length {nc}, got shape {arr.shape}")
    if arr.dtype.kind not in "biu" and arr.size:
        raise TypeError(f"delete must be a bool or integer array, got {arr.dtype}")
    if arr.dtype != np.bool_:
        arr = arr != 0
    return np.ascontiguousarray(arr, dtype=np.bool_)


def _as_buffer(joined: Any) -> bytes:
    if isinstance(joined, bytes):
        return joined
    if isinstance(joined, str):
        raise TypeError("joined must be a bytes-like object, not str")
    return bytes(memoryview(joined))


def _check_parse_args(n: int, ndim: int, sep: bytes | str, skip: int) -> int:
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    if ndim < 0:
        raise ValueError(f"ndim must be non-negative, got {ndim}")
    if skip < 0:
        raise ValueError(f"skip must be non-negative, got {skip}")
    sep_b = sep.encode("ascii") if isinstance(sep, str) else bytes(sep)
    if len(sep_b) != 1 or sep_b == b"\n" or sep_b.isdigit():
        raise ValueError(f"sep must be a single non-digit byte other than newline, got {sep!r}")
    return sep_b[0]


def _diagnose_key(key: bytes, ndim: int, sep: int, skip: int) -> str | None:
    """Return why ``key`` is not a valid chunk key, or None if it is valid."""
    if len(key) < skip:
        return f"shorter than the {skip}-byte prefix"
    body = key[skip:]
    if ndim == 0:
        if body:
            return "expected no coordinates after the prefix"
        return None
    fields = body.split(bytes((sep,)))
    if len(fields) != ndim:
        return f"expected {ndim} coordinates, found {len(fields)}"
    for i, field in enumerate(fields):
        if not field:
            return f"coordinate {i} is empty"
        if not field.isdigit():
            return f"coordinate {i} is not a non-negative decimal integer"
        if len(field) > 1 and field[0] == 0x30:
            return f"coordinate {i} has a leading zero"
        if int(field) > _INT64_MAX:
            return f"coordinate {i} does not fit in int64"
    return None


def _key_error(data: bytes, start: int, index: int, ndim: int, sep: int, skip: int) -> ValueError:
    end = data.find(b"\n", start)
    if end < 0:
        end = len(data)
    key = data[start:end]
    reason = _diagnose_key(key, ndim, sep, skip) or "malformed"
    text = key.decode("ascii", "backslashreplace")
    return ValueError(f"invalid chunk key {text!r} at index {index}: {reason}")


def _count_error(data: bytes, n: int) -> ValueError:
    found = data.count(b"\n") + 1 if (data or n) else 0
    return ValueError(f"expected {n} chunk keys, found {found}")
