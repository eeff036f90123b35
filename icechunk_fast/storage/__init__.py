"""Object storage backends: in memory, on the local filesystem, and through fsspec (S3, GCS,
Azure, HTTP).

One private module per backend; none imports another. What they share is in
``_base`` (the interface), ``_utils`` (helpers), ``_requests`` (retries, limits, the event
loop) and ``_object_store`` (the cloud object stores' common core). ``_factories`` holds
the URL dispatch of :func:`fsspec_storage`, and ``_wrapper``/``_counting`` the storage
wrappers.
"""

from __future__ import annotations

from ._azure import AzureStorage, azure_storage
from ._base import ObjectNotFoundError, Storage, validate_key
from ._counting import CountingStorage, RepositoryStats
from ._factories import fsspec_storage, http_storage
from ._fsspec import FsspecStorage
from ._gcs import GcsStorage, gcs_storage
from ._local import LocalFileSystemStorage, local_filesystem_storage
from ._memory import InMemoryStorage, in_memory_storage
from ._obstore import ObstoreS3Storage, obstore_s3_storage
from ._s3 import S3Storage, s3_storage
from ._wrapper import WrapperStorage

__all__ = [
    "AzureStorage",
    "CountingStorage",
    "FsspecStorage",
    "GcsStorage",
    "InMemoryStorage",
    "LocalFileSystemStorage",
    "ObjectNotFoundError",
    "ObstoreS3Storage",
    "RepositoryStats",
    "S3Storage",
    "Storage",
    "WrapperStorage",
    "azure_storage",
    "fsspec_storage",
    "gcs_storage",
    "http_storage",
    "in_memory_storage",
    "local_filesystem_storage",
    "obstore_s3_storage",
    "s3_storage",
    "validate_key",
]
