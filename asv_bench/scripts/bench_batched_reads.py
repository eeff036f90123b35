"""Batched reads on S3 (moto server on loopback): requests and time, coalescing on vs off.

Run from the repository root: ``python asv_bench/scripts/bench_batched_reads.py
[--repeats N] [--quick] [--local DIR]``. Needs moto, s3fs and boto3 (the test extras),
unless ``--local`` puts the repositories on local disk instead. Each workload
is ``store.get_partial_values`` over the chunks of one array, timed in three ways in the
same process, on the same stored data, taking turns within each repeat:

- ``coalesced``: the default settings (ranges at most 1 MiB apart, up to 16 MiB per
  request, and on S3 reads above 32 MiB in concurrent parts);
- ``one per range``: ``read_coalesce_max_bytes=0``, one request per chunk, still all
  in flight at once;
- ``get per key``: ``asyncio.gather`` of ``store.get`` for every key, which is what
  ``get_partial_values`` did before batching.

The table shows the median time over the repeats and the requests of one call, and the
ratio of the medians ``one per range / coalesced``. Moto answers from memory on the same
machine, so a request costs far less than on real S3 (where ~10-50 ms is usual): the
request counts carry over, the time ratios are a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import zarr
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout, for tests/_s3.py

import icechunk_fast as ic
from tests import _s3

PROTO = default_buffer_prototype()
MIB = 1 << 20


def build(n: int, chunk_bytes: int, pack_bytes: int, local: str | None) -> ic.Storage:
    """A repository (on S3, or under ``local``) whose array ``a`` has ``n`` chunks."""
    if local is None:
        storage: ic.Storage = _s3.storage()
    else:
        storage = ic.local_filesystem_storage(tempfile.mkdtemp(dir=local))
    config = ic.RepositoryConfig(chunk_pack_target_bytes=pack_bytes)
    repo = ic.Repository.create(storage, config)
    session = repo.writable_session("main")
    arr = zarr.create_array(
        session.store,
        name="a",
        shape=(n, chunk_bytes),
        chunks=(1, chunk_bytes),
        dtype="u1",
        compressors=None,
    )
    arr[:] = np.random.default_rng(n).integers(0, 256, size=(n, chunk_bytes), dtype="u1")
    session.commit("data")
    return storage


def reader(
    storage: ic.Storage, config: ic.RepositoryConfig, keys: list[str], per_key: bool
) -> tuple[ic.Repository, Callable[[], object]]:
    """A repository with its manifest loaded, and the call to time."""
    repo = ic.Repository.open(storage, config)
    store = repo.readonly_session(branch="main").store
    store.session.read(keys[0])  # the manifest is loaded once, outside the timings

    async def gather() -> list[object]:
        return list(await asyncio.gather(*(store.get(k, PROTO) for k in keys)))

    if per_key:
        return repo, lambda: sync(gather())
    return repo, lambda: sync(store.get_partial_values(PROTO, [(k, None) for k in keys]))


def measure(repo: ic.Repository, call: Callable[[], object]) -> tuple[float, int]:
    repo.reset_stats()
    start = time.perf_counter()
    call()
    elapsed = time.perf_counter() - start
    return elapsed, repo.stats().requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--local", metavar="DIR", help="local storage under DIR instead of S3")
    args = parser.parse_args()
    if args.local is None and not _s3.AVAILABLE:
        sys.exit("needs moto, s3fs and boto3")
    workloads = [  # (label, chunks, chunk bytes, pack bytes)
        ("100 chunks of 4 KiB, one pack", 100, 4096, 32 * MIB),
        ("1,000 chunks of 4 KiB, one pack", 1000, 4096, 32 * MIB),
        ("1,000 chunks of 64 KiB, 2 packs", 1000, 64 * 1024, 32 * MIB),
        ("100 chunks of 4 KiB, unpacked", 100, 4096, 0),
        ("1 chunk of 64 MiB", 1, 64 * MIB, 32 * MIB),
    ]
    if args.quick:
        workloads = [
            (label, min(n, 50), min(size, 64 * 1024), p) for label, n, size, p in workloads
        ]
    modes = {
        "coalesced": ic.RepositoryConfig(),
        "one per range": ic.RepositoryConfig(read_coalesce_max_bytes=0, read_split_bytes=0),
        "get per key": ic.RepositoryConfig(),
    }
    print(
        f"icechunk_fast {ic.__version__}, zarr {zarr.__version__}, "
        f"{'moto S3 on 127.0.0.1' if args.local is None else 'local storage in ' + args.local}, "
        f"repeats {args.repeats} (median seconds; requests per call)"
    )
    header = "| workload | " + " | ".join(modes) + " | one per range / coalesced |"
    print(header)
    print("|---" * (len(modes) + 2) + "|")
    for label, n, size, pack in workloads:
        storage = build(n, size, pack, args.local)
        keys = [f"a/c/{i}/0" for i in range(n)]
        setups = {
            mode: reader(storage, config, keys, per_key=mode == "get per key")
            for mode, config in modes.items()
        }
        for _, call in setups.values():
            call()  # warm connections
        times: dict[str, list[float]] = {mode: [] for mode in modes}
        requests: dict[str, int] = {}
        names = list(modes)
        for r in range(args.repeats):
            for mode in names[r % len(names) :] + names[: r % len(names)]:  # take turns
                elapsed, requests[mode] = measure(*setups[mode])
                times[mode].append(elapsed)
        med = {mode: statistics.median(ts) for mode, ts in times.items()}
        cells = [f"{med[m] * 1e3:.1f} ms ({requests[m]:,})" for m in modes]
        ratio = med["one per range"] / med["coalesced"]
        print(f"| {label} | " + " | ".join(cells) + f" | {ratio:.1f}x |")


if __name__ == "__main__":
    main()
