"""Manifest policies: which arrays get split manifests, which manifests load early.

Both are pure functions of an array's path, dimension names and ref count, so a
policy can be persisted in the repository config and evaluated anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import InvalidInputError

JSON = Any  # the dimension condition class has a method named Any

__all__ = [
    "ManifestPreloadCondition",
    "ManifestPreloadConfig",
    "ManifestSplitCondition",
    "ManifestSplitDimCondition",
    "ManifestSplittingConfig",
]

DEFAULT_PRELOAD_MAX_TOTAL_REFS = 10_000
# coordinate variables: small, read first by xarray, worth fetching before asked
DEFAULT_PRELOAD_NAMES = (
    r"^(t|time|times|date|datetime|step|valid_time|x|y|z|lat|latitude|lon|longitude|"
    r"level|lev|depth|height|nv|bnds|bounds)$"
)
DEFAULT_PRELOAD_MAX_REFS = 1_000
#: Without a splitting config, an array's manifest is cut along its first dimension
#: into boxes of at most this many chunks: small commits on huge arrays stay small, and
#: a full read loads one manifest per 100,000 chunks, which it never notices.
DEFAULT_MAX_CHUNKS_PER_MANIFEST = 100_000


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InvalidInputError(f"invalid regular expression {pattern!r}: {exc}") from exc


def _path_matches(op: str, pattern: str, path: str) -> bool:
    """``pattern`` searched in the array's name (``op == "name"``) or its full path."""
    target = path.rstrip("/").rsplit("/", 1)[-1] if op == "name" else path
    return _compile(pattern).search(target) is not None


@dataclass(frozen=True, slots=True)
class ManifestSplitCondition:
    """Which arrays a split rule applies to.

    Build with :meth:`AnyArray`, :meth:`name_matches`, :meth:`path_matches`,
    :meth:`and_conditions` and :meth:`or_conditions`. Patterns are Python regular
    expressions searched anywhere in the array's name (last path segment) or its full
    path (``/group/array``); anchor them with ``^...$`` to match exactly.
    """

    op: str
    pattern: str = ""
    parts: tuple[ManifestSplitCondition, ...] = ()

    def __post_init__(self) -> None:
        if self.op not in ("any", "name", "path", "and", "or"):
            raise InvalidInputError(f"unknown split condition {self.op!r}")
        if self.op in ("name", "path"):
            _compile(self.pattern)

    @classmethod
    def AnyArray(cls) -> ManifestSplitCondition:
        """Every array."""
        return cls("any")

    @classmethod
    def name_matches(cls, regex: str) -> ManifestSplitCondition:
        """Arrays whose name matches ``regex``."""
        return cls("name", regex)

    @classmethod
    def path_matches(cls, regex: str) -> ManifestSplitCondition:
        """Arrays whose full path matches ``regex``."""
        return cls("path", regex)

    @classmethod
    def and_conditions(cls, conditions: Iterable[ManifestSplitCondition]) -> ManifestSplitCondition:
        """Arrays matching every one of ``conditions``."""
        return cls("and", parts=tuple(conditions))

    @classmethod
    def or_conditions(cls, conditions: Iterable[ManifestSplitCondition]) -> ManifestSplitCondition:
        """Arrays matching at least one of ``conditions``."""
        return cls("or", parts=tuple(conditions))

    def matches(self, path: str) -> bool:
        if self.op == "any":
            return True
        if self.op in ("name", "path"):
            return _path_matches(self.op, self.pattern, path)
        results = (p.matches(path) for p in self.parts)
        return all(results) if self.op == "and" else any(results)

    def to_json(self) -> list[Any]:
        if self.op in ("and", "or"):
            return [self.op, [p.to_json() for p in self.parts]]
        return [self.op, self.pattern] if self.op != "any" else ["any"]

    @classmethod
    def from_json(cls, doc: Sequence[Any]) -> ManifestSplitCondition:
        op = doc[0]
        if op in ("and", "or"):
            return cls(op, parts=tuple(cls.from_json(p) for p in doc[1]))
        return cls(op, doc[1] if len(doc) > 1 else "")


@dataclass(frozen=True, slots=True)
class ManifestSplitDimCondition:
    """Which dimension of a matching array a split size applies to.

    :meth:`Axis` by position, :meth:`DimensionName` by a regex on the array's
    ``dimension_names``, :meth:`Any` for every dimension no earlier rule matched.
    """

    op: str
    axis: int = -1
    pattern: str = ""

    def __post_init__(self) -> None:
        if self.op not in ("axis", "name", "any"):
            raise InvalidInputError(f"unknown split dimension condition {self.op!r}")
        if self.op == "axis" and (not isinstance(self.axis, int) or self.axis < 0):
            raise InvalidInputError(f"Axis needs a non-negative int, got {self.axis!r}")
        if self.op == "name":
            _compile(self.pattern)

    @classmethod
    def Axis(cls, axis: int) -> ManifestSplitDimCondition:
        """Dimension number ``axis``."""
        return cls("axis", axis=axis)

    @classmethod
    def DimensionName(cls, regex: str) -> ManifestSplitDimCondition:
        """Dimensions whose name matches ``regex``."""
        return cls("name", pattern=regex)

    @classmethod
    def Any(cls) -> ManifestSplitDimCondition:
        """Any dimension."""
        return cls("any")

    def matches(self, axis: int, name: str | None) -> bool:
        if self.op == "axis":
            return axis == self.axis
        if self.op == "name":
            return name is not None and _compile(self.pattern).search(name) is not None
        return True

    def to_json(self) -> list[JSON]:
        if self.op == "axis":
            return ["axis", self.axis]
        return ["name", self.pattern] if self.op == "name" else ["any"]

    @classmethod
    def from_json(cls, doc: Sequence[JSON]) -> ManifestSplitDimCondition:
        if doc[0] == "axis":
            return cls("axis", axis=int(doc[1]))
        return cls(doc[0], pattern=doc[1] if len(doc) > 1 else "")


SplitRule = tuple[ManifestSplitCondition, tuple[tuple[ManifestSplitDimCondition, int], ...]]


@dataclass(frozen=True, slots=True)
class ManifestSplittingConfig:
    """Split the manifests of matching arrays into boxes of whole chunks.

    A commit then rewrites only the boxes it touched, and a reader loads only the
    boxes it reads. The first rule whose array condition matches applies; within it,
    each dimension takes the size of the first dimension condition it matches, and a
    dimension that matches none is not split.

    Examples
    --------
    >>> from icechunk_fast.config import (
    ...     ManifestSplitCondition, ManifestSplitDimCondition, ManifestSplittingConfig)
    >>> config = ManifestSplittingConfig.from_dict(
    ...     {ManifestSplitCondition.AnyArray(): {ManifestSplitDimCondition.Axis(0): 1000}})
    >>> config.split_sizes_for("/temperature", ("time", "y", "x"))
    (1000, 0, 0)
    """

    split_sizes: tuple[SplitRule, ...] = ()

    def __post_init__(self) -> None:
        rules = []
        for condition, dims in self.split_sizes:
            if not isinstance(condition, ManifestSplitCondition):
                raise InvalidInputError(f"expected a ManifestSplitCondition, got {condition!r}")
            checked = []
            for dim, size in dims:
                if not isinstance(dim, ManifestSplitDimCondition):
                    raise InvalidInputError(f"expected a ManifestSplitDimCondition, got {dim!r}")
                if not isinstance(size, int) or isinstance(size, bool) or size < 1:
                    raise InvalidInputError(
                        f"a split size is a positive number of chunks, got {size!r}"
                    )
                checked.append((dim, size))
            rules.append((condition, tuple(checked)))
        object.__setattr__(self, "split_sizes", tuple(rules))

    @classmethod
    def from_dict(
        cls,
        rules: Mapping[ManifestSplitCondition, Mapping[ManifestSplitDimCondition, int]],
    ) -> ManifestSplittingConfig:
        """Rules as ``{array condition: {dimension condition: chunks per split}}``."""
        return cls(tuple((cond, tuple(dims.items())) for cond, dims in rules.items()))

    def to_dict(self) -> dict[ManifestSplitCondition, dict[ManifestSplitDimCondition, int]]:
        return {cond: dict(dims) for cond, dims in self.split_sizes}

    def split_sizes_for(
        self, path: str, dimension_names: Sequence[str | None] | None, ndim: int | None = None
    ) -> tuple[int, ...] | None:
        """Chunks per split along each dimension (0: not split), or None for no split."""
        ndim = len(dimension_names) if ndim is None and dimension_names else (ndim or 0)
        names = list(dimension_names or [])
        names += [None] * (ndim - len(names))
        for condition, dims in self.split_sizes:
            if not condition.matches(path):
                continue
            sizes = tuple(
                next((n for dim, n in dims if dim.matches(axis, names[axis])), 0)
                for axis in range(ndim)
            )
            return sizes if any(sizes) else None
        return None

    def to_json(self) -> list[Any]:
        return [[c.to_json(), [[d.to_json(), n] for d, n in dims]] for c, dims in self.split_sizes]

    @classmethod
    def from_json(cls, doc: Sequence[Any]) -> ManifestSplittingConfig:
        return cls(
            tuple(
                (
                    ManifestSplitCondition.from_json(c),
                    tuple((ManifestSplitDimCondition.from_json(d), int(n)) for d, n in dims),
                )
                for c, dims in doc
            )
        )


@dataclass(frozen=True, slots=True)
class ManifestPreloadCondition:
    """Which manifests a session fetches in the background as soon as it opens.

    Build with :meth:`path_matches`, :meth:`name_matches`, :meth:`num_refs`,
    :meth:`and_conditions`, :meth:`or_conditions`, :meth:`true` and :meth:`false`.
    """

    op: str
    pattern: str = ""
    low: int | None = None
    high: int | None = None
    parts: tuple[ManifestPreloadCondition, ...] = ()

    def __post_init__(self) -> None:
        if self.op not in ("name", "path", "refs", "and", "or", "true", "false"):
            raise InvalidInputError(f"unknown preload condition {self.op!r}")
        if self.op in ("name", "path"):
            _compile(self.pattern)

    @classmethod
    def path_matches(cls, regex: str) -> ManifestPreloadCondition:
        """Arrays whose full path matches ``regex``."""
        return cls("path", regex)

    @classmethod
    def name_matches(cls, regex: str) -> ManifestPreloadCondition:
        """Arrays whose name (last path segment) matches ``regex``."""
        return cls("name", regex)

    @classmethod
    def num_refs(cls, from_refs: int | None, to_refs: int | None) -> ManifestPreloadCondition:
        """Manifests with ``from_refs <= refs < to_refs`` (None: unbounded)."""
        return cls("refs", low=from_refs, high=to_refs)

    @classmethod
    def and_conditions(
        cls, conditions: Iterable[ManifestPreloadCondition]
    ) -> ManifestPreloadCondition:
        return cls("and", parts=tuple(conditions))

    @classmethod
    def or_conditions(
        cls, conditions: Iterable[ManifestPreloadCondition]
    ) -> ManifestPreloadCondition:
        return cls("or", parts=tuple(conditions))

    @classmethod
    def true(cls) -> ManifestPreloadCondition:
        return cls("true")

    @classmethod
    def false(cls) -> ManifestPreloadCondition:
        return cls("false")

    def matches(self, path: str, num_refs: int) -> bool:
        op = self.op
        if op in ("true", "false"):
            return op == "true"
        if op in ("name", "path"):
            return _path_matches(op, self.pattern, path)
        if op == "refs":
            return (self.low is None or num_refs >= self.low) and (
                self.high is None or num_refs < self.high
            )
        results = (p.matches(path, num_refs) for p in self.parts)
        return all(results) if op == "and" else any(results)

    def to_json(self) -> list[Any]:
        if self.op in ("and", "or"):
            return [self.op, [p.to_json() for p in self.parts]]
        if self.op == "refs":
            return ["refs", self.low, self.high]
        return [self.op, self.pattern] if self.op in ("name", "path") else [self.op]

    @classmethod
    def from_json(cls, doc: Sequence[Any]) -> ManifestPreloadCondition:
        op = doc[0]
        if op in ("and", "or"):
            return cls(op, parts=tuple(cls.from_json(p) for p in doc[1]))
        if op == "refs":
            return cls("refs", low=doc[1], high=doc[2])
        return cls(op, doc[1] if len(doc) > 1 else "")


def default_split_sizes(grid_shape: Sequence[int] | None) -> tuple[int, ...] | None:
    """The built-in split: boxes of whole rows along dimension 0, at most
    ``DEFAULT_MAX_CHUNKS_PER_MANIFEST`` chunks each (None for 0-d or irregular grids)."""
    if not grid_shape:
        return None
    row = 1
    for n in grid_shape[1:]:
        row *= max(int(n), 1)
    return (max(1, DEFAULT_MAX_CHUNKS_PER_MANIFEST // row), *([0] * (len(grid_shape) - 1)))


def default_preload_condition() -> ManifestPreloadCondition:
    """Small manifests of arrays named like coordinates."""
    return ManifestPreloadCondition.and_conditions(
        [
            ManifestPreloadCondition.name_matches(DEFAULT_PRELOAD_NAMES),
            ManifestPreloadCondition.num_refs(None, DEFAULT_PRELOAD_MAX_REFS),
        ]
    )


@dataclass(frozen=True, slots=True)
class ManifestPreloadConfig:
    """Background fetching of manifests when a session opens.

    Parameters
    ----------
    max_total_refs
        Stop once the preloaded manifests hold this many refs (default 10,000; 0 turns
        preloading off).
    preload_if
        Which manifests qualify (default: under 1,000 refs, of arrays named like
        coordinates: ``time``, ``lat``, ``lon``, ``x``, ``y``, ...).
    """

    max_total_refs: int | None = None
    preload_if: ManifestPreloadCondition | None = None

    def __post_init__(self) -> None:
        n = self.max_total_refs
        if n is not None and (not isinstance(n, int) or n < 0):
            raise InvalidInputError(f"max_total_refs must be a non-negative int, got {n!r}")

    @property
    def total_refs_limit(self) -> int:
        n = self.max_total_refs
        return DEFAULT_PRELOAD_MAX_TOTAL_REFS if n is None else n

    @property
    def condition(self) -> ManifestPreloadCondition:
        return self.preload_if if self.preload_if is not None else default_preload_condition()

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        if self.max_total_refs is not None:
            doc["max_total_refs"] = self.max_total_refs
        if self.preload_if is not None:
            doc["preload_if"] = self.preload_if.to_json()
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ManifestPreloadConfig:
        cond = doc.get("preload_if")
        return cls(
            doc.get("max_total_refs"),
            None if cond is None else ManifestPreloadCondition.from_json(cond),
        )
