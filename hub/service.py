"""``Hub``: the hub process as one service (store + context + MQTT ingest).

    async with Hub(settings) as hub:     # opens the store, reloads catalog/progress/context
        hub.on_committed.append(hook)    # called after every commit that stored events
                                         # (not for what the shutdown flush commits)
        await hub.run()                  # until cancelled; commits what it holds on the way out

``run()`` may also be called without ``async with``. ``serve()`` is the process entry point
(CLI and ``python -m hub``): SIGTERM/SIGINT cancel it, and the writer's ``finally``
commits within ``ingest.flush_timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AsyncExitStack
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from devices.errors import GeniusError, StorageError

from .catalog import Catalog
from .context import ContextFuser
from .deadletters import DeadLetters
from .ingest import CommitHook, Ingest, IngestStats
from .pipeline import Pipeline
from .rights import ErasureWatcher, Publish
from .security.guard import BatchGuard
from .settings import HubSettings
from .store import Store

if TYPE_CHECKING:
    from .anticipation import AnticipationService
    from .http.server import HttpServer

__all__ = ["Hub", "serve"]

log = logging.getLogger(__name__)


class Hub:
    """Ingest, idempotent storage and the digital context of every customer."""

    def __init__(self, settings: HubSettings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = Store(settings.store.path, busy_timeout_s=settings.store.busy_timeout_s)
        self.context = ContextFuser(settings.context, clock=clock)
        self.on_committed: list[CommitHook] = []
        self.stats = IngestStats()
        self.dead_letters = DeadLetters(warn_window_s=settings.ingest.dead_letter_warn_window_s, clock=clock)
        self._clock = clock
        # Signatures, replay and limits (hub.security): keys come from the store's registry.
        self.guard = BatchGuard.for_store(settings.security, settings.limits, db=settings.store.path)
        self._stack: AsyncExitStack | None = None
        self._ingest: Ingest | None = None
        self.ready = asyncio.Event()  # set once subscribed to the broker
        self.http: HttpServer | None = None  # the operator API (hub.http) while run() serves it
        # Anticipation (hub.anticipation) once open, unless disabled or no model is shipped.
        self.anticipation: AnticipationService | None = None
        # Erasures made on the database (``genius customer forget``) reach memory within this.
        self.erasure_poll_s = 2.0

    @property
    def catalog(self) -> Catalog:
        return self._require().pipeline.catalog

    async def __aenter__(self) -> Self:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(self.store)
            catalog = await self.store.load_catalog()
            progress = await self.store.load_progress()
            self.context.restore(await self.store.load_context())
            self.dead_letters.counts.update(Counter(await self.store.dead_letter_counts()))
            pipeline = Pipeline(
                catalog, progress, self.context, self.dead_letters,
                clock=self._clock, ack_max_gaps=self.settings.ingest.ack_max_gaps,
                context_persist_s=self.settings.ingest.context_persist_s,
                guard=self.guard,
            )
            self._ingest = Ingest(
                self.settings, self.store, pipeline,
                hooks=self.on_committed, stats=self.stats, clock=self._clock, ready=self.ready,
            )
            if self.settings.anticipation.enabled:
                # A model that does not load or fits other features stops the hub here.
                from .anticipation import AnticipationService

                self.anticipation = await AnticipationService.start(
                    self.store, self.context, self.settings.anticipation,
                    publisher=lambda: self.publish, clock=self._clock,
                )
                if self.anticipation is not None:
                    self.on_committed.append(self.anticipation.on_committed)
            now = self._clock()
            self._ingest.prime_acks(
                {key: ack for key in progress if (ack := pipeline.ack_for(key, now=now)) is not None}
            )
            log.info(
                "hub store %s: %d customers, %d edges, %d events",
                self.store.path, len(catalog.customers), len(catalog.edges), sum(p.events for p in progress.values()),
            )
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        stack, self._stack = self._stack, None
        self._ingest = None
        if self.anticipation is not None:
            with contextlib.suppress(ValueError):
                self.on_committed.remove(self.anticipation.on_committed)
            self.anticipation = None
        if stack is not None:
            await stack.aclose()

    def _require(self) -> Ingest:
        if self._ingest is None:
            raise StorageError("hub is not open: use `async with Hub(settings) as hub`")
        return self._ingest

    async def run(self) -> None:
        """Ingest until cancelled. Opens (and closes) the hub itself if not already open."""
        if self._ingest is None:
            async with self:
                await self._serve()
        else:
            await self._serve()

    async def _serve(self) -> None:
        ingest = self._require()
        loop = asyncio.get_running_loop()
        tasks: list[asyncio.Task[None]] = []

        def recancel() -> None:
            # One task failed and the group cancelled the others, but aiomqtt's wait_for can
            # swallow that cancellation on Python 3.11 (see ``serve``): the hub would then
            # run on, never reporting the failure. Ask again until every task has ended.
            running = [t for t in tasks if not t.done()]
            for t in running:
                t.cancel()
            if running:
                loop.call_later(RECANCEL_S, recancel)

        def on_done(task: asyncio.Task[None]) -> None:
            if not task.cancelled() and task.exception() is not None:
                loop.call_later(RECANCEL_S, recancel)

        async with asyncio.TaskGroup() as tg:
            tasks.append(tg.create_task(ingest.run(), name="hub-ingest"))
            tasks.append(tg.create_task(ErasureWatcher(self, poll_s=self.erasure_poll_s).run(), name="hub-erasures"))
            if self.anticipation is not None:
                tasks.append(tg.create_task(self.anticipation.run(), name="hub-anticipation"))
            if self.settings.http.listen is not None:
                from .http.server import HttpServer  # starlette/uvicorn only when the API is on

                self.http = HttpServer(self, self.settings.http)
                tasks.append(tg.create_task(self.http.run(), name="hub-http"))
            for t in tasks:
                t.add_done_callback(on_done)

    # -- data rights (hub.rights.ErasureWatcher calls these) ---------------------------------
    def customer_ids(self) -> list[str]:
        return list(self.catalog.customers)

    def drop_customer(self, customer_id: str) -> tuple[list[int], list[str]]:
        """Forget the customer in memory (catalog, progress, context, acks); their edge keys and ids.

        Data arriving afterwards for the customer starts a new history under new keys.
        """
        ingest = self._require()
        catalog = ingest.pipeline.catalog
        catalog.customers.pop(customer_id, None)
        entries = [e for e in catalog.edges.values() if e.customer_id == customer_id]
        for entry in entries:
            catalog.edges.pop(entry.edge_id, None)
            catalog.edges_by_key.pop(entry.edge_key, None)
            for key in catalog.devices.pop(entry.edge_key, {}).values():
                catalog.device_names.pop(key, None)
            for key in catalog.rooms.pop(entry.edge_key, {}).values():
                catalog.room_names.pop(key, None)
            ingest.pipeline.progress.pop(entry.edge_key, None)
            # The retained ack was cleared; it must not be republished on the next reconnect.
            ingest._acks_committed.pop(entry.edge_key, None)  # noqa: SLF001
            ingest._acks_pending.pop(entry.edge_key, None)  # noqa: SLF001
        self.context.forget(customer_id)
        if self.anticipation is not None:
            self.anticipation.forget(customer_id)
        return [e.edge_key for e in entries], [e.edge_id for e in entries]

    @property
    def publish(self) -> Publish | None:
        """Publish through the hub's broker connection, or None while disconnected."""
        client = self._ingest._client if self._ingest is not None else None  # noqa: SLF001
        if client is None:
            return None

        async def _publish(topic: str, payload: bytes, *, qos: int, retain: bool) -> None:
            await client.publish(topic, payload, qos=qos, retain=retain)

        return _publish

    def snapshot(self, customer_id: str) -> dict[str, Any]:
        """The customer's digital context (``ContextFuser.snapshot``)."""
        return self.context.snapshot(customer_id)


# Seconds after a stop signal, or a failed hub task, before the rest is cancelled again (see ``serve``).
RECANCEL_S = 10.0


async def serve(settings: HubSettings) -> int:
    """Run a hub until SIGTERM/SIGINT; returns the process exit code (0 after a signal)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    stopping = False

    def stop(signum: int) -> None:
        nonlocal stopping
        log.info("hub received signal %d; stopping", signum)
        stopping = True
        task.cancel()
        loop.call_later(RECANCEL_S, again)

    def again() -> None:
        # aiomqtt waits for its replies with asyncio.wait_for, which on Python 3.11 can
        # swallow a cancellation that lands as the reply arrives (CPython gh-86296): the hub
        # would then run on after the signal. Ask again until it has stopped; a second
        # request during the final flush costs a redelivery, never an event (no PUBACK yet).
        if not task.done():
            log.warning("hub still running %.0f s after the stop signal; cancelling again", RECANCEL_S)
            task.cancel()
            loop.call_later(RECANCEL_S, again)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop, signum)
    try:
        await Hub(settings).run()
    except asyncio.CancelledError:
        if not stopping:
            raise
        while task.cancelling():
            task.uncancel()
    except BaseExceptionGroup as group:
        # A hub task that fails with a GeniusError (a busy --http port, a store that cannot
        # be written) reaches the CLI as that error, a clear message, not a group traceback.
        errors = group.subgroup(lambda e: isinstance(e, GeniusError))
        if errors is None or errors.exceptions != group.exceptions:
            raise
        first = errors.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from group
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(signum)
    return 0
