"""Manifest splitting and preloading: policies, layout on commit, reads, and a model check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st
from zarr.core.buffer import default_buffer_prototype

import icechunk_fast as ic
from icechunk_fast.config import (
    ManifestConfig,
    ManifestPreloadCondition,
    ManifestPreloadConfig,
    ManifestSplitCondition,
    ManifestSplitDimCondition,
    ManifestSplittingConfig,
    RepositoryConfig,
)
from icechunk_fast.storage import InMemoryStorage

PROTO = default_buffer_prototype()
Split, Dim = ManifestSplitCondition, ManifestSplitDimCondition


def splitting(rules: dict) -> RepositoryConfig:
    return RepositoryConfig(
        manifest=ManifestConfig(splitting=ManifestSplittingConfig.from_dict(rules))
    )


def by_axis0(n: int) -> RepositoryConfig:
    return splitting({Split.AnyArray(): {Dim.Axis(0): n}})


class RecordingStorage(InMemoryStorage):
    """In-memory storage remembering the keys it was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def get(self, key: str) -> bytes:
        self.reads.append(key)
        return super().get(key)

    def get_range(self, key: str, start: int, end: int | None) -> bytes:
        self.reads.append(key)
        return super().get_range(key, start, end)


def manifests(repo: ic.Repository, path: str = "/a", branch: str = "main") -> tuple:
    snapshot = repo._assets.load_snapshot(repo.lookup_branch(branch))
    return snapshot.nodes[path].manifests


def put(store: ic.IcechunkStore, key: str, value: bytes) -> None:
    store.set_sync(key, PROTO.buffer.from_bytes(value))


def get(store: ic.IcechunkStore, key: str) -> bytes | None:
    got = store.get_sync(key)
    return None if got is None else got.to_bytes()


def make_array(repo: ic.Repository, shape=(100, 4), chunks=(1, 1), dims=None) -> None:
    session = repo.writable_session("main")
    zarr.create_array(
        session.store,
        name="a",
        shape=shape,
        chunks=chunks,
        dtype="i4",
        compressors=None,
        dimension_names=dims,
    )
    session.commit("array")


# -- policies ---------------------------------------------------------------------
def test_split_sizes_follow_the_first_matching_rule() -> None:
    config = ManifestSplittingConfig.from_dict(
        {
            Split.name_matches("^temp"): {Dim.DimensionName("time"): 10, Dim.Any(): 2},
            Split.path_matches("^/sub/"): {Dim.Axis(1): 5},
            Split.AnyArray(): {Dim.Axis(0): 100},
        }
    )
    assert config.split_sizes_for("/temperature", ("x", "time")) == (2, 10)
    assert config.split_sizes_for("/sub/u", ("x", "y")) == (0, 5)
    assert config.split_sizes_for("/other", None, 3) == (100, 0, 0)
    assert config.split_sizes_for("/sub/u", None, 1) is None  # axis 1 does not exist
    both = Split.and_conditions([Split.name_matches("u"), Split.path_matches("^/sub")])
    assert both.matches("/sub/u") and not both.matches("/u")
    either = Split.or_conditions([Split.name_matches("^u$"), Split.name_matches("^v$")])
    assert either.matches("/g/v") and not either.matches("/g/w")


def test_manifest_config_round_trips_through_the_repository() -> None:
    cond = ManifestPreloadCondition.and_conditions(
        [ManifestPreloadCondition.path_matches("^/x"), ManifestPreloadCondition.num_refs(1, 50)]
    )
    config = RepositoryConfig(
        manifest=ManifestConfig(
            preload=ManifestPreloadConfig(max_total_refs=500, preload_if=cond),
            splitting=ManifestSplittingConfig.from_dict(
                {Split.or_conditions([Split.AnyArray()]): {Dim.Axis(0): 7, Dim.Any(): 3}}
            ),
        )
    )
    storage = ic.in_memory_storage()
    ic.Repository.create(storage, config)
    reopened = ic.Repository.open(storage).config
    assert reopened.manifest == config.manifest
    assert RepositoryConfig.decode(config.encode()) == config
    # a config given at open replaces the persisted policy
    other = by_axis0(3)
    assert ic.Repository.open(storage, other).config.manifest_splitting == (
        other.manifest.splitting
    )


@pytest.mark.parametrize(
    "bad",
    [
        lambda: ManifestSplittingConfig.from_dict({Split.AnyArray(): {Dim.Axis(0): 0}}),
        lambda: ManifestSplittingConfig.from_dict({Split.AnyArray(): {Dim.Axis(-1): 3}}),
        lambda: ManifestSplittingConfig.from_dict({"a": {Dim.Axis(0): 3}}),
        lambda: Split.name_matches("("),
        lambda: ManifestPreloadConfig(max_total_refs=-1),
    ],
)
def test_bad_policies_are_refused(bad) -> None:
    with pytest.raises(ic.InvalidInputError):
        bad()


# -- layout on commit -------------------------------------------------------------
def test_commit_writes_one_manifest_per_box_and_rewrites_only_touched_ones() -> None:
    repo = ic.Repository.create(ic.in_memory_storage(), by_axis0(10))
    make_array(repo)
    session = repo.writable_session("main")
    arr = zarr.open_array(session.store, path="a")
    data = np.arange(1, 401, dtype="i4").reshape(100, 4)
    arr[:] = data
    session.commit("all")
    first = manifests(repo)
    assert len(first) == 10
    assert [m.extent for m in first] == [((i * 10, i * 10 + 10), (0, 4)) for i in range(10)]
    assert all(m.num_refs == 40 for m in first)

    session = repo.writable_session("main")
    zarr.open_array(session.store, path="a")[55, 2] = -1
    session.commit("one chunk")
    second = manifests(repo)
    changed = [i for i, (x, y) in enumerate(zip(first, second, strict=True)) if x.id != y.id]
    assert changed == [5]
    data[55, 2] = -1
    ro = zarr.open_array(repo.readonly_session(branch="main").store, path="a", mode="r")
    np.testing.assert_array_equal(ro[:], data)

    session = repo.writable_session("main")  # deleting every chunk of a box drops it
    for row in range(20, 30):
        for col in range(4):
            session.store._session.delete(f"a/c/{row}/{col}")
    session.commit("delete a box")
    third = manifests(repo)
    assert len(third) == 9 and all(m.extent[0][0] != 20 for m in third)
    assert get(repo.readonly_session(branch="main").store, "a/c/25/0") is None
    assert get(repo.readonly_session(branch="main").store, "a/c/35/0") is not None


def test_big_arrays_are_split_by_default_unless_splitting_is_turned_off() -> None:
    # a 300 x 1,000 chunk grid: the default boxes hold 100 rows (100,000 chunks)
    for config, boxes in ((None, 3), (splitting({}), 1)):
        repo = ic.Repository.create(ic.in_memory_storage(), config)
        make_array(repo, shape=(300, 1000))
        session = repo.writable_session("main")
        for row in (0, 150, 299):
            put(session.store, f"a/c/{row}/7", np.int32(row).tobytes())
        session.commit("three rows")
        assert len(manifests(repo)) == boxes
        store = repo.readonly_session(branch="main").store
        assert [get(store, f"a/c/{row}/7") for row in (0, 150, 299, 1)] == [
            np.int32(0).tobytes(),
            np.int32(150).tobytes(),
            np.int32(299).tobytes(),
            None,
        ]


def test_reading_a_corner_loads_one_small_manifest() -> None:
    storage = RecordingStorage()
    repo = ic.Repository.create(storage, by_axis0(10))
    make_array(repo)
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="a")[:] = np.ones((100, 4), "i4")
    session.commit("all")
    fresh = ic.Repository.open(storage)
    storage.reads.clear()
    store = fresh.readonly_session(branch="main").store
    assert get(store, "a/c/93/1") == np.int32(1).tobytes()
    loaded = [k for k in storage.reads if k.startswith("manifests/")]
    assert loaded == [f"manifests/{manifests(repo)[9].id}"]
    assert get(store, "a/c/93/2") is not None  # same box: no new manifest read
    assert [k for k in storage.reads if k.startswith("manifests/")] == loaded


def test_a_changed_policy_resplits_on_the_next_commit(tmp_path: Path) -> None:
    storage = ic.local_filesystem_storage(tmp_path / "repo")
    repo = ic.Repository.create(storage)
    make_array(repo, dims=("time", "x"))
    session = repo.writable_session("main")
    data = np.arange(1, 401, dtype="i4").reshape(100, 4)
    zarr.open_array(session.store, path="a")[:] = data
    session.commit("unsplit")
    assert len(manifests(repo)) == 1

    policies = [
        splitting({Split.AnyArray(): {Dim.DimensionName("^time$"): 25}}),  # 4 boxes
        splitting({Split.AnyArray(): {Dim.Axis(0): 50, Dim.Axis(1): 2}}),  # 2 x 2 boxes
        RepositoryConfig(),  # back to one manifest
    ]
    for n, (config, boxes) in enumerate(zip(policies, (4, 4, 1), strict=True)):
        repo = ic.Repository.open(storage, config)
        session = repo.writable_session("main")
        zarr.open_array(session.store, path="a")[0, 0] = n
        session.commit(f"policy {n}")
        data[0, 0] = n
        assert len(manifests(repo)) == boxes
        ro = zarr.open_array(repo.readonly_session(branch="main").store, path="a", mode="r")
        np.testing.assert_array_equal(ro[:], data)


def test_shift_rebase_and_listing_on_split_arrays() -> None:
    repo = ic.Repository.create(ic.in_memory_storage(), by_axis0(4))
    make_array(repo, shape=(16, 2))
    session = repo.writable_session("main")
    data = np.arange(1, 33, dtype="i4").reshape(16, 2)
    zarr.open_array(session.store, path="a")[:] = data
    session.commit("all")

    one, two = repo.writable_session("main"), repo.writable_session("main")
    zarr.open_array(one.store, path="a")[1, 0] = 100
    zarr.open_array(two.store, path="a")[13, 1] = 200
    one.commit("one")
    two.commit("two", rebase_with=ic.ConflictDetector())
    data[1, 0], data[13, 1] = 100, 200
    store = repo.readonly_session(branch="main").store
    np.testing.assert_array_equal(zarr.open_array(store, path="a", mode="r")[:], data)
    keys = sorted(store._session.list_keys("a/c/"))
    assert len(keys) == 32

    session = repo.writable_session("main")
    session.shift_array("/a", (4, 0))  # a rewrite of the whole array: re-split
    session.commit("shift")
    shifted = zarr.open_array(repo.readonly_session(branch="main").store, path="a", mode="r")
    np.testing.assert_array_equal(shifted[4:], data[:12])
    assert all(
        m.extent[0][0] % 4 == 0 and m.extent[0][1] - m.extent[0][0] <= 4 for m in manifests(repo)
    )


# -- model check ------------------------------------------------------------------
ops = st.lists(
    st.lists(
        st.tuples(st.integers(0, 19), st.integers(0, 4), st.one_of(st.none(), st.integers(0, 99))),
        min_size=1,
        max_size=12,
    ),
    min_size=1,
    max_size=6,
)


@settings(deadline=None)
@given(ops=ops, size0=st.integers(1, 25), size1=st.integers(0, 6), resplit=st.booleans())
def test_split_repository_matches_a_dict_model(ops, size0, size1, resplit) -> None:
    rules = {Dim.Axis(0): size0, **({Dim.Axis(1): size1} if size1 else {})}
    storage = ic.in_memory_storage()
    repo = ic.Repository.create(storage, splitting({Split.AnyArray(): rules}))
    make_array(repo, shape=(20, 5))
    model: dict[tuple[int, int], bytes] = {}
    split = None  # what the array's manifests follow: set by the first chunk commit
    for n, commit in enumerate(ops):
        if resplit and n == len(ops) // 2:
            repo = ic.Repository.open(storage, by_axis0(size0 + 1))
            rules = {Dim.Axis(0): size0 + 1}
        session = repo.writable_session("main")
        for i, j, value in commit:
            key = f"a/c/{i}/{j}"
            if value is None:
                session.store._session.delete(key)
                model.pop((i, j), None)
            else:
                put(session.store, key, np.int32(value).tobytes())
                model[(i, j)] = np.int32(value).tobytes()
        if session.has_uncommitted_changes:
            session.commit(f"commit {n}")
            split = (rules[Dim.Axis(0)], rules.get(Dim.Axis(1), 0))
        store = ic.Repository.open(storage).readonly_session(branch="main").store
        for i in range(20):
            for j in range(5):
                assert get(store, f"a/c/{i}/{j}") == model.get((i, j))
        refs = manifests(repo)
        assert sum(m.num_refs for m in refs) == len(model)
        if split is None:
            continue
        node = repo._assets.load_snapshot(repo.lookup_branch("main")).nodes["/a"]
        assert node.split == split
        s0, s1 = split
        cells = set()
        for m in refs:
            (lo0, hi0), (lo1, hi1) = m.extent
            assert lo0 // s0 == (hi0 - 1) // s0
            if s1:
                assert lo1 // s1 == (hi1 - 1) // s1
            cells.add((lo0 // s0, lo1 // s1 if s1 else 0))
        assert len(cells) == len(refs)


# -- preloading -------------------------------------------------------------------
def test_sessions_preload_the_manifests_the_config_selects() -> None:
    storage = RecordingStorage()
    repo = ic.Repository.create(storage)
    session = repo.writable_session("main")
    for name, n in (("time", 10), ("lat", 5), ("temperature", 50)):
        arr = zarr.create_array(session.store, name=name, shape=(n,), chunks=(1,), dtype="i8")
        arr[:] = np.arange(n)
    session.commit("coords")

    def open_and_wait(config: RepositoryConfig | None = None) -> list[str]:
        fresh = ic.Repository.open(storage, config)
        storage.reads.clear()
        session = fresh.readonly_session(branch="main")
        for future in session._preloads:
            future.result(timeout=30)
        return sorted(k for k in storage.reads if k.startswith("manifests/"))

    snapshot = repo._assets.load_snapshot(repo.lookup_branch("main"))
    ids = {p: snapshot.nodes[p].manifests[0].id for p in ("/time", "/lat", "/temperature")}
    assert open_and_wait() == sorted(f"manifests/{ids[p]}" for p in ("/time", "/lat"))
    only_big = RepositoryConfig(
        manifest=ManifestConfig(
            preload=ManifestPreloadConfig(preload_if=ManifestPreloadCondition.num_refs(20, None))
        )
    )
    assert open_and_wait(only_big) == [f"manifests/{ids['/temperature']}"]
    budget = RepositoryConfig(
        manifest=ManifestConfig(
            preload=ManifestPreloadConfig(
                max_total_refs=12, preload_if=ManifestPreloadCondition.true()
            )
        )
    )
    assert len(open_and_wait(budget)) == 1  # time (10) fits, lat (5) would exceed 12
    off = RepositoryConfig(manifest=ManifestConfig(preload=ManifestPreloadConfig(0)))
    assert open_and_wait(off) == []


def test_the_splitting_benchmark_script_runs(capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "asv_bench" / "scripts" / "bench_splitting.py"
    spec = importlib.util.spec_from_file_location("bench_splitting", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--refs", "300", "--split", "50", "--repeats", "1"])
    table = capsys.readouterr().out
    assert "| one-chunk commit (ms) |" in table and "split every 50" in table
