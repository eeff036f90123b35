"""A columnar container: a JSON header plus NumPy columns, each compressed on its own.

Integer columns are stored delta + zigzag encoded, narrowed to the smallest unsigned
width that holds them, byte-shuffled and zstd-compressed. Sorted coordinates and
counters turn into long runs of small deltas, so a regular array costs a few bytes
per chunk ref. Layout of the payload::

    u32 header length | header JSON (utf-8) | column blobs, in header order
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from ..errors import FormatError
from .envelope import compress, decompress

__all__ = ["decode_columns", "encode_columns"]

_U32 = struct.Struct("<I")
_WIDTHS = ((0xFF, np.uint8), (0xFFFF, np.uint16), (0xFFFFFFFF, np.uint32))


def _encode_int(col: np.ndarray, level: int) -> tuple[dict[str, Any], bytes]:
    flat = np.ascontiguousarray(col).reshape(-1).astype(np.int64, copy=False)
    delta = np.diff(flat, prepend=np.int64(0)) if flat.size else flat
    zig = ((delta << 1) ^ (delta >> 63)).view(np.uint64)
    top = int(zig.max()) if zig.size else 0
    narrow: type[np.unsignedinteger[Any]] = np.uint64
    for limit, dtype in _WIDTHS:
        if top <= limit:
            narrow = dtype
            break
    packed = zig.astype(narrow)
    width = packed.dtype.itemsize
    shuffled = (
        packed.view(np.uint8).reshape(-1, width).T.tobytes() if width > 1 else packed.tobytes()
    )
    return {"enc": "dzs", "width": width}, compress(shuffled, level)


def _decode_int(meta: dict[str, Any], blob: memoryview, count: int, name: str) -> np.ndarray:
    raw = decompress(blob, f"column {name}")
    width = int(meta["width"])
    if len(raw) != count * width:
        raise FormatError(f"column {name} has {len(raw)} bytes, expected {count * width}")
    buf = np.frombuffer(raw, dtype=np.uint8)
    if width > 1:
        buf = buf.reshape(width, count).T.copy()
    zig = buf.view(f"<u{width}").reshape(count).astype(np.uint64)
    delta = (zig >> np.uint64(1)).view(np.int64) ^ -(zig & np.uint64(1)).view(np.int64)
    return np.cumsum(delta, dtype=np.int64)


def encode_columns(
    header: dict[str, Any], columns: dict[str, np.ndarray | bytes], level: int = 3
) -> bytes:
    """Serialize ``header`` (JSON-able) and named columns into one payload.

    Integer NumPy columns of any shape are delta-encoded along their flattened C order;
    ``bytes`` columns are stored zstd-compressed as they are.
    """
    specs: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name, col in columns.items():
        if isinstance(col, bytes | bytearray | memoryview):
            spec: dict[str, Any] = {"enc": "bytes", "size": len(col)}
            blob = compress(bytes(col), level)
        else:
            arr = np.asarray(col)
            if arr.dtype.kind not in "iub":
                raise TypeError(f"column {name}: unsupported dtype {arr.dtype}")
            spec, blob = _encode_int(arr, level)
            spec["dtype"] = arr.dtype.str
            spec["shape"] = list(arr.shape)
        spec["name"] = name
        spec["nbytes"] = len(blob)
        specs.append(spec)
        blobs.append(blob)
    head = json.dumps({"header": header, "columns": specs}, separators=(",", ":")).encode()
    return b"".join([_U32.pack(len(head)), head, *blobs])


def decode_columns(payload: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """Inverse of :func:`encode_columns`: ``(header, {name: ndarray | bytes})``."""
    try:
        (hlen,) = _U32.unpack_from(payload, 0)
        meta = json.loads(bytes(payload[4 : 4 + hlen]))
        header, specs = meta["header"], meta["columns"]
    except (struct.error, ValueError, KeyError, TypeError) as exc:
        raise FormatError(f"corrupt column container header: {exc}") from exc
    view = memoryview(payload)
    pos = 4 + hlen
    out: dict[str, Any] = {}
    try:
        for spec in specs:
            name = spec["name"]
            end = pos + int(spec["nbytes"])
            if end > len(payload):
                raise FormatError(f"column {name} runs past the end of the object")
            blob = view[pos:end]
            pos = end
            if spec["enc"] == "bytes":
                data = decompress(blob, f"column {name}")
                if len(data) != int(spec["size"]):
                    raise FormatError(f"column {name} has the wrong size")
                out[name] = data
            elif spec["enc"] == "dzs":
                shape = tuple(int(s) for s in spec["shape"])
                count = int(np.prod(shape, dtype=np.int64)) if shape else 1
                values = _decode_int(spec, blob, count, name)
                out[name] = values.astype(np.dtype(spec["dtype"]), copy=False).reshape(shape)
            else:
                raise FormatError(f"column {name}: unknown encoding {spec['enc']!r}")
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"corrupt column container: {exc}") from exc
    if pos != len(payload):
        raise FormatError("column container has trailing bytes")
    return header, out
