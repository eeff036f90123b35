# Stub for the compiled module built from src_cython/_kernels.pyx.
# Keep in sync with icechunk_fast/_kernels_py.py (same signatures and behaviour).
import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "format_chunk_keys",
    "lookup_coords",
    "lookup_one",
    "merge_plan",
    "parse_chunk_keys",
    "sort_coords",
]

def lookup_coords(sorted_coords: ArrayLike, queries: ArrayLike) -> NDArray[np.int64]: ...
def lookup_one(sorted_coords: NDArray[np.int64], query: tuple[int, ...]) -> int: ...
def merge_plan(base: ArrayLike, changes: ArrayLike, delete: ArrayLike) -> NDArray[np.int64]: ...
def parse_chunk_keys(
    joined: bytes | bytearray | memoryview, n: int, ndim: int, sep: bytes | str, skip: int
) -> NDArray[np.int64]: ...
def format_chunk_keys(coords: ArrayLike, prefix: str, sep: str) -> list[str]: ...
def sort_coords(coords: ArrayLike) -> NDArray[np.int64]: ...
