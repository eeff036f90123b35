"""Build the optional compiled kernels ``icechunk_fast._kernels`` (metadata: pyproject.toml).

ICECHUNK_FAST_REQUIRE_EXTENSION=1  a failed build of the extension fails the install
ICECHUNK_FAST_DEBUG_KERNELS=1      compile with bounds/wraparound/initialization checks
                                   (rebuild with ``python setup.py build_ext --inplace --force``)
"""

import os
import sys

from setuptools import Extension, setup


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


REQUIRE, DEBUG = _flag("ICECHUNK_FAST_REQUIRE_EXTENSION"), _flag("ICECHUNK_FAST_DEBUG_KERNELS")


def _extensions() -> list[Extension]:
    import numpy
    from Cython.Build import cythonize

    ext = Extension(
        "icechunk_fast._kernels",
        ["src_cython/_kernels.pyx"],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION")],
    )
    checks = {"boundscheck": DEBUG, "wraparound": DEBUG, "initializedcheck": DEBUG}
    exts = cythonize(
        [ext], language_level=3, compiler_directives={**checks, "cdivision": not DEBUG}
    )
    for e in exts:  # cythonize() drops `optional`: a failed compile falls back to NumPy
        e.optional = not REQUIRE
    return exts


try:
    EXTENSIONS = _extensions()
except Exception as exc:  # Cython or NumPy missing, or a Cython compile error
    if REQUIRE:
        raise
    print(f"WARNING: not building icechunk_fast._kernels ({exc!r}); using NumPy", file=sys.stderr)
    EXTENSIONS = []

setup(ext_modules=EXTENSIONS)
