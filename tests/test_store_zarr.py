"""zarr's store conformance suite (``StoreTests``) and store-level tests of IcechunkStore.

IcechunkStore accepts only Zarr v3 keys: ``zarr.json`` documents and chunk keys of arrays
that exist. The suite's ``set``/``get`` helpers therefore write straight into the session,
creating first the array a chunk key belongs to; tests of the suite that use keys or values
the store must reject are overridden with the same assertions on valid Zarr keys and values.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test
from zarr.abc.store import OffsetByteRequest, RangeByteRequest, SuffixByteRequest
from zarr.core.buffer import default_buffer_prototype
from zarr.core.buffer.cpu import Buffer
from zarr.core.sync import _collect_aiterator, sync
from zarr.testing.store import StoreTests
from zarr.testing.utils import assert_bytes_equal

import icechunk_fast as ic
from icechunk_fast import IcechunkStore, InvalidInputError, Session

METADATA = "zarr.json"
SIDE = 100  # arrays made by the helpers have SIDE chunks (of one element) per dimension


# -- valid Zarr v3 documents and the arrays chunk keys need -----------------------------
def _group_doc(**attributes: Any) -> bytes:
    return json.dumps({"zarr_format": 3, "node_type": "group", "attributes": attributes}).encode()


def _array_doc(
    ndim: int, encoding: str = "default", separator: str = "/", **attributes: Any
) -> bytes:
    doc = {
        "zarr_format": 3,
        "node_type": "array",
        "shape": [SIDE] * ndim,
        "data_type": "uint8",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1] * ndim}},
        "chunk_key_encoding": {"name": encoding, "configuration": {"separator": separator}},
        "fill_value": 0,
        "codecs": [{"name": "bytes"}],
        "attributes": attributes,
    }
    return json.dumps(doc).encode()


def _is_metadata(key: str) -> bool:
    return key == METADATA or key.endswith("/" + METADATA)


def _metadata_key(prefix: str) -> str:
    return f"{prefix}/{METADATA}" if prefix else METADATA


def _owner(key: str) -> tuple[str, int, str, str]:
    """The array a chunk key belongs to: ``(prefix, ndim, encoding, separator)``.

    ``c/0`` -> root, default encoding; ``foo/c/0.0`` -> ``foo/c``, v2 with ".";
    ``foo/0/0`` -> ``foo``, v2 with "/"; ``0`` -> root, v2.
    """
    parts = key.split("/")
    fields = parts[-1].split(".")
    if len(fields) > 1 and all(f.isdigit() for f in fields):
        return "/".join(parts[:-1]), len(fields), "v2", "."
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "c" and all(p.isdigit() for p in parts[i + 1 :]):
            return "/".join(parts[:i]), len(parts) - i - 1, "default", "/"
    n = 0
    while n < len(parts) and parts[-1 - n].isdigit():
        n += 1
    if n == 0:
        raise ValueError(f"{key!r} cannot be a chunk key of any array")
    return "/".join(parts[:-n]), n, "v2", "/" if n > 1 else "."


def _ensure_owner(session: Session, key: str) -> None:
    """Create, directly in the session, the array that chunk key ``key`` belongs to."""
    prefix, ndim, encoding, separator = _owner(key)
    existing = session.read(_metadata_key(prefix))
    if existing is None or json.loads(existing)["node_type"] != "array":
        session.write(_metadata_key(prefix), _array_doc(ndim, encoding, separator))


def _values(session: Session, keys: list[str]) -> dict[str, Buffer]:
    """Create the arrays the chunk keys among ``keys`` need; a valid value for each key.

    A chunk's value is its key's bytes; a ``zarr.json`` gets a group document, or an array
    document with the right chunk layout if one of the chunk keys belongs to it.
    """
    owners = {}
    for key in keys:
        if not _is_metadata(key):
            _ensure_owner(session, key)
            prefix, *layout = _owner(key)
            owners[prefix] = layout
    values = {}
    for key in keys:
        if _is_metadata(key):
            prefix = key.removesuffix(METADATA).rstrip("/")
            doc = _array_doc(*owners[prefix], key=key) if prefix in owners else _group_doc(key=key)
            values[key] = Buffer.from_bytes(doc)
        else:
            values[key] = Buffer.from_bytes(key.encode())
    return values


def _new_session(tmp_path: Path | None = None) -> Session:
    storage = ic.in_memory_storage() if tmp_path is None else ic.local_filesystem_storage(tmp_path)
    return ic.Repository.create(storage).writable_session("main")


class TestIcechunkStore(StoreTests[IcechunkStore, Buffer]):
    store_cls = IcechunkStore
    buffer_cls = Buffer

    async def set(self, store: IcechunkStore, key: str, value: Buffer) -> None:
        if not _is_metadata(key):
            _ensure_owner(store.session, key)
        store.session.write(key, value.to_bytes())

    async def get(self, store: IcechunkStore, key: str) -> Buffer:
        data = store.session.read(key)
        if data is None:
            raise FileNotFoundError(key)
        return self.buffer_cls.from_bytes(data)

    @pytest.fixture
    def store_kwargs(self) -> dict[str, Any]:
        return {"session": _new_session()}

    def test_store_repr(self, store: IcechunkStore) -> None:
        assert repr(store).startswith("IcechunkStore(<Session writable")

    def test_store_supports_writes(self, store: IcechunkStore) -> None:
        assert store.supports_writes

    def test_store_supports_listing(self, store: IcechunkStore) -> None:
        assert store.supports_listing

    # -- overrides: the suite's keys or values are not valid Zarr v3 --------------------
    async def test_serializable_store(self, store: IcechunkStore) -> None:
        # a writable session refuses to pickle by design: pickle the store after commit
        with pytest.raises(ValueError, match="cannot be pickled"):
            pickle.dumps(store)
        data_buf = self.buffer_cls.from_bytes(b"\x01\x02\x03\x04")
        _ensure_owner(store.session, "c/0")
        await store.set("c/0", data_buf)
        store.session.commit("data")
        new_store: IcechunkStore = pickle.loads(pickle.dumps(store))
        assert new_store == store
        assert new_store.read_only == store.read_only
        observed = await new_store.get("c/0", prototype=default_buffer_prototype())
        assert_bytes_equal(observed, data_buf)

    async def test_with_read_only_store(self, open_kwargs: dict[str, Any]) -> None:
        # "foo" is not a Zarr key: write a group document to zarr.json instead
        value = self.buffer_cls.from_bytes(_group_doc())
        message = "store was opened in read-only mode and does not support writing"
        store = await self.store_cls.open(**{**open_kwargs, "read_only": True})
        assert store.read_only
        with pytest.raises(ValueError, match=message):
            await store.set(METADATA, value)
        writer = store.with_read_only(read_only=False)
        assert not writer._is_open
        assert not writer.read_only
        await writer.set(METADATA, value)
        await writer.delete(METADATA)
        assert store.read_only
        with pytest.raises(ValueError, match=message):
            await store.set(METADATA, value)
        with pytest.raises(ValueError, match=message):
            await store.delete(METADATA)
        reader = store.with_read_only(read_only=True)
        assert reader.read_only
        with pytest.raises(ValueError, match=message):
            await reader.set(METADATA, value)
        with pytest.raises(ValueError, match=message):
            await reader.delete(METADATA)

    async def test_getsize_prefix(self, store: IcechunkStore) -> None:
        # chunk keys need their arrays' zarr.json (outside "c/", so not counted) first
        data_buf = self.buffer_cls.from_bytes(b"\x01\x02\x03\x04")
        keys = ["c/0/0", "c/0/1", "c/1/0", "c/1/1"]
        sibling_keys = ["cc/0"]
        _values(store.session, keys + sibling_keys)
        await store._set_many([(k, data_buf) for k in keys + sibling_keys])
        assert await store.getsize_prefix("c") == len(data_buf) * len(keys)

    @pytest.mark.parametrize("key", ["zarr.json", "c/0", "foo/c/0.0", "foo/0/0"])
    @pytest.mark.parametrize("data", [b"\x01\x02\x03\x04", b""])
    async def test_set(self, store: IcechunkStore, key: str, data: bytes) -> None:
        # a chunk needs its array's zarr.json first; zarr.json takes only v3 documents
        assert not store.read_only
        if _is_metadata(key):
            data = _group_doc(data=data.hex())
        else:
            _ensure_owner(store.session, key)
        data_buf = self.buffer_cls.from_bytes(data)
        await store.set(key, data_buf)
        observed = await self.get(store, key)
        assert_bytes_equal(observed, data_buf)

    async def test_set_not_open(self, store_not_open: IcechunkStore) -> None:
        # a chunk needs its array's zarr.json first
        assert not store_not_open._is_open
        data_buf = self.buffer_cls.from_bytes(b"\x01\x02\x03\x04")
        _ensure_owner(store_not_open.session, "c/0")
        await store_not_open.set("c/0", data_buf)
        observed = await self.get(store_not_open, "c/0")
        assert_bytes_equal(observed, data_buf)

    async def test_set_many(self, store: IcechunkStore) -> None:
        # chunks need their arrays' zarr.json first; zarr.json takes only v3 documents
        keys = ["zarr.json", "c/0", "foo/c/0.0", "foo/0/0"]
        store_dict = _values(store.session, keys)
        await store._set_many(store_dict.items())
        for k, v in store_dict.items():
            assert (await self.get(store, k)).to_bytes() == v.to_bytes()

    @pytest.mark.parametrize(
        "key_ranges",
        [
            [],
            [("zarr.json", RangeByteRequest(0, 2))],
            [("c/0", RangeByteRequest(0, 2)), ("zarr.json", None)],
            [
                ("c/0/0", RangeByteRequest(0, 2)),
                ("c/0/1", SuffixByteRequest(2)),
                ("c/0/2", OffsetByteRequest(2)),
            ],
        ],
    )
    async def test_get_partial_values(self, store: IcechunkStore, key_ranges: list[Any]) -> None:
        # zarr.json takes only v3 documents, not the bytes of its key
        store_dict = _values(store.session, [key for key, _ in key_ranges])
        for key, value in store_dict.items():
            await self.set(store, key, value)
        observed = await store.get_partial_values(
            prototype=default_buffer_prototype(), key_ranges=(kr for kr in key_ranges)
        )
        assert len(observed) == len(key_ranges)
        for obs, (key, byte_range) in zip(observed, key_ranges, strict=True):
            expected = await store.get(key, default_buffer_prototype(), byte_range)
            assert obs is not None
            assert expected is not None
            assert obs.to_bytes() == expected.to_bytes()

    async def test_exists(self, store: IcechunkStore) -> None:
        # zarr.json takes only v3 documents, not b"bar"; "foo" can name nothing
        with pytest.raises(InvalidInputError):
            await store.exists("foo")
        assert not await store.exists("foo/zarr.json")
        await store.set("foo/zarr.json", self.buffer_cls.from_bytes(_group_doc()))
        assert await store.exists("foo/zarr.json")

    async def test_delete(self, store: IcechunkStore) -> None:
        # zarr.json takes only v3 documents, not b"bar"
        await store.set("foo/zarr.json", self.buffer_cls.from_bytes(_group_doc()))
        assert await store.exists("foo/zarr.json")
        await store.delete("foo/zarr.json")
        assert not await store.exists("foo/zarr.json")

    async def test_delete_dir(self, store: IcechunkStore) -> None:
        # zarr.json takes only v3 documents; foo/c/0 needs foo to be an array
        await store.set("zarr.json", self.buffer_cls.from_bytes(_group_doc()))
        await store.set("foo-bar/zarr.json", self.buffer_cls.from_bytes(_group_doc()))
        await store.set("foo/zarr.json", self.buffer_cls.from_bytes(_array_doc(1)))
        await store.set("foo/c/0", self.buffer_cls.from_bytes(b"chunk"))
        await store.delete_dir("foo")
        assert await store.exists("zarr.json")
        assert await store.exists("foo-bar/zarr.json")
        assert not await store.exists("foo/zarr.json")
        assert not await store.exists("foo/c/0")

    async def test_is_empty(self, store: IcechunkStore) -> None:
        # "foo/bar" is not a Zarr key: use the document foo/zarr.json
        assert await store.is_empty("")
        await self.set(store, "foo/zarr.json", self.buffer_cls.from_bytes(_group_doc()))
        assert not await store.is_empty("")
        assert await store.is_empty("fo")
        assert not await store.is_empty("foo/")
        assert not await store.is_empty("foo")
        assert await store.is_empty("spam/")

    async def test_clear(self, store: IcechunkStore) -> None:
        # "key" is not a Zarr key: use a chunk (and its array's zarr.json)
        await self.set(store, "c/0", self.buffer_cls.from_bytes(b"something"))
        await store.clear()
        assert await store.is_empty("")

    async def test_list(self, store: IcechunkStore) -> None:
        # foo/zarr.json takes only a v3 document, not b""
        assert await _collect_aiterator(store.list()) == ()
        keys = ["foo/zarr.json", *(f"foo/c/{idx}" for idx in range(10))]
        store_dict = _values(store.session, keys)
        await store._set_many(store_dict.items())
        assert sorted(await _collect_aiterator(store.list())) == sorted(store_dict)

    async def test_list_prefix(self, store: IcechunkStore) -> None:
        # zarr.json takes only v3 documents, not b""
        prefixes = ("", "a/", "a/b/", "a/b/c/")
        store_dict = _values(store.session, [p + METADATA for p in prefixes])
        await store._set_many(store_dict.items())
        for prefix in prefixes:
            observed = tuple(sorted(await _collect_aiterator(store.list_prefix(prefix))))
            assert observed == tuple(sorted(k for k in store_dict if k.startswith(prefix)))

    async def test_list_empty_path(self, store: IcechunkStore) -> None:
        # foo/baz/c/0 needs foo/baz/zarr.json, which is listed too
        keys = ["foo/bar/zarr.json", "foo/bar/c/1", "foo/baz/zarr.json", "foo/baz/c/0"]
        store_dict = _values(store.session, keys)
        await store._set_many(store_dict.items())
        assert sorted(await _collect_aiterator(store.list())) == sorted(store_dict)
        assert sorted(await _collect_aiterator(store.list_prefix(""))) == sorted(store_dict)
        observed = sorted(await _collect_aiterator(store.list_prefix("foo/bar/")))
        assert observed == sorted(k for k in store_dict if k.startswith("foo/bar/"))

    async def test_list_dir(self, store: IcechunkStore) -> None:
        # "foo/bar/foobar_first_child" is not a Zarr key: the leaf is foo/bar/zarr.json
        roots_and_keys = [
            ("foo", ["foo/zarr.json", "foo/c/1"]),
            ("foo/bar", ["foo/bar/zarr.json", "foo/bar/foobar_second_child/zarr.json"]),
        ]
        assert await _collect_aiterator(store.list_dir("")) == ()
        for root, keys in roots_and_keys:
            assert await _collect_aiterator(store.list_dir(root)) == ()
            await store._set_many(_values(store.session, keys).items())
            keys_expected = {k.removeprefix(f"{root}/").split("/")[0] for k in keys}
            assert sorted(await _collect_aiterator(store.list_dir(root))) == sorted(keys_expected)
            observed = await _collect_aiterator(store.list_dir(f"{root}/"))
            assert sorted(observed) == sorted(keys_expected)

    async def test_set_if_not_exists(self, store: IcechunkStore) -> None:
        # "k" and "k2" are not Zarr keys: use chunks c/0 and c/1 of one array
        data_buf = self.buffer_cls.from_bytes(b"0000")
        await self.set(store, "c/0", data_buf)
        new = self.buffer_cls.from_bytes(b"1111")
        await store.set_if_not_exists("c/0", new)
        assert await store.get("c/0", default_buffer_prototype()) == data_buf
        await store.set_if_not_exists("c/1", new)
        assert await store.get("c/1", default_buffer_prototype()) == new

    def test_get_sync(self, store: IcechunkStore) -> None:
        # "sync_get" is not a Zarr key: use chunk c/0
        data_buf = self.buffer_cls.from_bytes(b"\x01\x02\x03\x04")
        sync(self.set(store, "c/0", data_buf))
        result = store.get_sync("c/0")
        assert result is not None
        assert_bytes_equal(result, data_buf)

    def test_set_sync(self, store: IcechunkStore) -> None:
        # "sync_set" is not a Zarr key: use chunk c/0 (after its array's zarr.json)
        data_buf = self.buffer_cls.from_bytes(b"\x01\x02\x03\x04")
        _ensure_owner(store.session, "c/0")
        store.set_sync("c/0", data_buf)
        assert_bytes_equal(sync(self.get(store, "c/0")), data_buf)

    def test_delete_sync(self, store: IcechunkStore) -> None:
        # "sync_delete" is not a Zarr key: use chunk c/0 (after its array's zarr.json)
        _ensure_owner(store.session, "c/0")
        store.set_sync("c/0", self.buffer_cls.from_bytes(b"\x01\x02\x03\x04"))
        store.delete_sync("c/0")
        assert store.get_sync("c/0") is None

    @pytest.mark.parametrize("direction", ["set_async_get_sync", "set_sync_get_async"])
    async def test_sync_async_set_get_parity(self, store: IcechunkStore, direction: str) -> None:
        # "parity_set_get" is not a Zarr key: use chunk c/0 (after its array's zarr.json)
        data_buf = self.buffer_cls.from_bytes(b"\x01\x02\x03\x04")
        _ensure_owner(store.session, "c/0")
        if direction == "set_async_get_sync":
            await store.set("c/0", data_buf)
            result = store.get_sync("c/0")
        else:
            store.set_sync("c/0", data_buf)
            result = await store.get("c/0", prototype=default_buffer_prototype())
        assert result is not None
        assert_bytes_equal(result, data_buf)

    async def test_delete_sync_visible_to_async_get(self, store: IcechunkStore) -> None:
        # "parity_delete" is not a Zarr key: use chunk c/0 (after its array's zarr.json)
        _ensure_owner(store.session, "c/0")
        await store.set("c/0", self.buffer_cls.from_bytes(b"\x01\x02\x03\x04"))
        store.delete_sync("c/0")
        assert await store.get("c/0", prototype=default_buffer_prototype()) is None

    @pytest.mark.parametrize(
        "byte_range",
        [
            None,
            RangeByteRequest(1, 4),
            OffsetByteRequest(1),
            SuffixByteRequest(1),
            RangeByteRequest(10, 20),
        ],
        ids=["none", "range", "offset", "suffix", "range-past-eof"],
    )
    async def test_get_sync_byte_range_parity(self, store: IcechunkStore, byte_range: Any) -> None:
        # "parity_byte_range" is not a Zarr key: use chunk c/0 (after its array's zarr.json)
        _ensure_owner(store.session, "c/0")
        await store.set("c/0", self.buffer_cls.from_bytes(b"\x01\x02\x03\x04"))
        sync_result = store.get_sync("c/0", byte_range=byte_range)
        async_result = await store.get("c/0", default_buffer_prototype(), byte_range)
        assert sync_result is not None
        assert async_result is not None
        assert_bytes_equal(sync_result, async_result)

    if hasattr(StoreTests, "test_get_json"):  # zarr < 3.2 tests the private _get_* readers

        async def test_get_bytes(self, store: IcechunkStore) -> None:
            # zarr.json takes only v3 documents, not b"hello world"
            data = _group_doc(greeting="hello world")
            await self.set(store, METADATA, self.buffer_cls.from_bytes(data))
            assert await store._get_bytes(METADATA, prototype=default_buffer_prototype()) == data
            with pytest.raises(FileNotFoundError):
                await store._get_bytes("nonexistent_key", prototype=default_buffer_prototype())

        def test_get_bytes_sync(self, store: IcechunkStore) -> None:
            # zarr.json takes only v3 documents, not b"hello world"
            data = _group_doc(greeting="hello world")
            sync(self.set(store, METADATA, self.buffer_cls.from_bytes(data)))
            assert store._get_bytes_sync(METADATA, prototype=default_buffer_prototype()) == data

        async def test_get_json(self, store: IcechunkStore) -> None:
            # zarr.json takes only v3 documents, not {"foo": "bar"}
            data = json.loads(_group_doc(foo="bar"))
            await self.set(store, METADATA, self.buffer_cls.from_bytes(json.dumps(data).encode()))
            assert await store._get_json(METADATA, prototype=default_buffer_prototype()) == data

        def test_get_json_sync(self, store: IcechunkStore) -> None:
            # zarr.json takes only v3 documents, not {"foo": "bar"}
            data = json.loads(_group_doc(foo="bar"))
            sync(self.set(store, METADATA, self.buffer_cls.from_bytes(json.dumps(data).encode())))
            assert store._get_json_sync(METADATA, prototype=default_buffer_prototype()) == data


# -- beyond the suite ---------------------------------------------------------------------
HOSTILE_KEYS = [
    "../x",
    "../zarr.json",
    "a/../zarr.json",
    "/abs",
    "/zarr.json",
    "a//b",
    "a/./b",
    "a/",
    "",
    "a\x00b",
    "zarr.json\x00",
    "k" * 10_000,
]


@pytest.fixture(params=["memory", "local"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> ic.Repository:
    local = request.param == "local"
    storage = ic.local_filesystem_storage(tmp_path / "repo") if local else ic.in_memory_storage()
    return ic.Repository.create(storage)


@pytest.fixture
def session(repo: ic.Repository) -> Session:
    return repo.writable_session("main")


@pytest.mark.parametrize("key", HOSTILE_KEYS, ids=lambda k: repr(k)[:20])
async def test_hostile_keys_rejected(session: Session, key: str, tmp_path: Path) -> None:
    store = session.store
    value = Buffer.from_bytes(_group_doc())
    proto = default_buffer_prototype()
    with pytest.raises(InvalidInputError):
        await store.get(key, proto)
    with pytest.raises(InvalidInputError):
        store.get_sync(key)
    with pytest.raises(InvalidInputError):
        await store.set(key, value)
    with pytest.raises(InvalidInputError):
        store.set_sync(key, value)
    with pytest.raises(InvalidInputError):
        await store.delete(key)
    with pytest.raises(InvalidInputError):
        await store.exists(key)
    with pytest.raises(InvalidInputError):
        await store.getsize(key)
    assert not session.has_uncommitted_changes
    assert not (tmp_path / "x").exists()
    assert not (tmp_path / "zarr.json").exists()


def test_invalid_key_is_a_value_error(session: Session) -> None:
    with pytest.raises(ValueError):
        session.store.get_sync("../x")


async def test_well_formed_absent_keys(session: Session) -> None:
    store = session.store
    proto = default_buffer_prototype()
    for key in ["zarr.json", "foo/zarr.json", "c/0", "foo/c/0/0", "foo/.zarray"]:
        assert await store.get(key, proto) is None
        assert not await store.exists(key)
        with pytest.raises(FileNotFoundError):
            await store.getsize(key)
        await store.delete(key)  # no-op
    assert not session.has_uncommitted_changes


async def test_keys_that_can_name_nothing(session: Session) -> None:
    """exists/getsize refuse keys that are neither zarr.json nor chunk keys; get reads
    them as absent, as zarr's store contract asks (``get_sync("nonexistent") is None``)."""
    store = session.store
    await store.set("a/zarr.json", Buffer.from_bytes(_array_doc(1)))
    for key in ["foo", "k", "a/b", "foo/bar"]:
        with pytest.raises(InvalidInputError) as info:
            await store.exists(key)
        assert info.value.kind == "invalid-key"
        with pytest.raises(InvalidInputError):
            await store.getsize(key)
        assert await store.get(key, default_buffer_prototype()) is None
        await store.delete(key)  # no-op
    assert not await store.exists("a/c/0")  # a chunk key of an existing array: absent


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("foo", b"\x01"),  # neither zarr.json nor a chunk
        ("c/0", b"\x01"),  # a chunk of an array that does not exist
        ("zarr.json", b"bar"),  # not JSON
        ("zarr.json", b'{"foo": "bar"}'),  # JSON, but not a Zarr v3 document
        ("zarr.json", json.dumps({"zarr_format": 2, "node_type": "group"}).encode()),
    ],
)
async def test_invalid_writes_rejected(session: Session, key: str, value: bytes) -> None:
    with pytest.raises(InvalidInputError):
        await session.store.set(key, Buffer.from_bytes(value))
    assert not session.has_uncommitted_changes


async def test_chunk_outside_grid_rejected(session: Session) -> None:
    store = session.store
    await store.set("a/zarr.json", Buffer.from_bytes(_array_doc(2)))
    for key in [f"a/c/{SIDE}/0", "a/c/0", "a/c/0/0/0", "a/c/x/0", "a/c/01/0"]:
        with pytest.raises(InvalidInputError):
            await store.set(key, Buffer.from_bytes(b"\x01"))
    await store.set(f"a/c/{SIDE - 1}/0", Buffer.from_bytes(b"\x01"))


async def test_readonly_session_store_refuses_writes(repo: ic.Repository, session: Session) -> None:
    store = session.store
    await store.set("zarr.json", Buffer.from_bytes(_group_doc()))
    await store.set("a/zarr.json", Buffer.from_bytes(_array_doc(1)))
    await store.set("a/c/0", Buffer.from_bytes(b"\x07"))
    snapshot_id = session.commit("first")
    stores = [
        store,  # obtained before the commit
        session.store,
        repo.readonly_session(branch="main").store,
        repo.readonly_session(snapshot_id=snapshot_id).store,
    ]
    message = "read-only mode"
    for ro in stores:
        assert ro.read_only
        assert (await ro.get("a/c/0", default_buffer_prototype())).to_bytes() == b"\x07"
        with pytest.raises(ValueError, match=message):
            await ro.set("a/c/0", Buffer.from_bytes(b"\x01"))
        with pytest.raises(ValueError, match=message):
            ro.set_sync("a/c/0", Buffer.from_bytes(b"\x01"))
        with pytest.raises(ValueError, match=message):
            await ro.delete("a/c/0")
        with pytest.raises(ValueError, match=message):
            ro.delete_sync("a/c/0")
        with pytest.raises(ValueError, match=message):
            await ro.delete_dir("a")
        with pytest.raises(ValueError, match=message):
            await ro.clear()
        with pytest.raises(ValueError, match=message):
            zarr.open_group(ro, mode="r").create_group("b")
        with pytest.raises(ic.ReadOnlyError):
            ro.with_read_only(False)
    with pytest.raises(ic.ReadOnlyError):
        IcechunkStore(repo.readonly_session(branch="main"), read_only=False)
    assert (await stores[2].get("a/c/0", default_buffer_prototype())).to_bytes() == b"\x07"


def test_no_consolidated_metadata(session: Session) -> None:
    store = session.store
    assert store.supports_consolidated_metadata is False
    zarr.group(store)
    with pytest.raises(TypeError, match="consolidated metadata"):
        zarr.consolidate_metadata(store)
    group = zarr.open_group(store, mode="r")
    assert group.metadata.consolidated_metadata is None


@pytest.mark.parametrize("size", [0, 100, 10_000])
async def test_large_chunks_byte_ranges_and_commit(
    repo: ic.Repository, session: Session, size: int
) -> None:
    """Values above the inline threshold go to storage as objects; reads still slice."""
    store = session.store
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    await store.set("a/zarr.json", Buffer.from_bytes(_array_doc(1)))
    await store.set("a/c/3", Buffer.from_bytes(data))
    store.set_sync("a/c/4", Buffer.from_bytes(data))
    requests = [None, RangeByteRequest(5, 50), OffsetByteRequest(17), SuffixByteRequest(9)]
    requests += [RangeByteRequest(size + 10, size + 20)]

    async def check(st: IcechunkStore) -> None:
        for key in ["a/c/3", "a/c/4"]:
            assert await st.getsize(key) == size
            for request in requests:
                got = await st.get(key, default_buffer_prototype(), request)
                assert got is not None
                start, stop = _slice(request, size)
                assert got.to_bytes() == data[start:stop]
                assert st.get_sync(key, byte_range=request).to_bytes() == data[start:stop]

    await check(store)
    session.commit("big chunks")
    await check(repo.readonly_session(branch="main").store)


def _slice(request: Any, size: int) -> tuple[int, int]:
    if request is None:
        return 0, size
    if isinstance(request, RangeByteRequest):
        return request.start, request.end
    if isinstance(request, OffsetByteRequest):
        return request.offset, size
    return max(0, size - request.suffix), size


async def test_nested_arrays_key_resolution(session: Session) -> None:
    """A chunk key goes to the array whose chunk key encoding accepts it."""
    store = session.store
    await store.set("foo/zarr.json", Buffer.from_bytes(_array_doc(2, "v2", "/")))
    await store.set("foo/c/zarr.json", Buffer.from_bytes(_array_doc(2, "v2", ".")))
    await store.set("foo/c/0.1", Buffer.from_bytes(b"inner"))
    await store.set("foo/0/1", Buffer.from_bytes(b"outer"))
    assert session.read("foo/c/0.1") == b"inner"
    assert session.read("foo/0/1") == b"outer"
    keys = sorted(await _collect_aiterator(store.list()))
    assert keys == ["foo/0/1", "foo/c/0.1", "foo/c/zarr.json", "foo/zarr.json"]


# -- zarr's hierarchy state machine ----------------------------------------------------------
@pytest.mark.filterwarnings("ignore::zarr.errors.UnstableSpecificationWarning")
def test_zarr_hierarchy_state_machine() -> None:
    """zarr's ZarrHierarchyStateMachine compares our store with a MemoryStore model.

    It only drives the public zarr API with zarr_format=3, so it needs no narrowing.
    """
    from zarr.testing.stateful import ZarrHierarchyStateMachine

    store = _new_session().store
    run_state_machine_as_test(
        lambda: ZarrHierarchyStateMachine(store),
        settings=settings(
            max_examples=20,
            stateful_step_count=20,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"chunks": (7, 5)},
        {"chunks": (7, 5), "chunk_key_encoding": {"name": "v2", "separator": "."}},
        {"chunks": (7, 5), "chunk_key_encoding": {"name": "v2", "separator": "/"}},
        {"chunks": (7, 5), "chunk_key_encoding": {"name": "default", "separator": "."}},
        {"chunks": (5, 5), "shards": (20, 10)},
    ],
    ids=["default", "v2-dot", "v2-slash", "default-dot", "sharded"],
)
def test_zarr_arrays_roundtrip(
    repo: ic.Repository, session: Session, kwargs: dict[str, Any]
) -> None:
    """Arrays written with the zarr API read back, before and after commit."""
    data = np.arange(40 * 30, dtype="float64").reshape(40, 30)
    root = zarr.group(session.store, attributes={"kind": "root"})
    group = root.create_group("g")
    array = group.create_array("a", shape=data.shape, dtype=data.dtype, **kwargs)
    array[:] = data
    array[3:9, 4:6] = -1.0
    expected = data.copy()
    expected[3:9, 4:6] = -1.0
    scalar = root.create_array("s", shape=(), dtype="int32")
    scalar[()] = 7
    np.testing.assert_array_equal(zarr.open_array(session.store, path="g/a")[:], expected)
    sid = session.commit("arrays")
    ro = repo.readonly_session(snapshot_id=sid).store
    np.testing.assert_array_equal(zarr.open_array(ro, path="g/a", mode="r")[:], expected)
    np.testing.assert_array_equal(
        zarr.open_array(ro, path="g/a", mode="r")[10:20, 3], data[10:20, 3]
    )
    assert zarr.open_array(ro, path="s", mode="r")[()] == 7
    opened = zarr.open_group(ro, mode="r")
    assert opened.attrs["kind"] == "root"
    assert sorted(opened.group_keys()) == ["g"]
    assert sorted(opened.array_keys()) == ["s"]
