"""Repository configuration, persisted in the repository as the ``config`` object.

Every field defaults to ``None``, meaning "the built-in default"; :meth:`merge` lays
one config over another field by field, which is how a config passed to
``Repository.open`` combines with the persisted one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any, Self

from .batching import CoalescePolicy
from .cache import default_disk_cache_dir
from .errors import FormatError, InvalidInputError
from .format.config import CONFIG_KEY, decode_config_document, encode_config_document
from .manifest_policy import (
    ManifestPreloadCondition,
    ManifestPreloadConfig,
    ManifestSplitCondition,
    ManifestSplitDimCondition,
    ManifestSplittingConfig,
)
from .packs import DEFAULT_PACK_TARGET_BYTES

__all__ = [
    "CONFIG_KEY",
    "CachingConfig",
    "CompressionConfig",
    "ManifestConfig",
    "ManifestPreloadCondition",
    "ManifestPreloadConfig",
    "ManifestSplitCondition",
    "ManifestSplitDimCondition",
    "ManifestSplittingConfig",
    "RepositoryConfig",
]


DEFAULT_INLINE_THRESHOLD = 512
DEFAULT_MAX_CONCURRENT_REQUESTS = 256
DEFAULT_COMPRESSION_LEVEL = 3
DEFAULT_MANIFEST_CACHE_BYTES = 1 << 30
DEFAULT_DISK_CACHE_BYTES = 4 << 30


class _Mergeable:
    """Shared behaviour of config dataclasses: merge, dict round trip."""

    def merge(self, other: Self | None) -> Self:
        """A copy of ``self`` with every field that is set in ``other`` taken from it."""
        if other is None:
            return dataclasses.replace(self)  # type: ignore[type-var]
        values = {}
        for f in fields(self):  # type: ignore[arg-type]
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, _Mergeable) and isinstance(theirs, _Mergeable):
                values[f.name] = mine.merge(theirs)
            else:
                values[f.name] = theirs if theirs is not None else mine
        return type(self)(**values)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = value.to_dict() if isinstance(value, _Mergeable) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name not in known:
                continue  # a field of a newer version: ignore, keep reading
            sub = _NESTED.get((cls.__name__, name))
            values[name] = sub.from_dict(value) if sub and value is not None else value
        return cls(**values)


@dataclass(slots=True)
class CompressionConfig(_Mergeable):
    """Compression of metadata objects and manifest columns (zstd)."""

    algorithm: str | None = None
    level: int | None = None

    def __post_init__(self) -> None:
        if self.algorithm not in (None, "zstd"):
            raise InvalidInputError(f"unsupported compression algorithm {self.algorithm!r}")
        if self.level is not None and not (1 <= int(self.level) <= 22):
            raise InvalidInputError(f"zstd level must be in 1..22, got {self.level}")


@dataclass(slots=True)
class CachingConfig(_Mergeable):
    """Sizes and places of the caches of immutable objects.

    Parameters
    ----------
    num_bytes_manifests
        Memory for decoded manifests (default 1 GiB).
    num_bytes_chunks
        Memory for chunk bytes (default 0: chunks are not cached).
    disk_cache_dir
        Directory of the disk tier (default: a per-user directory in the local temp
        directory). Keep it on node-local disk, never on NFS, Lustre or GPFS.
    disk_cache_bytes
        Size limit of the disk tier (default 4 GiB; 0 turns the tier off).
    disk_cache_metadata
        Keep snapshots, manifests and transaction logs in the disk tier (default: on
        for remote storage, off for local disk and memory, which gain nothing).
    disk_cache_chunks
        Keep chunk bytes in the disk tier too (default off).

    ``num_snapshot_nodes``, ``num_chunk_refs``, ``num_transaction_changes`` and
    ``num_bytes_attributes`` are accepted for compatibility with Icechunk configs.
    """

    num_snapshot_nodes: int | None = None
    num_chunk_refs: int | None = None
    num_bytes_chunks: int | None = None
    num_transaction_changes: int | None = None
    num_bytes_attributes: int | None = None
    num_bytes_manifests: int | None = None
    disk_cache_dir: str | None = None
    disk_cache_bytes: int | None = None
    disk_cache_metadata: bool | None = None
    disk_cache_chunks: bool | None = None


@dataclass(slots=True)
class ManifestConfig(_Mergeable):
    """How manifests are laid out and loaded.

    Parameters
    ----------
    preload
        Manifests fetched in the background when a session opens
        (:class:`ManifestPreloadConfig`; default: small coordinate arrays).
    splitting
        Arrays whose manifests are split into boxes of chunks
        (:class:`ManifestSplittingConfig`; default: none, one manifest per array).
    """

    preload: ManifestPreloadConfig | None = None
    splitting: ManifestSplittingConfig | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.preload is not None:
            out["preload"] = self.preload.to_json()
        if self.splitting is not None:
            out["splitting"] = self.splitting.to_json()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ManifestConfig:
        preload, splitting = data.get("preload"), data.get("splitting")
        return cls(
            None if preload is None else ManifestPreloadConfig.from_json(preload),
            None if splitting is None else ManifestSplittingConfig.from_json(splitting),
        )


@dataclass(slots=True)
class RepositoryConfig(_Mergeable):
    """Repository-wide settings.

    Parameters
    ----------
    inline_chunk_threshold_bytes
        Chunks of at most this many bytes are stored inside the manifest instead of as
        objects of their own (default 512).
    get_partial_values_concurrency
        How many partial reads one ``get_partial_values`` call runs at once.
    compression
        zstd settings for metadata and manifests.
    max_concurrent_requests
        Upper bound on concurrent storage requests (default 256).
    caching
        Cache sizes.
    chunk_pack_target_bytes
        Chunks a session writes are appended into pack objects of about this size
        (default 32 MiB); 0 stores every chunk as an object of its own. Bigger packs
        mean fewer files or PUTs; a session holds up to one pack in memory.
    manifest
        Manifest splitting and preloading (:class:`ManifestConfig`).
    read_coalesce_gap_bytes
        Batched reads (``get_partial_values``, ``Session.read_many``) fetch ranges of
        one object that are at most this far apart with one request (default 1 MiB).
    read_coalesce_max_bytes
        A coalesced request spans at most this many bytes unless one range alone is
        larger (default 16 MiB); 0 turns coalescing off.
    read_split_bytes
        Reads longer than this are cut into parts fetched concurrently (default
        32 MiB on remote storage, off on local disk and in memory); 0 never splits.
    """

    inline_chunk_threshold_bytes: int | None = None
    get_partial_values_concurrency: int | None = None
    compression: CompressionConfig | None = None
    max_concurrent_requests: int | None = None
    caching: CachingConfig | None = None
    chunk_pack_target_bytes: int | None = None
    manifest: ManifestConfig | None = None
    read_coalesce_gap_bytes: int | None = None
    read_coalesce_max_bytes: int | None = None
    read_split_bytes: int | None = None

    def __post_init__(self) -> None:
        threshold = self.inline_chunk_threshold_bytes
        if threshold is not None and (not isinstance(threshold, int) or threshold < 0):
            raise InvalidInputError(
                f"inline_chunk_threshold_bytes must be a non-negative int, got {threshold!r}"
            )
        pack = self.chunk_pack_target_bytes
        if pack is not None and (not isinstance(pack, int) or pack < 0):
            raise InvalidInputError(
                f"chunk_pack_target_bytes must be a non-negative int, got {pack!r}"
            )
        for name in ("read_coalesce_gap_bytes", "read_coalesce_max_bytes", "read_split_bytes"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise InvalidInputError(f"{name} must be a non-negative int, got {value!r}")

    @classmethod
    def default(cls) -> RepositoryConfig:
        """The built-in defaults, spelled out."""
        return cls(
            inline_chunk_threshold_bytes=DEFAULT_INLINE_THRESHOLD,
            get_partial_values_concurrency=10,
            compression=CompressionConfig("zstd", DEFAULT_COMPRESSION_LEVEL),
            max_concurrent_requests=DEFAULT_MAX_CONCURRENT_REQUESTS,
            caching=CachingConfig(num_bytes_manifests=DEFAULT_MANIFEST_CACHE_BYTES),
            chunk_pack_target_bytes=32 << 20,
            read_coalesce_gap_bytes=1 << 20,
            read_coalesce_max_bytes=16 << 20,
        )

    # resolved values, used by the engine
    @property
    def inline_threshold(self) -> int:
        t = self.inline_chunk_threshold_bytes
        return DEFAULT_INLINE_THRESHOLD if t is None else t

    @property
    def compression_level(self) -> int:
        level = self.compression.level if self.compression else None
        return DEFAULT_COMPRESSION_LEVEL if level is None else int(level)

    @property
    def manifest_cache_bytes(self) -> int:
        size = self.caching.num_bytes_manifests if self.caching else None
        return DEFAULT_MANIFEST_CACHE_BYTES if size is None else int(size)

    @property
    def pack_target_bytes(self) -> int:
        size = self.chunk_pack_target_bytes
        return DEFAULT_PACK_TARGET_BYTES if size is None else int(size)

    @property
    def manifest_splitting(self) -> ManifestSplittingConfig | None:
        return self.manifest.splitting if self.manifest else None

    @property
    def manifest_preload(self) -> ManifestPreloadConfig:
        preload = self.manifest.preload if self.manifest else None
        return preload if preload is not None else ManifestPreloadConfig()

    def read_coalescing(self, remote: bool) -> CoalescePolicy:
        """The resolved gap, size and split limits of batched reads.

        By default reads are split only on remote storage: a local disk serves one
        large range at full speed, and joining the parts would only add a copy.
        """
        defaults = CoalescePolicy()
        gap, most, split = (
            self.read_coalesce_gap_bytes,
            self.read_coalesce_max_bytes,
            self.read_split_bytes,
        )
        if split is None:
            split = defaults.split_bytes if remote else 0
        return CoalescePolicy(
            defaults.max_gap_bytes if gap is None else gap,
            defaults.max_coalesced_bytes if most is None else most,
            split,
        )

    @property
    def chunk_cache_bytes(self) -> int:
        size = self.caching.num_bytes_chunks if self.caching else None
        return 0 if size is None else int(size)

    def disk_tier_settings(self, remote: bool) -> tuple[str, int, bool, bool] | None:
        """``(directory, bytes, metadata, chunks)`` of the disk tier, or None if off."""
        c = self.caching or CachingConfig()
        size = DEFAULT_DISK_CACHE_BYTES if c.disk_cache_bytes is None else int(c.disk_cache_bytes)
        metadata = remote if c.disk_cache_metadata is None else bool(c.disk_cache_metadata)
        chunks = bool(c.disk_cache_chunks)
        if size <= 0 or not (metadata or chunks):
            return None
        return c.disk_cache_dir or default_disk_cache_dir(), size, metadata, chunks

    def encode(self) -> bytes:
        return encode_config_document(self.to_dict())

    @classmethod
    def decode(cls, data: bytes) -> RepositoryConfig:
        doc = decode_config_document(data)
        try:
            return cls.from_dict(doc)
        except (TypeError, ValueError, InvalidInputError) as exc:
            raise FormatError(f"corrupt config: {exc}") from exc


_NESTED: dict[tuple[str, str], type[_Mergeable]] = {
    ("RepositoryConfig", "compression"): CompressionConfig,
    ("RepositoryConfig", "caching"): CachingConfig,
    ("RepositoryConfig", "manifest"): ManifestConfig,
}
