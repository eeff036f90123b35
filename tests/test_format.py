"""Round trips and corruption handling of every stored object type."""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pytest

from icechunk_fast.config import CompressionConfig, RepositoryConfig
from icechunk_fast.errors import FormatError
from icechunk_fast.format.envelope import FORMAT_VERSION, HEADER_SIZE
from icechunk_fast.format.ids import (
    chunk_object_name,
    decode_id,
    encode_id,
    is_valid_id,
    new_snapshot_id,
)
from icechunk_fast.format.manifest import INLINE, NATIVE, VIRTUAL, ManifestData
from icechunk_fast.format.repo_info import RepoInfo, SnapshotRecord
from icechunk_fast.format.snapshot import ManifestRef, NodeSnapshot, Snapshot
from icechunk_fast.format.transaction_log import TransactionLog

NOW = datetime(2026, 5, 17, 12, 30, 1, 123456, tzinfo=UTC)


def make_manifest(n: int = 1000) -> ManifestData:
    rng = np.random.default_rng(0)
    i, j = np.divmod(np.arange(n, dtype=np.int64), 40)
    kind = rng.choice([NATIVE, INLINE, VIRTUAL], size=n).astype(np.uint8)
    inline_rows = np.flatnonzero(kind == INLINE)
    offset = rng.integers(0, 1 << 40, size=n).astype(np.uint64)
    length = rng.integers(1, 1 << 20, size=n).astype(np.uint64)
    length[inline_rows] = 3
    offset[inline_rows] = np.arange(len(inline_rows), dtype=np.uint64) * 3
    source = np.where(kind == VIRTUAL, rng.integers(0, 2, size=n), rng.integers(0, 3, size=n))
    source[kind == INLINE] = 0
    etag = np.where(kind == VIRTUAL, rng.integers(-1, 2, size=n), -1).astype(np.int32)
    return ManifestData(
        coords=np.stack([i, j], axis=1),
        kind=kind,
        source=source.astype(np.uint32),
        seq=rng.integers(0, 1 << 32, size=n, dtype=np.uint64).astype(np.uint32),
        offset=offset,
        length=length,
        prefixes=np.array([1, 2**64 - 1, 12345], dtype=np.uint64),
        locations=["s3://bucket/a.nc", "file:///tmp/b.nc"],
        inline=bytes(range(256)) * (3 * len(inline_rows) // 256 + 1),
        etag=etag,
        mtime=np.where(kind == VIRTUAL, 1_700_000_000, -1).astype(np.int64),
        etags=['"abc"', '"def"'],
    )


def make_snapshot() -> Snapshot:
    nodes = {
        "/": NodeSnapshot("ROOTNODE00000", "/", "group", b'{"zarr_format":3,"node_type":"group"}'),
        "/a": NodeSnapshot(
            "ARRAYNODE0000",
            "/a",
            "array",
            '{"zarr_format":3,"node_type":"array","attributes":{"é":"ü"}}'.encode(),
            (ManifestRef(new_snapshot_id(), ((0, 10), (0, 4)), 40),),
        ),
    }
    return Snapshot(new_snapshot_id(), new_snapshot_id(), NOW, "msg ✓", {"k": [1, 2]}, nodes)


def make_repo_info() -> RepoInfo:
    a, b = new_snapshot_id(), new_snapshot_id()
    info = RepoInfo(
        2,
        branches={"main": b, "dev": a},
        tags={"v1": a},
        deleted_tags={"old"},
        metadata={"owner": "lab"},
    )
    info.add_snapshot(SnapshotRecord(a, None, NOW, "first", {}))
    info.add_snapshot(SnapshotRecord(b, a, NOW, "second", {"x": 1}))
    info.record("new_commit", NOW, name="main", new_snap_id=b)
    assert info.snapshot(b) == SnapshotRecord(b, a, NOW, "second", {"x": 1})
    return info


def make_log() -> TransactionLog:
    return TransactionLog(
        new_groups={"G": "/g"},
        new_arrays={"A": "/g/a"},
        deleted_arrays={"D": "/d"},
        updated_arrays={"U": "/u"},
        updated_chunks={
            "A": np.array([[0, 1], [5, 7]], dtype=np.int64),
            "B": np.zeros((0, 3), np.int64),
        },
    )


def make_config() -> RepositoryConfig:
    return RepositoryConfig(inline_chunk_threshold_bytes=64, compression=CompressionConfig(level=7))


def assert_manifest_equal(a: ManifestData, b: ManifestData) -> None:
    for name in (
        "coords",
        "kind",
        "source",
        "seq",
        "offset",
        "length",
        "prefixes",
        "etag",
        "mtime",
    ):
        x, y = getattr(a, name), getattr(b, name)
        if x is None or y is None:
            assert x is None and y is None, name
            continue
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    assert a.inline == b.inline and a.locations == b.locations and a.etags == b.etags


# (encode, decode, compare) for every object type
OBJECTS: dict[str, tuple[Callable[[], object], Callable[[bytes], object]]] = {
    "manifest": (lambda: make_manifest(), ManifestData.decode),
    "snapshot": (make_snapshot, Snapshot.decode),
    "repo_info": (make_repo_info, RepoInfo.decode),
    "transaction_log": (make_log, TransactionLog.decode),
    "config": (make_config, RepositoryConfig.decode),
}


def _equal(kind: str, a: object, b: object) -> None:
    if kind == "manifest":
        assert isinstance(a, ManifestData) and isinstance(b, ManifestData)
        assert_manifest_equal(a, b)
    elif kind == "transaction_log":
        assert isinstance(a, TransactionLog) and isinstance(b, TransactionLog)
        assert a.new_groups == b.new_groups and a.new_arrays == b.new_arrays
        assert a.deleted_arrays == b.deleted_arrays and a.updated_arrays == b.updated_arrays
        assert a.updated_chunks.keys() == b.updated_chunks.keys()
        for key in a.updated_chunks:
            np.testing.assert_array_equal(a.updated_chunks[key], b.updated_chunks[key])
            assert a.updated_chunks[key].shape == b.updated_chunks[key].shape
    else:
        assert a == b


@pytest.fixture(params=sorted(OBJECTS))
def encoded(request: pytest.FixtureRequest) -> tuple[str, object, bytes]:
    make, _ = OBJECTS[request.param]
    obj = make()
    return request.param, obj, obj.encode()  # type: ignore[attr-defined]


def test_round_trip(encoded: tuple[str, object, bytes]) -> None:
    kind, obj, data = encoded
    _, decode = OBJECTS[kind]
    _equal(kind, obj, decode(data))


def test_every_truncation_is_refused(encoded: tuple[str, object, bytes]) -> None:
    kind, _, data = encoded
    _, decode = OBJECTS[kind]
    cuts = sorted({0, 1, HEADER_SIZE - 1, HEADER_SIZE, len(data) // 2, len(data) - 1})
    for cut in cuts:
        with pytest.raises(FormatError):
            decode(data[:cut])
    with pytest.raises(FormatError):
        decode(data + b"\x00")


def test_bit_flips_are_refused(encoded: tuple[str, object, bytes]) -> None:
    kind, _, data = encoded
    _, decode = OBJECTS[kind]
    rng = np.random.default_rng(1)
    positions = set(range(HEADER_SIZE)) | set(
        rng.integers(HEADER_SIZE, len(data), size=64).tolist()
    )
    for pos in sorted(positions):
        for bit in (0, 7):
            damaged = bytearray(data)
            damaged[pos] ^= 1 << bit
            with pytest.raises(FormatError):
                decode(bytes(damaged))


def _reseal(data: bytes, *, version: int | None = None, obj_type: int | None = None) -> bytes:
    """Rewrite header fields and fix the checksum, as a newer writer would."""
    import zlib

    head = bytearray(data[:20])
    if version is not None:
        struct.pack_into("<H", head, 7, version)
    if obj_type is not None:
        head[6] = obj_type
    body = data[HEADER_SIZE:]
    crc = zlib.crc32(body, zlib.crc32(bytes(head)))
    return bytes(head) + struct.pack("<I", crc) + body


def test_future_version_is_refused(encoded: tuple[str, object, bytes]) -> None:
    kind, _, data = encoded
    _, decode = OBJECTS[kind]
    with pytest.raises(FormatError, match="newer") as info:
        decode(_reseal(data, version=FORMAT_VERSION + 1))
    assert info.value.kind == "unsupported-format-version"


def test_wrong_object_type_is_refused() -> None:
    data = make_snapshot().encode()
    with pytest.raises(FormatError, match="expected object type"):
        RepoInfo.decode(data)
    with pytest.raises(FormatError):
        Snapshot.decode(_reseal(data, obj_type=99))


def test_valid_frame_with_inconsistent_manifest_is_refused() -> None:
    m = make_manifest(10)
    m.source = m.source.copy()
    m.kind = np.full(10, NATIVE, np.uint8)
    m.source[3] = 99  # past the prefix table
    with pytest.raises(FormatError, match="prefix table"):
        ManifestData.decode(m.encode())


def test_regular_manifest_is_compact() -> None:
    n = 100_000
    i, j = np.divmod(np.arange(n, dtype=np.int64), 1000)
    m = ManifestData(
        coords=np.stack([i, j], axis=1),
        kind=np.zeros(n, np.uint8),
        source=np.zeros(n, np.uint32),
        seq=np.arange(n, dtype=np.uint32),
        offset=np.zeros(n, np.uint64),
        length=np.full(n, 1024, np.uint64),
        prefixes=np.array([7], np.uint64),
    )
    assert len(m.encode()) / n < 1.0


def test_empty_and_zero_dim_manifests_round_trip() -> None:
    for ndim in (0, 1, 5):
        m = ManifestData.empty(ndim)
        assert_manifest_equal(m, ManifestData.decode(m.encode()))
    m = ManifestData.empty(0)
    m.coords = np.zeros((1, 0), np.int64)
    m.kind, m.source, m.seq = (
        np.array([INLINE], np.uint8),
        np.zeros(1, np.uint32),
        np.zeros(1, np.uint32),
    )
    m.offset, m.length, m.inline = np.zeros(1, np.uint64), np.array([2], np.uint64), b"ab"
    assert_manifest_equal(m, ManifestData.decode(m.encode()))


def test_ids() -> None:
    for _ in range(100):
        sid = new_snapshot_id()
        assert is_valid_id(sid) and len(sid) == 20
        assert encode_id(decode_id(sid)) == sid
    assert not is_valid_id("../../etc/passwd") and not is_valid_id("I" * 20)


def test_chunk_object_names() -> None:
    names = [chunk_object_name(0xDEADBEEF, seq) for seq in range(0, 2**32, 2**20 + 7)]
    assert names == sorted(names) and len(set(names)) == len(names)
    assert all(is_valid_id(n) for n in names)
    assert chunk_object_name(1, 5) != chunk_object_name(2, 5)
    assert chunk_object_name(2**64 - 1, 2**32 - 1)[:13] == encode_id(b"\xff" * 8)
