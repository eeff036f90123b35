"""A storage emulator as a subprocess on 127.0.0.1, started once per test process.

Each emulator starts on first use, on a free port, with its data and log in a temporary
directory, and stops at interpreter exit. Its output goes to a log file, never to an
unread pipe: an emulator that logs every request would block once a pipe filled.
"""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

_START_TIMEOUT = 60.0  # seconds; node on a loaded 2-core machine can take a while
_TRIES = 3  # a free port can be taken between our probe and the server's bind


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Emulator:
    """One emulator process.

    Parameters
    ----------
    name
        For messages.
    command
        The command line, given the port and a scratch directory.
    probe
        A path that answers once the server is up (any HTTP status counts).
    setup
        Run once with the URL when the server is up (to make a bucket, say).
    """

    def __init__(
        self,
        name: str,
        command: Callable[[int, Path], list[str]],
        probe: str,
        setup: Callable[[str], None] = lambda url: None,
    ) -> None:
        self.name = name
        self._command = command
        self._probe = probe
        self._setup = setup
        self._lock = threading.Lock()
        self._url: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._scratch: Path | None = None

    def url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running emulator (started on first call)."""
        with self._lock:
            if self._url is None:
                self._start()
            assert self._url is not None
            return self._url

    def _start(self) -> None:
        self._scratch = Path(tempfile.mkdtemp(prefix=f"icechunk-{self.name}-"))
        atexit.register(self._stop)
        log_path = self._scratch / "log.txt"
        for _ in range(_TRIES):
            port = free_port()
            with open(log_path, "ab") as log:
                self._process = subprocess.Popen(
                    self._command(port, self._scratch),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            url = f"http://127.0.0.1:{port}"
            if self._wait_until_up(url):
                self._setup(url)
                self._url = url
                return
            self._terminate()
        log_text = log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{self.name} did not start; its log ends with:\n{log_text}")

    def _wait_until_up(self, url: str) -> bool:
        assert self._process is not None
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False  # exited: most likely the port was taken
            try:
                with urllib.request.urlopen(url + self._probe, timeout=2):
                    return True
            except urllib.error.HTTPError:
                return True  # it answered: up
            except OSError:
                time.sleep(0.1)
        return False

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _stop(self) -> None:
        self._terminate()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
