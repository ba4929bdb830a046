"""Real MQTT brokers on loopback for tests, benchmarks, fleet runs and the demo.

``Mosquitto`` runs the Debian ``mosquitto`` binary as a child process on a free 127.0.0.1
port with a config of our own (never the system one), and can be stopped, restarted on the
same port (persistence kept) or killed, which the fault tests need.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

__all__ = ["EmbeddedBroker", "Mosquitto", "find_mosquitto", "free_port", "wait_port"]

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def wait_port(port: int, *, host: str = LOOPBACK, timeout: float = 10.0, up: bool = True) -> None:
    """Wait until ``port`` accepts connections (or, with ``up=False``, refuses them)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.02)
    raise TimeoutError(f"port {host}:{port} not {'up' if up else 'down'} after {timeout}s")


def find_mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


class Mosquitto:
    """One Mosquitto process on a loopback port, with its own config and data directory.

    ``max_queued_messages`` defaults to Mosquitto's own default (1000) so tests see the
    broker as it ships; pass ``extra`` lines for anything else (listeners, ACLs, TLS).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        max_queued_messages: int | None = None,
        persistence: bool = True,
        extra: str = "",
        listener: bool = True,
    ) -> None:
        self.binary = find_mosquitto()
        if self.binary is None:
            raise FileNotFoundError("mosquitto is not installed (Debian package 'mosquitto'; `make test` installs it)")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.host = LOOPBACK
        self.config = self.workdir / "mosquitto.conf"
        lines = []
        if os.geteuid() == 0:
            # Debian's mosquitto drops to user 'mosquitto' when started as root, and then
            # cannot write persistence or logs into our (root-owned, 0700) work directory.
            lines.append(f"user {pwd.getpwuid(0).pw_name}")
        if listener:
            lines += [f"listener {self.port} {LOOPBACK}", "allow_anonymous true"]
        if persistence:
            lines += ["persistence true", f"persistence_location {self.workdir}/", "autosave_interval 1"]
        if max_queued_messages is not None:
            lines.append(f"max_queued_messages {max_queued_messages}")
        lines += ["log_dest file " + str(self.workdir / "mosquitto.log"), "log_type error", "log_type warning"]
        self.config.write_text("\n".join(lines) + "\n" + extra)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, *, timeout: float = 10.0) -> Mosquitto:
        if self.running:
            return self
        assert self.binary is not None
        self._proc = subprocess.Popen(
            [self.binary, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            wait_port(self.port, timeout=timeout)
        except TimeoutError:
            err = b""
            if self._proc.poll() is not None and self._proc.stderr is not None:
                err = self._proc.stderr.read()
            self.kill()
            raise RuntimeError(f"mosquitto did not start on {self.port}: {err.decode(errors='replace')}") from None
        return self

    def stop(self, *, timeout: float = 10.0) -> None:
        """Graceful stop (SIGTERM): Mosquitto saves its persistence file."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._close()
        with contextlib.suppress(TimeoutError):
            wait_port(self.port, up=False, timeout=2.0)

    def kill(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def _close(self) -> None:
        if self._proc is not None and self._proc.stderr is not None:
            self._proc.stderr.close()
        self._proc = None

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EmbeddedBroker:
    """An in-process MQTT 3.1.1 broker (amqtt) on a loopback port, for ``genius demo``
    when no broker is configured and Mosquitto is not installed.

    Use as ``async with EmbeddedBroker() as broker: ... broker.url``. It runs in the caller's
    event loop; it is fine for a demo's few hundred messages per second, not for load tests.
    """

    def __init__(self, *, port: int | None = None) -> None:
        self.host = LOOPBACK
        self.port = port or free_port()
        self._broker: object | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    async def start(self) -> EmbeddedBroker:
        from amqtt.broker import Broker  # imported lazily: only the demo needs it

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        broker = Broker(config)
        await broker.start()
        self._broker = broker
        return self

    async def stop(self) -> None:
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.shutdown()  # type: ignore[attr-defined]

    async def __aenter__(self) -> EmbeddedBroker:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
