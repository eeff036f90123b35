"""The stored repository config: a framed, compressed JSON document.

Only the bytes <-> dict step lives here; what the fields mean is
:class:`icechunk_fast.config.RepositoryConfig`'s business.
"""

from __future__ import annotations

from typing import Any

from ._json import dumps, loads
from .envelope import ObjectType, decode_object, encode_object

__all__ = ["CONFIG_KEY", "decode_config_document", "encode_config_document"]

CONFIG_KEY = "config"


def encode_config_document(doc: dict[str, Any]) -> bytes:
    """The stored object of a config document."""
    return encode_object(ObjectType.CONFIG, dumps(doc))


def decode_config_document(data: bytes) -> Any:
    """The JSON document of a stored config object.

    Raises
    ------
    FormatError
        The object is damaged, not a config, or not JSON.
    """
    return loads(decode_object(data, ObjectType.CONFIG, "config"), "config")
