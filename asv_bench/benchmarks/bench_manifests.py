"""Manifests at scale: metadata left by many small commits, with and without splitting.

An array ``g`` of ``N_GRID`` (10,000 at ``SCALE == 1``) chunks of 8 bytes, all
written and committed once, then ``N_SMALL_COMMITS`` (200) commits that each rewrite
one chunk at a random position. ``track_metadata_bytes_per_commit`` is what those
commits left on disk, per commit: everything under the repository except chunk
objects (manifests, snapshots, transaction logs, the repo info / refs). With
``split=default`` Icechunk keeps one manifest per array and rewrites it whole on every
commit; icechunk_fast's default boxes of 100,000 chunks also make this array one
manifest, but a regular manifest costs a few bytes per ref. With ``split=1000`` both
split the array's manifest every 1,000 chunks (the same ``ManifestSplittingConfig``)
and a commit rewrites one split.

``time_commit_one_chunk`` is the latency of one more such commit. The repositories are
built once per run in ``setup_cache`` (on local disk, ``inline_chunk_threshold_bytes=0``
so chunks are native refs). zarr's LocalStore has no commits: skipped.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import numpy as np
import zarr

from ._common import IMPLS, PARAM_NAMES, SCALE, _module, remove, require, scaled

__all__ = ["N_GRID", "N_SMALL_COMMITS", "SCALE", "SPLITS", "ManyCommits"]

N_GRID = scaled(10_000, 20)
N_SMALL_COMMITS = scaled(200, 3)
SPLITS = ["default", "1000"]
SPLIT_SIZE = scaled(1_000, 5)


def _config(impl: str, split: str) -> Any:
    mod = _module(impl)
    manifest = None
    if split != "default":
        rules = {
            mod.ManifestSplitCondition.AnyArray(): {mod.ManifestSplitDimCondition.Any(): SPLIT_SIZE}
        }
        manifest = mod.ManifestConfig(splitting=mod.ManifestSplittingConfig.from_dict(rules))
    return mod.RepositoryConfig(inline_chunk_threshold_bytes=0, manifest=manifest)


def _open(impl: str, path: str, split: str, create: bool = False) -> Any:
    mod = _module(impl)
    storage = mod.local_filesystem_storage(path)
    if create:
        return mod.Repository.create(storage, _config(impl, split))
    return mod.Repository.open(storage, _config(impl, split))


def _one_chunk_commit(repo: Any, rng: np.random.Generator, message: str) -> None:
    session = repo.writable_session("main")
    i = int(rng.integers(N_GRID))
    zarr.open_array(session.store, path="g")[i] = -i - 1
    session.commit(message)


def metadata_bytes(path: str) -> int:
    """Bytes of every file under ``path`` except chunk objects and temp files."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = [d for d in dirnames if d != "chunks"]
        total += sum(
            os.path.getsize(os.path.join(dirpath, f)) for f in filenames if not f.startswith(".")
        )
    return total


def build(impl: str, split: str, path: str) -> float:
    """Build the repository at ``path``; return metadata bytes per small commit."""
    repo = _open(impl, path, split, create=True)
    session = repo.writable_session("main")
    arr = zarr.create_array(
        session.store, name="g", shape=(N_GRID,), chunks=(1,), dtype="<i8", fill_value=0
    )
    arr[:] = np.arange(1, N_GRID + 1, dtype="<i8")
    session.commit("fill")
    before = metadata_bytes(path)
    rng = np.random.default_rng(0)
    for n in range(N_SMALL_COMMITS):
        _one_chunk_commit(repo, rng, f"small {n}")
    return (metadata_bytes(path) - before) / N_SMALL_COMMITS


class ManyCommits:
    """Metadata growth and commit latency of one-chunk commits (see the module docstring)."""

    params = [IMPLS, SPLITS]
    param_names = [*PARAM_NAMES, "split"]
    timeout = 600.0

    def setup_cache(self) -> dict[str, tuple[str, float]]:
        built = {}
        for impl in IMPLS:
            try:
                require(impl, repo=True)
            except NotImplementedError:
                continue
            for split in SPLITS:
                path = os.path.abspath(f"many-commits-{impl}-{split}")
                built[f"{impl}/{split}"] = (path, build(impl, split, path))
        return built

    def setup(self, built: dict[str, tuple[str, float]], impl: str, split: str) -> None:
        require(impl, repo=True)
        if f"{impl}/{split}" not in built:
            raise NotImplementedError(f"{impl} was not built")
        source = built[f"{impl}/{split}"][0]
        self.path = source + "-copy"  # each timed commit lands on a fresh copy
        remove(self.path)
        shutil.copytree(source, self.path)
        self.repo = _open(impl, self.path, split)
        self.rng = np.random.default_rng(1)

    def teardown(self, built: dict[str, tuple[str, float]], impl: str, split: str) -> None:
        remove(getattr(self, "path", None))

    def time_commit_one_chunk(self, built: dict, impl: str, split: str) -> None:
        _one_chunk_commit(self.repo, self.rng, "timed")

    def track_metadata_bytes_per_commit(self, built: dict, impl: str, split: str) -> float:
        return built[f"{impl}/{split}"][1]

    track_metadata_bytes_per_commit.unit = "bytes"  # type: ignore[attr-defined]
