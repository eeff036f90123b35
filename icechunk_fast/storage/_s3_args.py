"""The arguments of the S3 constructors, checked once for both S3 clients.

:func:`~icechunk_fast.storage.s3_storage` (s3fs) and
:func:`~icechunk_fast.storage.obstore_s3_storage` (obstore) take the same arguments, so
they share these checks instead of one backend importing the other.
"""

from __future__ import annotations

from ..errors import InvalidInputError

__all__ = ["S3_ARGUMENT_HINTS", "S3_CONFIG_FIELDS", "check_s3_arguments"]

#: What the S3 storages keep of their arguments (besides bucket, prefix and read_only).
S3_CONFIG_FIELDS = frozenset(
    {
        "region",
        "endpoint_url",
        "access_key_id",
        "secret_access_key",
        "session_token",
        "anonymous",
        "force_path_style",
    }
)

_CALLBACKS = (
    "credential callbacks are not supported; pass access_key_id, secret_access_key and "
    "session_token, or leave credentials to the environment (from_env=True: AWS_* "
    "variables, profiles, web identity, instance metadata), which refreshes them"
)

#: Arguments users bring from Icechunk's ``s3_storage`` or from s3fs, and what to do
#: instead. Accepting them would ignore them: a credential silently not used.
S3_ARGUMENT_HINTS = {
    "get_credentials": _CALLBACKS,
    "scatter_initial_credentials": _CALLBACKS,
    "expires_after": (
        "credentials given here are used as they are and never refreshed; for "
        "expiring credentials leave them to the environment (from_env=True)"
    ),
    "requester_pays": "requester-pays buckets are not supported",
    "network_stream_timeout_seconds": "use read_timeout=<seconds>",
    "key": "use access_key_id=",
    "secret": "use secret_access_key=",
    "token": "use session_token=",
    "anon": "use anonymous=",
    "read_only": (
        "the storage is writable; open read-only sessions, or use "
        "fsspec_storage('s3://bucket/prefix', read_only=True, ...)"
    ),
}


def check_s3_arguments(
    bucket: str,
    endpoint_url: str | None,
    allow_http: bool,
    access_key_id: str | None,
    secret_access_key: str | None,
    session_token: str | None,
    anonymous: bool | None,
    from_env: bool | None,
) -> None:
    """The argument checks of :func:`s3_storage`, shared with the other S3 clients."""
    if not bucket or not isinstance(bucket, str) or "/" in bucket:
        raise InvalidInputError(f"invalid bucket name {bucket!r}")
    if endpoint_url and endpoint_url.lower().startswith("http://") and not allow_http:
        raise InvalidInputError(
            f"endpoint {endpoint_url!r} is plain HTTP; pass allow_http=True to permit it"
        )
    has_static = access_key_id is not None or secret_access_key is not None
    if has_static and (access_key_id is None or secret_access_key is None):
        raise InvalidInputError("give both access_key_id and secret_access_key")
    if session_token is not None and not has_static:
        raise InvalidInputError("session_token needs access_key_id and secret_access_key")
    if anonymous and (has_static or from_env):
        raise InvalidInputError("anonymous=True excludes credentials and from_env=True")
    if from_env and has_static:
        raise InvalidInputError("from_env=True excludes explicit credentials")
    if from_env is False and not has_static and not anonymous:
        raise InvalidInputError(
            "from_env=False needs credentials (access_key_id, secret_access_key) or anonymous=True"
        )
