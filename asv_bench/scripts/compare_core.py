"""Compare icechunk_fast with plain zarr (LocalStore) and, when importable, icechunk.

Every workload runs several times in one process, on one filesystem, with the
backends interleaved (their order rotates between repeats), and the script prints the
median and minimum of each measurement plus the ratio icechunk_fast / baseline.

Workloads
---------
1. write + commit: a 2-D uint8 array of exactly 25,000 chunks of 1,024 bytes (shape
   (4000, 6400), chunks (32, 32), a 125 x 200 chunk grid), no compressor, random data;
   a fresh repository / directory per repeat. LocalStore has no commit step.
2. read-all of that array through zarr (``arr[:]``), opening a fresh repository (cold
   manifest cache) each repeat.
3. 2,000 random single-chunk ``store.get(key)`` calls on that array: one
   ``zarr.core.sync.sync`` round trip per get, all gets awaited in one coroutine, and
   ``store.get_sync`` where the store has it; plus open + first get (cold).
4. 1,000,000 chunk refs of 8 bytes each in an in-memory storage with
   ``inline_chunk_threshold_bytes=0`` (every chunk a native ref), written with
   ``store.set_sync`` in a loop (real icechunk has no sync set: its async ``set`` is
   gathered in batches, ~100 us each, so by default it gets 50,000 refs, see
   ``--ic-refs``; its size-dependent cells are starred and have no ratio); then the
   commit time, a cold ``Repository.open`` +
   ``readonly_session`` + first read, warm random gets, and manifest bytes per ref
   (plus, for icechunk_fast, the bytes per ref when the refs are written in shuffled
   order: in-order writes are the best case of its sequential chunk ids).
   LocalStore has no manifest: n/a.

Run from the repository root::

    python asv_bench/scripts/compare_core.py            # full run, ~3-5 min
    python asv_bench/scripts/compare_core.py --quick    # smoke run, seconds
    python asv_bench/scripts/compare_core.py --dir /dev/shm --json out.json
    python asv_bench/scripts/compare_core.py --profile 4  # cProfile one workload
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zarr
import zarr.storage
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # _checkout
import _checkout  # noqa: F401  (an uninstalled checkout: puts it on sys.path)

import icechunk_fast

os.environ.setdefault("ICECHUNK_LOG", "error")  # its local-storage warnings, per repo
try:  # the real icechunk (a Rust extension); optional
    import icechunk
except ImportError:  # pragma: no cover - depends on the environment
    icechunk = None

BACKENDS = ("zarr", "fast", "ic")
LABELS = {"zarr": "zarr LocalStore", "fast": "icechunk_fast", "ic": "icechunk"}
PROTO = default_buffer_prototype()
perf = time.perf_counter


# -- sizes --------------------------------------------------------------------------
@dataclass(frozen=True)
class Sizes:
    shape: tuple[int, int]  # workload 1-3 array
    chunks: tuple[int, int]
    n_gets: int  # workload 3
    n_refs: int  # workload 4
    ic_set_batch: int  # real icechunk: async sets gathered per batch

    @property
    def n_chunks(self) -> int:
        return (self.shape[0] // self.chunks[0]) * (self.shape[1] // self.chunks[1])

    @property
    def chunk_bytes(self) -> int:
        return self.chunks[0] * self.chunks[1]


FULL = Sizes((4000, 6400), (32, 32), 2000, 1_000_000, 1000)
QUICK = Sizes((320, 320), (32, 32), 200, 10_000, 1000)
assert FULL.n_chunks == 25_000 and FULL.chunk_bytes == 1024


# -- results ------------------------------------------------------------------------
@dataclass
class Row:
    key: str
    label: str
    unit: str  # "s", "us" or "B"
    samples: dict[str, list[float]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # backend -> why n/a
    flagged: set[str] = field(default_factory=set)  # measured at another size: no ratio

    def add(self, backend: str, value: float) -> None:
        self.samples.setdefault(backend, []).append(value)

    def na(self, backend: str, why: str) -> None:
        self.notes[backend] = why

    def median(self, backend: str) -> float | None:
        values = self.samples.get(backend)
        return statistics.median(values) if values else None


class Results:
    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}

    def row(self, key: str, label: str, unit: str) -> Row:
        if key not in self.rows:
            self.rows[key] = Row(key, label, unit)
        return self.rows[key]


def _clean() -> None:
    gc.collect()


@contextlib.contextmanager
def _timer(out: list[float]) -> Iterator[None]:
    t0 = perf()
    yield
    out.append(perf() - t0)


def _rotated(backends: list[str], r: int) -> list[str]:
    k = r % len(backends)
    return backends[k:] + backends[:k]


# -- backend helpers ----------------------------------------------------------------
def _new_writable(backend: str, path: str) -> tuple[Any, Any]:
    """(store, session-or-None) for a new repository / directory at ``path``."""
    if backend == "zarr":
        return zarr.storage.LocalStore(path), None
    if backend == "fast":
        repo = icechunk_fast.Repository.create(icechunk_fast.local_filesystem_storage(path))
    else:
        repo = icechunk.Repository.create(icechunk.local_filesystem_storage(path))
    session = repo.writable_session("main")
    return session.store, session


def _open_readonly(backend: str, path: str) -> Any:
    """A read-only store over ``path``, opened from scratch (cold caches)."""
    if backend == "zarr":
        return zarr.storage.LocalStore(path, read_only=True)
    if backend == "fast":
        repo = icechunk_fast.Repository.open(icechunk_fast.local_filesystem_storage(path))
    else:
        repo = icechunk.Repository.open(icechunk.local_filesystem_storage(path))
    return repo.readonly_session(branch="main").store


# -- workloads 1-3 ------------------------------------------------------------------
def workload_write(
    res: Results, backends: list[str], sizes: Sizes, root: str, repeats: int, data: np.ndarray
) -> dict[str, str]:
    """Workload 1. Returns, per backend, the path of the last repeat (kept for 2-3)."""
    n = sizes.n_chunks
    total = res.row("1", f"1. write+commit {n:,} x {sizes.chunk_bytes} B chunks", "s")
    write = res.row("1a", "   1a. create_array + arr[:] = data", "s")
    commit = res.row("1b", "   1b. session.commit", "s")
    commit.na("zarr", "none")
    kept: dict[str, str] = {}
    for r in range(repeats):
        for backend in _rotated(backends, r):
            path = os.path.join(root, f"w1-{backend}-{r}")
            _clean()
            t0 = perf()
            store, session = _new_writable(backend, path)
            arr = zarr.create_array(
                store,
                name="a",
                shape=sizes.shape,
                chunks=sizes.chunks,
                dtype="uint8",
                compressors=None,
                fill_value=0,
            )
            arr[:] = data
            t1 = perf()
            if session is not None:
                session.commit("write")
            t2 = perf()
            total.add(backend, t2 - t0)
            write.add(backend, t1 - t0)
            if session is not None:
                commit.add(backend, t2 - t1)
            del store, session, arr
            if r == repeats - 1:
                kept[backend] = path
            else:
                shutil.rmtree(path, ignore_errors=True)
    return kept


def workload_read_all(
    res: Results, backends: list[str], paths: dict[str, str], repeats: int, data: np.ndarray
) -> None:
    """Workload 2: fresh open + ``arr[:]``."""
    row = res.row("2", "2. open + read-all arr[:] (cold repo)", "s")
    for r in range(repeats):
        for backend in _rotated(backends, r):
            _clean()
            t0 = perf()
            arr = zarr.open_array(_open_readonly(backend, paths[backend]), path="a", mode="r")
            out = arr[:]
            row.add(backend, perf() - t0)
            if r == 0 and not np.array_equal(out, data):
                raise AssertionError(f"{backend}: read back different data")
            del arr, out


def _chunk_keys(sizes: Sizes, rng: np.random.Generator) -> list[str]:
    ny = sizes.shape[1] // sizes.chunks[1]
    flat = rng.choice(sizes.n_chunks, size=min(sizes.n_gets, sizes.n_chunks), replace=False)
    return [f"a/c/{i // ny}/{i % ny}" for i in flat.tolist()]


def _check_get(backend: str, buf: Any, nbytes: int, what: str) -> None:
    if buf is None or len(buf) != nbytes:
        raise AssertionError(f"{backend}: {what} returned {buf!r}")


def workload_random_get(
    res: Results, backends: list[str], paths: dict[str, str], sizes: Sizes, repeats: int, seed: int
) -> None:
    """Workload 3: random single-chunk gets, microseconds per get."""
    rng = np.random.default_rng(seed)
    n = min(sizes.n_gets, sizes.n_chunks)
    cold = res.row("3", "3. open + first store.get (cold)", "us")
    per_sync = res.row("3a", f"   3a. sync(store.get) x{n:,}, per get", "us")
    per_coro = res.row("3b", f"   3b. await store.get in 1 coroutine x{n:,}", "us")
    per_get_sync = res.row("3c", f"   3c. store.get_sync x{n:,}, per get", "us")
    nbytes = sizes.chunk_bytes
    for r in range(repeats):
        keys = _chunk_keys(sizes, rng)
        for backend in _rotated(backends, r):
            _clean()
            t0 = perf()
            store = _open_readonly(backend, paths[backend])
            first = sync(store.get(keys[0], PROTO))
            cold.add(backend, (perf() - t0) * 1e6)
            _check_get(backend, first, nbytes, "first get")

            t0 = perf()
            for key in keys:
                buf = sync(store.get(key, PROTO))
            per_sync.add(backend, (perf() - t0) / n * 1e6)
            _check_get(backend, buf, nbytes, "get")

            async def all_gets(store: Any = store, keys: list[str] = keys) -> tuple[float, Any]:
                t0 = perf()
                for key in keys:
                    buf = await store.get(key, PROTO)
                return perf() - t0, buf

            elapsed, buf = sync(all_gets())
            per_coro.add(backend, elapsed / n * 1e6)
            _check_get(backend, buf, nbytes, "awaited get")

            get_sync = getattr(store, "get_sync", None)
            if get_sync is None:
                per_get_sync.na(backend, "no get_sync")
            else:
                t0 = perf()
                for key in keys:
                    buf = get_sync(key, prototype=PROTO)
                per_get_sync.add(backend, (perf() - t0) / n * 1e6)
                _check_get(backend, buf, nbytes, "get_sync")
            del store


# -- workload 4 ---------------------------------------------------------------------
def _refs_setup(backend: str, n: int) -> tuple[Any, Any, Any, Any]:
    if backend == "fast":
        storage = icechunk_fast.in_memory_storage()
        config = icechunk_fast.RepositoryConfig(inline_chunk_threshold_bytes=0)
        repo = icechunk_fast.Repository.create(storage, config)
    else:
        storage = icechunk.in_memory_storage()
        config = icechunk.RepositoryConfig(inline_chunk_threshold_bytes=0)
        repo = icechunk.Repository.create(storage, config)
    session = repo.writable_session("main")
    store = session.store
    zarr.create_array(
        store, name="r", shape=(n,), chunks=(1,), dtype="<i8", compressors=None, fill_value=0
    )
    return storage, repo, session, store


def _fill_fast(store: Any, raw: bytes, n: int) -> None:
    set_sync = store.set_sync
    from_bytes = PROTO.buffer.from_bytes
    for i in range(n):
        set_sync(f"r/c/{i}", from_bytes(raw[8 * i : 8 * i + 8]))


def _fill_harness(raw: bytes, n: int) -> None:
    """The loop of :func:`_fill_fast` without the store call: harness overhead."""
    sink: dict[str, Any] = {}
    from_bytes = PROTO.buffer.from_bytes
    for i in range(n):
        sink[f"r/c/{i & 4095}"] = from_bytes(raw[8 * i : 8 * i + 8])


def _fill_ic(store: Any, raw: bytes, n: int, batch: int) -> None:
    from_bytes = PROTO.buffer.from_bytes

    async def fill() -> None:
        for lo in range(0, n, batch):
            hi = min(n, lo + batch)
            await asyncio.gather(
                *(store.set(f"r/c/{i}", from_bytes(raw[8 * i : 8 * i + 8])) for i in range(lo, hi))
            )

    sync(fill())


def _manifest_bytes(backend: str, storage: Any) -> tuple[int, int]:
    """(total bytes, object count) of the manifests in ``storage``."""
    if backend == "fast":
        keys = list(storage.list("manifests/"))
        return sum(storage.size(k) for k in keys), len(keys)
    objects = storage.list_objects(prefix="manifests")
    return sum(size for _, size in objects), len(objects)


def _open_first_read(backend: str, storage: Any, key: str) -> Any:
    if backend == "fast":
        store = icechunk_fast.Repository.open(storage).readonly_session(branch="main").store
        return store, store.get_sync(key, prototype=PROTO)
    store = icechunk.Repository.open(storage).readonly_session(branch="main").store
    return store, sync(store.get(key, PROTO))


def _fill(backend: str, store: Any, raw: bytes, n: int, batch: int) -> float:
    t0 = perf()
    if backend == "fast":
        _fill_fast(store, raw, n)
    else:
        _fill_ic(store, raw, n, batch)
    return perf() - t0


def _fill_shuffled(store: Any, raw: bytes, n: int, seed: int) -> None:
    set_sync = store.set_sync
    from_bytes = PROTO.buffer.from_bytes
    for i in np.random.default_rng(seed).permutation(n).tolist():
        set_sync(f"r/c/{i}", from_bytes(raw[8 * i : 8 * i + 8]))


def workload_refs(
    res: Results, backends: list[str], sizes: Sizes, repeats: int, seed: int, ic_refs: int
) -> None:
    """Workload 4: a million 8-byte native chunk refs in memory."""
    n = sizes.n_refs
    counts = {"fast": n, "ic": min(n, ic_refs)}
    build = res.row("4", f"4. build {n:,} refs (set loop), total", "s")
    per_ref = res.row("4p", "   4p. build, per ref", "us")
    harness = res.row("4h", "   4h. harness part of 4p (keys+Buffers only)", "us")
    commit = res.row("4a", "   4a. session.commit", "s")
    cold = res.row("4b", "   4b. Repository.open+ro session+1st get", "s")
    warm = res.row("4c", f"   4c. warm random get x{min(n, sizes.n_gets):,}, per get", "us")
    mbytes = res.row("4d", "   4d. manifest bytes per ref", "B")
    n_shuf = max(1, n // 10)
    shuffled = res.row("4e", f"   4e. manifest B/ref, {n_shuf:,} shuffled refs", "B")
    for row in (build, per_ref, harness, commit, cold, warm, mbytes, shuffled):
        row.na("zarr", "n/a")
    harness.na("ic", "n/a")
    shuffled.na("ic", "n/a (random ids)")
    if "ic" in backends and counts["ic"] != n:
        for row in (build, commit, cold):
            row.flagged.add("ic")
        build.notes["ic:scaled"] = (
            f"measured with {counts['ic']:,} refs, not {n:,} (its async set is ~100 us; "
            "--ic-refs to change); ratios n/a"
        )
    raw = (np.arange(n, dtype="<i8") + 1).tobytes()
    rng = np.random.default_rng(seed)
    picks = {
        b: rng.choice(m, size=min(m, sizes.n_gets), replace=False).tolist()
        for b, m in counts.items()
    }
    active = [b for b in backends if b != "zarr"]
    for r in range(repeats):
        if r < 2:  # the same for every backend and repeat: two samples suffice
            _clean()
            t0 = perf()
            _fill_harness(raw, n)
            harness.add("fast", (perf() - t0) / n * 1e6)
        for backend in _rotated(active, r):
            m, pick = counts[backend], picks[backend]
            keys = [f"r/c/{i}" for i in pick]
            _clean()
            storage, _repo, session, store = _refs_setup(backend, m)
            elapsed = _fill(backend, store, raw, m, sizes.ic_set_batch)
            build.add(backend, elapsed)
            per_ref.add(backend, elapsed / m * 1e6)
            with _timer(commit.samples.setdefault(backend, [])):
                session.commit("refs")
            del store, session, _repo
            _clean()

            t0 = perf()
            ro_store, buf = _open_first_read(backend, storage, keys[0])
            cold.add(backend, perf() - t0)
            if buf is None or np.frombuffer(buf.to_bytes(), "<i8")[0] != pick[0] + 1:
                raise AssertionError(f"{backend}: cold read returned {buf!r}")

            if backend == "fast":
                t0 = perf()
                for key in keys:
                    buf = ro_store.get_sync(key, prototype=PROTO)
                elapsed = perf() - t0
            else:

                async def gets(store: Any = ro_store, keys: list[str] = keys) -> tuple[float, Any]:
                    t0 = perf()
                    for key in keys:
                        buf = await store.get(key, PROTO)
                    return perf() - t0, buf

                elapsed, buf = sync(gets())
            warm.add(backend, elapsed / len(keys) * 1e6)
            if buf is None or np.frombuffer(buf.to_bytes(), "<i8")[0] != pick[-1] + 1:
                raise AssertionError(f"{backend}: warm read returned {buf!r}")

            total, count = _manifest_bytes(backend, storage)
            mbytes.add(backend, total / m)
            mbytes.notes[f"{backend}:objects"] = f"{count} manifest object(s), {total:,} B"
            del ro_store, storage, buf
    if "fast" in active:  # ordered writes are the best case of sequential chunk ids
        _clean()
        storage, _repo, session, store = _refs_setup("fast", n_shuf)
        _fill_shuffled(store, raw, n_shuf, seed)
        session.commit("shuffled")
        total, _ = _manifest_bytes("fast", storage)
        shuffled.add("fast", total / n_shuf)
        del storage, _repo, session, store
    if "ic" in active:
        warm.notes["ic:how"] = "awaited in 1 coroutine (no get_sync)"
        build.notes["ic:how"] = f"async set, gathered {sizes.ic_set_batch}/batch (no set_sync)"
    _clean()


# -- report -------------------------------------------------------------------------
def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    if unit == "s":
        if value < 0.01:
            return f"{value * 1e3:.2f}ms"
        return f"{value:.3f}s" if value < 10 else f"{value:.2f}s"
    if unit == "us":
        return f"{value:.1f}us" if value < 1000 else f"{value / 1e3:.2f}ms"
    return f"{value:.3g}B"


def _cell(row: Row, backend: str, available: bool) -> str:
    if not available:
        return "not installed"
    values = row.samples.get(backend)
    if not values:
        return row.notes.get(backend, "n/a")
    med, lo = statistics.median(values), min(values)
    mark = "*" if backend in row.flagged else ""
    if len(values) == 1:
        return _fmt(med, row.unit) + mark
    return f"{_fmt(med, row.unit)} ({_fmt(lo, row.unit)}){mark}"


def _ratio(row: Row, a: str, b: str) -> str:
    value = _safe_ratio(row, a, b)
    if value is None:
        return "n/a"
    return f"{value:.2f}x" if value >= 0.095 else f"{value:.2g}x"


def _filesystem(path: str) -> str:
    real = os.path.realpath(path)
    best = ("?", "?", "")
    try:
        with open("/proc/mounts") as f:
            for line in f:
                dev, mnt, fstype = line.split()[:3]
                mnt = mnt.replace("\\040", " ")
                inside = real == mnt or real.startswith(mnt.rstrip("/") + "/")
                if inside and len(mnt) >= len(best[2]):
                    best = (dev, fstype, mnt)
    except OSError:
        pass
    return f"{best[1]} on {best[0]} (mounted at {best[2] or '?'})"


def header(root: str, args: argparse.Namespace, sizes: Sizes) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "zarr": zarr.__version__,
        "numpy": np.__version__,
        "icechunk_fast": icechunk_fast.__version__,
        "HAVE_CYTHON": bool(icechunk_fast.HAVE_CYTHON),
        "icechunk": getattr(icechunk, "__version__", None),
        "dir": root,
        "filesystem": _filesystem(root),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "repeats": args.repeats,
        "refs_repeats": args.refs_repeats,
        "quick": args.quick,
        "sizes": {
            "array_shape": sizes.shape,
            "chunks": sizes.chunks,
            "n_chunks": sizes.n_chunks,
            "chunk_bytes": sizes.chunk_bytes,
            "n_gets": sizes.n_gets,
            "n_refs": sizes.n_refs,
        },
        "ic_refs": args.ic_refs if icechunk is not None else None,
        "zarr_async_concurrency": zarr.config.get("async.concurrency"),
        "loadavg_start": _loadavg(),
    }


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def print_table(meta: dict[str, Any], res: Results, backends: list[str], elapsed: float) -> None:
    have_ic = "ic" in backends
    print()
    print(
        f"compare_core: Python {meta['python']} ({meta['implementation']}), zarr {meta['zarr']}, "
        f"numpy {meta['numpy']}, icechunk_fast {meta['icechunk_fast']} "
        f"(HAVE_CYTHON={meta['HAVE_CYTHON']}), icechunk {meta['icechunk'] or 'not installed'}"
    )
    print(
        f"  dir {meta['dir']}: {meta['filesystem']}; {meta['cpus']} CPUs; "
        f"repeats {meta['repeats']} (workload 4: {meta['refs_repeats']}); "
        f"zarr async.concurrency {meta['zarr_async_concurrency']}"
        f"{'; QUICK sizes' if meta['quick'] else ''}"
    )
    print(
        "  cells: median (min) over repeats; ratios are of medians; reads hit a warm OS page cache"
    )
    cols = [("zarr", True), ("fast", True), ("ic", have_ic)]
    head = f"{'workload':<46}" + "".join(f"{LABELS[b]:>22}" for b, _ in cols)
    head += f"{'fast/zarr':>11}" + (f"{'fast/ic':>9}" if have_ic else "")
    print("-" * len(head))
    print(head)
    print("-" * len(head))
    for row in res.rows.values():
        line = f"{row.label:<46}" + "".join(f"{_cell(row, b, ok):>22}" for b, ok in cols)
        line += f"{_ratio(row, 'fast', 'zarr'):>11}"
        if have_ic:
            line += f"{_ratio(row, 'fast', 'ic'):>9}"
        print(line)
    print("-" * len(head))
    notes = []
    for row in res.rows.values():
        for k, v in row.notes.items():
            if ":" in k:
                backend, what = k.split(":", 1)
                notes.append(f"  {row.key} {LABELS.get(backend, backend)} {what}: {v}")
    for note in notes:
        print(note)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"  peak RSS {rss:.0f} MiB; wall time {elapsed:.1f} s; load average "
        f"{meta['loadavg_start']} at start, {_loadavg()} at end"
    )


def to_json(meta: dict[str, Any], res: Results) -> dict[str, Any]:
    rows = []
    for row in res.rows.values():
        entry: dict[str, Any] = {
            "key": row.key,
            "label": row.label.strip(),
            "unit": row.unit,
            "notes": row.notes,
            "backends": {},
        }
        for backend, values in row.samples.items():
            entry["backends"][backend] = {
                "median": statistics.median(values),
                "min": min(values),
                "samples": values,
            }
        entry["ratio_fast_over_zarr"] = _safe_ratio(row, "fast", "zarr")
        entry["ratio_fast_over_icechunk"] = _safe_ratio(row, "fast", "ic")
        rows.append(entry)
    return {"meta": meta, "rows": rows}


def _safe_ratio(row: Row, a: str, b: str) -> float | None:
    if row.flagged & {a, b}:
        return None
    ma, mb = row.median(a), row.median(b)
    return ma / mb if ma is not None and mb else None


# -- profiling ----------------------------------------------------------------------
@contextlib.contextmanager
def _profile_all_threads() -> Iterator[list[cProfile.Profile]]:
    """cProfile the calling thread and every thread started inside the block.

    zarr runs store coroutines on its own event-loop thread and file I/O in executor
    threads, so a profile of the main thread alone would show only ``sync`` waiting.
    zarr's loop is torn down first so that its threads start (hooked) inside the block.
    From Python 3.12 cProfile is built on ``sys.monitoring`` and already sees every
    thread (one profiler per interpreter); the per-thread hook is then a no-op.
    """
    import threading

    import zarr.core.sync as zsync

    zsync.cleanup_resources()
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def hook(frame: Any, event: str, arg: Any) -> None:
        prof = cProfile.Profile()
        try:
            prof.enable()  # replaces this hook for the thread
        except ValueError:  # 3.12+: the main profiler already covers all threads
            sys.setprofile(None)
            return
        with lock:
            profiles.append(prof)

    main_prof = cProfile.Profile()
    profiles.append(main_prof)
    threading.setprofile(hook)
    main_prof.enable()
    try:
        yield profiles
    finally:
        main_prof.disable()
        threading.setprofile(None)
        zsync.cleanup_resources()  # stops the hooked loop thread and its executor


def profile(workload: str, sizes: Sizes, root: str, seed: int, top: int) -> None:
    """cProfile one icechunk_fast workload (one repetition) and print the top entries."""
    data = np.random.default_rng(seed).integers(0, 256, size=sizes.shape, dtype=np.uint8)
    res = Results()
    paths: dict[str, str] = {}
    if workload in ("2", "3"):  # needs the array on disk first
        paths = workload_write(res, ["fast"], sizes, root, 1, data)
    work: dict[str, Callable[[], Any]] = {
        "1": lambda: workload_write(res, ["fast"], sizes, root, 1, data),
        "2": lambda: workload_read_all(res, ["fast"], paths, 1, data),
        "3": lambda: workload_random_get(res, ["fast"], paths, sizes, 1, seed),
        "4": lambda: workload_refs(res, ["fast"], sizes, 1, seed, 0),
    }
    t0 = perf()
    with _profile_all_threads() as profiles:
        work[workload]()
    elapsed = perf() - t0
    print(
        f"== workload {workload}, icechunk_fast, {elapsed:.2f} s under cProfile, "
        f"{len(profiles)} thread profile(s) merged =="
    )
    if sys.version_info >= (3, 12):
        print(
            "   (Python >= 3.12: one sys.monitoring profiler sees all threads, but their "
            "call stacks interleave; per-thread profiles on 3.11 are cleaner)"
        )
    for sort in ("tottime", "cumulative"):
        out = io.StringIO()
        stats = pstats.Stats(profiles[0], stream=out)
        for prof in profiles[1:]:
            with contextlib.suppress(TypeError, ValueError):  # a thread that never ran
                stats.add(prof)
        stats.strip_dirs().sort_stats(sort).print_stats(top)
        print(f"-- sorted by {sort} --")
        print(out.getvalue())


# -- main ---------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=5, help="repeats per workload (default 5)")
    p.add_argument(
        "--refs-repeats",
        type=int,
        default=None,
        help="repeats of workload 4 (default: min(repeats, 3))",
    )
    p.add_argument(
        "--dir",
        default=None,
        help="parent directory for the on-disk repos (default: a temp dir in /tmp)",
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of seconds")
    p.add_argument("--json", default=None, metavar="FILE", help="also write results as JSON")
    p.add_argument("--seed", type=int, default=20240601)
    p.add_argument("--no-icechunk", action="store_true", help="skip the real icechunk")
    p.add_argument("--only", default="1234", help="workloads to run, e.g. '14' (default all)")
    p.add_argument(
        "--ic-refs",
        type=int,
        default=None,
        help="refs for icechunk in workload 4 (default 50,000; quick: all 10,000)",
    )
    p.add_argument("--keep", action="store_true", help="keep the on-disk repos")
    p.add_argument(
        "--profile",
        choices=["1", "2", "3", "4"],
        default=None,
        help="instead of comparing, cProfile one icechunk_fast workload",
    )
    p.add_argument("--top", type=int, default=25, help="entries shown by --profile")
    args = p.parse_args(argv)
    if args.quick and args.repeats == 5:
        args.repeats = 2
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    if args.refs_repeats is None:
        args.refs_repeats = min(args.repeats, 3)
    if args.ic_refs is None:
        args.ic_refs = 50_000
    sizes = QUICK if args.quick else FULL

    parent = args.dir or "/tmp"
    os.makedirs(parent, exist_ok=True)
    root = tempfile.mkdtemp(prefix="compare_core_", dir=parent)
    t_start = perf()
    try:
        if args.profile:
            profile(args.profile, sizes, root, args.seed, args.top)
            return 0
        backends = ["zarr", "fast"]
        if icechunk is not None and not args.no_icechunk:
            backends.append("ic")
        meta = header(root, args, sizes)
        res = Results()
        data = np.random.default_rng(args.seed).integers(0, 256, size=sizes.shape, dtype=np.uint8)
        paths: dict[str, str] = {}
        if {"1", "2", "3"} & set(args.only):
            print(f"workload 1: {sizes.n_chunks:,} chunks x {args.repeats} ...", flush=True)
            paths = workload_write(res, backends, sizes, root, args.repeats, data)
        if "2" in args.only:
            print("workload 2: read-all ...", flush=True)
            workload_read_all(res, backends, paths, args.repeats, data)
        if "3" in args.only:
            print("workload 3: random gets ...", flush=True)
            workload_random_get(res, backends, paths, sizes, args.repeats, args.seed)
        del data
        if not args.keep:
            for path in paths.values():
                shutil.rmtree(path, ignore_errors=True)
        if "4" in args.only:
            print(f"workload 4: {sizes.n_refs:,} refs x {args.refs_repeats} ...", flush=True)
            workload_refs(res, backends, sizes, args.refs_repeats, args.seed, args.ic_refs)
        print_table(meta, res, backends, perf() - t_start)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(to_json(meta, res), f, indent=1)
            print(f"  results written to {args.json}")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        elif not args.profile:
            print(f"  kept {root}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
