"""Time history operations at scale: diff/status, rebase, ancestry, shift.

Run: ``python asv_bench/scripts/bench_history.py [--repeats N] [--quick]``. Prints
medians (and minimum) of each workload over the repeats. Workloads use an in-memory
repository so the numbers measure the engine, not the filesystem.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import zarr
from zarr.core.buffer import default_buffer_prototype

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # _checkout
import _checkout  # noqa: F401  (an uninstalled checkout: puts it on sys.path)

import icechunk_fast as ic

PROTO = default_buffer_prototype()


def build_refs(session: ic.Session, name: str, n: int) -> None:
    """An array of ``n`` one-byte chunks, each written through the store (inline refs)."""
    store = session.store
    zarr.create_array(store, name=name, shape=(n,), chunks=(1,), dtype="u1", compressors=None)
    one = PROTO.buffer.from_bytes(b"\x01")
    for i in range(n):
        store.set_sync(f"{name}/c/{i}", one)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_status_and_diff(n: int) -> dict[str, float]:
    repo = ic.Repository.create(ic.in_memory_storage())
    session = repo.writable_session("main")
    build_refs(session, "a", n)
    status = timed(session.status)
    base = repo.lookup_branch("main")
    snap = session.commit("many chunks")
    diff = timed(lambda: repo.diff(from_snapshot_id=base, to_snapshot_id=snap))
    return {f"status, {n:,} changed chunks": status, f"diff, {n:,} changed chunks": diff}


def bench_rebase(n: int, commits: int) -> dict[str, float]:
    repo = ic.Repository.create(ic.in_memory_storage())
    session = repo.writable_session("main")
    zarr.create_array(
        session.store, name="a", shape=(n + commits,), chunks=(1,), dtype="u1", compressors=None
    )
    session.commit("array")
    ours = repo.writable_session("main")
    one = PROTO.buffer.from_bytes(b"\x02")
    for i in range(n):
        ours.store.set_sync(f"a/c/{i}", one)
    for k in range(commits):  # disjoint commits by someone else
        other = repo.writable_session("main")
        other.store.set_sync(f"a/c/{n + k}", one)
        other.commit(f"other {k}")
    rebase = timed(lambda: ours.rebase(ic.ConflictDetector()))
    return {f"rebase {n:,} chunks over {commits} commits": rebase}


def bench_ancestry(commits: int) -> dict[str, float]:
    repo = ic.Repository.create(ic.in_memory_storage())
    for k in range(commits):
        repo.writable_session("main").commit(f"c{k}", allow_empty=True)
    count = 0

    def walk() -> None:
        nonlocal count
        count = sum(1 for _ in repo.ancestry(branch="main"))

    took = timed(walk)
    assert count == commits + 1
    return {f"ancestry of {commits:,} commits": took}


def bench_shift(n: int) -> dict[str, float]:
    repo = ic.Repository.create(ic.in_memory_storage())
    session = repo.writable_session("main")
    build_refs(session, "a", n)
    session.commit("refs")
    s = repo.writable_session("main")
    return {f"shift_array, {n:,} chunks": timed(lambda: s.shift_array("/a", [1]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    big, mid, commits = (2_000, 1_000, 50) if args.quick else (1_000_000, 100_000, 10_000)
    runs: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for result in (
            bench_status_and_diff(big),
            bench_rebase(mid, 10),
            bench_ancestry(commits),
            bench_shift(big),
        ):
            for name, seconds in result.items():
                runs.setdefault(name, []).append(seconds)
    print(
        f"icechunk_fast {ic.__version__}, compiled kernels: {ic.HAVE_CYTHON}, "
        f"zarr {zarr.__version__}, numpy {np.__version__}, repeats {args.repeats}"
    )
    print(f"{'workload':<44} {'median s':>10} {'min s':>10}")
    for name, values in runs.items():
        print(f"{name:<44} {statistics.median(values):>10.4f} {min(values):>10.4f}")


if __name__ == "__main__":
    main()
