"""The frame around every stored object: magic, type, format version, length, checksum.

Layout (little endian, 24 bytes, then the payload)::

    0   6s  magic b"ICFAST"
    6   B   object type (see ObjectType)
    7   H   format version
    9   B   payload compression (0 none, 1 zstd)
    10  2x  reserved (zero)
    12  Q   payload length in bytes
    20  I   CRC-32 of bytes 0..19 and of the payload

A reader checks, in order: size, magic, length, checksum, type, version. A checksum
mismatch or a truncated object is reported as corruption even when the damage happens
to hit the version field, so a flipped bit never reads as "written by a newer version".
"""

from __future__ import annotations

import enum
import struct
import threading
import zlib

import zstandard

from ..errors import FormatError

__all__ = [
    "FORMAT_VERSION",
    "ObjectType",
    "compress",
    "decode_object",
    "decompress",
    "encode_object",
]

MAGIC = b"ICFAST"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<6sBHB2xQ")
_CRC = struct.Struct("<I")
HEADER_SIZE = _HEADER.size + _CRC.size  # 24


class ObjectType(enum.IntEnum):
    REPO_INFO = 1
    SNAPSHOT = 2
    MANIFEST = 3
    TRANSACTION_LOG = 4
    CONFIG = 5


_local = threading.local()  # zstd (de)compressor objects are not thread-safe


def compress(data: bytes, level: int = 3) -> bytes:
    cache = getattr(_local, "compressors", None)
    if cache is None:
        cache = _local.compressors = {}
    comp = cache.get(level)
    if comp is None:
        comp = cache[level] = zstandard.ZstdCompressor(level=level)
    return comp.compress(data)


def decompress(data: bytes | memoryview, what: str = "object") -> bytes:
    dec = getattr(_local, "decompressor", None)
    if dec is None:
        dec = _local.decompressor = zstandard.ZstdDecompressor()
    try:
        return dec.decompress(data)
    except zstandard.ZstdError as exc:
        raise FormatError(f"corrupt {what}: cannot decompress ({exc})") from exc


def encode_object(
    obj_type: ObjectType, payload: bytes, *, compressed: bool = True, level: int = 3
) -> bytes:
    """Frame ``payload`` (zstd-compressed first unless ``compressed`` is False)."""
    body = compress(payload, level) if compressed else payload
    head = _HEADER.pack(MAGIC, int(obj_type), FORMAT_VERSION, 1 if compressed else 0, len(body))
    crc = zlib.crc32(body, zlib.crc32(head))
    return b"".join((head, _CRC.pack(crc), body))


def decode_object(data: bytes, expected: ObjectType, name: str = "") -> bytes:
    """Check the frame of ``data`` and return its (decompressed) payload.

    Raises
    ------
    FormatError
        If the object is truncated, corrupt, of another type or of a newer format version.
    """
    what = f"{expected.name.lower().replace('_', ' ')} {name}".strip()
    if len(data) < HEADER_SIZE:
        raise FormatError(f"{what} is truncated ({len(data)} bytes)")
    magic, obj_type, version, compression, length = _HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise FormatError(f"{what} is not an icechunk_fast object (bad magic bytes)")
    if length != len(data) - HEADER_SIZE:
        raise FormatError(
            f"{what} is truncated or has trailing bytes "
            f"(header says {length} payload bytes, found {len(data) - HEADER_SIZE})"
        )
    (crc,) = _CRC.unpack_from(data, _HEADER.size)
    body = memoryview(data)[HEADER_SIZE:]
    if zlib.crc32(body, zlib.crc32(memoryview(data)[: _HEADER.size])) != crc:
        raise FormatError(f"{what} is corrupt (checksum mismatch)")
    if obj_type != expected:
        raise FormatError(f"{what}: expected object type {expected.name}, found {obj_type}")
    if version > FORMAT_VERSION:
        raise FormatError(
            f"{what} was written with format version {version}, newer than this "
            f"icechunk_fast understands ({FORMAT_VERSION}); upgrade icechunk_fast to read it",
            kind="unsupported-format-version",
        )
    if compression == 1:
        return decompress(body, what)
    if compression == 0:
        return bytes(body)
    raise FormatError(f"{what}: unknown compression {compression}")
