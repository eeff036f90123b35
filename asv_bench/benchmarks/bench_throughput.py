"""Workload 8: read throughput of large zstd-compressed chunks through zarr.

``N_BIG_CHUNKS`` (16) chunks of ``BIG_CHUNK_BYTES`` (4 MiB) uint8, 64 MiB in all at
``SCALE == 1``, compressed with zarr's ``ZstdCodec(level=3)``. The values are random
in ``0..15`` (4 bits of entropy per byte), so zstd halves them and decompression,
not only copying, is on the path.
"""

from __future__ import annotations

import time

import numpy as np
import zarr
from zarr.codecs import ZstdCodec

from ._common import (
    IMPLS,
    PARAM_NAMES,
    SCALE,
    build_per_impl,
    new_writable,
    open_readonly,
    require,
    scaled,
)

__all__ = ["BIG_CHUNK_BYTES", "N_BIG_CHUNKS", "SCALE", "ReadCompressedChunks"]

MiB = 1 << 20
N_BIG_CHUNKS = scaled(16, 2)
BIG_CHUNK_BYTES = max(64 * 1024, round(4 * MiB * min(1.0, SCALE)) // 4096 * 4096)
TOTAL_BYTES = N_BIG_CHUNKS * BIG_CHUNK_BYTES


def make_data() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 16, size=TOTAL_BYTES, dtype=np.uint8)


def write_big(impl: str, path: str, data: np.ndarray) -> None:
    store, session = new_writable(impl, path)
    arr = zarr.create_array(
        store,
        name="big",
        shape=data.shape,
        chunks=(BIG_CHUNK_BYTES,),
        dtype="uint8",
        compressors=ZstdCodec(level=3),
        fill_value=0,
    )
    arr[:] = data
    if session is not None:
        session.commit("big chunks")


class ReadCompressedChunks:
    """``arr[:]`` of every chunk; also the best of three reads as MB/s (``track_``)."""

    params = [IMPLS]
    param_names = PARAM_NAMES
    timeout = 300.0
    number = 1
    repeat = (1, 10, 30.0)
    warmup_time = 0.0

    def setup_cache(self) -> dict[str, str]:
        data = make_data()
        return build_per_impl("big", lambda impl, path: write_big(impl, path, data))

    setup_cache.timeout = 600.0  # type: ignore[attr-defined]

    def setup(self, paths: dict[str, str], impl: str) -> None:
        require(impl)
        self.arr = zarr.open_array(open_readonly(impl, paths[impl]), path="big", mode="r")
        self.arr[:1]  # open the manifest: time the chunk reads, not the first lookup

    def time_read(self, paths: dict[str, str], impl: str) -> None:
        out = self.arr[:]
        assert out.nbytes == TOTAL_BYTES

    def track_read_mb_per_s(self, paths: dict[str, str], impl: str) -> float:
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            self.arr[:]
            best = min(best, time.perf_counter() - t0)
        return round(TOTAL_BYTES / 1e6 / best, 1)

    track_read_mb_per_s.unit = "MB/s"  # type: ignore[attr-defined]
