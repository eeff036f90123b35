"""Workloads 1-3: 25,000 chunks of 1 KiB (uint8, no compressor) on local disk.

The array has shape ``(4000, 6400)`` in ``(32, 32)`` chunks (a 125 x 200 grid, exactly
25,000 chunks of 1,024 bytes) at ``SCALE == 1``; the grid shrinks by ``sqrt(SCALE)``
on each side. Data is random so no chunk equals the fill value.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import zarr
from zarr.core.sync import sync

from ._common import (
    IMPLS,
    PARAM_NAMES,
    PROTO,
    SCALE,
    build_per_impl,
    new_tmpdir,
    new_writable,
    open_readonly,
    remove,
    require,
    scaled,
)

__all__ = [
    "SCALE",
    "CommitSmallChunks",
    "RandomReads",
    "RandomStoreGetSync",
    "ReadSmallChunks",
    "WriteCommitSmallChunks",
    "WriteSmallChunks",
]

CHUNK = (32, 32)
_side = math.sqrt(SCALE)
GRID = (max(1, round(125 * _side)), max(2, round(200 * _side)))
SHAPE = (GRID[0] * CHUNK[0], GRID[1] * CHUNK[1])
N_CHUNKS = GRID[0] * GRID[1]
#: Random reads per sample (single elements / single chunk keys).
N_RANDOM = scaled(2000, 10)
SEED = 20240601


def make_data() -> np.ndarray:
    return np.random.default_rng(SEED).integers(0, 256, size=SHAPE, dtype=np.uint8)


def create_small(store: Any) -> zarr.Array:
    return zarr.create_array(
        store,
        name="a",
        shape=SHAPE,
        chunks=CHUNK,
        dtype="uint8",
        compressors=None,
        fill_value=0,
    )


def write_small(impl: str, path: str, data: np.ndarray) -> None:
    """Write the array at ``path`` and commit it (repositories)."""
    store, session = new_writable(impl, path)
    create_small(store)[:] = data
    if session is not None:
        session.commit("small chunks")


class _Fresh:
    """A new, empty repository / directory before every timed call (``number = 1``)."""

    params = [IMPLS]
    param_names = PARAM_NAMES
    number = 1
    repeat = (1, 5, 60.0)
    warmup_time = 0.0
    timeout = 600.0
    needs_repo = False

    def setup(self, impl: str) -> None:
        require(impl, repo=self.needs_repo)
        self.data = make_data()
        self.path = new_tmpdir("small")
        self.store, self.session = new_writable(impl, f"{self.path}/repo")

    def teardown(self, impl: str) -> None:
        self.store = self.session = None
        remove(getattr(self, "path", None))


class WriteSmallChunks(_Fresh):
    """Workload 1a: ``create_array`` + ``arr[:] = data`` (repositories: not committed)."""

    def time_write(self, impl: str) -> None:
        create_small(self.store)[:] = self.data


class WriteCommitSmallChunks(_Fresh):
    """Workload 1: write all chunks, then ``session.commit`` (LocalStore: no commit)."""

    needs_repo = True

    def time_write_commit(self, impl: str) -> None:
        create_small(self.store)[:] = self.data
        self.session.commit("small chunks")


class CommitSmallChunks(_Fresh):
    """Workload 1b: only the commit of a session holding all the chunks."""

    needs_repo = True

    def setup(self, impl: str) -> None:
        super().setup(impl)
        create_small(self.store)[:] = self.data

    def time_commit(self, impl: str) -> None:
        self.session.commit("small chunks")


class _Written:
    """The array written and committed once per run (``setup_cache``), for reads."""

    params = [IMPLS]
    param_names = PARAM_NAMES
    timeout = 600.0

    def setup_cache(self) -> dict[str, str]:
        """One repository / directory per importable implementation, in asv's cwd."""
        data = make_data()
        return build_per_impl("small", lambda impl, path: write_small(impl, path, data))

    setup_cache.timeout = 900.0  # type: ignore[attr-defined]

    def setup(self, paths: dict[str, str], impl: str) -> None:
        require(impl)
        self.store = open_readonly(impl, paths[impl])
        self.arr = zarr.open_array(self.store, path="a", mode="r")
        rng = np.random.default_rng(SEED + 1)
        rows = rng.integers(0, GRID[0], N_RANDOM)
        cols = rng.integers(0, GRID[1], N_RANDOM)
        self.keys = [f"a/c/{i}/{j}" for i, j in zip(rows.tolist(), cols.tolist(), strict=True)]
        # one element somewhere inside each chosen chunk
        ii = rows * CHUNK[0] + rng.integers(0, CHUNK[0], N_RANDOM)
        jj = cols * CHUNK[1] + rng.integers(0, CHUNK[1], N_RANDOM)
        self.points = list(zip(ii.tolist(), jj.tolist(), strict=True))


class ReadSmallChunks(_Written):
    """Workload 2: ``arr[:]`` of all chunks on a freshly opened repository.

    ``number = 1``: every sample opens the repository again in ``setup``, so the
    manifest is read from disk inside the timed call (the OS page cache is warm).
    """

    number = 1
    repeat = (1, 5, 60.0)
    warmup_time = 0.0

    def time_read_all(self, paths: dict[str, str], impl: str) -> None:
        out = self.arr[:]
        assert out.shape == SHAPE


class RandomReads(_Written):
    """Workload 3: ``N_RANDOM`` single-chunk reads at random chunks, warm repository."""

    def setup(self, paths: dict[str, str], impl: str) -> None:
        super().setup(paths, impl)
        self.arr[0, 0]  # load the manifest: measure warm reads
        sync(self.store.get(self.keys[0], PROTO))

    def time_zarr_getitem(self, paths: dict[str, str], impl: str) -> None:
        """``arr[i, j]``: one element in a random chunk, through zarr."""
        arr = self.arr
        for ij in self.points:
            arr[ij]

    def time_store_get(self, paths: dict[str, str], impl: str) -> None:
        """``zarr.core.sync.sync(store.get(key))`` per key: what one zarr call pays."""
        store = self.store
        for key in self.keys:
            sync(store.get(key, PROTO))


class RandomStoreGetSync(_Written):
    """Workload 3: ``store.get_sync(key)`` per random chunk, where the store has it.

    The real icechunk store has no ``get_sync``: skipped for it.
    """

    def setup(self, paths: dict[str, str], impl: str) -> None:
        super().setup(paths, impl)
        if not hasattr(self.store, "get_sync"):
            raise NotImplementedError(f"{type(self.store).__name__} has no get_sync")
        self.store.get_sync(self.keys[0], prototype=PROTO)

    def time_store_get_sync(self, paths: dict[str, str], impl: str) -> None:
        get_sync = self.store.get_sync
        for key in self.keys:
            get_sync(key, prototype=PROTO)
