"""Google Cloud Storage through gcsfs, with GCS's own conditional writes.

Requests go straight to the JSON API on gcsfs's aiohttp session, with gcsfs's
credentials and endpoint: gcsfs's file-level calls cannot carry a generation
precondition, and they run their own retry loop under ours. The client is gcsfs's plain
``gcsfs.core.GCSFileSystem``: recent gcsfs exports as ``gcsfs.GCSFileSystem`` a subclass
that first asks for the bucket's layout over gRPC, which an emulator never answers (a
minute of timeouts) and which these requests do not need.

Create-if-absent is an upload with ``ifGenerationMatch=0``, compare-and-swap one with
``ifGenerationMatch=<generation>``; the version token is the object's generation.
GCS enforces both atomically (HTTP 412 when they fail). The lost-reply check of
:mod:`._object_store` uses the custom metadata entry ``icechunk-write-id``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from ..errors import InvalidInputError
from ._object_store import ObjectHead, ObjectStoreStorage
from ._requests import POLICY_ARGUMENTS
from ._utils import import_optional, reject_unknown_arguments

__all__ = ["GcsStorage", "gcs_storage"]

_CALLBACKS = "pass a google.auth credentials object as token= (it refreshes itself)"

#: Arguments users bring from Icechunk's ``gcs_storage``, and what to pass instead:
#: gcsfs takes every kind of credential through its one ``token`` option.
_ARGUMENT_HINTS = {
    "service_account_file": "pass the file name as token='/path/to/key.json'",
    "application_credentials": "pass the file name as token='/path/to/credentials.json'",
    "service_account_key": "pass the parsed JSON key as token=<dict>",
    "bearer_token": "pass the access token as token='<the token>'",
    "from_env": (
        "credentials come from the environment when token is None (gcsfs's search); "
        "or pass token='google_default'"
    ),
    "get_credentials": _CALLBACKS,
    "scatter_initial_credentials": _CALLBACKS,
    "config": "use project= and endpoint_url=",
    "read_only": "the storage is writable; open read-only sessions instead",
}


class _GcsHttpError(OSError):
    """An error reply of the JSON API. ``status_code`` and ``error_code`` (the reason)
    are the attributes the request policy classifies errors by."""

    def __init__(self, status_code: int, error_code: str, message: str) -> None:
        super().__init__(f"HTTP {status_code} {error_code}: {message}")
        self.status_code = status_code
        self.error_code = error_code

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.status_code, self.error_code, str(self)))


def _http_error(status: int, body: bytes, url: str) -> OSError:
    if status == 404:
        return FileNotFoundError(url)
    reason, message = "", body[:300].decode("utf-8", "replace")
    try:
        error = json.loads(body)["error"]
        message = str(error.get("message", message))
        reason = str((error.get("errors") or [{}])[0].get("reason", ""))
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        pass  # not a JSON error document (a proxy's, say): keep the raw text
    return _GcsHttpError(status, reason, message)


class GcsStorage(ObjectStoreStorage):
    """Objects under ``gs://bucket/prefix``, with real conditional writes.

    Made by :func:`gcs_storage`; see it for the arguments.
    """

    scheme = "gs"
    client_package = ("gcsfs", "gcs", "gcs_storage")
    repr_fields = ("project", "endpoint_url")
    config_fields = frozenset({"project", "token", "endpoint_url", "anonymous"})

    def _make_fs(self) -> Any:
        import_optional(*self.client_package)
        # why: gcsfs is optional (the [gcs] extra); the plain class: see the module docs
        from gcsfs.core import GCSFileSystem

        c = self._config
        kwargs: dict[str, Any] = {"skip_instance_cache": True, "asynchronous": False}
        if c.get("project"):
            kwargs["project"] = c["project"]
        if c.get("anonymous"):
            kwargs["token"] = "anon"
        elif c.get("token") is not None:
            kwargs["token"] = c["token"]
        if c.get("endpoint_url"):
            kwargs["endpoint_url"] = c["endpoint_url"]
        return GCSFileSystem(**kwargs)

    # -- the JSON API --------------------------------------------------------------------
    def _objects_url(self, *, upload: bool = False) -> str:
        api = "upload/storage/v1" if upload else "storage/v1"
        return f"{self._current().fs._location}/{api}/b/{quote(self.bucket, safe='')}/o"

    def _object_url(self, name: str) -> str:
        return f"{self._objects_url()}/{quote(name, safe='')}"

    async def _call(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | None] | None = None,
        headers: Mapping[str, str] | None = None,
        data: Any = None,
    ) -> tuple[Mapping[str, str], bytes]:
        """One request on gcsfs's session: (reply headers, body); an error reply raises."""
        import aiohttp  # why: optional, installed with gcsfs (the [gcs] extra)

        fs = self._current().fs
        await fs._set_session()
        timeout = aiohttp.ClientTimeout(
            sock_connect=self._policy.connect_timeout, sock_read=self._policy.read_timeout
        )
        async with fs.session.request(
            method,
            url,
            params=fs._get_params(dict(params or {})),  # drops None, adds userProject
            headers=fs._get_headers(dict(headers or {})),  # credentials
            data=data,
            timeout=timeout,
        ) as resp:
            body = await resp.read()
            if resp.status >= 400:
                raise _http_error(resp.status, body, url)
            return resp.headers, body

    async def _upload(
        self, name: str, body: bytes, metadata: dict[str, str] | None, **params: str
    ) -> dict[str, Any]:
        """A multipart upload (object resource + bytes in one request); returns the
        object resource."""
        import aiohttp  # why: optional, installed with gcsfs (the [gcs] extra)

        resource: dict[str, Any] = {"name": name}
        if metadata:
            resource["metadata"] = metadata
        with aiohttp.MultipartWriter("related") as form:
            form.append_json(resource)
            form.append(body, {"Content-Type": "application/octet-stream"})
        _, reply = await self._call(
            "POST",
            self._objects_url(upload=True),
            params={"uploadType": "multipart", **params},
            data=form,
        )
        return dict(json.loads(reply))

    # -- the backend hooks -----------------------------------------------------------------
    async def _read_object(self, name: str, start: int, end: int | None) -> tuple[bytes, str]:
        headers = {}
        if start or end is not None:
            headers["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        reply, body = await self._call(
            "GET", self._object_url(name), params={"alt": "media"}, headers=headers
        )
        return body, reply.get("x-goog-generation", "")

    async def _head_object(self, name: str) -> ObjectHead:
        _, body = await self._call(
            "GET", self._object_url(name), params={"fields": "size,generation,metadata"}
        )
        resource = json.loads(body)
        write_id = (resource.get("metadata") or {}).get(self.write_id_key)
        return ObjectHead(int(resource["size"]), str(resource["generation"]), write_id)

    async def _list_page(self, prefix: str, token: str | None) -> tuple[list[str], str | None]:
        params = {
            "prefix": prefix or None,
            "pageToken": token,
            "fields": "items(name),nextPageToken",
        }
        _, body = await self._call("GET", self._objects_url(), params=params)
        page = json.loads(body)
        return [str(item["name"]) for item in page.get("items", ())], page.get("nextPageToken")

    async def _put_object(self, name: str, body: bytes) -> None:
        await self._upload(name, body, None)

    async def _put_object_if(
        self, name: str, body: bytes, expected: str | None, write_id: str
    ) -> str:
        generation = "0" if expected is None else expected  # 0: "no live object"
        resource = await self._upload(
            name, body, {self.write_id_key: write_id}, ifGenerationMatch=generation
        )
        return str(resource["generation"])

    def _can_match(self, expected: str) -> bool:
        # generations are positive integers; anything else would be a 400, not a 412
        return expected.isascii() and expected.isdigit() and int(expected) > 0

    async def _delete_object(self, name: str) -> None:
        await self._call("DELETE", self._object_url(name))


def gcs_storage(
    *,
    bucket: str,
    prefix: str | None,
    project: str | None = None,
    token: Any = None,
    endpoint_url: str | None = None,
    anonymous: bool | None = None,
    **policy: Any,
) -> GcsStorage:
    """Storage in a Google Cloud Storage bucket.

    Commits are safe from any number of writers: the repo info is swapped with a
    generation precondition (``ifGenerationMatch``), which GCS enforces atomically.

    Parameters
    ----------
    bucket, prefix
        Where the repository lives: ``gs://bucket/prefix``.
    project
        The Google Cloud project (gcsfs's ``project``).
    token
        gcsfs's credentials: ``"google_default"``, ``"cloud"``, a service-account file
        name or dict, a ``google.auth`` credentials object. ``None``: gcsfs's search.
    endpoint_url
        Another server speaking the GCS JSON API (an emulator), as
        ``http://host:port``.
    anonymous
        Unauthenticated requests (public buckets, emulators).
    **policy
        The request policy (see :func:`s3_storage`): ``max_concurrent_requests``,
        ``max_tries``, ``initial_backoff``, ``max_backoff``, ``attempt_timeout``,
        ``connect_timeout``, ``read_timeout``.

    Raises
    ------
    TypeError
        An argument not listed here, such as Icechunk's ``service_account_file`` or
        ``bearer_token``: it would not be used. The message says which ``token`` to
        pass instead.
    InvalidInputError
        An invalid bucket name or prefix, or ``anonymous=True`` with a ``token``.
    ImportError
        gcsfs is not installed (``pip install 'icechunk_fast[gcs]'``).
    """
    reject_unknown_arguments("gcs_storage", policy, POLICY_ARGUMENTS, _ARGUMENT_HINTS)
    if not bucket or not isinstance(bucket, str) or "/" in bucket:
        raise InvalidInputError(f"invalid bucket name {bucket!r}")
    if anonymous and token is not None:
        raise InvalidInputError("anonymous=True excludes a token")
    return GcsStorage(
        bucket=bucket,
        prefix=prefix or "",
        project=project,
        token=token,
        endpoint_url=endpoint_url,
        anonymous=bool(anonymous),
        **policy,
    )
