"""A real S3 server on loopback for the tests: moto's server mode, plus a fault proxy.

Importing this module never needs moto; :data:`AVAILABLE` says whether the S3 tests
can run. The server starts on first use, once per test process, on 127.0.0.1 with a
port the OS picks, and stops at interpreter exit.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import re
import socket
import threading
import uuid
from pathlib import Path
from typing import Any

from icechunk_fast.storage import (
    ObstoreS3Storage,
    S3Storage,
    Storage,
    obstore_s3_storage,
    s3_storage,
)

AVAILABLE = all(importlib.util.find_spec(m) is not None for m in ("moto", "s3fs", "boto3"))
OBSTORE = importlib.util.find_spec("obstore") is not None  # the second S3 client

BUCKET = "icechunk-test"
REGION = "us-east-1"
CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing"}

_lock = threading.Lock()
_server: dict[str, Any] = {}


def endpoint() -> str:
    """``http://127.0.0.1:PORT`` of the shared moto server (started on first call)."""
    with _lock:
        if "url" not in _server:
            from moto.server import ThreadedMotoServer

            logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            server.start()
            host, port = server.get_host_and_port()
            url = f"http://{host}:{port}"
            client(url).create_bucket(Bucket=BUCKET)
            _server.update(server=server, url=url)
            atexit.register(server.stop)
        return str(_server["url"])


def client(url: str | None = None) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=url or endpoint(),
        region_name=REGION,
        aws_access_key_id=CREDENTIALS["access_key_id"],
        aws_secret_access_key=CREDENTIALS["secret_access_key"],
    )


def fresh_prefix() -> str:
    return f"t-{uuid.uuid4().hex[:16]}"


def storage(prefix: str | None = None, *, url: str | None = None, **policy: Any) -> S3Storage:
    """An S3 storage under a fresh (or the given) prefix of the test bucket."""
    return s3_storage(
        bucket=BUCKET,
        prefix=prefix or fresh_prefix(),
        region=REGION,
        endpoint_url=url or endpoint(),
        allow_http=True,
        force_path_style=True,
        **CREDENTIALS,
        **policy,
    )


def obstore_storage(
    prefix: str | None = None, *, url: str | None = None, **policy: Any
) -> ObstoreS3Storage:
    """Like :func:`storage`, through obstore's client."""
    return obstore_s3_storage(
        bucket=BUCKET,
        prefix=prefix or fresh_prefix(),
        region=REGION,
        endpoint_url=url or endpoint(),
        allow_http=True,
        **CREDENTIALS,
        **policy,
    )


def backend(_tmp: Path) -> Storage:
    """For the ``BACKENDS`` table of the storage contract tests."""
    return storage()


def obstore_backend(_tmp: Path) -> Storage:
    return obstore_storage()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- a fault-injecting HTTP proxy ------------------------------------------------------
_SOCKET_TIMEOUT = 15.0
_MAX_HANDLERS = 64


class FaultProxy:
    """An HTTP/1.1 proxy on 127.0.0.1 in front of the moto server (or the GCS and Azure
    emulators), for fault injection.

    Keeps client connections alive (moto itself closes each one), forwards each request
    on a fresh upstream connection, and on demand:

    - ``drop_after_forward(n)``: the next ``n`` conditional writes (PUTs with
      ``If-Match`` or ``If-None-Match``, GCS uploads with ``ifGenerationMatch``) reach
      the server, which applies them, and then the client connection is closed instead
      of the reply being sent: the lost-response case.
    - ``drop_before_forward(n)``: the next ``n`` conditional PUTs are dropped unsent.
    - ``fail_next(method, status, code, n)``: answer the next ``n`` requests of that
      method with a canned S3 error, without forwarding them.
    - ``outage_at(n, reply_lost)``: the network goes down at the ``n``-th request from
      now on (counting every request, resends included): that request is dropped unsent,
      or (``reply_lost``) reaches moto and loses its reply; every later request is
      dropped unsent until ``heal()``.

    ``log`` records ``(method, path, conditional, write_id, outcome)`` per request;
    ``request_headers`` the headers of each request (names lower-cased);
    ``max_in_flight`` the most requests forwarded at once.
    """

    def __init__(self, upstream: str, *, keep_alive: bool = True) -> None:
        host, _, port = upstream.removeprefix("http://").partition(":")
        self.upstream = (host, int(port))
        self.keep_alive = keep_alive
        self.log: list[tuple[str, str, bool, str | None, str]] = []
        self.request_headers: list[dict[str, str]] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._drop_after = 0
        self._drop_before = 0
        self._failures: list[tuple[str, int, str]] = []
        self._stalls: list[tuple[str, float]] = []
        self._outage: tuple[int, bool] | None = None  # (request number, reply lost)
        self.seen = 0  # requests since the last outage_at / heal
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(_MAX_HANDLERS)
        self._stopped = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        self._listener.close()

    # -- arming -------------------------------------------------------------------------
    def drop_after_forward(self, n: int = 1) -> None:
        with self._lock:
            self._drop_after = n

    def drop_before_forward(self, n: int = 1) -> None:
        with self._lock:
            self._drop_before = n

    def fail_next(self, method: str, status: int, code: str, n: int = 1) -> None:
        with self._lock:
            self._failures.extend([(method, status, code)] * n)

    def stall_next(self, method: str, seconds: float, n: int = 1) -> None:
        """Hold the next ``n`` requests of ``method`` for ``seconds`` before forwarding."""
        with self._lock:
            self._stalls.extend([(method, seconds)] * n)

    def outage_at(self, n: int, *, reply_lost: bool = False) -> None:
        with self._lock:
            self._outage, self.seen = (n, reply_lost), 0

    def heal(self) -> None:
        with self._lock:
            self._outage, self.seen = None, 0

    def outcomes(self, outcome: str) -> list[tuple[str, str, bool, str | None, str]]:
        with self._lock:
            return [row for row in self.log if row[4] == outcome]

    # -- serving ------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._slots.acquire(timeout=_SOCKET_TIMEOUT):
                conn.close()
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(_SOCKET_TIMEOUT)
            reader = conn.makefile("rb")
            while not self._stopped.is_set():
                request = _read_request(reader, conn)
                if request is None or not self._handle(conn, *request):
                    break
        except OSError:
            pass
        finally:
            conn.close()
            self._slots.release()

    def _handle(
        self, conn: socket.socket, line: bytes, headers: list[tuple[str, str]], body: bytes
    ) -> bool:
        """Answer one request; False to close the client connection."""
        method, path = line.split(b" ")[0].decode(), line.split(b" ")[1].decode()
        names = {k.lower(): v for k, v in headers}
        conditional, write_id = _conditional_write(method, path, names, body)
        with self._lock:
            self.request_headers.append(names)
            self.seen += 1
            outage = self._outage
            failure = stall = None
            if outage is not None and self.seen >= outage[0]:  # the network is down
                drop_after = self.seen == outage[0] and outage[1]
                drop_before = not drop_after
            else:
                failure = next((f for f in self._failures if f[0] == method), None)
                if failure is not None:
                    self._failures.remove(failure)
                drop_before = conditional and self._drop_before > 0
                drop_after = conditional and not drop_before and self._drop_after > 0
                if drop_before:
                    self._drop_before -= 1
                if drop_after:
                    self._drop_after -= 1
                stall = next((st for st in self._stalls if st[0] == method), None)
                if stall is not None:
                    self._stalls.remove(stall)

        def record(outcome: str) -> None:
            with self._lock:
                self.log.append((method, path, conditional, write_id, outcome))

        if failure is not None:
            record(f"injected {failure[1]}")
            conn.sendall(_error_response(failure[1], failure[2], head=method == "HEAD"))
            return True
        if drop_before:
            record("dropped before forwarding")
            return False
        if stall is not None:
            if self._stopped.wait(stall[1]):
                return False
            record("stalled")
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            reply = self._forward(line, headers, body)
        finally:
            with self._lock:
                self._in_flight -= 1
        if drop_after:
            record("dropped reply")
            conn.shutdown(socket.SHUT_RDWR)
            return False
        record("forwarded")
        if not self.keep_alive:
            conn.sendall(reply)  # moto's own "Connection: close"
            return False
        conn.sendall(_keep_alive(reply, head=method == "HEAD"))
        return True

    def _forward(self, line: bytes, headers: list[tuple[str, str]], body: bytes) -> bytes:
        out = [line]
        for k, v in headers:
            if k.lower() not in ("connection", "keep-alive", "expect", "transfer-encoding"):
                out.append(f"{k}: {v}".encode("latin-1"))
        if not any(k.lower() == "content-length" for k, _ in headers) and body:
            out.append(f"Content-Length: {len(body)}".encode())
        out.append(b"Connection: close")
        with socket.create_connection(self.upstream, timeout=_SOCKET_TIMEOUT) as up:
            up.sendall(b"\r\n".join(out) + b"\r\n\r\n" + body)
            parts = []
            while chunk := up.recv(65536):
                parts.append(chunk)
        return b"".join(parts)


_GCS_WRITE_ID = re.compile(rb'"icechunk-write-id"\s*:\s*"([0-9a-f]+)"')


def _conditional_write(
    method: str, path: str, names: dict[str, str], body: bytes
) -> tuple[bool, str | None]:
    """Whether a request is a conditional write, and the write id it carries.

    S3 and Azure: a PUT with ``If-Match`` / ``If-None-Match``, the id in a metadata
    header. GCS: an upload with ``ifGenerationMatch``, the id in the JSON part of its
    multipart body.
    """
    if method == "PUT" and ("if-match" in names or "if-none-match" in names):
        return True, names.get("x-amz-meta-icechunk-write-id") or names.get(
            "x-ms-meta-icechunk_write_id"
        )
    if method == "POST" and "ifGenerationMatch=" in path:
        found = _GCS_WRITE_ID.search(body)
        return True, found.group(1).decode() if found else None
    return False, None


def _read_request(
    reader: Any, conn: socket.socket
) -> tuple[bytes, list[tuple[str, str]], bytes] | None:
    line = reader.readline(65536)
    if not line or not line.strip():
        return None
    headers: list[tuple[str, str]] = []
    while True:
        h = reader.readline(65536)
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        headers.append((k.strip(), v.strip()))
    names = {k.lower(): v for k, v in headers}
    if names.get("expect", "").lower() == "100-continue":
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    if "content-length" in names:
        body = reader.read(int(names["content-length"]))
    elif names.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int(reader.readline(1024).split(b";")[0].strip(), 16)
            if size == 0:
                while reader.readline(65536) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                break
            parts.append(reader.read(size))
            reader.readline(16)
        body = b"".join(parts)
    else:
        body = b""
    return line.rstrip(b"\r\n"), headers, body


def _keep_alive(reply: bytes, *, head: bool) -> bytes:
    """Moto's reply with its ``Connection: close`` replaced, framed by Content-Length."""
    raw_head, _, body = reply.partition(b"\r\n\r\n")
    lines = raw_head.split(b"\r\n")
    kept = [lines[0]]
    has_length = False
    for h in lines[1:]:
        name = h.split(b":", 1)[0].strip().lower()
        if name in (b"connection", b"keep-alive"):
            continue
        has_length |= name in (b"content-length", b"transfer-encoding")
        kept.append(h)
    if not has_length and not head:
        kept.append(f"Content-Length: {len(body)}".encode())
    kept.append(b"Connection: keep-alive")
    return b"\r\n".join(kept) + b"\r\n\r\n" + (b"" if head else body)


def _error_response(status: int, code: str, *, head: bool) -> bytes:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>injected by the test proxy</Message>"
        "<RequestId>fault-proxy</RequestId></Error>"
    ).encode()
    reason = {429: "Too Many Requests", 500: "Internal Server Error", 503: "Slow Down"}
    lines = [
        f"HTTP/1.1 {status} {reason.get(status, 'Error')}",
        "Content-Type: application/xml",
        f"Content-Length: {0 if head else len(body)}",
        "Connection: keep-alive",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (b"" if head else body)
