"""S3 storage through s3fs (its aiobotocore client), with S3's own conditional writes.

Create-if-absent is a ``PutObject`` with ``If-None-Match: *``, compare-and-swap one with
``If-Match: <etag>``; the version token is the object's ETag. AWS S3 enforces both, and
so do recent S3-compatible servers (check yours: one that ignores the headers makes
every commit "succeed"). The lost-reply check of :mod:`._object_store` uses the user
metadata entry ``x-amz-meta-icechunk-write-id``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..errors import StorageError
from ._object_store import ObjectHead, ObjectStoreStorage
from ._requests import POLICY_ARGUMENTS
from ._s3_args import S3_ARGUMENT_HINTS, S3_CONFIG_FIELDS, check_s3_arguments
from ._utils import import_optional, reject_unknown_arguments

__all__ = ["S3Storage", "s3_storage"]

_DELETE_BATCH = 1000  # S3's limit for one DeleteObjects request


class S3Storage(ObjectStoreStorage):
    """Objects under ``s3://bucket/prefix`` through s3fs, with real conditional writes.

    Made by :func:`s3_storage`; see it for the arguments.
    """

    scheme = "s3"
    client_package = ("s3fs", "s3", "s3_storage")
    repr_fields = ("region", "endpoint_url")
    config_fields = S3_CONFIG_FIELDS

    def _make_fs(self) -> Any:
        s3fs = import_optional(*self.client_package)
        c = self._config
        p = self._policy
        config_kwargs: dict[str, Any] = {
            # one retry policy, ours: botocore's and s3fs's loops are switched off
            "retries": {"total_max_attempts": 1, "mode": "standard"},
            "connect_timeout": p.connect_timeout,
            "read_timeout": p.read_timeout,
            "max_pool_connections": p.max_concurrent_requests,
        }
        if c.get("force_path_style"):
            config_kwargs["s3"] = {"addressing_style": "path"}
        kwargs: dict[str, Any] = {
            "skip_instance_cache": True,
            "use_listings_cache": False,
            "asynchronous": False,
            "config_kwargs": config_kwargs,
        }
        if c.get("region"):
            kwargs["client_kwargs"] = {"region_name": c["region"]}
        if c.get("endpoint_url"):
            kwargs["endpoint_url"] = c["endpoint_url"]
        if c.get("anonymous"):
            kwargs["anon"] = True
        if c.get("access_key_id"):
            kwargs["key"] = c["access_key_id"]
            kwargs["secret"] = c.get("secret_access_key")
            if c.get("session_token"):
                kwargs["token"] = c["session_token"]
        fs = s3fs.S3FileSystem(**kwargs)
        fs.retries = 1  # s3fs's own retry loop: one attempt
        return fs

    async def _s3(self, method: str, **kwargs: Any) -> Any:
        return await self._current().fs._call_s3(method, Bucket=self.bucket, **kwargs)

    async def _read_object(self, name: str, start: int, end: int | None) -> tuple[bytes, str]:
        kwargs: dict[str, Any] = {"Key": name}
        if start or end is not None:
            kwargs["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        resp = await self._s3("get_object", **kwargs)
        async with resp["Body"] as body:
            data = await body.read()
        return bytes(data), str(resp.get("ETag", ""))

    async def _head_object(self, name: str) -> ObjectHead:
        head = await self._s3("head_object", Key=name)
        write_id = (head.get("Metadata") or {}).get(self.write_id_key)
        return ObjectHead(int(head["ContentLength"]), str(head["ETag"]), write_id)

    async def _list_page(self, prefix: str, token: str | None) -> tuple[list[str], str | None]:
        kwargs: dict[str, Any] = {"Prefix": prefix}
        if token:
            kwargs["ContinuationToken"] = token
        page = await self._s3("list_objects_v2", **kwargs)
        names = [str(item["Key"]) for item in page.get("Contents", ())]
        more = page.get("IsTruncated") and page.get("NextContinuationToken")
        return names, str(more) if more else None

    async def _put_object(self, name: str, body: bytes) -> None:
        # s3fs switches to a multipart upload for large bodies
        await self._current().fs._pipe_file(f"{self.bucket}/{name}", body)

    async def _put_object_if(
        self, name: str, body: bytes, expected: str | None, write_id: str
    ) -> str:
        condition = {"IfNoneMatch": "*"} if expected is None else {"IfMatch": expected}
        response = await self._s3(
            "put_object",
            Key=name,
            Body=body,
            Metadata={self.write_id_key: write_id},
            **condition,
        )
        return str(response["ETag"])

    async def _delete_object(self, name: str) -> None:
        await self._s3("delete_object", Key=name)

    async def _adelete_many(self, keys: list[str]) -> None:
        names = [self._object_name(k) for k in keys]
        self._check_writable()

        async def batch(chunk: list[str]) -> None:
            request = {"Objects": [{"Key": k} for k in chunk], "Quiet": True}
            resp = await self._request(
                "delete_many", chunk[0], lambda: self._s3("delete_objects", Delete=request)
            )
            errors = [e for e in resp.get("Errors", ()) if e.get("Code") != "NoSuchKey"]
            if errors:
                raise StorageError(
                    f"deleting from {self!r} failed for {len(errors)} keys: {errors[:3]}"
                )

        await asyncio.gather(
            *(batch(names[i : i + _DELETE_BATCH]) for i in range(0, len(names), _DELETE_BATCH))
        )


def s3_storage(
    *,
    bucket: str,
    prefix: str | None,
    region: str | None = None,
    endpoint_url: str | None = None,
    allow_http: bool = False,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    session_token: str | None = None,
    anonymous: bool | None = None,
    from_env: bool | None = None,
    force_path_style: bool = False,
    **policy: Any,
) -> S3Storage:
    """Storage in an S3 bucket (or an S3-compatible server) through s3fs.

    Commits are safe from any number of writers: they use S3's conditional writes
    (``If-None-Match`` / ``If-Match``), which AWS S3 and recent S3-compatible servers
    enforce. Credentials come from the arguments, or anonymously, or (the default) from
    the environment: variables, config files, instance metadata.

    Parameters
    ----------
    bucket, prefix
        Where the repository lives: ``s3://bucket/prefix``.
    region, endpoint_url
        The region, and an endpoint for S3-compatible servers (MinIO, Ceph, ...).
    allow_http
        Permit a plain ``http://`` endpoint.
    access_key_id, secret_access_key, session_token
        Static credentials.
    anonymous
        Unsigned requests (public buckets).
    from_env
        Take credentials from the environment (the default when none are given).
    force_path_style
        ``https://host/bucket/key`` addressing instead of virtual-host style.
    **policy
        The request policy: ``max_concurrent_requests`` (256), ``max_tries`` (8),
        ``initial_backoff`` (0.1 s), ``max_backoff`` (10 s), ``attempt_timeout``
        (None), ``connect_timeout`` (10 s), ``read_timeout`` (60 s).

    Raises
    ------
    TypeError
        An argument not listed here, such as Icechunk's ``get_credentials``,
        ``expires_after`` or ``requester_pays``: it would not be used. The message says
        what to pass instead.
    InvalidInputError
        Contradictory credential options, or an ``http://`` endpoint without
        ``allow_http=True``.
    ImportError
        s3fs is not installed (``pip install 'icechunk_fast[s3]'``).
    """
    reject_unknown_arguments("s3_storage", policy, POLICY_ARGUMENTS, S3_ARGUMENT_HINTS)
    check_s3_arguments(
        bucket,
        endpoint_url,
        allow_http,
        access_key_id,
        secret_access_key,
        session_token,
        anonymous,
        from_env,
    )
    return S3Storage(
        bucket=bucket,
        prefix=prefix or "",
        region=region,
        endpoint_url=endpoint_url,
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        session_token=session_token,
        anonymous=bool(anonymous),
        force_path_style=force_path_style,
        **policy,
    )
