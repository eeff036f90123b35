"""s3fs (aiobotocore) against obstore (Rust ``object_store``) on one moto server, one run.

The requests icechunk_fast makes on S3, each with 1 KiB payloads:

``get``     GET of a whole small object
``range``   ranged GET of 1 KiB at a random offset of a 4 MiB object (a chunk in a pack)
``put``     PUT of a small object
``create``  conditional create (``If-None-Match: *``) with a write id in the metadata
``swap``    compare-and-swap (``If-Match: <etag>``) of one object, each on the last

each one at a time (latency: ``seq``) and ``--concurrency`` in flight (throughput:
``conc``). Clients: ``s3fs`` is aiobotocore called the way ``S3Storage`` calls it
(``fs._call_s3``), on fsspec's loop; ``obstore`` is its async API on the same loop;
``obstore-sync`` its blocking API (sequential rows only); ``S3Storage`` and
``ObstoreS3Storage`` are icechunk_fast's storages on those two clients (sync methods;
async twins for ``conc``), for how much our layer adds. The clients take turns, their
order rotating between repeats, and the table shows medians of microseconds per
request; the ratios > 1 mean obstore is faster. The server counts the HTTP requests
of every cell: a client that needed more than one per operation would show it.

Run from the repository root::

    python asv_bench/scripts/compare_s3_clients.py               # ~3 min
    python asv_bench/scripts/compare_s3_clients.py --n 50 --repeats 2   # quick
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import fsspec.asyn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # _checkout, _s3_server
import _checkout  # noqa: F401  (an uninstalled checkout: puts it on sys.path)
from _s3_server import BUCKET, KEY, REGION, SECRET, CountingS3Server

OPS = ("get", "range", "put", "create", "swap")
CLIENTS = ("s3fs", "obstore", "obstore-sync", "S3Storage", "ObstoreS3Storage")
STORAGES = ("S3Storage", "ObstoreS3Storage")
PAYLOAD = os.urandom(1024)
BIG = 4 << 20
WRITE_ID = "icechunk-write-id"
perf = time.perf_counter


def _changed() -> bytes:
    """A new 1 KiB body: S3's ETag is the body's MD5, so a swap must change the body."""
    return PAYLOAD[:-16] + os.urandom(16)


class Fixture:
    """The objects the reads read, and fresh names for the writes."""

    def __init__(self, n: int, seed: int) -> None:
        self.run = uuid.uuid4().hex[:8]
        self.small = [f"clients-{self.run}/small/{i}" for i in range(n)]
        self.big = f"clients-{self.run}/big"
        rng = random.Random(seed)
        self.ranges = [(o, o + 1024) for o in (rng.randrange(0, BIG - 1024) for _ in range(n))]
        self.counter = 0

    def fresh(self, n: int) -> list[str]:
        self.counter += 1
        return [f"clients-{self.run}/w{self.counter}/{i}" for i in range(n)]


# -- one client each: op name -> (key or range) -> awaitable ----------------------------
class S3fsClient:
    def __init__(self, server: CountingS3Server, concurrency: int) -> None:
        self.fs = server.s3fs(config_kwargs={"max_pool_connections": concurrency})
        self.loop = self.fs.loop

    async def _put(self, key: str, **extra: Any) -> str:
        resp = await self.fs._call_s3("put_object", Bucket=BUCKET, Key=key, Body=PAYLOAD, **extra)
        return str(resp["ETag"])

    async def get(self, key: str) -> bytes:
        resp = await self.fs._call_s3("get_object", Bucket=BUCKET, Key=key)
        async with resp["Body"] as body:
            return bytes(await body.read())

    async def range(self, key: str, span: tuple[int, int]) -> bytes:
        resp = await self.fs._call_s3(
            "get_object", Bucket=BUCKET, Key=key, Range=f"bytes={span[0]}-{span[1] - 1}"
        )
        async with resp["Body"] as body:
            return bytes(await body.read())

    async def put(self, key: str) -> str:
        return await self._put(key)

    async def create(self, key: str) -> str:
        return await self._put(key, IfNoneMatch="*", Metadata={WRITE_ID: uuid.uuid4().hex})

    async def swap(self, key: str, etag: str) -> str:
        return await self._put(
            key, body=_changed(), IfMatch=etag, Metadata={WRITE_ID: uuid.uuid4().hex}
        )


class ObstoreClient:
    def __init__(self, server: CountingS3Server) -> None:
        import obstore
        from obstore.store import S3Store

        self.ob = obstore
        self.store = S3Store(
            BUCKET,
            endpoint=server.url,
            access_key_id=KEY,
            secret_access_key=SECRET,
            region=REGION,
            virtual_hosted_style_request=False,
            client_options={"allow_http": True},
        )
        self.loop = fsspec.asyn.get_loop()

    async def get(self, key: str) -> bytes:
        result = await self.ob.get_async(self.store, key)
        return bytes(await result.bytes_async())

    async def range(self, key: str, span: tuple[int, int]) -> bytes:
        return bytes(await self.ob.get_range_async(self.store, key, start=span[0], end=span[1]))

    async def put(self, key: str) -> str:
        return str((await self.ob.put_async(self.store, key, PAYLOAD))["e_tag"])

    async def create(self, key: str) -> str:
        attrs = {WRITE_ID: uuid.uuid4().hex}
        result = await self.ob.put_async(self.store, key, PAYLOAD, mode="create", attributes=attrs)
        return str(result["e_tag"])

    async def swap(self, key: str, etag: str) -> str:
        attrs = {WRITE_ID: uuid.uuid4().hex}
        result = await self.ob.put_async(
            self.store, key, _changed(), mode={"e_tag": etag}, attributes=attrs
        )
        return str(result["e_tag"])

    # blocking twins
    def get_sync(self, key: str) -> bytes:
        return bytes(self.ob.get(self.store, key).bytes())

    def range_sync(self, key: str, span: tuple[int, int]) -> bytes:
        return bytes(self.ob.get_range(self.store, key, start=span[0], end=span[1]))

    def put_sync(self, key: str) -> str:
        return str(self.ob.put(self.store, key, PAYLOAD)["e_tag"])

    def create_sync(self, key: str) -> str:
        attrs = {WRITE_ID: uuid.uuid4().hex}
        return str(self.ob.put(self.store, key, PAYLOAD, mode="create", attributes=attrs)["e_tag"])

    def swap_sync(self, key: str, etag: str) -> str:
        attrs = {WRITE_ID: uuid.uuid4().hex}
        mode = {"e_tag": etag}
        return str(self.ob.put(self.store, key, _changed(), mode=mode, attributes=attrs)["e_tag"])


# -- running one cell ---------------------------------------------------------------------
def _run_async(loop: Any, make: Callable[[], Awaitable[Any]]) -> Any:
    async def call() -> Any:
        return await make()

    return fsspec.asyn.sync(loop, call)


async def _bounded(calls: list[Callable[[], Awaitable[Any]]], limit: int) -> list[Any]:
    sem = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        async with sem:
            return await call()

    return await asyncio.gather(*(one(c) for c in calls))


def _async_cell(client: Any, op: str, fx: Fixture, n: int, conc: int) -> float:
    """Seconds for ``n`` requests of ``op`` (``conc`` in flight; 1 = one at a time)."""
    loop = client.loop
    if op == "swap":  # a chain: each swap needs the etag of the one before
        key = fx.fresh(1)[0]
        etag = _run_async(loop, lambda: client.put(key))
        t0 = perf()

        async def chain() -> None:
            tag = etag
            for _ in range(n):
                tag = await client.swap(key, tag)

        _run_async(loop, chain)
        return perf() - t0
    calls = _calls(client, op, fx, n)
    if conc == 1:

        async def sequential() -> None:
            for call in calls:
                await call()

        t0 = perf()
        _run_async(loop, sequential)
        return perf() - t0
    t0 = perf()
    _run_async(loop, lambda: _bounded(calls, conc))
    return perf() - t0


def _calls(client: Any, op: str, fx: Fixture, n: int) -> list[Callable[[], Awaitable[Any]]]:
    if op == "get":
        return [lambda k=k: client.get(k) for k in fx.small[:n]]
    if op == "range":
        return [lambda s=s: client.range(fx.big, s) for s in fx.ranges[:n]]
    method = client.put if op == "put" else client.create
    return [lambda k=k: method(k) for k in fx.fresh(n)]


def _sync_cell(call: dict[str, Callable[..., Any]], op: str, fx: Fixture, n: int) -> float:
    if op == "swap":
        key = fx.fresh(1)[0]
        tag = call["start"](key)
        t0 = perf()
        for _ in range(n):
            tag = call["swap"](key, tag)
        return perf() - t0
    t0 = perf()
    if op == "get":
        for k in fx.small[:n]:
            call["get"](k)
    elif op == "range":
        for span in fx.ranges[:n]:
            call["range"](fx.big, span)
    else:
        for k in fx.fresh(n):
            call[op](k)
    return perf() - t0


def _storage_calls(storage: Any, prefix_len: int) -> dict[str, Callable[..., Any]]:
    """A storage's blocking methods under the names of the ops (keys relative to it)."""

    def rel(key: str) -> str:
        return key[prefix_len:]

    def swap(key: str, version: str) -> str:
        new = storage.put_if_match(rel(key), _changed(), version)
        assert new is not None
        return str(new)

    return {
        "get": lambda k: storage.get(rel(k)),
        "range": lambda k, s: storage.get_range(rel(k), *s),
        "put": lambda k: storage.put(rel(k), PAYLOAD),
        "start": lambda k: storage.put_if_match(rel(k), PAYLOAD, None),
        "create": lambda k: storage.put_if_absent(rel(k), PAYLOAD),
        "swap": swap,
    }


def _storage_async_cell(storage: Any, op: str, fx: Fixture, n: int, conc: int, plen: int) -> float:
    if op == "get":
        calls = [lambda k=k: storage.get_async(k[plen:]) for k in fx.small[:n]]
    elif op == "range":
        calls = [lambda s=s: storage.get_range_async(fx.big[plen:], *s) for s in fx.ranges[:n]]
    else:
        calls = [lambda k=k: storage.put_async(k[plen:], PAYLOAD) for k in fx.fresh(n)]
    t0 = perf()
    asyncio.run(_bounded(calls, conc))
    return perf() - t0


# -- the run ----------------------------------------------------------------------------
def check_conditionals(ob: ObstoreClient, s3: S3fsClient, fx: Fixture) -> dict[str, bool]:
    """Does moto refuse a second create and a stale swap, for both clients?"""
    from obstore.exceptions import AlreadyExistsError, PreconditionError

    found: dict[str, bool] = {}
    key = fx.fresh(1)[0]
    first = ob.create_sync(key)
    try:
        ob.create_sync(key)
        found["obstore create twice refused"] = False
    except AlreadyExistsError:
        found["obstore create twice refused"] = True
    ob.swap_sync(key, first)
    try:
        ob.swap_sync(key, first)
        found["obstore stale swap refused"] = False
    except PreconditionError:
        found["obstore stale swap refused"] = True
    try:
        _run_async(s3.loop, lambda: s3.swap(key, first))
        found["s3fs stale swap refused"] = False
    except Exception as exc:
        chain = [exc, exc.__cause__, exc.__context__]
        found["s3fs stale swap refused"] = any("PreconditionFailed" in repr(e) for e in chain)
    head = ob.ob.get(ob.store, key, options={"head": True})
    found["obstore reads back the write id"] = WRITE_ID in head.attributes
    return found


RATIOS = (("s3fs", "obstore"), ("S3Storage", "ObstoreS3Storage"))


def print_table(
    samples: dict[tuple[str, str, str], list[float]],
    req_per_op: dict[tuple[str, str, str], float] | None,
) -> None:
    ratio_names = [f"{a} / {b}" for a, b in RATIOS]
    extra = ["HTTP req/op"] if req_per_op is not None else []
    head = [*CLIENTS, *ratio_names, *extra]
    print("| request | mode | " + " | ".join(head) + " |")
    print("|---|---|" + "---|" * len(head))
    for op in OPS:
        for mode in ("seq", "conc"):
            med = {
                c: statistics.median(samples[(op, mode, c)])
                for c in CLIENTS
                if samples.get((op, mode, c))
            }
            if not med:
                continue
            cells = [f"{med[c]:,.0f} us" if c in med else "" for c in CLIENTS]
            cells += [f"{med[a] / med[b]:.2f}x" if a in med and b in med else "" for a, b in RATIOS]
            if req_per_op is not None:
                cells.append(
                    " / ".join(
                        f"{req_per_op[(op, mode, c)]:.2f}"
                        for c in ("s3fs", "obstore")
                        if (op, mode, c) in req_per_op
                    )
                )
            print(f"| {op} | {mode} | " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=300, help="requests per cell (default 300)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    n, conc = args.n, args.concurrency

    import obstore

    with CountingS3Server() as server:
        fx = Fixture(n, args.seed)
        boto = server.client()
        for key in fx.small:
            boto.put_object(Bucket=BUCKET, Key=key, Body=PAYLOAD)
        boto.put_object(Bucket=BUCKET, Key=fx.big, Body=os.urandom(BIG))
        s3 = S3fsClient(server, conc)
        ob = ObstoreClient(server)
        prefix = f"clients-{fx.run}"
        storages = {
            "S3Storage": server.icechunk_fast_storage(prefix, max_concurrent_requests=conc),
            "ObstoreS3Storage": server.icechunk_fast_storage(
                prefix, client="obstore", max_concurrent_requests=conc
            ),
        }
        plen = len(prefix) + 1
        sync_calls = {
            "obstore-sync": {
                **{op: getattr(ob, f"{op}_sync") for op in OPS},
                "start": ob.put_sync,
            },
            **{name: _storage_calls(st, plen) for name, st in storages.items()},
        }
        conditionals = check_conditionals(ob, s3, fx)
        for client in (s3, ob):  # warm up connections and credentials
            _run_async(client.loop, lambda c=client: c.get(fx.small[0]))
        for st in storages.values():
            st.get(fx.small[0][plen:])
        server.counts()

        samples: dict[tuple[str, str, str], list[float]] = {}
        cpu_samples: dict[tuple[str, str, str], list[float]] = {}
        req_per_op: dict[tuple[str, str, str], float] = {}
        for r in range(args.repeats):
            order = list(CLIENTS[r % len(CLIENTS) :] + CLIENTS[: r % len(CLIENTS)])
            for op in OPS:
                for mode, width in (("seq", 1), ("conc", conc)):
                    if op == "swap" and mode == "conc":
                        continue  # a chain of swaps cannot overlap
                    for name in order:
                        if name == "obstore-sync" and mode == "conc":
                            continue
                        if name in STORAGES and mode == "conc" and op in ("create", "swap"):
                            continue  # no async conditional writes
                        cpu0 = time.process_time()
                        if name == "s3fs":
                            secs = _async_cell(s3, op, fx, n, width)
                        elif name == "obstore":
                            secs = _async_cell(ob, op, fx, n, width)
                        elif mode == "seq":
                            secs = _sync_cell(sync_calls[name], op, fx, n)
                        else:
                            secs = _storage_async_cell(storages[name], op, fx, n, width, plen)
                        cpu = time.process_time() - cpu0
                        cell = (op, mode, name)
                        samples.setdefault(cell, []).append(secs / n * 1e6)
                        cpu_samples.setdefault(cell, []).append(cpu / n * 1e6)
                        req_per_op[cell] = server.counts().get("requests", 0) / n
            print(f"repeat {r + 1}/{args.repeats} done", file=sys.stderr, flush=True)

    print(
        f"\n## s3fs vs obstore on moto (Python {platform.python_version()}, "
        f"obstore {obstore.__version__}, n={n}, concurrency {conc}, "
        f"median of {args.repeats}, os.cpu_count()={os.cpu_count()}, "
        f"load {os.getloadavg()[0]:.1f})\n"
    )
    for what, ok in conditionals.items():
        print(f"- {what}: {'yes' if ok else 'NO'}")
    print()
    print("Wall time per request (the server's own time included):\n")
    print_table(samples, req_per_op)
    print("\nCPU time of the client process per request (all its threads; the server")
    print("runs in another process):\n")
    print_table(cpu_samples, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
