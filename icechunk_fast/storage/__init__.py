"""Object storage backends: in memory, on the local filesystem, and through fsspec (S3, GCS,
Azure, HTTP)."""

from __future__ import annotations

from ._base import ObjectNotFoundError, Storage, validate_key
from ._fsspec import (
    FsspecStorage,
    S3Storage,
    azure_storage,
    fsspec_storage,
    gcs_storage,
    http_storage,
    s3_storage,
)
from ._local import LocalFileSystemStorage, local_filesystem_storage
from ._memory import InMemoryStorage, in_memory_storage

__all__ = [
    "FsspecStorage",
    "InMemoryStorage",
    "LocalFileSystemStorage",
    "ObjectNotFoundError",
    "S3Storage",
    "Storage",
    "azure_storage",
    "fsspec_storage",
    "gcs_storage",
    "http_storage",
    "in_memory_storage",
    "local_filesystem_storage",
    "s3_storage",
    "validate_key",
]
