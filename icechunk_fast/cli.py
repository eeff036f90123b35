"""The ``icechunk-fast`` command: inspect repositories and run a demo."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import IcechunkError
from .repository import Repository
from .storage import local_filesystem_storage

__all__ = ["main"]


def _open(path: str) -> Repository:
    return Repository.open(local_filesystem_storage(path))


def cmd_init(args: argparse.Namespace) -> int:
    repo = Repository.create(local_filesystem_storage(args.path))
    print(
        f"created repository at {Path(args.path).resolve()} (main -> {repo.lookup_branch('main')})"
    )
    return 0


def cmd_log(args: argparse.Namespace) -> int:
    repo = _open(args.path)
    for snap in repo.ancestry(branch=args.branch):
        when = snap.written_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        print(f"{snap.id}  {when}  {snap.message}")
    return 0


def cmd_branches(args: argparse.Namespace) -> int:
    repo = _open(args.path)
    for name in sorted(repo.list_branches()):
        print(f"{name}  {repo.lookup_branch(name)}")
    return 0


def cmd_tags(args: argparse.Namespace) -> int:
    repo = _open(args.path)
    for name in sorted(repo.list_tags()):
        print(f"{name}  {repo.lookup_tag(name)}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    # only the demo needs these: the other verbs start without paying for their import
    import numpy as np
    import zarr

    path = Path(args.path)
    storage = local_filesystem_storage(path)
    repo = Repository.open_or_create(storage)
    print(f"repository: {path.resolve()}")

    session = repo.writable_session("main")
    root = zarr.open_group(session.store, mode="a")
    rng = np.random.default_rng(0)
    temperature = rng.normal(15, 8, size=(365, 180, 360)).astype("f4")
    name = "temperature"
    if name in root:
        del root[name]
    arr = root.create_array(name, shape=temperature.shape, chunks=(73, 90, 90), dtype="f4")
    arr.attrs["units"] = "degC"
    arr[:] = temperature
    first = session.commit("write a year of daily temperature")
    print(f"commit 1: {first}  ({arr.nchunks} chunks)")
    tag = f"v1-{first[:8].lower()}"
    repo.create_tag(tag, first)
    print(f"tagged {first} as {tag}")

    session = repo.writable_session("main")
    arr = zarr.open_array(session.store, path=name)
    arr[:31] = np.asarray(arr[:31]) + 0.5  # recalibrate January
    second = session.commit("recalibrate January (+0.5 degC)")
    print(f"commit 2: {second}")

    old = zarr.open_array(repo.readonly_session(tag=tag).store, path=name, mode="r")
    new = zarr.open_array(repo.readonly_session(branch="main").store, path=name, mode="r")
    same = bool(np.array_equal(np.asarray(old[:]), temperature))
    shift = float(np.mean(np.asarray(new[:31])) - np.mean(np.asarray(old[:31])))
    print(f"time travel: tag {tag} reads the original bytes: {same}")
    print(f"main minus {tag} over January: {shift:+.3f} degC")
    print("log of main:")
    for snap in repo.ancestry(branch="main"):
        print(f"  {snap.id}  {snap.written_at:%Y-%m-%d %H:%M:%S}  {snap.message}")
    return 0 if same and abs(shift - 0.5) < 1e-3 else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="icechunk-fast", description="Inspect icechunk_fast repositories on local disk."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func, text in [
        ("init", cmd_init, "create an empty repository at PATH"),
        ("log", cmd_log, "list the snapshots of a branch, newest first"),
        ("branches", cmd_branches, "list branches and the snapshots they point to"),
        ("tags", cmd_tags, "list tags and the snapshots they point to"),
        ("demo", cmd_demo, "write a small dataset to PATH, commit twice, tag and time-travel"),
    ]:
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("path", help="repository directory")
        if name == "log":
            p.add_argument("--branch", default="main", help="branch to walk (default: main)")
        p.set_defaults(func=func)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except IcechunkError as exc:
        print(f"icechunk-fast: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
