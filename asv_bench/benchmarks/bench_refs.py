"""Workloads 4, 5, 6, 9, 10: many chunk refs, commits and manifest size.

An array ``r`` of ``N_REFS`` (1,000,000 at ``SCALE == 1``) chunks of 8 bytes, chunk
``i`` holding the int64 ``i + 1``, in a repository on local disk created with
``inline_chunk_threshold_bytes=0`` so every chunk is a native ref (not inlined in the
manifest). icechunk_fast writes them with ``store.set_sync``.

The real icechunk has no ``set_sync``: its async ``set`` is gathered 1,000 at a time
and costs about 250 us per ref on local disk (one file per chunk), so its ref
benchmarks use ``N_REFS_ICECHUNK`` (50,000 at ``SCALE == 1``) refs instead. Its
``time_build_refs`` and ``peakmem_*`` numbers are therefore for 20x fewer refs and
are not directly comparable; ``track_manifest_bytes_per_ref`` is per ref and is.

zarr's LocalStore has no refs, manifests or commits: skipped.
"""

from __future__ import annotations

import os

import numpy as np
import zarr

from ._common import (
    FAST,
    IC,
    IMPLS,
    N_REFS,
    N_REFS_ICECHUNK,
    PARAM_NAMES,
    SCALE,
    fill_refs,
    get_one,
    manifest_bytes,
    n_refs,
    new_repo,
    new_tmpdir,
    open_readonly,
    open_repo,
    ref_values,
    refs_repo,
    remove,
    require,
)

__all__ = [
    "N_REFS",
    "N_REFS_ICECHUNK",
    "ORDERS",
    "SCALE",
    "BuildManyRefs",
    "CommitManyRefs",
    "CommitOneChunk",
    "CommitOneRefOnManyRefs",
    "OpenManyRefs",
    "PeakmemManyRefs",
]


#: ``in_order`` writes chunk 0, 1, 2, ...; ``shuffled`` the same chunks in a random
#: order. icechunk_fast gives chunks sequential ids, so in-order writes are its best
#: case for manifest size (the ids compress to almost nothing); shuffled is the
#: honest one. The real icechunk's ids are random either way.
ORDERS = ["in_order", "shuffled"]
Built = dict[tuple[str, str], tuple[str, int]]


class OpenManyRefs:
    """Workloads 4 and 10: a committed repository of many refs, built once per run.

    ``setup_cache`` builds one repository per importable repository implementation and
    write order (not timed): ``N_REFS`` refs for icechunk_fast, ``N_REFS_ICECHUNK`` for
    icechunk (see the module docstring).
    """

    params = [IMPLS, ORDERS]
    param_names = [*PARAM_NAMES, "write_order"]
    timeout = 300.0

    def setup_cache(self) -> Built:
        built = {}
        for impl in (FAST, IC):
            try:
                require(impl, repo=True)
            except NotImplementedError:
                continue
            n = n_refs(impl)
            raw = ref_values(n)
            for order in ORDERS:
                path = os.path.abspath(f"refs-{impl}-{order}")
                session, store = refs_repo(impl, path, n)
                perm = np.random.default_rng(11).permutation(n).tolist()
                fill_refs(impl, store, raw, n, perm if order == "shuffled" else None)
                session.commit(f"{n} refs, {order}")
                built[impl, order] = (path, n)
        return built

    setup_cache.timeout = 1800.0  # type: ignore[attr-defined]

    def setup(self, built: Built, impl: str, order: str) -> None:
        require(impl, repo=True)
        self.path, self.n = built[impl, order]
        self.index = (self.n * 3) // 4
        self.key = f"r/c/{self.index}"

    def time_open_first_read(self, built: Built, impl: str, order: str) -> None:
        """``Repository.open`` + ``readonly_session`` + one ``store.get``: cold."""
        buf = get_one(open_readonly(impl, self.path), self.key)
        assert buf is not None and int.from_bytes(buf.to_bytes(), "little") == self.index + 1

    def time_open_first_zarr_read(self, built: Built, impl: str, order: str) -> None:
        """The same through zarr: ``zarr.open_array`` + ``arr[i]`` on a fresh repo."""
        arr = zarr.open_array(open_readonly(impl, self.path), path="r", mode="r")
        assert int(arr[self.index]) == self.index + 1

    def track_manifest_bytes_per_ref(self, built: Built, impl: str, order: str) -> float:
        """Bytes of the files under ``manifests/`` on disk, divided by the refs."""
        total, _ = manifest_bytes(self.path)
        return total / self.n

    track_manifest_bytes_per_ref.unit = "bytes/ref"  # type: ignore[attr-defined]


class _FreshRefs:
    """A new repository with an empty array of ``n_refs(impl)`` chunks per sample."""

    params = [IMPLS]
    param_names = PARAM_NAMES
    number = 1
    repeat = (1, 3, 60.0)
    warmup_time = 0.0
    timeout = 600.0

    def setup(self, impl: str) -> None:
        require(impl, repo=True)
        self.n = n_refs(impl)
        self.raw = ref_values(self.n)
        self.path = new_tmpdir("refs")
        self.session, self.store = refs_repo(impl, f"{self.path}/repo", self.n)

    def teardown(self, impl: str) -> None:
        self.session = self.store = None
        remove(getattr(self, "path", None))


class BuildManyRefs(_FreshRefs):
    """Workload 5: write every ref into a writable session (not committed)."""

    def time_build_refs(self, impl: str) -> None:
        fill_refs(impl, self.store, self.raw, self.n)


class CommitManyRefs(_FreshRefs):
    """The commit of a session holding every ref (built in ``setup``, not timed)."""

    def setup(self, impl: str) -> None:
        super().setup(impl)
        fill_refs(impl, self.store, self.raw, self.n)

    def time_commit_refs(self, impl: str) -> None:
        self.session.commit("refs")


class PeakmemManyRefs(_FreshRefs):
    """Workload 9: peak memory of building and committing every ref.

    asv reports the peak RSS of the benchmark process, which includes the imports
    (zarr, numpy and, where installed, icechunk) and ``setup``.
    """

    def peakmem_build_commit_refs(self, impl: str) -> None:
        fill_refs(impl, self.store, self.raw, self.n)
        self.session.commit("refs")


class CommitOneChunk:
    """Workload 6: commit latency of a session that changed one 1 KiB chunk.

    ``setup`` creates a repository with a committed ``(64, 1024)`` uint8 array in
    ``(1, 1024)`` chunks, opens a new writable session and writes one chunk; only the
    commit is timed (``number = 1``: a fresh session per sample).
    """

    params = [IMPLS]
    param_names = PARAM_NAMES
    number = 1
    repeat = (5, 50, 20.0)
    warmup_time = 0.0

    def setup(self, impl: str) -> None:
        require(impl, repo=True)
        self.path = new_tmpdir("commit1")
        repo = new_repo(impl, f"{self.path}/repo")
        session = repo.writable_session("main")
        zarr.create_array(
            session.store,
            name="a",
            shape=(64, 1024),
            chunks=(1, 1024),
            dtype="u1",
            compressors=None,
            fill_value=0,
        )
        session.commit("empty array")
        self.session = repo.writable_session("main")
        arr = zarr.open_array(self.session.store, path="a", mode="r+")
        arr[7, :] = np.arange(1024, dtype=np.uint16).astype(np.uint8)

    def teardown(self, impl: str) -> None:
        self.session = None
        remove(getattr(self, "path", None))

    def time_commit_one_chunk(self, impl: str) -> None:
        self.session.commit("one chunk")


class CommitOneRefOnManyRefs:
    """Workload 6 at scale: commit one changed chunk of an array of many refs.

    ``setup_cache`` builds its own committed in-order repository per implementation
    (``N_REFS`` / ``N_REFS_ICECHUNK`` refs; not shared with :class:`OpenManyRefs`,
    whose manifest sizes these commits would change). Every sample opens a writable
    session, rewrites one chunk with the bytes it already holds (the data never
    changes, the history grows by one commit), and only the commit is timed. A
    manifest that is rewritten whole makes this grow with the number of refs.
    """

    params = [IMPLS]
    param_names = PARAM_NAMES
    number = 1
    repeat = (3, 20, 20.0)
    warmup_time = 0.0
    timeout = 300.0

    def setup_cache(self) -> dict[str, tuple[str, int]]:
        built = {}
        for impl in (FAST, IC):
            try:
                require(impl, repo=True)
            except NotImplementedError:
                continue
            n = n_refs(impl)
            path = os.path.abspath(f"commit-refs-{impl}")
            session, store = refs_repo(impl, path, n)
            fill_refs(impl, store, ref_values(n), n)
            session.commit(f"{n} refs")
            built[impl] = (path, n)
        return built

    setup_cache.timeout = 1200.0  # type: ignore[attr-defined]

    def setup(self, built: dict[str, tuple[str, int]], impl: str) -> None:
        require(impl, repo=True)
        path, n = built[impl]
        self.session = open_repo(impl, path).writable_session("main")
        index = n // 2
        raw = ref_values(n)
        fill_refs(impl, self.session.store, raw, n, [index])

    def teardown(self, built: dict[str, tuple[str, int]], impl: str) -> None:
        self.session = None

    def time_commit_one_ref(self, built: dict[str, tuple[str, int]], impl: str) -> None:
        self.session.commit("one chunk")
