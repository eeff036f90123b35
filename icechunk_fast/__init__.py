"""icechunk_fast: transactional, version-controlled storage for Zarr v3 arrays.

The API mirrors Icechunk's, so ``import icechunk_fast as icechunk`` runs code written
for it::

    import icechunk_fast as ic
    repo = ic.Repository.create(ic.local_filesystem_storage("/data/repo"))
    session = repo.writable_session("main")
    ...  # write through session.store with zarr or xarray
    session.commit("first")
"""

from __future__ import annotations

from .config import (
    CachingConfig,
    CompressionConfig,
    ManifestConfig,
    ManifestPreloadCondition,
    ManifestPreloadConfig,
    ManifestSplitCondition,
    ManifestSplitDimCondition,
    ManifestSplittingConfig,
    RepositoryConfig,
)
from .conflicts import (
    BasicConflictSolver,
    Conflict,
    ConflictDetector,
    ConflictSolver,
    ConflictType,
    VersionSelection,
)
from .diff import Diff
from .errors import (
    AlreadyExistsError,
    ConflictError,
    ErrorKind,
    FormatError,
    IcechunkError,
    InternalError,
    InvalidInputError,
    NodeNotFoundError,
    NotFoundError,
    ReadOnlyError,
    RebaseFailedError,
    RefNotFoundError,
    RepositoryNotFoundError,
    SessionStateError,
    SnapshotNotFoundError,
    StorageError,
)
from .kernels import HAVE_CYTHON
from .records import ChunkType, SessionMode, SnapshotInfo, SpecVersion, Update
from .repository import Repository
from .session import Session
from .stats import RepositoryStats
from .storage import (
    AzureStorage,
    FsspecStorage,
    GcsStorage,
    InMemoryStorage,
    LocalFileSystemStorage,
    ObstoreS3Storage,
    S3Storage,
    Storage,
    azure_storage,
    fsspec_storage,
    gcs_storage,
    http_storage,
    in_memory_storage,
    local_filesystem_storage,
    obstore_s3_storage,
    s3_storage,
)
from .store import IcechunkStore

__version__ = "0.1.0"

__all__ = [
    "HAVE_CYTHON",
    "AlreadyExistsError",
    "AzureStorage",
    "BasicConflictSolver",
    "CachingConfig",
    "ChunkType",
    "CompressionConfig",
    "Conflict",
    "ConflictDetector",
    "ConflictError",
    "ConflictSolver",
    "ConflictType",
    "Diff",
    "ErrorKind",
    "FormatError",
    "FsspecStorage",
    "GcsStorage",
    "IcechunkError",
    "IcechunkStore",
    "InMemoryStorage",
    "InternalError",
    "InvalidInputError",
    "LocalFileSystemStorage",
    "ManifestConfig",
    "ManifestPreloadCondition",
    "ManifestPreloadConfig",
    "ManifestSplitCondition",
    "ManifestSplitDimCondition",
    "ManifestSplittingConfig",
    "NodeNotFoundError",
    "NotFoundError",
    "ObstoreS3Storage",
    "ReadOnlyError",
    "RebaseFailedError",
    "RefNotFoundError",
    "Repository",
    "RepositoryConfig",
    "RepositoryNotFoundError",
    "RepositoryStats",
    "S3Storage",
    "Session",
    "SessionMode",
    "SessionStateError",
    "SnapshotInfo",
    "SnapshotNotFoundError",
    "SpecVersion",
    "Storage",
    "StorageError",
    "Update",
    "VersionSelection",
    "__version__",
    "azure_storage",
    "fsspec_storage",
    "gcs_storage",
    "http_storage",
    "in_memory_storage",
    "local_filesystem_storage",
    "obstore_s3_storage",
    "s3_storage",
]
