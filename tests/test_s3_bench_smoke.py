"""The S3 comparison scripts in ``asv_bench/scripts/`` run end to end at a tiny scale.

Each starts its own moto server (a child process) and prints its tables; the scripts
check the data they read back themselves. Timings are not looked at.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("moto")
pytest.importorskip("s3fs")
pytest.importorskip("boto3")

BENCH = Path(__file__).resolve().parent.parent / "asv_bench" / "scripts"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_smoke_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_compare_s3_runs(capsys: pytest.CaptureFixture[str]) -> None:
    script = _load("compare_s3")
    assert script.main(["--scale", "0.001", "--repeats", "1", "--gets", "3"]) == 0
    out = capsys.readouterr().out
    assert "| HTTP requests: write" in out and "`repo.stats()`" in out
    assert "icechunk_fast / zarr FsspecStore" in out


def test_compare_s3_clients_runs(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("obstore")
    script = _load("compare_s3_clients")
    assert script.main(["--n", "3", "--repeats", "1", "--concurrency", "2"]) == 0
    out = capsys.readouterr().out
    assert "| get | seq |" in out and "| swap | seq |" in out
