"""Per-repository I/O statistics: a re-export of :mod:`.storage._counting`, where the
counting storage wrapper now lives next to the other storages."""

from __future__ import annotations

from .storage._counting import CountingStorage, RepositoryStats

__all__ = ["CountingStorage", "RepositoryStats"]
