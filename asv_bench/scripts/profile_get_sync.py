"""Cost of one warm ``store.get_sync`` of a native chunk: Python calls and time per get.

An in-memory repository holds one array of 4,096 native chunks (64 bytes each, no
compressor, committed, manifest cached by a first pass). The script counts the
Python-level function calls of N warm gets with cProfile (deterministic), and times
the same N gets without the profiler (median of several repeats, a plain zarr
``MemoryStore`` timed alongside, interleaved, as the baseline).

Run from the repository root (or with ``PYTHONPATH=<another checkout>`` to measure that
one; the checkout measured is printed)::

    python asv_bench/scripts/profile_get_sync.py
    python asv_bench/scripts/profile_get_sync.py --top 25   # the hottest functions
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time

import _checkout  # noqa: F401  (makes icechunk_fast importable from a checkout)
import numpy as np
import zarr
import zarr.storage
from zarr.core.buffer import default_buffer_prototype

import icechunk_fast as ic

CHUNKS = 4096


def _icechunk_store() -> tuple[object, list[str]]:
    config = ic.RepositoryConfig(inline_chunk_threshold_bytes=0)
    repo = ic.Repository.create(ic.in_memory_storage(), config)
    session = repo.writable_session("main")
    arr = zarr.create_array(
        session.store, name="a", shape=(CHUNKS * 8,), chunks=(8,), dtype="f8", compressors=None
    )
    arr[:] = np.arange(CHUNKS * 8, dtype="f8")
    session.commit("data")
    store = repo.readonly_session(branch="main").store
    return store, [f"a/c/{i}" for i in range(CHUNKS)]


def _memory_store() -> tuple[object, list[str]]:
    store = zarr.storage.MemoryStore()
    arr = zarr.create_array(
        store, name="a", shape=(CHUNKS * 8,), chunks=(8,), dtype="f8", compressors=None
    )
    arr[:] = np.arange(CHUNKS * 8, dtype="f8")
    return store, [f"a/c/{i}" for i in range(CHUNKS)]


def _get_all(store: object, keys: list[str]) -> None:
    # zarr's synchronous read path passes its prototype; so do we (looking up the default
    # one costs ~12 calls of zarr's own per get, for any store)
    get = store.get_sync  # type: ignore[attr-defined]
    prototype = default_buffer_prototype()
    for key in keys:
        get(key, prototype=prototype)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--top", type=int, default=0, help="print the N hottest functions")
    args = p.parse_args()

    print(f"icechunk_fast from {ic.__file__} (compiled kernels: {ic.HAVE_CYTHON})")
    ours, keys = _icechunk_store()
    _get_all(ours, keys)  # warm: the manifest is cached
    profiler = cProfile.Profile()
    profiler.enable()
    _get_all(ours, keys)
    profiler.disable()
    stats = pstats.Stats(profiler)
    calls = stats.total_calls  # type: ignore[attr-defined]
    print(f"Python calls per warm get_sync: {calls / len(keys):.1f}")
    if args.top:
        stats.sort_stats("tottime").print_stats(args.top)

    baseline = None
    if hasattr(zarr.storage.MemoryStore, "get_sync"):
        baseline = _memory_store()
        _get_all(*baseline)
    times: dict[str, list[float]] = {"icechunk_fast": [], "MemoryStore": []}
    for _ in range(args.repeats):
        for name, (store, names) in [("icechunk_fast", (ours, keys)), ("MemoryStore", baseline)]:
            if store is None:
                continue
            t = time.perf_counter()
            _get_all(store, names)
            times[name].append((time.perf_counter() - t) / len(names) * 1e6)
    ours_us = statistics.median(times["icechunk_fast"])
    print(f"time per warm get_sync: {ours_us:.2f} us (median of {args.repeats})")
    if times["MemoryStore"]:
        base_us = statistics.median(times["MemoryStore"])
        print(f"zarr MemoryStore.get_sync: {base_us:.2f} us; ratio {ours_us / base_us:.2f}x")


if __name__ == "__main__":
    main()
