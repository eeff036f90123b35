"""Azure Blob Storage through adlfs, with Azure's own conditional writes.

Requests go through the ``azure.storage.blob`` async client that adlfs holds (adlfs
makes it from the credentials given): adlfs's file-level calls cannot carry an ETag
condition. Each call passes ``retry_total=0`` so that the SDK's retry policy does not
run under ours.

Create-if-absent is an upload with ``If-None-Match: *`` (``overwrite=False``; Azure
answers 409 ``BlobAlreadyExists`` when the blob exists), compare-and-swap one with
``If-Match: <etag>`` (412 ``ConditionNotMet``); the version token is the blob's ETag.
The lost-reply check of :mod:`._object_store` uses the metadata entry
``icechunk_write_id`` (Azure metadata names must be C# identifiers: no hyphens).
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInputError
from ._object_store import ObjectHead, ObjectStoreStorage
from ._requests import POLICY_ARGUMENTS
from ._utils import import_optional, reject_unknown_arguments

__all__ = ["AzureStorage", "azure_storage"]

_NO_TOKENS = (
    "not supported; use account_key, sas_token or connection_string, or leave "
    "credentials to the environment (AZURE_STORAGE_* variables, DefaultAzureCredential)"
)

#: Arguments users bring from Icechunk's ``azure_storage`` or from adlfs, and what to
#: pass instead.
_ARGUMENT_HINTS = {
    "access_key": "use account_key=",
    "account_name": "use account=",
    "bearer_token": _NO_TOKENS,
    "credential": _NO_TOKENS,
    "from_env": "credentials come from the environment when none are given; leave it out",
    "config": "use connection_string= (it may also name the BlobEndpoint)",
    "read_only": "the storage is writable; open read-only sessions instead",
}


def _connection_string_field(connection_string: str, field: str) -> str | None:
    for part in connection_string.split(";"):
        name, _, value = part.partition("=")
        if name.strip().lower() == field.lower():
            return value.strip()
    return None


class AzureStorage(ObjectStoreStorage):
    """Blobs under ``az://container/prefix`` of one account, with real conditional writes.

    Made by :func:`azure_storage`; see it for the arguments.
    """

    scheme = "az"
    bucket_argument = "container"
    client_package = ("adlfs", "azure", "azure_storage")
    write_id_key = "icechunk_write_id"
    repr_fields = ("account",)
    config_fields = frozenset(
        {"account", "account_key", "sas_token", "connection_string", "anonymous"}
    )

    @property
    def container(self) -> str:
        return self.bucket

    def _endpoint(self) -> str | None:
        # part of equality: the same container name in two accounts is two storages
        endpoint = None
        if self._config.get("connection_string"):
            endpoint = _connection_string_field(self._config["connection_string"], "BlobEndpoint")
        return endpoint or f"https://{self._config['account']}.blob.core.windows.net"

    def _make_fs(self) -> Any:
        adlfs = import_optional(*self.client_package)
        c = self._config
        kwargs: dict[str, Any] = {
            "account_name": c["account"],
            "skip_instance_cache": True,
            "asynchronous": False,
        }
        for name in ("account_key", "sas_token", "connection_string"):
            if c.get(name):
                kwargs[name] = c[name]
        if c.get("anonymous"):
            kwargs["anon"] = True
        return adlfs.AzureBlobFileSystem(**kwargs)

    def _options(self) -> dict[str, Any]:
        """Per-call options: no SDK retries (ours apply), our timeouts."""
        p = self._policy
        return {
            "retry_total": 0,
            "connection_timeout": p.connect_timeout,
            "read_timeout": p.read_timeout,
        }

    def _blob(self, name: str) -> Any:
        return self._current().fs.service_client.get_blob_client(self.bucket, name)

    # -- the backend hooks -----------------------------------------------------------------
    async def _read_object(self, name: str, start: int, end: int | None) -> tuple[bytes, str]:
        span: dict[str, int | None] = {}
        if start or end is not None:
            span = {"offset": start, "length": None if end is None else end - start}
        async with self._blob(name) as blob:
            stream = await blob.download_blob(**span, **self._options())
            data = await stream.readall()
        return bytes(data), str(stream.properties.etag or "")

    async def _head_object(self, name: str) -> ObjectHead:
        async with self._blob(name) as blob:
            props = await blob.get_blob_properties(**self._options())
        write_id = (props.metadata or {}).get(self.write_id_key)
        return ObjectHead(int(props.size), str(props.etag), write_id)

    async def _list_page(self, prefix: str, token: str | None) -> tuple[list[str], str | None]:
        service = self._current().fs.service_client
        async with service.get_container_client(self.bucket) as container:
            blobs = container.list_blobs(name_starts_with=prefix or None, **self._options())
            pages = blobs.by_page(continuation_token=token)
            try:
                page = await anext(pages)
            except StopAsyncIteration:
                return [], None
            names = [str(blob.name) async for blob in page]
        return names, pages.continuation_token or None

    async def _put_object(self, name: str, body: bytes) -> None:
        async with self._blob(name) as blob:
            await blob.upload_blob(body, overwrite=True, **self._options())

    async def _put_object_if(
        self, name: str, body: bytes, expected: str | None, write_id: str
    ) -> str:
        condition: dict[str, Any] = {"overwrite": False}  # If-None-Match: *
        if expected is not None:
            from azure.core import MatchConditions  # why: optional, installed with adlfs

            condition = {
                "overwrite": True,
                "etag": expected,
                "match_condition": MatchConditions.IfNotModified,  # If-Match: <etag>
            }
        async with self._blob(name) as blob:
            reply = await blob.upload_blob(
                body, metadata={self.write_id_key: write_id}, **condition, **self._options()
            )
        return str(reply["etag"])

    async def _delete_object(self, name: str) -> None:
        async with self._blob(name) as blob:
            await blob.delete_blob(**self._options())


def azure_storage(
    *,
    account: str,
    container: str,
    prefix: str | None,
    account_key: str | None = None,
    sas_token: str | None = None,
    connection_string: str | None = None,
    anonymous: bool | None = None,
    **policy: Any,
) -> AzureStorage:
    """Storage in an Azure Blob Storage container.

    Commits are safe from any number of writers: the repo info is swapped with an ETag
    condition (``If-Match``), which Azure enforces atomically. Without credentials,
    adlfs looks in the environment (``AZURE_STORAGE_*`` variables, then
    ``DefaultAzureCredential``).

    Parameters
    ----------
    account, container, prefix
        Where the repository lives.
    account_key, sas_token, connection_string
        Credentials; a connection string may also name the endpoint (an emulator's
        ``BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1``).
    anonymous
        Unauthenticated requests (public containers).
    **policy
        The request policy (see :func:`s3_storage`): ``max_concurrent_requests``,
        ``max_tries``, ``initial_backoff``, ``max_backoff``, ``attempt_timeout``,
        ``connect_timeout``, ``read_timeout``.

    Raises
    ------
    TypeError
        An argument not listed here, such as Icechunk's ``access_key`` or
        ``bearer_token``: it would not be used. The message says what to pass instead.
    InvalidInputError
        An invalid account, container or prefix, or ``anonymous=True`` with credentials.
    ImportError
        adlfs is not installed (``pip install 'icechunk_fast[azure]'``).
    """
    reject_unknown_arguments("azure_storage", policy, POLICY_ARGUMENTS, _ARGUMENT_HINTS)
    if not account or not isinstance(account, str):
        raise InvalidInputError(f"invalid account name {account!r}")
    if not container or not isinstance(container, str) or "/" in container:
        raise InvalidInputError(f"invalid container name {container!r}")
    if anonymous and (account_key or sas_token or connection_string):
        raise InvalidInputError("anonymous=True excludes credentials")
    return AzureStorage(
        account=account,
        container=container,
        prefix=prefix or "",
        account_key=account_key,
        sas_token=sas_token,
        connection_string=connection_string,
        anonymous=bool(anonymous),
        **policy,
    )
