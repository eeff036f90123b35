"""The committed format fixtures still read back exactly, with the code as it is now.

``tests/fixtures/format_v1/repo`` is a repository written by icechunk_fast 78258e5 (see
``tests/fixtures/README.md``); ``expected.json`` beside it holds what that version read
back through its public API. Every later version must read the same: every snapshot,
ref, node, chunk byte, decoded array, ancestry and diff, and every object file must
still decode with the ``format`` decoders. The fixture is never regenerated or edited.

Only the public API and ``icechunk_fast.format.*`` are used. Every test works on a copy
of the fixture, so nothing can modify the committed files.
"""

from __future__ import annotations

import itertools
import json
import shutil
import struct
import zlib
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

import icechunk_fast as ic
from icechunk_fast.format.envelope import ObjectType
from icechunk_fast.format.ids import chunk_object_name
from icechunk_fast.format.manifest import INLINE, NATIVE, VIRTUAL, ManifestData
from icechunk_fast.format.repo_info import RepoInfo
from icechunk_fast.format.snapshot import Snapshot
from tests.fixtures import make_format_v1 as generator
from tests.fixtures.make_format_v1 import (
    array_digest,
    canonical,
    diff_json,
    object_files,
    sha256,
    store_keys,
)

FIXTURE = Path(__file__).parent / "fixtures" / "format_v1"
EXPECTED: dict[str, Any] = json.loads((FIXTURE / "expected.json").read_text(encoding="utf-8"))
SNAPSHOTS: dict[str, Any] = EXPECTED["snapshots"]

# The frame of every metadata object, as format version 1 defines it (never changes):
# magic, object type, format version, compression, 2 reserved bytes, payload length, CRC-32
HEADER = struct.Struct("<6sBHB2xQI")
OBJECT_TYPES = {"repo": 1, "snapshots": 2, "manifests": 3, "transactions": 4, "config": 5}


# -- helpers (the same computations as tests/fixtures/make_format_v1.py) ---------------------


def decoded_form(rel: str, data: bytes) -> Any:
    """A metadata object decoded with the current ``format`` decoders, as plain JSON
    values: the generator's own function (which recorded the same form with the decoders
    of 78258e5), run against the package under test."""
    form = generator.decoded_form(rel, data)
    if form is None:
        raise AssertionError(f"not a metadata object: {rel}")
    return form


def copy_fixture(target: Path) -> Path:
    repo_dir = target / "repo"
    shutil.copytree(FIXTURE / "repo", repo_dir)
    return repo_dir


def check_snapshot(repo: ic.Repository, snapshot_id: str, want: dict[str, Any]) -> None:
    """Everything the public API reads from one snapshot, against expected.json."""
    info = repo.lookup_snapshot(snapshot_id)
    assert info.id == snapshot_id
    assert info.parent_id == want["parent_id"]
    assert info.message == want["message"]
    assert info.metadata == want["metadata"]
    assert info.written_at == datetime.fromisoformat(want["written_at"])
    session = repo.readonly_session(snapshot_id=snapshot_id)
    assert session.snapshot_id == snapshot_id
    store = session.store
    expected_keys = []
    for path, node_ref in want["nodes"].items():
        node = EXPECTED["nodes"][node_ref]
        prefix = path.strip("/") + "/" if path != "/" else ""
        expected_keys.append(f"{prefix}zarr.json")
        if node["node_type"] == "array":
            expected_keys += [prefix + rel for rel in EXPECTED["chunk_sets"][node["chunks"]]]
    assert store_keys(store) == sorted(expected_keys)
    for path, node_ref in want["nodes"].items():
        node = EXPECTED["nodes"][node_ref]
        prefix = path.strip("/") + "/" if path != "/" else ""
        doc = store.get_sync(f"{prefix}zarr.json")
        assert doc is not None
        assert doc.to_bytes().decode() == EXPECTED["documents"][node["zarr_json"]]
        if node["node_type"] != "array":
            continue
        chunks = EXPECTED["chunk_sets"][node["chunks"]]
        for rel, (digest, size, chunk_type, coords) in chunks.items():
            got = store.get_sync(prefix + rel)
            assert got is not None, (snapshot_id, prefix + rel)
            data = got.to_bytes()
            assert (len(data), sha256(data)) == (size, digest), (snapshot_id, prefix + rel)
            assert session.chunk_type(path, coords).value == chunk_type, (path, coords)
        values = zarr.open_array(store, path=prefix.rstrip("/"), mode="r")[...]
        assert array_digest(values) == node["array"], (snapshot_id, path)


@pytest.fixture(scope="module")
def fixture_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy for the read-only tests of this module."""
    return copy_fixture(tmp_path_factory.mktemp("format_v1"))


@pytest.fixture(scope="module")
def repo(fixture_copy: Path) -> ic.Repository:
    return ic.Repository.open(ic.local_filesystem_storage(fixture_copy))


# -- the committed files ------------------------------------------------------------------
def test_committed_fixture_is_unchanged() -> None:
    """Nobody regenerated or edited the fixture: every file has its recorded hash."""
    on_disk = object_files(FIXTURE / "repo")
    recorded = {
        rel: {"sha256": o["sha256"], "size": o["size"]} for rel, o in EXPECTED["objects"].items()
    }
    assert on_disk == recorded
    assert EXPECTED["about"]["object_counts"] == {
        "chunks": 23,
        "config": 1,
        "manifests": 88,
        "repo": 1,
        "snapshots": 48,
        "transactions": 47,
    }
    assert sha256((FIXTURE / "expected.json").read_bytes()) == EXPECTED_JSON_SHA256


# sha256 of expected.json itself, written here when the fixture was committed
EXPECTED_JSON_SHA256 = "9c08cc5fc6e41e99d774955eb63f4ba60a24c7e169b978095ecf2e9a894e96b1"


def test_every_object_decodes(fixture_copy: Path) -> None:
    """Frame (magic, length, CRC, type, version) and content of every metadata object,
    decoded with the current decoders: the same values the writing version decoded."""
    assert ObjectType.REPO_INFO == 1 and ObjectType.SNAPSHOT == 2 and ObjectType.MANIFEST == 3
    assert ObjectType.TRANSACTION_LOG == 4 and ObjectType.CONFIG == 5
    for rel, want in EXPECTED["objects"].items():
        data = (fixture_copy / rel).read_bytes()
        kind = rel.split("/")[0]
        if kind == "chunks":
            assert "frame" not in want  # chunk objects are raw bytes
            continue
        magic, obj_type, version, compression, length, crc = HEADER.unpack_from(data)
        assert magic == b"ICFAST", rel
        assert length == len(data) - HEADER.size, rel
        assert zlib.crc32(data[HEADER.size :], zlib.crc32(data[:20])) == crc, rel
        assert obj_type == OBJECT_TYPES[kind], rel
        assert [obj_type, version, compression] == want["frame"] and version == 1, rel
        assert sha256(canonical(decoded_form(rel, data))) == want["decoded"], rel


def test_references_resolve(fixture_copy: Path) -> None:
    """Every snapshot the repo info knows has its object and log, every manifest a
    snapshot names exists, every native ref lies inside an existing chunk object."""
    info = RepoInfo.decode((fixture_copy / "repo").read_bytes())
    manifests: set[str] = set()
    for sid in info.snapshots:
        snap = Snapshot.decode((fixture_copy / "snapshots" / sid).read_bytes(), sid)
        assert snap.id == sid and snap.parent_id == info.parent_of(sid)
        if snap.parent_id is not None:
            assert (fixture_copy / "transactions" / sid).is_file()
        manifests |= {m.id for n in snap.nodes.values() for m in n.manifests}
    kinds_seen: set[int] = set()
    packs: dict[str, int] = {}
    for mid in manifests:
        m = ManifestData.decode((fixture_copy / "manifests" / mid).read_bytes(), mid)
        kinds_seen |= set(m.kind.tolist())
        refs = zip(m.kind, m.source, m.seq, m.offset, m.length, strict=True)
        for k, src, seq, off, length in refs:
            if k == NATIVE:
                name = chunk_object_name(int(m.prefixes[src]), int(seq))
                size = (fixture_copy / "chunks" / name).stat().st_size
                assert int(off) + int(length) <= size
                packs[name] = packs.get(name, 0) + 1
    assert kinds_seen == {NATIVE, INLINE} and VIRTUAL not in kinds_seen
    assert max(packs.values()) > 1  # packs holding several chunks
    assert min(packs.values()) == 1  # and objects of one chunk


# -- refs, history, configuration --------------------------------------------------------------
def test_refs(repo: ic.Repository) -> None:
    assert repo.list_branches() == set(EXPECTED["branches"])
    assert repo.list_tags() == set(EXPECTED["tags"])
    for branch, sid in EXPECTED["branches"].items():
        assert repo.lookup_branch(branch) == sid
        assert repo.readonly_session(branch).snapshot_id == sid
    for tag, sid in EXPECTED["tags"].items():
        assert repo.lookup_tag(tag) == sid
        assert repo.readonly_session(tag=tag).snapshot_id == sid
    assert EXPECTED["deleted_tags"] == ["doomed"]
    for tag in EXPECTED["deleted_tags"]:
        with pytest.raises(ic.RefNotFoundError):
            repo.lookup_tag(tag)
        with pytest.raises(ic.RefNotFoundError):
            repo.readonly_session(tag=tag)
    for branch in EXPECTED["deleted_branches"]:
        with pytest.raises(ic.RefNotFoundError):
            repo.lookup_branch(branch)
    for sid in EXPECTED["detached"]:  # written by flush, reachable by id only
        assert repo.lookup_snapshot(sid).id == sid


def test_repository_metadata_config_and_ops_log(repo: ic.Repository) -> None:
    assert int(repo.spec_version) == EXPECTED["spec_version"]
    assert repo.get_metadata() == EXPECTED["metadata"]
    config = ic.Repository.fetch_config(repo.storage)
    assert config is not None and config.to_dict() == EXPECTED["config"]
    assert repo.config.inline_chunk_threshold_bytes == EXPECTED["about"]["inline_threshold_bytes"]
    ops = [
        [u.kind, u.updated_at.isoformat(), u.name, u.previous_snap_id, u.new_snap_id]
        for u in repo.ops_log()
    ]
    assert ops == EXPECTED["ops_log"]


def test_ancestry(repo: ic.Repository) -> None:
    assert len(EXPECTED["ancestry"]["branch:main"]) > 30
    for ref, chain in EXPECTED["ancestry"].items():
        kind, name = ref.split(":", 1)
        got = repo.ancestry(branch=name) if kind == "branch" else repo.ancestry(tag=name)
        assert [s.id for s in got] == chain, ref
    for sid in SNAPSHOTS:  # every snapshot's own chain follows its parents
        chain = [s.id for s in repo.ancestry(snapshot_id=sid)]
        assert chain[0] == sid and len(chain) == len(set(chain))
        for child, parent in itertools.pairwise(chain):
            assert SNAPSHOTS[child]["parent_id"] == parent


def test_as_of(repo: ic.Repository) -> None:
    for sid in EXPECTED["ancestry"]["branch:main"]:
        when = datetime.fromisoformat(SNAPSHOTS[sid]["written_at"])
        assert repo.readonly_session("main", as_of=when).snapshot_id == sid


def test_diffs(repo: ic.Repository) -> None:
    assert len(EXPECTED["diffs"]) >= 10
    for entry in EXPECTED["diffs"]:
        diff = repo.diff(from_snapshot_id=entry["from"], to_snapshot_id=entry["to"])
        assert diff_json(diff) == entry["diff"], entry["label"]
    tagged = repo.diff(from_tag="v1", to_branch="dev")
    assert diff_json(tagged) == EXPECTED["diffs"][-1]["diff"]


# -- every snapshot, node, chunk and array ----------------------------------------------------
@pytest.mark.parametrize("snapshot_id", list(SNAPSHOTS))
def test_snapshot_reads_back(repo: ic.Repository, snapshot_id: str) -> None:
    check_snapshot(repo, snapshot_id, SNAPSHOTS[snapshot_id])


def test_fixture_covers_the_format() -> None:
    """What the fixture holds, so a thinner regenerated fixture could not pass."""
    types = {v[2] for cs in EXPECTED["chunk_sets"].values() for v in cs.values()}
    assert types == {"inline", "native"}
    tip = SNAPSHOTS[EXPECTED["branches"]["main"]]["nodes"]
    assert "/archive/sub/renamed" in tip and "/grp" not in tip  # the moved node
    assert "/scratch" not in tip  # a deleted group
    assert any(e["diff"]["moved_nodes"] for e in EXPECTED["diffs"])
    metadata = [s["metadata"] for s in SNAPSHOTS.values()]
    assert any(m.get("rebase_attempts") == 1 for m in metadata)
    assert any(m.get("amended") for m in metadata)
    assert {"commit_amended", "new_detached_snapshot", "branch_reset", "tag_deleted"} <= {
        op[0] for op in EXPECTED["ops_log"]
    }
    assert EXPECTED["about"]["unreferenced_snapshots"]  # the lost attempt of a rebase


# -- new code writing onto old data -------------------------------------------------------------
def test_new_commits_on_old_history(tmp_path: Path) -> None:
    repo_dir = copy_fixture(tmp_path)
    before = object_files(repo_dir)
    storage = ic.local_filesystem_storage(repo_dir)
    repo = ic.Repository.open(storage)
    old_tip = EXPECTED["branches"]["main"]
    tip_nodes = SNAPSHOTS[old_tip]["nodes"]
    rng = np.random.default_rng(7)

    session = repo.writable_session("main")
    root = zarr.open_group(session.store)
    temperature = root["climate/temperature"]
    assert isinstance(temperature, zarr.Array)
    new_temperature = np.asarray(temperature[...]).copy()
    new_temperature[0:4, :] = rng.standard_normal((4, 16)).astype("f4")  # split manifests
    temperature[0:4, :] = new_temperature[0:4, :]
    counts = root["counts"]
    assert isinstance(counts, zarr.Array)
    new_counts = np.asarray(counts[...]).copy()
    new_counts[16:32, 16:32] = rng.integers(0, 65535, size=(16, 16), dtype="u2")  # native
    counts[16:32, 16:32] = new_counts[16:32, 16:32]
    grid = root["climate/grid"]
    assert isinstance(grid, zarr.Array)
    grid[11, 11] = 200  # an inline chunk in a split manifest
    added = root.create_array("added_by_new_code", shape=(20,), chunks=(5,), dtype="f8")
    added[:] = np.arange(20.0)
    del root["cplx"]
    root.attrs["rewritten"] = True
    snap = session.commit("new code on old history", {"by": "test_format_fixtures"})

    assert repo.lookup_snapshot(snap).parent_id == old_tip
    assert [s.id for s in repo.ancestry(branch="main")] == [
        snap,
        *EXPECTED["ancestry"]["branch:main"],
    ]
    diff = repo.diff(from_snapshot_id=old_tip, to_branch="main")
    assert diff.new_arrays == {"/added_by_new_code"} and diff.deleted_arrays == {"/cplx"}
    assert diff.updated_groups == {"/"}
    assert diff.updated_chunks["/climate/temperature"] == [[0, 0], [0, 1]]

    rearrange = repo.rearrange_session("main")
    rearrange.move("/archive", "/archive2")
    moved = rearrange.commit("move the moved node again")
    dev = repo.writable_session("dev")
    zarr.open_array(dev.store, path="flags")[0:16] = False
    dev_tip = dev.commit("on the old dev branch")
    repo.create_tag("v3", moved)
    with pytest.raises(ic.AlreadyExistsError):
        repo.create_tag(EXPECTED["deleted_tags"][0], moved)  # deleted names stay reserved

    fresh = ic.Repository.open(ic.local_filesystem_storage(repo_dir))
    store = fresh.readonly_session(tag="v3").store
    np.testing.assert_array_equal(
        zarr.open_array(store, path="climate/temperature", mode="r")[...], new_temperature
    )
    np.testing.assert_array_equal(zarr.open_array(store, path="counts", mode="r")[...], new_counts)
    assert zarr.open_array(store, path="climate/grid", mode="r")[11, 11] == 200
    np.testing.assert_array_equal(
        zarr.open_array(store, path="added_by_new_code", mode="r")[...], np.arange(20.0)
    )
    assert zarr.open_group(store, mode="r").attrs["rewritten"] is True
    keys = store_keys(store)
    assert not any(k.startswith(("cplx/", "archive/")) for k in keys)
    untouched = {"/climate/lat", "/climate/time", "/sharded", "/text", "/split_me/a", "/dates"}
    for path in untouched:
        values = zarr.open_array(store, path=path.strip("/"), mode="r")[...]
        assert array_digest(values) == EXPECTED["nodes"][tip_nodes[path]]["array"], path
    renamed = zarr.open_array(store, path="archive2/sub/renamed", mode="r")[...]
    assert array_digest(renamed) == EXPECTED["nodes"][tip_nodes["/archive/sub/renamed"]]["array"]
    assert fresh.lookup_branch("dev") == dev_tip
    assert fresh.lookup_snapshot(dev_tip).parent_id == EXPECTED["branches"]["dev"]

    # the old snapshots read exactly as before, and their objects were never rewritten
    for sid in (old_tip, EXPECTED["tags"]["v1"], EXPECTED["branches"]["dev"]):
        check_snapshot(fresh, sid, SNAPSHOTS[sid])
    after = object_files(repo_dir)
    changed = {rel for rel in before if after.get(rel) != before[rel]}
    assert changed == {"repo"}
    assert {rel.split("/")[0] for rel in set(after) - set(before)} == {
        "chunks",
        "manifests",
        "snapshots",
        "transactions",
    }
