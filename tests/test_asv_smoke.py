"""Every asv benchmark under ``asv_bench/benchmarks`` runs once, at a tiny scale.

asv is not needed: the suite is imported as a package of its own (under a private
name, so that the sizes are read fresh) with ``ICECHUNK_FAST_BENCH_SCALE`` set to
``SMOKE_SCALE`` first, and each benchmark goes through what asv does with it:
``setup_cache`` once (in a temporary working directory), then per parameter
combination ``setup``, the benchmark, ``teardown``. A ``setup`` raising
``NotImplementedError`` is asv's "skipped" (icechunk not importable, a commit on a
LocalStore) and becomes a pytest skip, except for icechunk_fast, which must run
everything. Any other exception fails the test.

The standalone comparison scripts next to the suite (``asv_bench/scripts/``, not part
of it) are only started here, with ``--help``, the way their docs run them: from the
repository root, as ``python asv_bench/scripts/X.py``; their full runs are smoke-tested
elsewhere (``tests/test_s3_bench_smoke.py``, ``tests/test_manifest_splitting.py``).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import itertools
import math
import os
import pkgutil
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "asv_bench" / "benchmarks"
SCRIPTS_DIR = ROOT / "asv_bench" / "scripts"
SCRIPTS = sorted(p.name for p in SCRIPTS_DIR.glob("*.py") if not p.name.startswith("_"))
PACKAGE = "_icechunk_fast_asv_smoke"
SMOKE_SCALE = "0.001"
BENCH_NAME = re.compile(r"^(time|timeraw|peakmem|mem|track)_")


def _import_suite() -> list[ModuleType]:
    """Import ``asv_bench/benchmarks`` as ``PACKAGE`` with the smoke scale set."""
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]
    old = os.environ.get("ICECHUNK_FAST_BENCH_SCALE")
    os.environ["ICECHUNK_FAST_BENCH_SCALE"] = SMOKE_SCALE
    try:
        spec = importlib.util.spec_from_file_location(
            PACKAGE, BENCH_DIR / "__init__.py", submodule_search_locations=[str(BENCH_DIR)]
        )
        assert spec is not None and spec.loader is not None
        package = importlib.util.module_from_spec(spec)
        sys.modules[PACKAGE] = package
        spec.loader.exec_module(package)
        return [
            importlib.import_module(f"{PACKAGE}.{info.name}")
            for info in pkgutil.iter_modules([str(BENCH_DIR)])
            if not info.name.startswith("_")
        ]
    finally:
        if old is None:
            del os.environ["ICECHUNK_FAST_BENCH_SCALE"]
        else:
            os.environ["ICECHUNK_FAST_BENCH_SCALE"] = old


@dataclass(frozen=True)
class Case:
    module: ModuleType
    cls: type
    method: str
    params: tuple[Any, ...]

    @property
    def id(self) -> str:
        short = self.module.__name__.rsplit(".", 1)[-1]
        suffix = f"[{'-'.join(map(str, self.params))}]" if self.params else ""
        return f"{short}.{self.cls.__name__}.{self.method}{suffix}"


def _combinations(cls: type) -> list[tuple[Any, ...]]:
    params = getattr(cls, "params", None)
    if params is None or params == []:
        return [()]
    if not all(isinstance(p, list | tuple) for p in params):
        params = [params]  # asv: a flat list is one parameter
    return list(itertools.product(*params))


def _cases() -> list[Case]:
    cases = []
    for module in MODULES:
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__:
                continue  # imported from elsewhere; asv would see it there
            methods = sorted(name for name in dir(cls) if BENCH_NAME.match(name))
            for method, combo in itertools.product(methods, _combinations(cls)):
                cases.append(Case(module, cls, method, combo))
    return cases


MODULES = _import_suite()
CASES = _cases()


def test_suite_found() -> None:
    names = {m.__name__.rsplit(".", 1)[-1] for m in MODULES}
    assert names, f"no benchmark modules under {BENCH_DIR}"
    assert len(CASES) >= 20, [c.id for c in CASES]
    for module in MODULES:
        assert float(SMOKE_SCALE) == module.SCALE, module.__name__
    common = sys.modules[f"{PACKAGE}._common"]
    have_icechunk = importlib.util.find_spec("icechunk") is not None
    assert (common.icechunk is not None) == have_icechunk


@pytest.fixture(scope="module")
def setup_caches() -> dict[Any, Any]:
    """``setup_cache`` results, one per function (asv shares them the same way)."""
    return {}


def _cache_for(cls: type, caches: dict[Any, Any], factory: pytest.TempPathFactory) -> Any:
    func = getattr(cls, "setup_cache", None)
    if func is None:
        return None
    if func not in caches:
        workdir = factory.mktemp(f"cache_{cls.__name__}")
        with contextlib.chdir(workdir):  # asv runs setup_cache in a fresh directory
            caches[func] = cls().setup_cache()
    return caches[func]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_benchmark_runs(
    case: Case, setup_caches: dict[Any, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    cache = _cache_for(case.cls, setup_caches, tmp_path_factory)
    args = case.params if cache is None else (cache, *case.params)
    bench = case.cls()
    setup = getattr(bench, "setup", None)
    try:
        if setup is not None:
            setup(*args)
    except NotImplementedError as exc:
        if "icechunk_fast" in case.params:
            pytest.fail(f"{case.id}: setup skipped icechunk_fast: {exc}")
        pytest.skip(f"asv would skip: {exc}")
    try:
        result = getattr(bench, case.method)(*args)
        if case.method.startswith("track_"):
            ok = isinstance(result, int | float) and math.isfinite(result) and result >= 0
            assert ok, f"{case.id} returned {result!r}"
    finally:
        teardown = getattr(bench, "teardown", None)
        if teardown is not None:
            teardown(*args)


def test_layout() -> None:
    """The suite and the scripts each have a folder; no loose modules in ``asv_bench/``."""
    assert sorted(p.name for p in (ROOT / "asv_bench").glob("*.py")) == []
    assert "compare_core.py" in SCRIPTS, SCRIPTS
    suite = [p.name for p in BENCH_DIR.glob("*.py") if not p.name.startswith("_")]
    assert suite and all(name.startswith("bench_") for name in suite), suite


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_starts_from_repo_root(script: str) -> None:
    """``python asv_bench/scripts/X.py --help`` works without ``PYTHONPATH``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, f"asv_bench/scripts/{script}", "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: {script}"), proc.stdout[:500]
