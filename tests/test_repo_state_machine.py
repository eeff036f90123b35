"""A stateful test of a repository's refs and history against a plain-Python model.

A hypothesis ``RuleBasedStateMachine`` drives the real API through zarr: commits,
amends, flushes (adopted or not), branches and tags (with their error cases), checkouts
by branch, tag, snapshot id and ``as_of``, diffs, sessions kept across steps, reopening,
two Repository objects on one storage, and stale sessions whose branch moved or vanished.
After every step it checks the repository against a model that knows the refs, the
deleted tag names, the expected ops log and, for every snapshot, its parent, message,
metadata, the data it holds (root group attributes, up to 3 small arrays and which of
their chunks are stored) and what it changed relative to its parent, by node identity
like the engine (for diffs and ``status``). The same machine runs on in-memory storage
and, with fewer examples, on a local directory; example counts follow the active
hypothesis profile (``tests/conftest.py``).
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

import icechunk_fast as ic

REF_NAMES = ("main", "dev", "feat", "v1", "x/y")  # few, so that duplicates happen
ARRAY_NAMES = ("a", "b", "c")
ATTR_KEYS = ("x", "y")
DTYPES = ("i4", "f8", "u1")
BOGUS_ID = "ZZZZZZZZZZZZZZZZZZZ0"  # well-formed-looking, never a real snapshot

messages = st.text(max_size=12)
commit_metadata = st.one_of(st.none(), st.fixed_dictionaries({"n": st.integers(0, 9)}))
ref_names = st.sampled_from(REF_NAMES)


# -- the model ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArrayModel:
    node: int  # identity: a deleted and re-created array is a new node
    chunks: tuple[int, ...]
    values: np.ndarray  # never mutated in place: every change makes a copy


@dataclass
class ChangeLog:
    """What a snapshot changed relative to its parent, by node (root group = node 0)."""

    new_group: bool = False
    updated_group: bool = False
    new_arrays: dict[int, str] = field(default_factory=dict)
    updated_arrays: dict[int, str] = field(default_factory=dict)
    deleted_arrays: dict[int, str] = field(default_factory=dict)
    chunks: dict[int, set[tuple[int, ...]]] = field(default_factory=dict)


@dataclass
class SnapModel:
    parent: str | None
    message: str
    metadata: dict[str, Any]
    attrs: dict[str, Any] | None  # root group attributes; None: no root group yet
    arrays: dict[str, ArrayModel]
    log: ChangeLog


@dataclass(frozen=True)
class Change:
    """One small change to a snapshot's data; ``kind`` None changes nothing."""

    kind: str | None
    name: str = ""
    shape: tuple[int, ...] = ()
    chunks: tuple[int, ...] = ()
    dtype: str = "i4"
    region: tuple[tuple[int, int], ...] = ()
    seed: int = 0
    initial: bool = False
    attr: str = "x"
    value: int = 0


def combine(logs: list[ChangeLog]) -> ChangeLog:
    """The net change of ``logs`` applied oldest first."""
    out = ChangeLog()
    for log in logs:
        out.new_group |= log.new_group
        out.updated_group |= log.updated_group and not out.new_group
        out.new_arrays.update(log.new_arrays)
        for node, name in log.updated_arrays.items():
            if node not in out.new_arrays:
                out.updated_arrays[node] = name
        for node, name in log.deleted_arrays.items():
            if out.new_arrays.pop(node, None) is None:
                out.deleted_arrays[node] = name
            out.updated_arrays.pop(node, None)
            out.chunks.pop(node, None)
        for node, coords in log.chunks.items():
            if coords:
                out.chunks.setdefault(node, set()).update(coords)
    return out


def expected_diff(log: ChangeLog, arrays: dict[str, ArrayModel]) -> dict[str, Any]:
    """The fields of the :class:`ic.Diff` for ``log`` ending at data holding ``arrays``."""
    live = {a.node: name for name, a in arrays.items()}
    return {
        "new_groups": {"/"} if log.new_group else set(),
        "new_arrays": {"/" + name for name in log.new_arrays.values()},
        "deleted_groups": set(),
        "deleted_arrays": {"/" + name for name in log.deleted_arrays.values()},
        "updated_groups": {"/"} if log.updated_group else set(),
        "updated_arrays": {"/" + live[n] for n in log.updated_arrays if n in live},
        "updated_chunks": {
            "/" + live[n]: sorted(coords)
            for n, coords in log.chunks.items()
            if n in live and coords
        },
    }


def actual_diff(diff: ic.Diff) -> dict[str, Any]:
    return {
        "new_groups": set(diff.new_groups),
        "new_arrays": set(diff.new_arrays),
        "deleted_groups": set(diff.deleted_groups),
        "deleted_arrays": set(diff.deleted_arrays),
        "updated_groups": set(diff.updated_groups),
        "updated_arrays": set(diff.updated_arrays),
        "updated_chunks": {p: sorted(map(tuple, c)) for p, c in diff.updated_chunks.items()},
    }


def chunks_of(region: tuple[tuple[int, int], ...], chunks: tuple[int, ...]) -> set:
    ranges = [range(lo // c, (hi - 1) // c + 1) for (lo, hi), c in zip(region, chunks, strict=True)]
    return set(itertools.product(*ranges))


def stored_chunks(values: np.ndarray, chunks: tuple[int, ...]) -> set[tuple[int, ...]]:
    """Chunks zarr keeps in the store: those not all fill value (write_empty_chunks off)."""
    grid = [range(-(-n // c)) for n, c in zip(values.shape, chunks, strict=True)]
    out = set()
    for coords in itertools.product(*grid):
        box = tuple(slice(i * c, (i + 1) * c) for i, c in zip(coords, chunks, strict=True))
        if values[box].any():
            out.add(coords)
    return out


def values_for(change: Change, dtype: str, region: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Non-zero values, or for a "clear" the fill value (zarr then deletes whole chunks)."""
    shape = tuple(hi - lo for lo, hi in region)
    if change.kind == "clear":
        return np.zeros(shape, dtype=dtype)
    values = np.random.default_rng(change.seed).integers(1, 100, size=shape)
    return (values + 0.5).astype(dtype) if dtype == "f8" else values.astype(dtype)


async def _collect(keys: Any) -> list[str]:
    return [key async for key in keys]


def apply_to_model(
    snap: SnapModel, change: Change, new_node: int
) -> tuple[dict[str, Any] | None, dict[str, ArrayModel], ChangeLog]:
    """The data after ``change`` and the change log; ``new_node`` names a created array."""
    attrs = None if snap.attrs is None else dict(snap.attrs)
    arrays = dict(snap.arrays)
    log = ChangeLog()
    if change.kind is None:
        return attrs, arrays, log
    if attrs is None:  # zarr.open_group(mode="a") creates the root group first
        attrs, log.new_group = {}, True
    name = change.name
    if change.kind == "create":
        values = np.zeros(change.shape, dtype=change.dtype)
        if change.initial:
            full = tuple((0, n) for n in change.shape)
            values = values_for(change, change.dtype, full)
            log.chunks[new_node] = chunks_of(full, change.chunks)
        arrays[name] = ArrayModel(new_node, change.chunks, values)
        log.new_arrays[new_node] = name
    elif change.kind in ("write", "clear"):
        old = arrays[name]
        values = old.values.copy()
        values[tuple(slice(lo, hi) for lo, hi in change.region)] = values_for(
            change, str(old.values.dtype), change.region
        )
        arrays[name] = ArrayModel(old.node, old.chunks, values)
        # zarr writes each chunk in the region that is not empty afterwards and deletes
        # each one that became empty; deleting a chunk that was never stored is no change
        touched = stored_chunks(old.values, old.chunks) | stored_chunks(values, old.chunks)
        log.chunks[old.node] = chunks_of(change.region, old.chunks) & touched
    elif change.kind == "delete":
        log.deleted_arrays[arrays.pop(name).node] = name
    elif change.kind == "group_attrs":
        attrs[change.attr] = change.value
        log.updated_group = not log.new_group
    elif change.kind == "array_attrs":
        log.updated_arrays[arrays[name].node] = name
    else:  # pragma: no cover
        raise AssertionError(change.kind)
    return attrs, arrays, log


def apply_to_store(store: ic.IcechunkStore, change: Change) -> None:
    """Make ``change`` through zarr, as a user would."""
    if change.kind is None:
        return
    root = zarr.open_group(store, mode="a")
    if change.kind == "create":
        arr = root.create_array(
            change.name,
            shape=change.shape,
            chunks=change.chunks,
            dtype=change.dtype,
            fill_value=0,
        )
        if change.initial:
            arr[...] = values_for(change, change.dtype, tuple((0, n) for n in change.shape))
    elif change.kind in ("write", "clear"):
        arr = root[change.name]
        assert isinstance(arr, zarr.Array)
        region = tuple(slice(lo, hi) for lo, hi in change.region)
        arr[region] = values_for(change, str(arr.dtype), change.region)
    elif change.kind == "delete":
        del root[change.name]
    elif change.kind == "group_attrs":
        root.attrs[change.attr] = change.value
    elif change.kind == "array_attrs":
        root[change.name].attrs[change.attr] = change.value


def draw_change(data: st.DataObject, snap: SnapModel, value: int, allow_none: bool) -> Change:
    """A random change that applies to ``snap``'s data (``value`` is fresh: never a no-op)."""
    present = sorted(snap.arrays)
    absent = [n for n in ARRAY_NAMES if n not in snap.arrays]
    kinds = []  # the first one is drawn most often: data changes, when there are arrays
    if present:
        kinds += ["write", "clear", "write", "delete", "array_attrs"]
    if absent:
        kinds += ["create"] if present else ["create", "create"]
    kinds.append("group_attrs")
    if allow_none:
        kinds.append("none")
    kind = data.draw(st.sampled_from(kinds), label="change")
    if kind == "none":
        return Change(None)
    if kind == "group_attrs":
        return Change(kind, attr=data.draw(st.sampled_from(ATTR_KEYS)), value=value)
    if kind == "create":
        ndim = data.draw(st.integers(1, 2))
        shape = tuple(data.draw(st.integers(1, 8 if ndim == 1 else 4)) for _ in range(ndim))
        chunks = tuple(data.draw(st.integers(1, min(n, 4 if ndim == 1 else 3))) for n in shape)
        return Change(
            kind,
            name=data.draw(st.sampled_from(absent)),
            shape=shape,
            chunks=chunks,
            dtype=data.draw(st.sampled_from(DTYPES)),
            initial=data.draw(st.booleans()),
            seed=value,
        )
    name = data.draw(st.sampled_from(present))
    if kind in ("write", "clear"):
        region = []
        for n in snap.arrays[name].values.shape:
            lo = data.draw(st.integers(0, n - 1))
            region.append((lo, data.draw(st.integers(lo + 1, n))))
        return Change(kind, name=name, region=tuple(region), seed=value)
    if kind == "array_attrs":
        return Change(kind, name=name, attr=data.draw(st.sampled_from(ATTR_KEYS)), value=value)
    return Change(kind, name=name)


# -- the machine ------------------------------------------------------------------------------
class RepositoryMachine(RuleBasedStateMachine):
    """Refs and history of one repository, checked against the model after every step."""

    snapshots = Bundle("snapshots")

    def __init__(self) -> None:
        super().__init__()
        self.storage = self.make_storage()
        self.repo = ic.Repository.create(self.storage)
        self.other = ic.Repository.open(self.storage)  # a second object on the same storage
        self.held: list[tuple[ic.Session, str]] = []  # read-only sessions kept across steps
        self.snaps: dict[str, SnapModel] = {}
        self.branches: dict[str, str] = {}
        self.tags: dict[str, str] = {}
        self.deleted_tags: set[str] = set()
        self.root_id = ""
        self.counter = itertools.count(1)
        self.ops: list[tuple[str, str | None, str | None, str | None]] = []  # oldest first

    def make_storage(self) -> ic.Storage:
        return ic.in_memory_storage()

    # -- helpers ------------------------------------------------------------------------------
    def op(
        self, kind: str, name: str | None, previous: str | None = None, new: str | None = None
    ) -> None:
        """Expect an ops-log entry (kind, name, previous_snap_id, new_snap_id)."""
        self.ops.append((kind, name, previous, new))

    def chain(self, snapshot_id: str) -> list[str]:
        """The model's ancestry of ``snapshot_id``, newest first."""
        out: list[str] = []
        current: str | None = snapshot_id
        while current is not None:
            out.append(current)
            current = self.snaps[current].parent
        return out

    def record(
        self,
        snapshot_id: str,
        parent: str | None,
        message: str,
        metadata: dict[str, Any] | None,
        base: SnapModel,
        change: Change,
        node: int,
        earlier: ChangeLog | None = None,
    ) -> ChangeLog:
        assert snapshot_id not in self.snaps, "snapshot ids must be fresh"
        attrs, arrays, log = apply_to_model(base, change, node)
        if earlier is not None:
            log = combine([earlier, log])
        self.snaps[snapshot_id] = SnapModel(parent, message, metadata or {}, attrs, arrays, log)
        return log

    def change_for(self, data: st.DataObject, tip: str, allow_none: bool) -> tuple[Change, int]:
        """A change to ``tip``'s data and the node number a created array gets."""
        value = next(self.counter)
        change = draw_change(data, self.snaps[tip], value, allow_none)
        if change.kind == "clear" and not any(
            apply_to_model(self.snaps[tip], change, 0)[2].chunks.values()
        ):
            # zeros over chunks never stored: zarr writes nothing, so the session is clean
            change = Change(None) if allow_none else Change("group_attrs", value=value)
        return change, value

    def check_status(self, session: ic.Session, change: Change, node: int, tip: str) -> None:
        _, arrays, log = apply_to_model(self.snaps[tip], change, node)
        assert session.has_uncommitted_changes == (change.kind is not None)
        assert actual_diff(session.status()) == expected_diff(log, arrays)

    def check_data(self, session: ic.Session, snapshot_id: str) -> None:
        snap = self.snaps[snapshot_id]
        assert session.snapshot_id == snapshot_id
        assert session.read_only
        if snap.attrs is None:
            with pytest.raises(FileNotFoundError):
                zarr.open_group(session.store, mode="r")
            return
        root = zarr.open_group(session.store, mode="r")
        assert dict(root.attrs) == snap.attrs
        assert sorted(root.array_keys()) == sorted(snap.arrays)
        assert sorted(root.group_keys()) == []
        for name, expected in snap.arrays.items():
            arr = root[name]
            assert isinstance(arr, zarr.Array)
            assert arr.chunks == expected.chunks
            assert arr.dtype == expected.values.dtype
            np.testing.assert_array_equal(arr[...], expected.values)
        keys = asyncio.run(_collect(session.store.list_prefix("")))
        want = {"zarr.json"} | {f"{name}/zarr.json" for name in snap.arrays}
        for name, expected in snap.arrays.items():
            want |= {
                f"{name}/c/" + "/".join(map(str, coords))
                for coords in stored_chunks(expected.values, expected.chunks)
            }
        assert sorted(keys) == sorted(want)

    # -- rules --------------------------------------------------------------------------------
    @initialize(target=snapshots)
    def init(self) -> str:
        [root] = list(self.repo.ancestry(branch="main"))
        assert root.parent_id is None
        self.root_id = root.id
        self.snaps[root.id] = SnapModel(None, root.message, {}, None, {}, ChangeLog())
        self.branches["main"] = root.id
        self.op("repo_initialized", None, None, root.id)
        return root.id

    @rule(target=snapshots, data=st.data(), message=messages, metadata=commit_metadata)
    def commit(self, data: st.DataObject, message: str, metadata: dict | None) -> Any:
        branch = data.draw(st.sampled_from(sorted(self.branches)), label="branch")
        tip = self.branches[branch]
        change, node = self.change_for(data, tip, allow_none=True)
        session = self.repo.writable_session(branch)
        assert session.snapshot_id == tip and not session.read_only
        apply_to_store(session.store, change)
        self.check_status(session, change, node, tip)
        if change.kind is None:
            with pytest.raises(ic.SessionStateError) as info:
                session.commit(message, metadata)
            assert info.value.kind == "no-changes-to-commit"
        sid = session.commit(message, metadata, allow_empty=change.kind is None)
        assert session.read_only and session.snapshot_id == sid
        assert not session.has_uncommitted_changes
        self.record(sid, tip, message, metadata, self.snaps[tip], change, node)
        self.op("new_commit", branch, None, sid)
        self.branches[branch] = sid
        self.check_data(session, sid)  # the committed session now reads the new snapshot
        return sid

    def _amendable(self) -> list[str]:
        return sorted(b for b, tip in self.branches.items() if tip != self.root_id)

    @precondition(lambda self: self._amendable())
    @rule(target=snapshots, data=st.data(), message=messages, metadata=commit_metadata)
    def amend(self, data: st.DataObject, message: str, metadata: dict | None) -> Any:
        branch = data.draw(st.sampled_from(self._amendable()), label="branch")
        tip = self.branches[branch]
        change, node = self.change_for(data, tip, allow_none=True)
        session = self.repo.writable_session(branch)
        apply_to_store(session.store, change)
        if change.kind is None:
            with pytest.raises(ic.SessionStateError) as info:
                session.amend(message, metadata=metadata)
            assert info.value.kind == "no-changes-to-commit"
        sid = session.amend(message, metadata=metadata, allow_empty=change.kind is None)
        assert session.read_only and session.snapshot_id == sid
        old = self.snaps[tip]
        self.record(sid, old.parent, message, metadata, old, change, node, earlier=old.log)
        self.op("commit_amended", branch, tip, sid)
        self.branches[branch] = sid
        self.check_data(session, sid)
        return sid

    @precondition(lambda self: self.root_id in self.branches.values())
    @rule(data=st.data())
    def amend_root_refused(self, data: st.DataObject) -> None:
        at_root = sorted(b for b, tip in self.branches.items() if tip == self.root_id)
        branch = data.draw(st.sampled_from(at_root), label="branch")
        session = self.repo.writable_session(branch)
        with pytest.raises(ic.SessionStateError) as info:
            session.amend("amend the root", allow_empty=True)
        assert info.value.kind == "cannot-amend-root"

    @rule(target=snapshots, data=st.data(), message=messages, adopt=st.booleans())
    def flush(self, data: st.DataObject, message: str, adopt: bool) -> Any:
        branch = data.draw(st.sampled_from(sorted(self.branches)), label="branch")
        tip = self.branches[branch]
        change, node = self.change_for(data, tip, allow_none=True)
        session = self.repo.writable_session(branch)
        apply_to_store(session.store, change)
        sid = session.flush(message)
        assert session.read_only and session.snapshot_id == sid
        self.record(sid, tip, message, None, self.snaps[tip], change, node)
        self.op("new_detached_snapshot", None, None, sid)
        assert self.repo.lookup_branch(branch) == tip, "flush must not move the branch"
        self.check_data(session, sid)
        self.check_data(self.repo.readonly_session(snapshot_id=sid), sid)
        if adopt:
            self.repo.reset_branch(branch, sid, from_snapshot_id=tip)
            self.op("branch_reset", branch, tip, sid)
            self.branches[branch] = sid
        return sid

    @rule(
        target=snapshots,
        data=st.data(),
        interference=st.sampled_from(["commit", "reset", "delete"]),
    )
    def stale_session(self, data: st.DataObject, interference: str) -> Any:
        """A session whose branch moved (or vanished) under it cannot commit or amend;
        it can still flush (no branch moves)."""
        branch = data.draw(st.sampled_from(sorted(self.branches)), label="branch")
        base = self.branches[branch]
        ops = ["commit", "flush"] + (["amend"] if base != self.root_id else [])
        op = data.draw(st.sampled_from(ops), label="stale op")
        change, node = self.change_for(data, base, allow_none=False)
        stale = self.repo.writable_session(branch)
        apply_to_store(stale.store, change)
        made = []
        if interference == "commit":
            made.append(self.commit_directly(branch, data))
        elif interference == "reset":
            target = data.draw(st.sampled_from(list(self.snaps)), label="reset to")
            self.repo.reset_branch(branch, target)
            self.op("branch_reset", branch, base, target)
            self.branches[branch] = target
        elif branch != "main":
            self.repo.delete_branch(branch)
            self.op("branch_deleted", branch, base)
            del self.branches[branch]
        publish = stale.commit if op == "commit" else stale.amend if op == "amend" else stale.flush
        if op != "flush" and branch not in self.branches:
            with pytest.raises(ic.RefNotFoundError) as info:
                publish("stale")
            assert info.value.kind == "branch-not-found"
        elif op != "flush" and self.branches[branch] != base:
            with pytest.raises(ic.ConflictError) as info:
                publish("stale")
            assert info.value.kind == "commit-conflict"
            assert info.value.expected_parent == base
            assert info.value.actual_parent == self.branches[branch]
            assert not stale.read_only and stale.has_uncommitted_changes
        else:  # a flush, a reset to where it was, or no "delete" of main: it lands
            sid = publish("stale")
            old = self.snaps[base]
            if op == "amend":
                self.record(sid, old.parent, "stale", None, old, change, node, earlier=old.log)
                self.op("commit_amended", branch, base, sid)
            else:
                self.record(sid, base, "stale", None, old, change, node)
                if op == "commit":
                    self.op("new_commit", branch, None, sid)
                else:
                    self.op("new_detached_snapshot", None, None, sid)
            if op != "flush":
                self.branches[branch] = sid
            made.append(sid)
        return multiple(*made)

    def commit_directly(self, branch: str, data: st.DataObject) -> str:
        tip = self.branches[branch]
        change, node = self.change_for(data, tip, allow_none=False)
        session = self.repo.writable_session(branch)
        apply_to_store(session.store, change)
        sid = session.commit("interfering")
        self.record(sid, tip, "interfering", None, self.snaps[tip], change, node)
        self.op("new_commit", branch, None, sid)
        self.branches[branch] = sid
        return sid

    @rule(name=ref_names, snapshot=snapshots, bogus=st.booleans())
    def create_branch(self, name: str, snapshot: str, bogus: bool) -> None:
        if name in self.branches:
            with pytest.raises(ic.AlreadyExistsError) as info:
                self.repo.create_branch(name, snapshot)
            assert info.value.kind == "branch-already-exists"
        elif bogus:
            with pytest.raises(ic.SnapshotNotFoundError):
                self.repo.create_branch(name, BOGUS_ID)
        else:
            self.repo.create_branch(name, snapshot)
            self.op("branch_created", name, None, snapshot)
            self.branches[name] = snapshot

    @rule(
        name=ref_names,
        snapshot=snapshots,
        guard=st.sampled_from(["none", "right", "other"]),
        other=snapshots,
    )
    def reset_branch(self, name: str, snapshot: str, guard: str, other: str) -> None:
        if name not in self.branches:
            with pytest.raises(ic.RefNotFoundError) as info:
                self.repo.reset_branch(name, snapshot)
            assert info.value.kind == "branch-not-found"
            return
        current = self.branches[name]
        given = {"none": None, "right": current, "other": other}[guard]
        if given is not None and given != current:
            with pytest.raises(ic.ConflictError) as info:
                self.repo.reset_branch(name, snapshot, from_snapshot_id=given)
            assert info.value.kind == "commit-conflict"
            return
        self.repo.reset_branch(name, snapshot, from_snapshot_id=given)
        self.op("branch_reset", name, current, snapshot)
        self.branches[name] = snapshot

    @rule(name=ref_names)
    def delete_branch(self, name: str) -> None:
        if name == "main":
            with pytest.raises(ic.InvalidInputError) as info:
                self.repo.delete_branch(name)
            assert info.value.kind == "cannot-delete-main"
        elif name not in self.branches:
            with pytest.raises(ic.RefNotFoundError) as info:
                self.repo.delete_branch(name)
            assert info.value.kind == "branch-not-found"
        else:
            self.repo.delete_branch(name)
            self.op("branch_deleted", name, self.branches.pop(name))

    @rule(name=ref_names, snapshot=snapshots)
    def create_tag(self, name: str, snapshot: str) -> None:
        if name in self.tags:
            with pytest.raises(ic.AlreadyExistsError) as info:
                self.repo.create_tag(name, snapshot)
            assert info.value.kind == "tag-already-exists"
        elif name in self.deleted_tags:
            with pytest.raises(ic.AlreadyExistsError) as info:
                self.repo.create_tag(name, snapshot)
            assert info.value.kind == "tag-previously-deleted"
        else:
            self.repo.create_tag(name, snapshot)
            self.op("tag_created", name, None, snapshot)
            self.tags[name] = snapshot

    @rule(name=ref_names)
    def delete_tag(self, name: str) -> None:
        if name not in self.tags:
            with pytest.raises(ic.RefNotFoundError) as info:
                self.repo.delete_tag(name)
            assert info.value.kind == "tag-not-found"
        else:
            self.repo.delete_tag(name)
            self.op("tag_deleted", name, self.tags.pop(name))
            self.deleted_tags.add(name)

    @rule(data=st.data(), how=st.sampled_from(["branch", "tag", "snapshot_id", "as_of"]))
    def checkout(self, data: st.DataObject, how: str) -> None:
        if how == "tag" and self.tags:
            tag = data.draw(st.sampled_from(sorted(self.tags)), label="tag")
            session = self.repo.readonly_session(tag=tag)
            expected = self.tags[tag]
        elif how in ("branch", "as_of"):
            branch = data.draw(st.sampled_from(sorted(self.branches)), label="branch")
            expected = self.branches[branch]
            if how == "branch":
                session = self.repo.readonly_session(branch=branch)
            else:
                chain = self.chain(expected)
                at = self.repo.lookup_snapshot(data.draw(st.sampled_from(chain))).written_at
                session = self.repo.readonly_session(branch=branch, as_of=at)
                # the newest ancestor written at or before ``at`` (ties go to the newest)
                times = {s.id: s.written_at for s in self.repo.ancestry(branch=branch)}
                expected = next(sid for sid in chain if times[sid] <= at)
        else:
            expected = data.draw(st.sampled_from(list(self.snaps)), label="snapshot")
            session = self.repo.readonly_session(snapshot_id=expected)
        self.check_data(session, expected)

    @rule(data=st.data())
    def diff(self, data: st.DataObject) -> None:
        to = data.draw(st.sampled_from(list(self.snaps)), label="to")
        chain = self.chain(to)
        k = data.draw(st.integers(0, len(chain) - 1), label="generations back")
        start = chain[k]
        logs = [self.snaps[sid].log for sid in reversed(chain[:k])]
        got = self.repo.diff(from_snapshot_id=start, to_snapshot_id=to)
        expected = expected_diff(combine(logs), self.snaps[to].arrays)
        assert actual_diff(got) == expected
        assert got.is_empty() == (not any(expected.values()))
        if k > 0:
            with pytest.raises(ic.InvalidInputError) as info:
                self.repo.diff(from_snapshot_id=to, to_snapshot_id=start)
            assert info.value.kind == "invalid-diff-range"

    @rule(name=ref_names)
    def unknown_refs(self, name: str) -> None:
        if name not in self.branches:
            with pytest.raises(ic.RefNotFoundError):
                self.repo.lookup_branch(name)
            with pytest.raises(ic.RefNotFoundError):
                self.repo.writable_session(name)
            with pytest.raises(ic.RefNotFoundError):
                self.repo.readonly_session(branch=name)
        if name not in self.tags:
            with pytest.raises(ic.RefNotFoundError) as info:
                self.repo.lookup_tag(name)
            assert info.value.kind == "tag-not-found"
        with pytest.raises(ic.SnapshotNotFoundError):
            self.repo.readonly_session(snapshot_id=BOGUS_ID)
        with pytest.raises(ic.SnapshotNotFoundError):
            self.repo.lookup_snapshot(BOGUS_ID)

    @rule()
    def check_tips(self) -> None:
        """Every branch tip and tag holds its data, and sessions opened in earlier steps
        still read what they read then (hypothesis favours this 0-arg rule)."""
        for branch, tip in self.branches.items():
            self.check_data(self.repo.readonly_session(branch=branch), tip)
        for tag, target in self.tags.items():
            self.check_data(self.repo.readonly_session(tag=tag), target)
        for session, snapshot_id in self.held:
            self.check_data(session, snapshot_id)

    @rule(data=st.data())
    def hold_session(self, data: st.DataObject) -> None:
        """Open a read-only session on a branch tip and keep it for later steps."""
        branch = data.draw(st.sampled_from(sorted(self.branches)), label="branch")
        session = self.repo.readonly_session(branch=branch)
        self.held = [*self.held[-2:], (session, self.branches[branch])]

    @rule()
    def reopen(self) -> None:
        self.repo = ic.Repository.open(self.storage)

    @rule()
    def switch_repository(self) -> None:
        """Carry on through the other Repository object (its caches may be stale)."""
        self.repo, self.other = self.other, self.repo

    # -- invariants ---------------------------------------------------------------------------
    @invariant()
    def refs_match(self) -> None:
        if not self.root_id:
            return
        assert self.repo.list_branches() == set(self.branches)
        assert self.repo.list_tags() == set(self.tags)
        for branch, tip in self.branches.items():
            assert self.repo.lookup_branch(branch) == tip
        for tag, target in self.tags.items():
            assert self.repo.lookup_tag(tag) == target

    @invariant()
    def history_well_formed(self) -> None:
        if not self.root_id:
            return
        refs = [{"branch": b} for b in self.branches] + [{"tag": t} for t in self.tags]
        for ref in refs:
            history = list(self.repo.ancestry(**ref))
            ids = [s.id for s in history]
            assert len(set(ids)) == len(ids), f"ancestry of {ref} repeats a snapshot"
            tip = self.branches[ref["branch"]] if "branch" in ref else self.tags[ref["tag"]]
            assert ids == self.chain(tip)
            for child, parent in itertools.pairwise(history):
                assert child.parent_id == parent.id
                assert parent.written_at <= child.written_at
            assert history[-1].parent_id is None and history[-1].id == self.root_id

    @invariant()
    def ops_log_matches(self) -> None:
        """Every successful mutation, and nothing else, newest first."""
        if not self.root_id:
            return
        log = list(self.repo.ops_log())
        got = [(u.kind, u.name, u.previous_snap_id, u.new_snap_id) for u in log]
        assert got == self.ops[::-1]
        for newer, older in itertools.pairwise(log):
            assert older.updated_at <= newer.updated_at

    @invariant()
    def snapshots_match(self) -> None:
        for sid, snap in self.snaps.items():
            info = self.repo.lookup_snapshot(sid)
            assert info.id == sid
            assert info.parent_id == snap.parent
            assert info.message == snap.message
            assert info.metadata == snap.metadata
            assert info.written_at.tzinfo is not None


class LocalRepositoryMachine(RepositoryMachine):
    """The same machine on a fresh local directory per example."""

    base_dir: Path

    def make_storage(self) -> ic.Storage:
        self.tmp = tempfile.mkdtemp(dir=self.base_dir)
        return ic.local_filesystem_storage(str(Path(self.tmp) / "repo"))

    def teardown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def _settings(max_examples: int | None = None) -> settings:
    """The active profile, with machine-sized runs (never more examples than it has)."""
    return settings(
        max_examples=max_examples or settings.default.max_examples,
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


def test_repository_state_machine_in_memory() -> None:
    run_state_machine_as_test(RepositoryMachine, settings=_settings())


def test_repository_state_machine_local(tmp_path: Path) -> None:
    LocalRepositoryMachine.base_dir = tmp_path
    fewer = max(5, settings.default.max_examples // 2)
    run_state_machine_as_test(LocalRepositoryMachine, settings=_settings(fewer))
