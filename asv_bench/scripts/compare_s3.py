"""icechunk_fast against zarr's ``FsspecStore`` on one moto S3 server, in one run.

Workloads, on a 2-D uint8 array of 1 KiB chunks (32 x 32, no compressor, random
data): 25,000 chunks (a 125 x 200 grid) at ``--scale 1``, about ``25,000 * scale``
chunks otherwise.

1. write: ``create_array`` + ``arr[:] = data``, and for icechunk_fast the commit; a
   fresh prefix per repeat. icechunk_fast goes through an ``IcechunkStore`` on
   ``s3_storage``; zarr through ``zarr.storage.FsspecStore`` on s3fs, under another
   prefix of the same bucket.
2. read-all: open from scratch (a new storage and repository, disk cache off, so that
   nothing survives from the previous repeat) and ``arr[:]``.
3. random single-chunk reads: ``--gets`` reads of one random chunk each through zarr
   (``arr[i:i+32, j:j+32]``) on an array opened beforehand; microseconds per read.

For every workload the server counts the HTTP requests it received (see
``_s3_server.py``): that counts what ``FsspecStore`` sends, which we cannot see from
the inside. For icechunk_fast, ``repo.stats()`` is reported too. Backends take turns,
their order rotating between repeats; the tables show medians. On zarr versions that
have it, each backend also runs under ``FusedCodecPipeline`` (``--no-fused`` skips it).

Run from the repository root::

    python asv_bench/scripts/compare_s3.py --repeats 3          # full, ~10 min
    python asv_bench/scripts/compare_s3.py --scale 0.04         # 1,000 chunks
    python asv_bench/scripts/compare_s3.py --scale 0.001 --repeats 1 --gets 5
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import importlib.util
import json
import logging
import math
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zarr
import zarr.storage

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # _checkout, _s3_server
import _checkout  # noqa: F401  (an uninstalled checkout: puts it on sys.path)
from _s3_server import BUCKET, KEY, REGION, SECRET, CountingS3Server

import icechunk_fast

FUSED = "zarr.core.codec_pipeline.FusedCodecPipeline"
CHUNK = 32
GRID = (125, 200)
perf = time.perf_counter
# cold reads: no disk tier carrying manifests over from an earlier repeat
COLD = icechunk_fast.RepositoryConfig(caching=icechunk_fast.CachingConfig(disk_cache_bytes=0))


@dataclass(frozen=True)
class Backend:
    kind: str  # "fast" or "fsspec"
    fused: bool
    client: str = "s3fs"  # icechunk_fast's S3 client: "s3fs" or "obstore"

    @property
    def label(self) -> str:
        name = "icechunk_fast" if self.kind == "fast" else "zarr FsspecStore"
        notes = [
            n for n, on in (("obstore", self.client == "obstore"), ("fused", self.fused)) if on
        ]
        return name + (f" ({', '.join(notes)})" if notes else "")


@dataclass
class Results:
    times: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    cpu: dict[tuple[str, str], list[float]] = field(default_factory=dict)  # this process
    requests: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    # (workload, backend label) -> repo.stats() of the last repeat
    stats: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def add(self, workload: str, backend: Backend, value: float, cpu: float, requests: int) -> None:
        key = (workload, backend.label)
        self.times.setdefault(key, []).append(value)
        self.cpu.setdefault(key, []).append(cpu)
        self.requests.setdefault(key, []).append(requests)

    def median(self, workload: str, backend: Backend, cpu: bool = False) -> float | None:
        values = (self.cpu if cpu else self.times).get((workload, backend.label))
        return statistics.median(values) if values else None

    def median_requests(self, workload: str, backend: Backend) -> int | None:
        values = self.requests.get((workload, backend.label))
        return int(statistics.median(values)) if values else None


def grid_for(scale: float) -> tuple[int, int]:
    f = math.sqrt(scale)
    return max(1, round(GRID[0] * f)), max(1, round(GRID[1] * f))


def fused_available() -> bool:
    module, _, name = FUSED.rpartition(".")
    return hasattr(importlib.import_module(module), name)


@contextlib.contextmanager
def pipeline(fused: bool) -> Iterator[None]:
    if not fused:
        yield
        return
    with zarr.config.set({"codec_pipeline.path": FUSED}):
        yield


def _since(t0: float, c0: float) -> tuple[float, float]:
    """Wall and CPU seconds of this process (all its threads) since ``t0``, ``c0``."""
    return perf() - t0, time.process_time() - c0


# -- the backends ----------------------------------------------------------------------
class Bench:
    def __init__(self, server: CountingS3Server, data: np.ndarray, gets: int, seed: int):
        self.server = server
        self.data = data
        self.gets = gets
        self.rng = np.random.default_rng(seed)
        self.run = uuid.uuid4().hex[:8]
        self.last: dict[str, str] = {}  # backend label -> prefix of its last write

    def _fsspec_store(self, prefix: str, read_only: bool) -> Any:
        return zarr.storage.FsspecStore.from_url(
            f"s3://{BUCKET}/{prefix}",
            read_only=read_only,
            storage_options={
                "key": KEY,
                "secret": SECRET,
                "endpoint_url": self.server.url,
                "client_kwargs": {"region_name": REGION},
                "skip_instance_cache": True,
                "use_listings_cache": False,
            },
        )

    def _fast_repo(self, prefix: str, create: bool, client: str) -> icechunk_fast.Repository:
        storage = self.server.icechunk_fast_storage(prefix, client=client)
        if create:
            return icechunk_fast.Repository.create(storage, COLD)
        return icechunk_fast.Repository.open(storage, COLD)

    def write(self, backend: Backend, res: Results, repeat: int) -> None:
        tag = f"{backend.kind}-{backend.client}-{int(backend.fused)}"
        prefix = f"s3bench-{self.run}/{tag}-{repeat}"
        gc.collect()
        self.server.counts()
        t0, c0 = perf(), time.process_time()
        repo = session = None
        if backend.kind == "fast":
            repo = self._fast_repo(prefix, create=True, client=backend.client)
            session = repo.writable_session("main")
            store = session.store
        else:
            store = self._fsspec_store(prefix, read_only=False)
        arr = zarr.create_array(
            store,
            name="a",
            shape=self.data.shape,
            chunks=(CHUNK, CHUNK),
            dtype="uint8",
            compressors=None,
            fill_value=0,
        )
        arr[:] = self.data
        if session is not None:
            session.commit("write")
        res.add("write", backend, *_since(t0, c0), self.server.counts().get("requests", 0))
        if repo is not None:
            res.stats[("write", backend.label)] = repo.stats().as_dict()
        self.last[backend.label] = prefix

    def _open(self, backend: Backend) -> tuple[Any, icechunk_fast.Repository | None]:
        prefix = self.last[backend.label]
        if backend.kind == "fast":
            repo = self._fast_repo(prefix, create=False, client=backend.client)
            store = repo.readonly_session(branch="main").store
            return zarr.open_array(store, path="a", mode="r"), repo
        return zarr.open_array(self._fsspec_store(prefix, read_only=True), path="a", mode="r"), None

    def read_all(self, backend: Backend, res: Results, check: bool) -> None:
        gc.collect()
        self.server.counts()
        t0, c0 = perf(), time.process_time()
        arr, repo = self._open(backend)
        out = arr[:]
        res.add("read", backend, *_since(t0, c0), self.server.counts().get("requests", 0))
        if repo is not None:
            res.stats[("read", backend.label)] = repo.stats().as_dict()
        if check and not np.array_equal(out, self.data):
            raise AssertionError(f"{backend.label} read back different data")

    def random_reads(self, backend: Backend, res: Results) -> None:
        arr, repo = self._open(backend)
        rows, cols = (s // CHUNK for s in self.data.shape)
        picks = self.rng.integers(0, [rows, cols], size=(self.gets, 2))
        arr[:CHUNK, :CHUNK]  # load metadata and, for us, the manifest
        if repo is not None:
            repo.reset_stats()
        gc.collect()
        self.server.counts()
        t0, c0 = perf(), time.process_time()
        for i, j in picks.tolist():
            block = arr[i * CHUNK : (i + 1) * CHUNK, j * CHUNK : (j + 1) * CHUNK]
        wall, cpu = _since(t0, c0)
        n = self.gets
        res.add("get", backend, wall / n * 1e6, cpu / n * 1e6, self.server.counts()["requests"])
        if repo is not None:
            res.stats[("get", backend.label)] = repo.stats().as_dict()
        i, j = picks[-1].tolist()
        expect = self.data[i * CHUNK : (i + 1) * CHUNK, j * CHUNK : (j + 1) * CHUNK]
        if not np.array_equal(block, expect):
            raise AssertionError(f"{backend.label}: a random read returned different data")


# -- report -------------------------------------------------------------------------------
ROWS = (  # key, label, short label, unit
    ("write", "write {n:,} chunks of 1 KiB (+ commit)", "write", "s"),
    ("read", "open + read all (cold)", "read all", "s"),
    ("get", "random single-chunk read, per read", "random read", "us"),
)


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    return f"{value:,.0f} us" if unit == "us" else f"{value:.2f} s"


def _row(
    res: Results,
    backends: list[Backend],
    pairs: list[tuple[Backend, Backend]],
    label: str,
    key: str,
    unit: str,
    cpu: bool,
) -> None:
    cells = [_fmt(res.median(key, b, cpu), unit) for b in backends]
    for f, z in pairs:
        a, b = res.median(key, f, cpu), res.median(key, z, cpu)
        cells.append(f"{a / b:.2f}x" if a and b else "")
    print(f"| {label} | " + " | ".join(cells) + " |")


def print_tables(res: Results, backends: list[Backend], meta: dict[str, Any]) -> None:
    print(
        f"\n## icechunk_fast vs zarr FsspecStore on moto S3 (Python {meta['python']}, "
        f"zarr {meta['zarr']}, {meta['chunks']:,} chunks, median of {meta['repeats']}, "
        f"load {meta['load']:.1f})\n"
    )
    pairs = [(f, z) for f in backends for z in backends if f.kind == "fast" and z.kind == "fsspec"]
    pairs = [(f, z) for f, z in pairs if f.fused == z.fused]
    head = [b.label for b in backends] + [f"{f.label} / {z.label}" for f, z in pairs]
    print("| workload | " + " | ".join(head) + " |")
    print("|---|" + "---|" * len(head))
    for key, label, _, unit in ROWS:
        _row(res, backends, pairs, label.format(n=meta["chunks"]), key, unit, cpu=False)
    for key, _, short, unit in ROWS:
        _row(res, backends, pairs, f"client CPU: {short}", key, unit, cpu=True)
    for key, _, short, _ in ROWS:
        cells = [f"{res.median_requests(key, b) or 0:,}" for b in backends]
        cells += [""] * len(pairs)
        print(f"| HTTP requests: {short} | " + " | ".join(cells) + " |")
    print("\nicechunk_fast `repo.stats()` (last repeat):\n")
    print("| workload | backend | requests | bytes read | bytes written | seconds in requests |")
    print("|---|---|---|---|---|---|")
    for key, _, what, _ in ROWS:
        for backend in backends:
            st = res.stats.get((key, backend.label))
            if st:
                print(
                    f"| {what} | {backend.label} | {st['requests']:,} | {st['bytes_read']:,} | "
                    f"{st['bytes_written']:,} | {st['seconds']:.2f} |"
                )


def run(
    backends: list[Backend], data: np.ndarray, gets: int, seed: int, repeats: int, res: Results
) -> None:
    """All workloads, ``repeats`` times, the backends taking turns."""
    with CountingS3Server() as server:
        bench = Bench(server, data, gets, seed)
        for r in range(repeats):
            order = backends[r % len(backends) :] + backends[: r % len(backends)]
            for backend in order:
                with pipeline(backend.fused):
                    bench.write(backend, res, r)
                    bench.read_all(backend, res, check=r == 0)
                    bench.random_reads(backend, res)
            print(f"repeat {r + 1}/{repeats} done", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--scale", type=float, default=1.0, help="fraction of 25,000 chunks")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--gets", type=int, default=200, help="random single-chunk reads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-fused", action="store_true", help="skip FusedCodecPipeline runs")
    p.add_argument("--json", help="also write the raw samples here")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.gets < 1 or not 0 < args.scale <= 1:
        p.error("need --repeats >= 1, --gets >= 1, 0 < --scale <= 1")
    rows, cols = grid_for(args.scale)
    shape = (rows * CHUNK, cols * CHUNK)
    data = np.random.default_rng(args.seed).integers(0, 256, size=shape, dtype=np.uint8)
    fused = fused_available() and not args.no_fused
    clients = ["s3fs"] + (["obstore"] if importlib.util.find_spec("obstore") else [])
    backends = [
        backend
        for f in ([False, True] if fused else [False])
        for backend in [Backend("fsspec", f), *(Backend("fast", f, c) for c in clients)]
    ]
    res = Results()
    # s3fs leaves its aiohttp sessions to the garbage collector, which complains
    asyncio_log = logging.getLogger("asyncio")
    level = asyncio_log.level
    asyncio_log.setLevel(logging.CRITICAL)
    try:
        run(backends, data, args.gets, args.seed, args.repeats, res)
    finally:
        asyncio_log.setLevel(level)
    meta = {
        "python": platform.python_version(),
        "zarr": zarr.__version__,
        "chunks": rows * cols,
        "repeats": args.repeats,
        "load": os.getloadavg()[0],
    }
    print_tables(res, backends, meta)
    if args.json:
        with open(args.json, "w") as f:
            out = {
                "meta": meta,
                "times": {f"{w}|{b}": v for (w, b), v in res.times.items()},
                "cpu": {f"{w}|{b}": v for (w, b), v in res.cpu.items()},
                "requests": {f"{w}|{b}": v for (w, b), v in res.requests.items()},
                "stats": {f"{w}|{b}": v for (w, b), v in res.stats.items()},
            }
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
