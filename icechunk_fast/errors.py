"""The exception tree of icechunk_fast.

Every public error is an :class:`IcechunkError`. Subclasses also inherit the builtin
exception a Python user would already catch (``KeyError`` for missing things,
``ValueError`` for bad input, ``OSError`` for storage failures), and each carries a
stable ``kind`` string that code can match on without parsing messages.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

__all__ = [
    "AlreadyExistsError",
    "ConflictError",
    "ErrorKind",
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


class ErrorKind(StrEnum):
    """Every stable ``kind`` code an :class:`IcechunkError` can carry.

    Codes are append-only: once released, a code keeps its meaning forever, so code that
    matches on ``err.kind`` keeps working. Members compare equal to their strings
    (``ErrorKind.BRANCH_NOT_FOUND == "branch-not-found"``); a test checks that every code
    the package raises is listed here.
    """

    ALREADY_EXISTS = "already-exists"
    BRANCH_ALREADY_EXISTS = "branch-already-exists"
    BRANCH_NOT_FOUND = "branch-not-found"
    CANNOT_AMEND_ROOT = "cannot-amend-root"
    CANNOT_DELETE_MAIN = "cannot-delete-main"
    COMMIT_CONFLICT = "commit-conflict"
    COMMIT_UNACKNOWLEDGED = "commit-unacknowledged"
    CORRUPT_OBJECT = "corrupt-object"
    ICECHUNK_ERROR = "icechunk-error"
    INTERNAL_ERROR = "internal-error"
    INVALID_BRANCH_NAME = "invalid-branch-name"
    INVALID_DIFF_RANGE = "invalid-diff-range"
    INVALID_INPUT = "invalid-input"
    INVALID_KEY = "invalid-key"
    INVALID_METADATA = "invalid-metadata"
    INVALID_MOVE = "invalid-move"
    INVALID_TAG_NAME = "invalid-tag-name"
    MOVE_NEEDS_REARRANGE_SESSION = "move-needs-rearrange-session"
    NO_CHANGES_TO_COMMIT = "no-changes-to-commit"
    NO_SNAPSHOT_AT_TIME = "no-snapshot-at-time"
    NODE_ALREADY_EXISTS = "node-already-exists"
    NODE_NOT_FOUND = "node-not-found"
    NOT_FOUND = "not-found"
    OBJECT_NOT_FOUND = "object-not-found"
    READ_ONLY_SESSION = "read-only-session"
    READ_ONLY_STORAGE = "read-only-storage"
    READ_ONLY_STORE = "read-only-store"
    REARRANGE_SESSION_IS_MOVE_ONLY = "rearrange-session-is-move-only"
    REBASE_FAILED = "rebase-failed"
    REPOSITORY_ALREADY_EXISTS = "repository-already-exists"
    REPOSITORY_NOT_FOUND = "repository-not-found"
    SESSION_STATE = "session-state"
    SNAPSHOT_NOT_FOUND = "snapshot-not-found"
    STORAGE_ERROR = "storage-error"
    STORAGE_NOT_EMPTY = "storage-not-empty"
    TAG_ALREADY_EXISTS = "tag-already-exists"
    TAG_NOT_FOUND = "tag-not-found"
    TAG_PREVIOUSLY_DELETED = "tag-previously-deleted"
    UNSAFE_STORAGE = "unsafe-storage"
    UNSUPPORTED_FORMAT_VERSION = "unsupported-format-version"
    UNSUPPORTED_SPEC_VERSION = "unsupported-spec-version"
    VIRTUAL_CHUNKS_UNSUPPORTED = "virtual-chunks-unsupported"


class IcechunkError(Exception):
    """Root of every error raised by icechunk_fast.

    Parameters
    ----------
    message
        What happened and, where possible, what to do about it.
    kind
        A stable machine-readable code such as ``"branch-not-found"``.
    """

    default_kind = ErrorKind.ICECHUNK_ERROR

    def __init__(self, message: str = "", kind: str | None = None) -> None:
        # (message, kind) positionally too, as Icechunk's IcechunkError takes them
        super().__init__(message)
        self.message = message
        self.kind = str(kind or self.default_kind)  # a plain str: pickles and prints as one

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

    default_kind = ErrorKind.COMMIT_CONFLICT

    def __init__(
        self,
        expected_parent: str | None = None,
        actual_parent: str | None = None,
        message: str | None = None,
        kind: str | None = None,
    ) -> None:
        # Icechunk's argument order: (expected_parent, actual_parent, message, kind)
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

    default_kind = ErrorKind.REBASE_FAILED

    def __init__(
        self,
        snapshot: str | None = None,
        conflicts: list[Any] | None = None,
        *,
        message: str | None = None,
    ) -> None:
        # Icechunk's argument order: (snapshot, conflicts)
        super().__init__(message=message or f"rebase failed on snapshot {snapshot}")
        self.snapshot = snapshot
        self.conflicts = list(conflicts or [])

    def _extra_state(self) -> dict[str, Any]:
        return {**super()._extra_state(), "snapshot": self.snapshot, "conflicts": self.conflicts}


class NotFoundError(IcechunkError, KeyError):
    """Something looked up by name or id does not exist."""

    default_kind = ErrorKind.NOT_FOUND

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return self.message


class NodeNotFoundError(NotFoundError):
    """No group or array at the given path."""

    default_kind = ErrorKind.NODE_NOT_FOUND


class SnapshotNotFoundError(NotFoundError):
    """No snapshot with the given id (or none at the given time)."""

    default_kind = ErrorKind.SNAPSHOT_NOT_FOUND


class RefNotFoundError(NotFoundError):
    """No branch or tag with the given name."""

    default_kind = ErrorKind.BRANCH_NOT_FOUND


class RepositoryNotFoundError(NotFoundError):
    """The storage location does not hold a repository."""

    default_kind = ErrorKind.REPOSITORY_NOT_FOUND


class AlreadyExistsError(IcechunkError):
    """A repository, branch or tag of that name already exists."""

    default_kind = ErrorKind.ALREADY_EXISTS


class ReadOnlyError(IcechunkError, ValueError):
    """A write was attempted through a read-only session or store.

    Also a ``ValueError``, which is what zarr's own stores raise for such writes.
    """

    default_kind = ErrorKind.READ_ONLY_SESSION


class InvalidInputError(IcechunkError, ValueError):
    """An argument is not acceptable (bad key, bad name, bad type)."""

    default_kind = ErrorKind.INVALID_INPUT


class SessionStateError(IcechunkError):
    """The session cannot do that in its current state (e.g. nothing to commit)."""

    default_kind = ErrorKind.SESSION_STATE


class StorageError(IcechunkError, OSError):
    """The storage backend failed."""

    default_kind = ErrorKind.STORAGE_ERROR


class FormatError(IcechunkError):
    """An object in the repository is corrupt, truncated or of an unknown format version."""

    default_kind = ErrorKind.CORRUPT_OBJECT


class InternalError(IcechunkError):
    """A bug in icechunk_fast; please report it."""

    default_kind = ErrorKind.INTERNAL_ERROR
