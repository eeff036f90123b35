"""Fetching chosen manifests in the background as soon as a session opens.

Coordinate arrays are read first by xarray and are tiny; fetching their manifests
while the caller is still parsing metadata hides one round trip per array on object
storage. Failures are ignored here: the read that needs the manifest reports them.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from .format.snapshot import Snapshot
from .manifest_policy import ManifestPreloadConfig

__all__ = ["manifests_to_preload", "start_preload"]

_POOL_THREADS = 4
_pool_lock = threading.Lock()
_pool: tuple[int, ThreadPoolExecutor] | None = None


def _executor() -> ThreadPoolExecutor:
    """One small pool per process (a pool inherited through fork has no threads)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(_POOL_THREADS, "icechunk-fast-preload"))
        return _pool[1]


def manifests_to_preload(snapshot: Snapshot, config: ManifestPreloadConfig) -> list[str]:
    """Ids of the manifests ``config`` selects, in node order, within its ref budget."""
    budget = config.total_refs_limit
    condition = config.condition
    chosen: list[str] = []
    for node in snapshot.nodes.values():
        for ref in node.manifests:
            if ref.num_refs <= budget and condition.matches(node.path, ref.num_refs):
                chosen.append(ref.id)
                budget -= ref.num_refs
    return chosen


def _quietly(load: Callable[[str], object], manifest_id: str) -> None:
    with contextlib.suppress(Exception):  # the read that needs it will raise it
        load(manifest_id)


def start_preload(load: Callable[[str], object], manifest_ids: list[str]) -> list[Future[None]]:
    """Submit ``load(id)`` for every id to the background pool."""
    if not manifest_ids:
        return []
    pool = _executor()
    return [pool.submit(_quietly, load, mid) for mid in manifest_ids]
