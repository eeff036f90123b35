"""Small helpers shared by the storage backends.

A private module meant to be shared: backends import from here, never from a sibling
backend (zarr keeps its ``storage/_utils.py`` for the same reason).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Collection, Coroutine, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from ..errors import InvalidInputError

__all__ = [
    "clean_prefix",
    "content_version",
    "gather_or_cancel",
    "import_optional",
    "reject_unknown_arguments",
]

T = TypeVar("T")


def import_optional(module: str, extra: str, what: str) -> Any:
    """The optional package ``module``, or an ImportError that names the extra to install."""
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as exc:
        raise ImportError(
            f"{what} needs the optional package {module!r}: "
            f"pip install 'icechunk_fast[{extra}]' (or pip install {module})"
        ) from exc


def clean_prefix(prefix: str) -> str:
    """A user prefix as ``a/b`` (no leading, trailing or doubled slashes, no dot segments)."""
    if not isinstance(prefix, str):
        raise InvalidInputError(f"prefix must be a str, got {type(prefix).__name__}")
    parts = [p for p in prefix.split("/") if p]
    if any(p in (".", "..") for p in parts) or "\x00" in prefix:
        raise InvalidInputError(f"unsafe storage prefix {prefix!r}")
    return "/".join(parts)


def content_version(data: bytes) -> str:
    """A version token that is a hash of the content: equal bytes, equal versions."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


async def gather_or_cancel(coros: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """Results of ``coros`` run at once; on the first failure the rest are cancelled
    (no orphan requests keep running) and that failure is raised as it is."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def reject_unknown_arguments(
    what: str,
    given: Iterable[str],
    accepted: Collection[str],
    hints: Mapping[str, str] | None = None,
) -> None:
    """Raise ``TypeError`` naming every name of ``given`` that is not in ``accepted``.

    ``what`` is the callable's name as the user wrote it; ``hints`` says, for names
    users are likely to try (other libraries' spellings), what to pass instead. A
    constructor that swallowed such a name would silently ignore a credential.
    """
    unknown = [name for name in given if name not in accepted]
    if not unknown:
        return
    names = ", ".join(repr(name) for name in unknown)
    if len(unknown) == 1:
        message = f"{what}() got an unexpected keyword argument {names}"
    else:
        message = f"{what}() got unexpected keyword arguments {names}"
    notes = [f"{name}: {hints[name]}" for name in unknown if hints and name in hints]
    if notes:
        message += " (" + "; ".join(notes) + ")"
    else:
        message += f"; see help({what}) for the arguments it takes"
    raise TypeError(message)
