"""Validation of branch and tag names."""

from __future__ import annotations

import re

from .errors import InvalidInputError

__all__ = ["validate_ref_name"]

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._\-]*(/[A-Za-z0-9_][A-Za-z0-9._\-]*)*$")
MAX_REF_NAME = 255


def validate_ref_name(name: object, what: str = "branch") -> str:
    """Return ``name`` if it is an acceptable branch or tag name.

    Letters, digits and ``_ . -`` in ``/``-separated segments that do not start with a
    dot; no empty segment, no ``..``, no leading slash, at most 255 characters.
    """
    if not isinstance(name, str):
        raise InvalidInputError(f"{what} name must be a str, got {type(name).__name__}")
    if not name or len(name) > MAX_REF_NAME or not _NAME.match(name):
        shown = name if len(name) <= 80 else name[:80] + "..."
        raise InvalidInputError(
            f"invalid {what} name {shown!r}: use letters, digits, '_', '.', '-' and '/' "
            f"between non-empty segments (at most {MAX_REF_NAME} characters)",
            kind=f"invalid-{what}-name",
        )
    return name
