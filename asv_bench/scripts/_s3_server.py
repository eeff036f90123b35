"""moto's S3 server in a child process, counting every HTTP request it serves.

The benchmarks compare clients that make requests we cannot see from the inside
(zarr's ``FsspecStore``, s3fs, obstore), so requests are counted where they arrive:
a WSGI middleware around moto's application counts each request by method, with the
bytes of its body and of its reply. ``GET /__counts__`` returns the counts since the
last such call, as JSON, and starts again; that request itself is not counted.

The server runs in a process of its own so that its Python work does not share the
benchmark's interpreter lock; on a 2-core machine it still shares the cores.

Use::

    with CountingS3Server() as server:
        server.url            # http://127.0.0.1:PORT, bucket ``bench`` exists
        server.counts()       # {"GET": 12, "PUT": 3, ..., "requests": 15, ...}
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

BUCKET = "bench"
REGION = "us-east-1"
KEY = SECRET = "testing"
COUNTS_PATH = "/__counts__"


class _Counting:
    """WSGI middleware: counts requests and bytes, answers ``COUNTS_PATH``."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") == COUNTS_PATH:
            with self.lock:
                body = json.dumps(dict(self.counts)).encode()
                self.counts = Counter()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        method = environ.get("REQUEST_METHOD", "?")
        sent = int(environ.get("CONTENT_LENGTH") or 0)
        with self.lock:
            self.counts[method] += 1
            self.counts["requests"] += 1
            self.counts["bytes_sent"] += sent
        reply = b"".join(self.app(environ, start_response))
        with self.lock:
            self.counts["bytes_received"] += len(reply)
        return [reply]


def _serve() -> None:
    """Child process: serve moto behind the middleware, print the port, run until EOF."""
    import logging

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = _Counting(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()  # the parent closes our stdin to stop us
    server.shutdown()


class CountingS3Server:
    """Starts :func:`_serve` in a child process and creates the bucket ``BUCKET``."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> CountingS3Server:
        self._proc = subprocess.Popen(
            [sys.executable, __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        port = self._proc.stdout.readline().strip()
        if not port.isdigit():
            self.__exit__()
            raise RuntimeError("the moto server did not start (is moto[server] installed?)")
        self.url = f"http://127.0.0.1:{port}"
        self.client().create_bucket(Bucket=BUCKET)
        self.counts()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
            self._proc = None

    def counts(self) -> dict[str, int]:
        """Requests (by method, and ``requests`` in all) and bytes since the last call."""
        with urllib.request.urlopen(self.url + COUNTS_PATH, timeout=30) as reply:
            got: dict[str, int] = json.loads(reply.read())
        return got

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
        )

    def s3fs(self, **kwargs: Any) -> Any:
        """An s3fs filesystem on this server (no instance or listings cache)."""
        import s3fs

        return s3fs.S3FileSystem(
            key=KEY,
            secret=SECRET,
            endpoint_url=self.url,
            client_kwargs={"region_name": REGION},
            skip_instance_cache=True,
            use_listings_cache=False,
            **kwargs,
        )

    def icechunk_fast_storage(self, prefix: str, client: str = "s3fs", **policy: Any) -> Any:
        """An icechunk_fast S3 storage here, through s3fs or obstore (``client``)."""
        import icechunk_fast

        make = icechunk_fast.obstore_s3_storage if client == "obstore" else icechunk_fast.s3_storage
        return make(
            bucket=BUCKET,
            prefix=prefix,
            region=REGION,
            endpoint_url=self.url,
            allow_http=True,
            force_path_style=True,
            access_key_id=KEY,
            secret_access_key=SECRET,
            **policy,
        )


if __name__ == "__main__":
    _serve()
