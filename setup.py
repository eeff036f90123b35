"""Build the optional compiled kernels ``icechunk_fast._kernels`` (metadata: pyproject.toml).

ICECHUNK_FAST_REQUIRE_EXTENSION=1  a failed build of the extension fails the install
ICECHUNK_FAST_DEBUG_KERNELS=1      compile with bounds/wraparound/initialization checks
"""

import os
import sys

from setuptools import Extension, setup

PYX, C_SRC = "src_cython/_kernels.pyx", "src_cython/_kernels.c"


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


REQUIRE, DEBUG = _flag("ICECHUNK_FAST_REQUIRE_EXTENSION"), _flag("ICECHUNK_FAST_DEBUG_KERNELS")


def _extensions() -> list[Extension]:
    import numpy

    def ext(source: str) -> Extension:
        return Extension(
            "icechunk_fast._kernels",
            [source],
            include_dirs=[numpy.get_include()],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION")],
            optional=not REQUIRE,
        )

    try:
        from Cython.Build import cythonize
    except ImportError:
        if os.path.exists(C_SRC):  # pre-generated C, e.g. a build without Cython
            return [ext(C_SRC)]
        raise
    checks = DEBUG
    directives = {
        "boundscheck": checks,
        "wraparound": checks,
        "initializedcheck": checks,
        "cdivision": not checks,
    }
    exts = cythonize([ext(PYX)], language_level=3, compiler_directives=directives)
    for e in exts:  # cythonize() does not carry `optional` over
        e.optional = not REQUIRE
    return exts


try:
    EXTENSIONS = _extensions()
except Exception as exc:  # Cython/NumPy missing or a Cython compile error
    if REQUIRE:
        raise
    print(
        f"WARNING: icechunk_fast._kernels will not be built ({exc!r}); "
        "the pure-NumPy fallback will be used",
        file=sys.stderr,
    )
    EXTENSIONS = []

setup(ext_modules=EXTENSIONS)
