"""Selects the manifest kernels: compiled (``_kernels``) or pure NumPy (``_kernels_py``).

Both implementations have identical signatures, results and errors. The compiled one
is used when it imports, unless ``ICECHUNK_FAST_PURE_PYTHON`` is set to 1/true/yes,
which selects the fallback silently. When the compiled module is missing (and not
forced off) the fallback is used and a single ``RuntimeWarning`` is emitted.

``HAVE_CYTHON`` tells which one is in use. Import this module, not the two others.
"""

from __future__ import annotations

import os
import warnings
from types import ModuleType
from typing import TYPE_CHECKING

from . import _kernels_py

__all__ = [
    "HAVE_CYTHON",
    "format_chunk_keys",
    "lookup_coords",
    "lookup_one",
    "merge_plan",
    "parse_chunk_keys",
    "sort_coords",
]

_PURE_ENV = "ICECHUNK_FAST_PURE_PYTHON"


def _select() -> tuple[ModuleType, bool]:
    if os.environ.get(_PURE_ENV, "").strip().lower() in {"1", "true", "yes"}:
        return _kernels_py, False
    try:  # the compiled module may be absent (a source checkout): fall back at runtime
        from . import _kernels
    except ImportError as exc:
        warnings.warn(
            "icechunk_fast: the compiled kernels (icechunk_fast._kernels) are missing or "
            f"failed to import ({exc}); using the much slower pure-NumPy fallback. "
            "Rebuild them with `pip install --force-reinstall --no-binary icechunk_fast "
            "icechunk_fast` (from a source checkout: `pip install --force-reinstall .` or "
            "`python setup.py build_ext --inplace`; set ICECHUNK_FAST_REQUIRE_EXTENSION=1 "
            f"to make a failed compile an error), or set {_PURE_ENV}=1 to silence this.",
            RuntimeWarning,
            stacklevel=3,
        )
        return _kernels_py, False
    return _kernels, True


_impl, HAVE_CYTHON = _select()

if TYPE_CHECKING:
    from ._kernels_py import (
        format_chunk_keys,
        lookup_coords,
        lookup_one,
        merge_plan,
        parse_chunk_keys,
        sort_coords,
    )
else:
    lookup_coords = _impl.lookup_coords
    lookup_one = _impl.lookup_one
    merge_plan = _impl.merge_plan
    parse_chunk_keys = _impl.parse_chunk_keys
    format_chunk_keys = _impl.format_chunk_keys
    sort_coords = _impl.sort_coords
