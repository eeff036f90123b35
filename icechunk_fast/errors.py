"""The exception tree of icechunk_fast.

Every public error is an :class:`IcechunkError`. Subclasses also inherit the builtin
exception a Python user would already catch (``KeyError`` for missing things,
``ValueError`` for bad input, ``OSError`` for storage failures), and each carries a
stable ``kind`` string that code can match on without parsing messages.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AlreadyExistsError",
    "ConflictError",
    "FormatError",
    "IcechunkError",
    "InternalError",
    "InvalidInputError",
    "NodeNotFoundError",
    "NotFoundError",
    "ReadOnlyError",
    "RebaseFailedError",
    "RefNotFoundError",
    "RepositoryNotFoundError",
    "SessionStateError",
    "SnapshotNotFoundError",
    "StorageError",
]


class IcechunkError(Exception):
    """Root of every error raised by icechunk_fast.

    Parameters
    ----------
    message
        What happened and, where possible, what to do about it.
    kind
        A stable machine-readable code such as ``"branch-not-found"``.
    """

    default_kind = "icechunk-error"

    def __init__(self, message: str = "", *, kind: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind or self.default_kind

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, kind={self.kind!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.kind, self._extra_state()))

    def _extra_state(self) -> dict[str, Any]:
        return {}


def _rebuild(cls: type[IcechunkError], message: str, kind: str, extra: dict[str, Any]) -> Any:
    err = cls.__new__(cls)
    IcechunkError.__init__(err, message, kind=kind)
    err.__dict__.update(extra)
    return err


class ConflictError(IcechunkError):
    """The branch moved since the session started; the commit did not land.

    Attributes
    ----------
    expected_parent
        The snapshot the session was based on.
    actual_parent
        The snapshot the branch points to now.
    """

    default_kind = "commit-conflict"

    def __init__(
        self,
        message: str = "",
        *,
        expected_parent: str | None = None,
        actual_parent: str | None = None,
        kind: str | None = None,
    ) -> None:
        if not message:
            message = (
                f"the branch moved: expected parent {expected_parent}, found {actual_parent}; "
                "rebase the session (session.rebase(...)) or start a new one and retry"
            )
        super().__init__(message, kind=kind)
        self.expected_parent = expected_parent
        self.actual_parent = actual_parent

    def _extra_state(self) -> dict[str, Any]:
        return {"expected_parent": self.expected_parent, "actual_parent": self.actual_parent}


class RebaseFailedError(ConflictError):
    """A rebase found conflicts it could not solve.

    Attributes
    ----------
    snapshot
        The snapshot whose changes conflicted with the session's.
    conflicts
        The list of conflicts found.
    """

    default_kind = "rebase-failed"

    def __init__(
        self, message: str = "", *, snapshot: str | None = None, conflicts: list[Any] | None = None
    ) -> None:
        super().__init__(message or f"rebase failed on snapshot {snapshot}")
        self.snapshot = snapshot
        self.conflicts = list(conflicts or [])

    def _extra_state(self) -> dict[str, Any]:
        return {**super()._extra_state(), "snapshot": self.snapshot, "conflicts": self.conflicts}


class NotFoundError(IcechunkError, KeyError):
    """Something looked up by name or id does not exist."""

    default_kind = "not-found"

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return self.message


class NodeNotFoundError(NotFoundError):
    """No group or array at the given path."""

    default_kind = "node-not-found"


class SnapshotNotFoundError(NotFoundError):
    """No snapshot with the given id (or none at the given time)."""

    default_kind = "snapshot-not-found"


class RefNotFoundError(NotFoundError):
    """No branch or tag with the given name."""

    default_kind = "branch-not-found"


class RepositoryNotFoundError(NotFoundError):
    """The storage location does not hold a repository."""

    default_kind = "repository-not-found"


class AlreadyExistsError(IcechunkError):
    """A repository, branch or tag of that name already exists."""

    default_kind = "already-exists"


class ReadOnlyError(IcechunkError, ValueError):
    """A write was attempted through a read-only session or store.

    Also a ``ValueError``, which is what zarr's own stores raise for such writes.
    """

    default_kind = "read-only-session"


class InvalidInputError(IcechunkError, ValueError):
    """An argument is not acceptable (bad key, bad name, bad type)."""

    default_kind = "invalid-input"


class SessionStateError(IcechunkError):
    """The session cannot do that in its current state (e.g. nothing to commit)."""

    default_kind = "session-state"


class StorageError(IcechunkError, OSError):
    """The storage backend failed."""

    default_kind = "storage-error"


class FormatError(IcechunkError):
    """An object in the repository is corrupt, truncated or of an unknown format version."""

    default_kind = "corrupt-object"


class InternalError(IcechunkError):
    """A bug in icechunk_fast; please report it."""

    default_kind = "internal-error"
