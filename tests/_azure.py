"""An Azure Blob emulator on loopback for the tests: Azurite's ``azurite-blob``.

Azurite is an npm package; ``.ci/run`` installs it under ``.ci/node_modules``. It is
looked for there, then at ``$AZURITE_BLOB``, then on ``PATH``. Importing this module
starts nothing; :data:`MISSING` says why the Azure tests cannot run (empty when they
can). Telemetry is switched off: Azurite would otherwise send it to Microsoft.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from icechunk_fast.storage import AzureStorage, Storage, azure_storage
from tests._emulator import Emulator

ACCOUNT = "devstoreaccount1"
# Azurite's fixed development key, published in its documentation: not a secret
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
CONTAINER = "icechunk-test"


def _binary() -> str | None:
    local = Path(__file__).resolve().parents[1] / ".ci" / "node_modules" / ".bin" / "azurite-blob"
    for candidate in (str(local), os.environ.get("AZURITE_BLOB")):
        if candidate and Path(candidate).is_file():
            return candidate
    return shutil.which("azurite-blob")


BINARY = _binary()
MISSING = (
    "adlfs is not installed"
    if importlib.util.find_spec("adlfs") is None
    else "azurite-blob not found: npm install --prefix .ci azurite (as .ci/run does)"
    if BINARY is None
    else "node is not on PATH (azurite needs it)"
    if shutil.which("node") is None
    else ""
)


def _command(port: int, scratch: Path) -> list[str]:
    assert BINARY is not None
    return [
        BINARY,
        "--blobHost", "127.0.0.1",
        "--blobPort", str(port),
        "--location", str(scratch / "data"),
        "--skipApiVersionCheck",
        "--loose",
        "--silent",
        "--disableTelemetry",
    ]  # fmt: skip


def connection_string(url: str) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint={url}/{ACCOUNT};"
    )


def _make_container(url: str) -> None:
    from azure.storage.blob import BlobServiceClient

    with BlobServiceClient.from_connection_string(connection_string(url)) as service:
        service.create_container(CONTAINER)


_EMULATOR = Emulator("azurite", _command, f"/{ACCOUNT}?comp=list", _make_container)


def endpoint() -> str:
    """``http://127.0.0.1:PORT`` of the shared emulator (started on first call)."""
    return _EMULATOR.url()


def fresh_prefix() -> str:
    return f"t-{uuid.uuid4().hex[:16]}"


def storage(prefix: str | None = None, *, url: str | None = None, **policy: Any) -> AzureStorage:
    """An Azure storage under a fresh (or the given) prefix of the test container."""
    return azure_storage(
        account=ACCOUNT,
        container=CONTAINER,
        prefix=prefix or fresh_prefix(),
        connection_string=connection_string(url or endpoint()),
        **policy,
    )


def backend(_tmp: Path) -> Storage:
    """For the ``BACKENDS`` table of the storage contract tests."""
    return storage()
