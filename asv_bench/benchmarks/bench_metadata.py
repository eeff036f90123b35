"""Workload 7: ``store.list_dir`` of a group holding ``N_ARRAYS`` (500) small arrays."""

from __future__ import annotations

import zarr

from ._common import (
    IMPLS,
    PARAM_NAMES,
    SCALE,
    build_per_impl,
    collect,
    new_writable,
    open_readonly,
    require,
    scaled,
)

__all__ = ["N_ARRAYS", "SCALE", "ListDir"]

N_ARRAYS = scaled(500, 2)


def build_group(impl: str, path: str) -> None:
    """Group ``g`` with arrays ``a000, a001, ...`` of 4 bytes each, committed."""
    store, session = new_writable(impl, path)
    group = zarr.create_group(store, path="g")
    for i in range(N_ARRAYS):
        group.create_array(name=f"a{i:04d}", shape=(4,), chunks=(4,), dtype="u1", fill_value=0)
    if session is not None:
        session.commit(f"{N_ARRAYS} arrays")


class ListDir:
    """``list_dir("g")`` collected through ``zarr.core.sync.sync``, on a committed group.

    ``setup_cache`` builds the group once per importable implementation (not timed);
    every sample lists it on a freshly opened read-only store (``number = 1``) and on a
    warm one.
    """

    params = [IMPLS]
    param_names = PARAM_NAMES
    timeout = 300.0

    def setup_cache(self) -> dict[str, str]:
        return build_per_impl("group", build_group)

    setup_cache.timeout = 900.0  # type: ignore[attr-defined]

    def setup(self, paths: dict[str, str], impl: str) -> None:
        require(impl)
        self.path = paths[impl]
        self.store = open_readonly(impl, self.path)
        names = collect(self.store.list_dir("g"))  # also warms the store
        if len(names) != N_ARRAYS + 1:  # the arrays and the group's zarr.json
            raise AssertionError(f"{impl}: list_dir('g') gave {len(names)} names")

    def time_list_dir(self, paths: dict[str, str], impl: str) -> None:
        """Warm store: the listing itself."""
        collect(self.store.list_dir("g"))

    def time_open_list_dir(self, paths: dict[str, str], impl: str) -> None:
        """Open a read-only session / store, then list (cold)."""
        collect(open_readonly(impl, self.path).list_dir("g"))
