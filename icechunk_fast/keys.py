"""Zarr store keys: validation and the split into node path and chunk part."""

from __future__ import annotations

from .errors import InvalidInputError

__all__ = ["METADATA_NAME", "node_path_of", "store_prefix_of", "validate_store_key"]

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
