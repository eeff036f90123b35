"""Merging change columns into manifests keeps every ref pointing at the right bytes."""

from __future__ import annotations

import numpy as np

from icechunk_fast.format.manifest import INLINE, NATIVE, TOMBSTONE, VIRTUAL, ManifestData
from icechunk_fast.manifest import merge_changes, resolve


def manifest(
    rows: list[tuple[int, int, int]], prefixes: list[int], locations: list[str], inline: bytes
) -> ManifestData:
    """rows: (coord, kind, source-or-inline-offset)."""
    n = len(rows)
    kind = np.array([r[1] for r in rows], np.uint8)
    source = np.array([0 if r[1] == INLINE else r[2] for r in rows], np.uint32)
    offset = np.array([r[2] if r[1] == INLINE else 10 * i for i, r in enumerate(rows)], np.uint64)
    length = np.array([2 if r[1] == INLINE else 5 for r in rows], np.uint64)
    return ManifestData(
        coords=np.array([[r[0]] for r in rows], np.int64).reshape(n, 1),
        kind=kind,
        source=source,
        seq=np.arange(n, dtype=np.uint32),
        offset=offset,
        length=length,
        prefixes=np.array(prefixes, np.uint64),
        locations=locations,
        inline=inline,
    )


def locations(m: ManifestData) -> dict[int, tuple[int, str, bytes | None]]:
    out = {}
    for row in range(len(m)):
        loc = resolve(m, row)
        out[int(m.coords[row, 0])] = (loc.kind, loc.key, loc.data)
    return out


def test_merge_renumbers_tables_and_packs_inline_bytes() -> None:
    base = manifest(
        [(0, NATIVE, 0), (1, NATIVE, 1), (2, INLINE, 0), (3, VIRTUAL, 1), (4, NATIVE, 2)],
        prefixes=[11, 22, 33],
        locations=["s3://a", "s3://b"],
        inline=b"AA",
    )
    changes = manifest(
        [(1, NATIVE, 0), (2, TOMBSTONE, 0), (5, INLINE, 2), (6, VIRTUAL, 0)],
        prefixes=[44],
        locations=["s3://c"],
        inline=b"xxBB",
    )
    deleted = changes.kind == TOMBSTONE
    before_base, before_changes = locations(base), locations(changes)
    merged = merge_changes(base, changes, deleted)
    got = locations(merged)
    assert sorted(got) == [0, 1, 3, 4, 5, 6]
    assert got[0] == before_base[0] and got[3] == before_base[3] and got[4] == before_base[4]
    assert got[1] == before_changes[1] and got[6] == before_changes[6]
    assert got[5] == (INLINE, "", b"BB")
    assert list(merged.prefixes) == [11, 33, 44]  # 22 is no longer used
    assert merged.locations == ["s3://b", "s3://c"]  # "s3://a" is no longer used
    assert merged.inline == b"BB"  # only live inline bytes are kept
    merged.validate()
