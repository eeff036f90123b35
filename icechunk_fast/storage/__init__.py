"""Object storage backends: in memory and on the local filesystem."""

from __future__ import annotations

from ._base import ObjectNotFoundError, Storage, validate_key
from ._local import LocalFileSystemStorage, local_filesystem_storage
from ._memory import InMemoryStorage, in_memory_storage

__all__ = [
    "InMemoryStorage",
    "LocalFileSystemStorage",
    "ObjectNotFoundError",
    "Storage",
    "in_memory_storage",
    "local_filesystem_storage",
    "validate_key",
]
