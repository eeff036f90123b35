"""What manifest splitting buys on one big array: commit and cold-read latency.

Run: ``python asv_bench/scripts/bench_splitting.py [--refs N] [--split S] [--repeats R]``.
Builds, in memory, an array of ``N`` (default 1,000,000) 8-byte chunks written in a
shuffled order (the honest case: in-order writes compress to nearly nothing), once
with one manifest and once split every ``S`` (default 10,000) chunks, then prints the
median over ``R`` repeats of: a commit that rewrites one random chunk, a cold
``Repository.open`` + first read, and the manifest bytes such a commit writes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
import zarr
from zarr.core.buffer import default_buffer_prototype

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # _checkout
import _checkout  # noqa: F401  (an uninstalled checkout: puts it on sys.path)

import icechunk_fast as ic

PROTO = default_buffer_prototype()


def config(split: int | None) -> ic.RepositoryConfig:
    """Split every ``split`` chunks, or (None) one manifest for the whole array."""
    rules = {}
    if split:
        rules = {ic.ManifestSplitCondition.AnyArray(): {ic.ManifestSplitDimCondition.Any(): split}}
    splitting = ic.ManifestSplittingConfig.from_dict(rules)  # no rules: never split
    return ic.RepositoryConfig(
        inline_chunk_threshold_bytes=0, manifest=ic.ManifestConfig(splitting=splitting)
    )


def build(n: int, split: int | None, seed: int) -> tuple[ic.Storage, float]:
    storage = ic.in_memory_storage()
    repo = ic.Repository.create(storage, config(split))
    session = repo.writable_session("main")
    zarr.create_array(
        session.store, name="r", shape=(n,), chunks=(1,), dtype="<i8", compressors=None
    )
    raw = (np.arange(n, dtype="<i8") + 1).tobytes()
    for i in np.random.default_rng(seed).permutation(n).tolist():
        session.store.set_sync(f"r/c/{i}", PROTO.buffer.from_bytes(raw[8 * i : 8 * i + 8]))
    start = time.perf_counter()
    session.commit("fill")
    return storage, time.perf_counter() - start


def manifest_bytes(storage: ic.Storage) -> int:
    return sum(len(storage.get(k)) for k in storage.list("manifests/"))


def measure(n: int, split: int | None, repeats: int, seed: int) -> dict[str, float]:
    storage, full_commit = build(n, split, seed)
    repo = ic.Repository.open(storage, config(split))
    rng = np.random.default_rng(seed + 1)
    commits, opens, written = [], [], []
    for _ in range(repeats):
        session = repo.writable_session("main")
        session.store.set_sync(f"r/c/{int(rng.integers(n))}", PROTO.buffer.from_bytes(b"\0" * 8))
        before = manifest_bytes(storage)
        start = time.perf_counter()
        session.commit("one chunk")
        commits.append(time.perf_counter() - start)
        written.append(manifest_bytes(storage) - before)
        start = time.perf_counter()
        store = ic.Repository.open(storage, config(split)).readonly_session(branch="main").store
        if store.get_sync(f"r/c/{int(rng.integers(n))}") is None:
            raise AssertionError("a written chunk read as missing")
        opens.append(time.perf_counter() - start)
    return {
        "commit of all refs (s)": full_commit,
        "one-chunk commit (ms)": statistics.median(commits) * 1e3,
        "cold open + first read (ms)": statistics.median(opens) * 1e3,
        "manifest bytes per one-chunk commit": statistics.median(written),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--refs", type=int, default=1_000_000)
    p.add_argument("--split", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    plain = measure(args.refs, None, args.repeats, args.seed)
    split = measure(args.refs, args.split, args.repeats, args.seed)
    print(f"{args.refs:,} refs written shuffled; medians of {args.repeats}\n")
    print(f"| measure | one manifest | split every {args.split:,} | split / one |")
    print("|---|---|---|---|")
    for name, a in plain.items():
        b = split[name]
        print(f"| {name} | {a:,.3g} | {b:,.3g} | {b / a:.3g}x |")


if __name__ == "__main__":
    main()
