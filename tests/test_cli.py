"""The icechunk-fast command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import icechunk_fast as ic
from icechunk_fast.cli import main


def test_init_branches_tags_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(tmp_path / "r")
    assert main(["init", path]) == 0
    assert "created repository" in capsys.readouterr().out
    repo = ic.Repository.open(ic.local_filesystem_storage(path))
    root = repo.lookup_branch("main")
    repo.create_tag("v1", root)
    assert main(["branches", path]) == 0
    assert capsys.readouterr().out.split() == ["main", root]
    assert main(["tags", path]) == 0
    assert capsys.readouterr().out.split() == ["v1", root]
    assert main(["log", path]) == 0
    out = capsys.readouterr().out
    assert root in out and "Repository initialized" in out
    assert main(["init", path]) == 2  # exists already
    assert "already holds a repository" in capsys.readouterr().err
    assert main(["log", path, "--branch", "nope"]) == 2


def test_demo_runs_as_a_module(tmp_path: Path) -> None:
    path = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "icechunk_fast", "demo", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "reads the original bytes: True" in proc.stdout
    repo = ic.Repository.open(ic.local_filesystem_storage(path))
    assert len(list(repo.ancestry(branch="main"))) == 3
    assert len(repo.list_tags()) == 1
