"""``EdgeAgent``: the edge process — local broker in, outbox, hub broker out.

``EdgeAgent(settings, sessions=…).run()`` owns one ``asyncio.TaskGroup`` holding the outbox's
group-commit loop, the local subscriber, the uplink and the privacy ticker. Adapter sessions
are injected (the CLI builds them from the ``genius.devices`` registry), so tests and
embedders can pass their own. Cancelling ``run`` (SIGTERM through ``serve``) stops it
gracefully: the uplink publishes the offline status, open coarse windows and pending
readings are committed, all within ``asyncio.timeout``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from devices.adapter import AdapterSession
from devices.errors import StorageError
from devices.topics import anticipations_topic
from devices.wire import EdgeStatus

from .deadletters import DeadLetters
from .home import HomeBridge
from .inventory import Inventory
from .local import LocalSubscriber
from .outbox import Outbox
from .pipeline import Pipeline
from .privacy import PrivacyFilter
from .settings import EdgeSettings
from .uplink import State, Uplink

__all__ = ["EdgeAgent", "serve"]

log = logging.getLogger(__name__)


def _version() -> str:
    try:
        return version("genius")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


class EdgeAgent:
    """One edge: wire the parts together and run them until cancelled.

    The parts (``outbox``, ``pipeline``, ``uplink``, ``local``) exist while ``run`` runs and
    are exposed for tests and status reporting; ``ready`` is set once the local subscriber
    has subscribed and ``uplink.connected`` while the hub broker is connected.
    """

    def __init__(
        self,
        settings: EdgeSettings,
        *,
        sessions: Sequence[AdapterSession],
        clock: Callable[[], float] = time.time,
        tick_s: float = 1.0,
    ) -> None:
        self.settings = settings
        self.sessions = list(sessions)
        self._clock = clock
        self.tick_s = tick_s
        self.version = _version()
        self.dead_letters = DeadLetters(
            window_s=settings.dead_letter_window_s, max_rows=settings.outbox.dead_letter_rows, clock=clock
        )
        self.privacy = PrivacyFilter.from_settings(settings.privacy, settings.devices)
        self.inventory = Inventory(self.privacy.resolver, settings.devices)
        self.ready = asyncio.Event()
        self.outbox: Outbox | None = None
        self.pipeline: Pipeline | None = None
        self.uplink: Uplink | None = None
        self.local: LocalSubscriber | None = None
        self.home: HomeBridge | None = None

    def status(self, state: State) -> bytes:
        """The retained status document (also the last will, with ``state="offline"``)."""
        outbox = self.outbox
        return EdgeStatus(
            state=state,
            version=self.version,
            backlog=outbox.backlog if outbox is not None else 0,
            ts=self._clock(),
            overflow_policy=self.settings.outbox.overflow,
            overflow_dropped=outbox.overflow_dropped if outbox is not None else 0,
            dead_letters=self.dead_letters.total,
            role=self.settings.role,
            oldest_seq=outbox.first_seq if outbox is not None else None,
        ).model_dump_json(exclude_none=True).encode()

    async def run(self) -> None:
        s = self.settings
        async with Outbox.open(s.outbox, dead_letters=self.dead_letters) as outbox:
            self.outbox = outbox
            pipeline = self.pipeline = Pipeline(
                self.sessions,
                outbox=outbox,
                privacy=self.privacy,
                inventory=self.inventory,
                dead_letters=self.dead_letters,
                devices=s.devices,
            )
            self.uplink = Uplink(
                customer=s.customer,
                edge=s.edge,
                broker=s.hub_broker,
                settings=s.uplink,
                outbox=outbox,
                inventory=self.inventory,
                dead_letters=self.dead_letters,
                status=self.status,
                on_control=self._purge,
                client_id=f"{s.client_id_base}-hub",
                clock=self._clock,
            )
            uplink = self.uplink
            if s.home.enabled:
                self.home = HomeBridge(
                    customer=s.customer,
                    edge=s.edge,
                    broker=s.local_broker,
                    settings=s.home,
                    hub_publish=uplink.publish,
                    hub_connected=uplink.connected.is_set,
                    dead_letters=self.dead_letters,
                    client_id=f"{s.client_id_base}-home",
                    clock=self._clock,
                )
                uplink.handlers[anticipations_topic(s.customer)] = self.home.on_anticipation
            self.local = LocalSubscriber(
                s.local_broker,
                pipeline,
                client_id=f"{s.client_id_base}-local",
                settings=s.local,
                dead_letters=self.dead_letters,
                clock=self._clock,
            )
            log.info(
                "edge %s/%s (%s) starting: %d adapter sessions, outbox %s",
                s.customer, s.edge, s.role, len(self.sessions), s.outbox.path,
            )
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(outbox.run(), name="outbox")
                    tg.create_task(self.uplink.run(), name="uplink")
                    tg.create_task(self.local.run(), name="local")
                    tg.create_task(self._tick(), name="privacy-tick")
                    tg.create_task(self._mark_ready(), name="ready")
                    if self.home is not None:
                        tg.create_task(self.home.run(), name="home")
            finally:
                # Open coarse windows and pending readings are committed before the outbox closes.
                try:
                    async with asyncio.timeout(s.uplink.shutdown_timeout_s):
                        pipeline.drain()
                        await outbox.flush()
                except (TimeoutError, StorageError) as exc:
                    log.error("could not commit the last readings on stop: %r", exc)
                log.info("edge %s/%s stopped with %d events queued", s.customer, s.edge, outbox.backlog)

    async def _tick(self) -> None:
        assert self.pipeline is not None
        while True:
            await asyncio.sleep(self.tick_s)
            self.pipeline.tick(self._clock())

    async def _mark_ready(self) -> None:
        assert self.local is not None
        await self.local.ready.wait()
        self.ready.set()

    async def _purge(self, command: dict[str, Any]) -> None:
        """Customer erasure: drop everything not yet at the hub, open coarse windows included."""
        assert self.outbox is not None
        self.privacy.coarsener.clear()
        if self.pipeline is not None:
            self.pipeline.clear_held()  # their payloads are the customer's too
        ts = command.get("ts")
        erased = await self.outbox.purge(ts=float(ts) if isinstance(ts, (int, float)) and not isinstance(ts, bool) else None)
        log.warning("purge requested by the hub: %d queued events erased", erased)


async def serve(settings: EdgeSettings, *, sessions: Sequence[AdapterSession]) -> None:
    """Run an ``EdgeAgent`` until SIGTERM or SIGINT, then stop it gracefully."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    stopping = False

    def _stop(signame: str) -> None:
        nonlocal stopping
        if not stopping:
            log.info("%s received: stopping", signame)
            stopping = True
            task.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _stop, sig.name)
    try:
        await EdgeAgent(settings, sessions=sessions).run()
    except asyncio.CancelledError:
        if not stopping:
            raise
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
