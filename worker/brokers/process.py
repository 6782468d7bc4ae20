"""Shared plumbing for locally launched brokers: free ports, a Kafka-protocol readiness probe, process lifecycle."""

from __future__ import annotations

import abc
import asyncio
import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

LOOPBACK = "127.0.0.1"
_API_VERSIONS = 18
_METADATA = 3
_PR_SET_PDEATHSIG = 1
_LIVE: weakref.WeakSet[BrokerProcess] = weakref.WeakSet()

try:
    _prctl: Callable[..., int] | None = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _prctl = None


class BrokerError(RuntimeError):
    """A broker failed to prepare, start or stop."""


def free_ports(count: int = 1, host: str = LOOPBACK) -> list[int]:
    """Return `count` distinct ports that were free on `host` a moment ago."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    buf = bytearray()
    while len(buf) < size:
        chunk = sock.recv(size - len(buf))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf += chunk
    return bytes(buf)


def _call(sock: socket.socket, api_key: int, version: int, correlation_id: int, body: bytes) -> bytes:
    """Send one request with a v1 (non-flexible) header and return the response body after the correlation id."""
    client = b"broker-probe"
    msg = struct.pack(">hhih", api_key, version, correlation_id, len(client)) + client + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)
    (size,) = struct.unpack(">i", _recv_exact(sock, 4))
    resp = _recv_exact(sock, size)
    if struct.unpack_from(">i", resp)[0] != correlation_id:
        raise ConnectionError("correlation id mismatch")
    return resp[4:]


def probe(host: str, port: int, timeout: float = 2.0) -> bool:
    """True when the broker answers ApiVersions v0 cleanly and Metadata v4 advertises a broker on `port`."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            if struct.unpack_from(">h", _call(sock, _API_VERSIONS, 0, 1, b""))[0] != 0:
                return False
            # Metadata v4 request: topics = [] (none), allow_auto_topic_creation = false.
            meta = _call(sock, _METADATA, 4, 2, struct.pack(">i?", 0, False))
            # Response: throttle_time_ms, brokers [node_id, host, port, rack], ...
            (n_brokers,) = struct.unpack_from(">i", meta, 4)
            if n_brokers < 1:
                return False
            (host_len,) = struct.unpack_from(">h", meta, 12)
            (advertised_port,) = struct.unpack_from(">i", meta, 14 + host_len)
            return bool(advertised_port == port)
    except (OSError, struct.error):
        return False


def die_with_parent() -> None:  # runs in the child between fork and exec
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class BrokerProcess(abc.ABC):
    """One broker subprocess on a fixed loopback port; subclasses say how to prepare and launch it.

    `workdir` holds the broker's files and log; when not given a temporary one is made and removed by `close()`.
    """

    name: ClassVar[str] = "broker"
    #: aiokafka consumer kwargs that suit this broker's group coordinator (empty = client defaults).
    group_settings: ClassVar[Mapping[str, int]] = {}

    def __init__(
        self, *, port: int | None, workdir: Path | None, start_timeout: float, stop_timeout: float = 30.0
    ) -> None:
        self.host = LOOPBACK
        self.port = port if port is not None else free_ports()[0]
        self._owns_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.name}-")) if workdir is None else Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.startup_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """Bootstrap servers string for clients, e.g. `127.0.0.1:40123`."""
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        """File receiving the broker's stdout and stderr (appended across restarts)."""
        return self.workdir / f"{self.name}.log"

    @property
    def pid(self) -> int | None:
        """Process id while launched, else None."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the subprocess is alive."""
        return self._proc is not None and self._proc.poll() is None

    @abc.abstractmethod
    def command(self) -> list[str]:
        """The argv that runs the broker in the foreground."""

    def prepare(self) -> None:  # noqa: B027 - optional hook
        """Hook run before every launch (write config, format storage...)."""

    def env(self) -> dict[str, str] | None:
        """Environment for the subprocess; None inherits ours."""
        return None

    def start(self) -> Self:
        """Launch the broker and block until it serves metadata; no-op if already running."""
        if self.running:
            return self
        self.prepare()
        began = time.monotonic()
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=self.env(),
                start_new_session=True,  # a terminal ^C reaches the test runner, which stops us cleanly
                # PDEATHSIG follows the forking *thread*: only safe to ask for from the main thread.
                preexec_fn=die_with_parent if threading.current_thread() is threading.main_thread() else None,
            )
        _LIVE.add(self)
        self._wait_ready(began + self.start_timeout)
        self.startup_seconds = time.monotonic() - began
        return self

    def _wait_ready(self, deadline: float) -> None:
        while not probe(self.host, self.port):
            if self._proc is None or self._proc.poll() is not None:
                code = None if self._proc is None else self._proc.returncode
                raise BrokerError(f"{self.name} exited with {code} before becoming ready\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                msg = f"{self.name} not ready on {self.bootstrap} within {self.start_timeout}s"
                raise BrokerError(f"{msg}\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM and wait for a clean exit; SIGKILL if it takes longer than `timeout` (default stop_timeout)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(self.stop_timeout if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        self._proc = None

    def kill(self) -> None:
        """SIGKILL the broker (a crash) and reap it."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._proc = None

    def restart(self) -> Self:
        """Stop, then start again on the same port and workdir."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the broker and remove the workdir if we created it."""
        self.stop()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        """Last lines of the broker log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.close)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.bootstrap} pid={self.pid} workdir={self.workdir}>"


@atexit.register
def _kill_leftovers() -> None:
    for broker in list(_LIVE):
        with contextlib.suppress(Exception):
            broker.kill()


def java_binary() -> str:
    """`$JAVA_HOME/bin/java` if set, else `java` from PATH."""
    home = os.environ.get("JAVA_HOME")
    found = str(Path(home, "bin", "java")) if home else shutil.which("java")
    if not found or not Path(found).exists():
        raise BrokerError("java not found: install a JDK 17+ or set JAVA_HOME")
    return found
