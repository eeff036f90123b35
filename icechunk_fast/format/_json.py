"""JSON helpers for the metadata objects (repo info, snapshots, config)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ..errors import FormatError

__all__ = ["dumps", "from_micros", "loads", "to_micros"]


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def loads(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FormatError(f"corrupt {what}: not valid JSON ({exc})") from exc


def to_micros(when: datetime) -> int:
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    return datetime.fromtimestamp(value // 1_000_000, tz=UTC).replace(microsecond=value % 1_000_000)
