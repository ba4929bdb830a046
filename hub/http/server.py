"""``HttpServer``: uvicorn inside the hub's process and event loop, as one hub task.

    await HttpServer(hub, settings.http).run()   # in the hub's TaskGroup; until cancelled

The listening socket is bound here (so a busy port is a ``ConfigError``, not uvicorn's
``sys.exit``; port 0 picks a free one, read back from ``port``), uvicorn is told not to
touch signal handlers (the hub owns SIGTERM), and cancellation shuts the server down
gracefully: streams end, open requests get ``shutdown_grace_s`` to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

import uvicorn

from devices.errors import ConfigError

from ..store import Store
from .app import ApiState, create_app
from .metrics import IngestMetrics
from .monitor import FleetMonitor
from .settings import HttpSettings, parse_listen

if TYPE_CHECKING:
    from ..service import Hub

__all__ = ["HttpServer"]

log = logging.getLogger(__name__)


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the hub's own handlers stay in place


class HttpServer:
    def __init__(self, hub: Hub, settings: HttpSettings) -> None:
        if settings.listen is None:
            raise ConfigError("http.listen is not set")
        self.hub = hub
        self.settings = settings
        self.host, self.port = parse_listen(settings.listen)
        self.ingest = IngestMetrics()
        self.ready = asyncio.Event()  # set once accepting connections
        self.state: ApiState | None = None  # what the routes see, while running

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(128)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise ConfigError(f"hub http cannot listen on {self.settings.listen}: {exc}") from exc
        self.port = sock.getsockname()[1]
        return sock

    async def run(self) -> None:
        """Serve until cancelled (then shut down within ``shutdown_grace_s``)."""
        async with AsyncExitStack() as stack:
            reader = await stack.enter_async_context(Store(self.hub.store.path, readonly=True))
            monitor = FleetMonitor(self.hub, reader, self.ingest, self.settings)
            state = self.state = ApiState(self.hub, reader, monitor, self.ingest, self.settings)
            self.hub.on_committed.append(self.ingest)
            stack.callback(self.hub.on_committed.remove, self.ingest)
            sock = self._bind()
            stack.callback(sock.close)
            config = uvicorn.Config(
                create_app(state), lifespan="off", log_config=None, access_log=False, server_header=False,
                timeout_graceful_shutdown=max(1, round(self.settings.shutdown_grace_s)),
            )
            server = _EmbeddedServer(config)
            await monitor.refresh()
            async with asyncio.TaskGroup() as tg:
                tg.create_task(monitor.run(), name="hub-http-monitor")
                tg.create_task(self._serve(server, sock, state), name="hub-http")

    async def _serve(self, server: uvicorn.Server, sock: socket.socket, state: ApiState) -> None:
        config = server.config
        config.load()
        server.lifespan = config.lifespan_class(config)
        await server.startup(sockets=[sock])
        self.ready.set()
        log.info("hub http listening on %s", self.url)
        try:
            await server.main_loop()
        finally:
            state.stopping.set()
            await state.monitor.close()  # wakes the streams, which end their responses now
            server.should_exit = True
            async with asyncio.timeout(self.settings.shutdown_grace_s + 2):
                await server.shutdown(sockets=[sock])
            log.info("hub http stopped")
