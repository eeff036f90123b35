"""Per-repository I/O statistics (the counters live with the counting storage wrapper)."""

from __future__ import annotations

from .storage import CountingStorage, RepositoryStats

__all__ = ["CountingStorage", "RepositoryStats"]
