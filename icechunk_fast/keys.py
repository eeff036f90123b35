"""Zarr store keys: validation, node paths and prefixes, and chunk key spellings."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

from . import kernels
from .errors import InvalidInputError

__all__ = [
    "METADATA_NAME",
    "ChunkKeyFormat",
    "join_key",
    "metadata_key",
    "metadata_prefix",
    "node_path_of",
    "store_prefix_of",
    "validate_store_key",
]

METADATA_NAME = "zarr.json"
MAX_STORE_KEY_LENGTH = 4096


def validate_store_key(key: object, *, allow_empty: bool = False) -> str:
    """Return ``key`` if it is a well-formed Zarr key, else raise ``InvalidInputError``.

    Well formed: ``/``-separated, no empty, ``.`` or ``..`` segment, no leading slash,
    no NUL or other control character, at most 4096 characters.
    """
    if not isinstance(key, str):
        raise InvalidInputError(
            f"store key must be a str, got {type(key).__name__}", kind="invalid-key"
        )
    if not key:
        if allow_empty:
            return key
        raise InvalidInputError("store key must not be empty", kind="invalid-key")
    if len(key) > MAX_STORE_KEY_LENGTH:
        raise InvalidInputError(f"store key too long ({len(key)} characters)", kind="invalid-key")
    if not key.isprintable():
        raise InvalidInputError(
            f"store key contains control characters: {key!r}", kind="invalid-key"
        )
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidInputError(
                f"invalid store key {key!r}: empty, '.' or '..' path segment", kind="invalid-key"
            )
    return key


def node_path_of(prefix: str) -> str:
    """Store prefix (``"a/b"``, root ``""``) -> node path (``"/a/b"``, root ``"/"``)."""
    return "/" + prefix


def store_prefix_of(path: str) -> str:
    """Inverse of :func:`node_path_of`."""
    return path[1:]


def join_key(prefix: str, part: str) -> str:
    """``prefix/part``, or ``part`` under the root prefix ``""``."""
    return f"{prefix}/{part}" if prefix else part


def metadata_key(prefix: str) -> str:
    """The ``zarr.json`` key of the node at store prefix ``prefix``."""
    return join_key(prefix, METADATA_NAME)


def metadata_prefix(key: str) -> str | None:
    """The node prefix if ``key`` is a ``zarr.json`` document, else None."""
    if key == METADATA_NAME:
        return ""
    if key.endswith("/" + METADATA_NAME):
        return key[: -len(METADATA_NAME) - 1]
    return None


_NUMBER = "(0|[1-9][0-9]*)"  # no leading zeros: one spelling per chunk


@functools.lru_cache(maxsize=256)
def _grammar(ndim: int, separator: str, default: bool) -> re.Pattern[str]:
    sep = re.escape(separator)
    body = sep.join([_NUMBER] * ndim)
    pattern = ("c" + sep + body if ndim else "c") if default else (body if ndim else "0")
    return re.compile(pattern, re.ASCII)


@dataclass(frozen=True, slots=True)
class ChunkKeyFormat:
    """How an array spells its chunk keys: ``c/1/2`` (default) or ``1.2`` (v2)."""

    ndim: int
    separator: str
    default: bool  # True: "c" prefix encoding, False: v2 encoding

    @property
    def skip(self) -> int:
        """Characters before the first coordinate."""
        if not self.default:
            return 0
        return 2 if self.ndim else 1

    def prefix(self) -> str:
        if not self.default:
            return "" if self.ndim else "0"
        return "c" + self.separator if self.ndim else "c"

    @property
    def grammar(self) -> re.Pattern[str]:
        """The regular expression of one chunk key (compiled once per format)."""
        return _grammar(self.ndim, self.separator, self.default)

    def parse_one(self, part: str) -> tuple[int, ...] | None:
        """Coordinates of one chunk key, or None if ``part`` is not a valid key."""
        match = _grammar(self.ndim, self.separator, self.default).fullmatch(part)
        if match is None:
            return None
        return tuple(map(int, match.groups()))

    def parse_many(self, parts: list[str]) -> np.ndarray:
        """Coordinates of many chunk keys (all valid), one row each."""
        if not self.default and self.ndim == 0:
            return np.zeros((len(parts), 0), dtype=np.int64)
        joined = "\n".join(parts).encode("ascii")
        sep = self.separator.encode("ascii")
        return kernels.parse_chunk_keys(joined, len(parts), self.ndim, sep, self.skip)

    def format_many(self, coords: np.ndarray) -> list[str]:
        """Chunk keys of the coordinate rows ``coords``."""
        if not self.default and self.ndim == 0:
            return ["0"] * len(coords)
        return kernels.format_chunk_keys(coords, self.prefix(), self.separator)
