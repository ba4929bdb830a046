"""``genius demo``: three simulated customers, their edges and a hub, live, on one machine.

    summary = await run_demo(DemoConfig(duration_s=120), show=print_frame, stop=stop_event)

No external service: an MQTT broker is started when none is given (Mosquitto when it is
installed, else the in-process amqtt ``EmbeddedBroker``; ``broker`` = ``auto``,
``embedded``, ``mosquitto`` or an ``mqtt://`` URL), the hub keeps its SQLite database in a
temporary directory unless ``db`` is given, and every edge (home, hotel room, holiday home,
gym of each customer) is a real ``EdgeAgent`` reading its devices from the same broker
under its own topic root (``fleet_topics``). One broker carries both the devices' traffic
and the hub's: fine for a demo, as in a small installation.

The scenario (``choose_scenario``) is picked from the simulator's plan so that one
customer checks in to a hotel on a business trip a few simulated minutes after the demo
starts; the two others are the next customers of the population. What the demo *shows*
comes from the hub (its context, store and retained anticipations); the simulator's own
narration is shown apart, labelled "simulation truth".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt

from devices.errors import ConfigError, PayloadError
from devices.topics import anticipations_topic
from devices.wire import Anticipation, decode
from edge.settings import BrokerSettings
from hub.markets import edge_roles, infer_market
from hub.store import Store

from .brokers import EmbeddedBroker, Mosquitto, find_mosquitto
from .customer import CustomerSimulation, Label, to_epoch
from .demo_view import CustomerView, DemoFrame, EdgeView
from .export import DEFAULT_START
from .fleet_clock import SimClock
from .fleet_feed import Feeder
from .fleet_stack import SimStack
from .population import CustomerSpec, Population

__all__ = ["DemoConfig", "Scenario", "choose_scenario", "run_demo"]

log = logging.getLogger(__name__)

DAY = 86_400.0
_ACTIVITY = ("occupancy", "contact", "switch", "action", "checkin", "lock", "media")


@dataclass(frozen=True, slots=True)
class DemoConfig:
    duration_s: float | None = 120.0  # wall seconds; None: until stopped (or the simulated week ends)
    speed: float = 120.0  # simulated seconds per wall second
    broker: str = "auto"
    db: Path | None = None
    seed: int = 0
    customers: int = 3
    http: str | None = None  # HOST:PORT for the hub's dashboard, when the hub has one
    refresh_s: float = 1.0  # how often the frame is rebuilt


@dataclass(frozen=True, slots=True)
class Scenario:
    specs: list[CustomerSpec]
    traveller: str  # the customer on a business trip
    check_in: float  # when the traveller's hotel check-in begins (simulated UTC epoch s)
    window: tuple[float, float]  # the simulated week everything is planned over
    feed_from: float  # when the demo's clock starts


def choose_scenario(*, customers: int = 3, seed: int = 0, lead_s: float = 600.0, search: int = 12,
                    days: int = 7) -> Scenario:
    """The earliest business-trip hotel check-in among the first ``search`` customers (at least
    ``lead_s`` after the window starts), that traveller and the next ``customers - 1`` customers."""
    start = to_epoch(DEFAULT_START)
    window = (start, start + days * DAY)
    best: tuple[float, CustomerSpec] | None = None
    for spec in Population.generate(search, seed):
        labels = CustomerSimulation(spec).labels(*window)
        trips = [lb.begin for lb in labels if lb.market == "travel:business" and lb.job == "check_in"
                 and lb.edge_id == spec.hotel.edge_id and lb.begin >= start + lead_s]
        if trips and (best is None or min(trips) < best[0]):
            best = (min(trips), spec)
    if best is None:
        raise ConfigError(f"no business trip among the first {search} customers of seed {seed}")
    check_in, traveller = best
    others = [s for s in Population.generate(search, seed) if s.customer_id != traveller.customer_id]
    specs = [traveller, *others[: max(0, customers - 1)]]
    return Scenario(specs=specs, traveller=traveller.customer_id, check_in=check_in, window=window,
                    feed_from=check_in - lead_s)


@contextlib.asynccontextmanager
async def demo_broker(choice: str, workdir: Path) -> AsyncIterator[tuple[str, str]]:
    """``(url, description)`` of the broker the demo uses, started here unless it is a URL."""
    if choice == "auto":
        choice = "mosquitto" if find_mosquitto() is not None else "embedded"
    if choice == "embedded":
        async with ThreadedBroker() as url:
            yield url, f"embedded amqtt broker on {url}"
    elif choice == "mosquitto":
        if find_mosquitto() is None:
            raise ConfigError("mosquitto is not installed (Debian package 'mosquitto'); try --broker embedded")
        broker = Mosquitto(workdir / "broker", max_queued_messages=0, persistence=False)
        await asyncio.to_thread(broker.start)
        try:
            yield broker.url, f"Mosquitto on {broker.url}"
        finally:
            await asyncio.to_thread(broker.stop)
    elif choice.startswith("mqtt://"):
        yield choice, f"broker {choice}"
    else:
        raise ConfigError(f"--broker must be auto, embedded, mosquitto or mqtt://host:port, not {choice!r}")


class ThreadedBroker:
    """``EmbeddedBroker`` on its own event loop in a thread of this process.

    In the demo's loop the broker would stall whenever the hub or an edge holds the loop (a
    model loading, a burst of commits): clients then time out, reconnect and amqtt performs
    session take-overs, which it does not survive well. Its own loop keeps it responsive.
    """

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self.url = ""

    def _main(self) -> None:
        def quiet(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            # amqtt 0.12 lets errors of a dropped client escape to the loop (e.g. iterating
            # its subscriptions while another client subscribes): that client reconnects.
            log.warning("embedded broker: %s (%r)", context.get("message"), context.get("exception"))

        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._loop.set_exception_handler(quiet)
            self._stop = asyncio.Event()
            try:
                async with EmbeddedBroker() as broker:
                    self.url = broker.url
                    self._started.set()
                    await self._stop.wait()
            except BaseException as exc:  # reported to the starting thread
                self._error = exc
                self._started.set()

        asyncio.run(serve())

    async def __aenter__(self) -> str:
        self._thread = threading.Thread(target=self._main, name="genius-demo-broker", daemon=True)
        self._thread.start()
        if not await asyncio.to_thread(self._started.wait, 30.0) or self._error is not None:
            raise ConfigError(f"the embedded broker did not start: {self._error!r}")
        return self.url

    async def __aexit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 30.0)


class AnticipationWatcher:
    """The latest retained ``genius/v1/{customer}/anticipations`` of each customer, from the broker."""

    def __init__(self, broker: str, customers: Sequence[str]) -> None:
        self.broker = BrokerSettings.model_validate(broker)
        self.customers = list(customers)
        self.latest: dict[str, Anticipation] = {}
        self.problems: dict[str, str] = {}

    async def run(self) -> None:
        while True:
            try:
                client_id = f"genius-demo-view-{id(self):x}"
                async with aiomqtt.Client(**self.broker.client_kwargs(), identifier=client_id) as client:
                    await client.subscribe([(anticipations_topic(c), 1) for c in self.customers])
                    async for message in client.messages:
                        self._take(str(message.topic), message.payload)
            except aiomqtt.MqttError as exc:
                log.info("anticipation view lost the broker (%s); reconnecting", exc)
            await asyncio.sleep(1.0)

    def _take(self, topic: str, payload: Any) -> None:
        customer = topic.split("/")[2]
        if not isinstance(payload, bytes) or not payload:
            self.latest.pop(customer, None)
            return
        try:
            self.latest[customer] = decode(Anticipation, payload)
            self.problems.pop(customer, None)
        except PayloadError as exc:
            self.problems[customer] = f"unreadable anticipation: {exc}"


def _truth(labels: Sequence[Label], now: float) -> list[str]:
    """The simulator's narration at ``now``: jobs under way, else the last one finished."""
    running = [lb for lb in labels if lb.begin <= now < lb.end]
    if running:
        return [f"resident {lb.resident}: {lb.job.replace('_', ' ')} ({lb.market})" for lb in running]
    done = [lb for lb in labels if lb.end <= now]
    if done:
        lb = done[-1]
        return [f"resident {lb.resident} last: {lb.job.replace('_', ' ')} ({lb.market}), "
                f"{int((now - lb.end) // 60)} min ago"]
    return []


def _dashboard(stack: SimStack, listen: str | None) -> str | None:
    """Where the hub's dashboard is, if the hub serves one (``hub.http``, added alongside)."""
    hub: Any = stack.hub
    for attr in ("http_url", "dashboard_url"):
        url = getattr(hub, attr, None)
        if isinstance(url, str):
            return url
    url = getattr(getattr(hub, "http", None), "url", None)
    if isinstance(url, str):
        return url
    if listen and not listen.endswith(":0"):
        return f"http://{listen}/"
    return None


async def run_demo(
    config: DemoConfig,
    *,
    show: Callable[[DemoFrame], Awaitable[None] | None],
    stop: asyncio.Event,
    say: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """Run until ``duration_s`` has passed, ``stop`` is set or the simulated window ends.

    ``show`` gets a fresh ``DemoFrame`` every ``refresh_s``; the return value is the last
    frame as plain data (the ``--json`` summary).
    """
    if not config.speed > 0 or config.customers < 1:
        raise ConfigError("--speed and --customers must be positive")
    scenario = choose_scenario(customers=config.customers, seed=config.seed)
    with contextlib.ExitStack() as files:
        workdir = Path(files.enter_context(tempfile.TemporaryDirectory(prefix="genius-demo-")))
        db = config.db or workdir / "hub.db"
        async with AsyncExitStack() as stack:
            url, broker_text = await stack.enter_async_context(demo_broker(config.broker, workdir))
            return await _run(config, scenario, url=url, broker_text=broker_text, db=db, workdir=workdir,
                              show=show, stop=stop, say=say)
    raise AssertionError("unreachable")  # pragma: no cover


async def _run(
    config: DemoConfig,
    scenario: Scenario,
    *,
    url: str,
    broker_text: str,
    db: Path,
    workdir: Path,
    show: Callable[[DemoFrame], Awaitable[None] | None],
    stop: asyncio.Event,
    say: Callable[[str], None],
) -> dict[str, Any]:
    clock = SimClock(scenario.feed_from, speed=config.speed)
    end = scenario.window[1]
    if config.duration_s:
        end = min(end, scenario.feed_from + config.duration_s * config.speed)
    sims = {s.customer_id: CustomerSimulation(s) for s in scenario.specs}
    labels = {cid: sim.labels(*scenario.window) for cid, sim in sims.items()}
    hub_extra = {"http": {"listen": config.http}} if config.http else {}
    sim_stack = SimStack(scenario.specs, clock=clock, local_broker=url, hub_broker=url, workdir=workdir, db=db,
                         hub_client_id="genius-demo-hub", hub_settings=hub_extra,
                         stagger_s=0.2 if "amqtt" in broker_text else 0.0)
    feeder = Feeder(sims.values(), sim_stack.spaces, broker=url, clock=clock, start=scenario.window[0],
                    end=scenario.window[1], feed_from=scenario.feed_from, until=end, client_id="genius-demo-devices")
    watcher = AnticipationWatcher(url, sim_stack.customer_ids)
    frame: DemoFrame | None = None
    async with asyncio.TaskGroup() as tg:
        stack_task = tg.create_task(sim_stack.run(), name="stack")
        side = [tg.create_task(watcher.run(), name="anticipations"), tg.create_task(feeder.run(), name="devices")]
        try:
            await sim_stack.wait_ready(timeout=60)
            async with asyncio.timeout(60):
                await feeder.announced.wait()
            await sim_stack.wait_discovered(feeder.retained, timeout=60)
            dashboard = _dashboard(sim_stack, config.http)
            say(f"{len(sim_stack.runners)} edges of {len(scenario.specs)} customers connected to the hub via "
                f"{broker_text}; hub database {db}")
            if dashboard:
                say(f"hub dashboard: {dashboard}")
            clock.begin()
            feeder.go()
            deadline = None if not config.duration_s else time.monotonic() + config.duration_s
            async with Store(db, readonly=True) as store:
                while True:
                    frame = await _frame(sim_stack, store, watcher, labels, scenario, clock,
                                         broker=broker_text, dashboard=dashboard)
                    shown = show(frame)
                    if shown is not None:
                        await shown
                    if stop.is_set() or feeder.done.is_set() or (deadline is not None and time.monotonic() >= deadline):
                        break
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(config.refresh_s):
                            await stop.wait()
        finally:
            for task in side:
                task.cancel()
            sim_stack.stop()
        await stack_task
    assert frame is not None
    return frame.as_dict()


async def _frame(
    stack: SimStack,
    store: Store,
    watcher: AnticipationWatcher,
    labels: dict[str, list[Label]],
    scenario: Scenario,
    clock: SimClock,
    *,
    broker: str,
    dashboard: str | None,
) -> DemoFrame:
    now = clock.now()
    records = await store.edges()
    views = []
    for cid in stack.customer_ids:
        edges = [e for e in records if e.customer_id == cid]
        roles = await edge_roles(store, cid)
        snap = stack.hub.snapshot(cid)
        market, why = infer_market(snap, roles, now=now)
        antic = watcher.latest.get(cid)
        recent = sorted((e for e in snap["latest"] if e["capability"] in _ACTIVITY), key=lambda e: -e["ts"])[:5]
        views.append(CustomerView(
            customer_id=cid,
            traveller=cid == scenario.traveller,
            market=market,
            market_why=why,
            home=snap["home"],
            home_basis=snap["home_basis"],
            occupied=list(snap["occupied_rooms"]),
            edges=[EdgeView(e.edge_id, roles.get(e.edge_id), e.online, len(e.inventory), e.events) for e in edges],
            rooms=sorted(((r["edge_id"], r["room"], bool(r["occupied"]), r["last_activity"]) for r in snap["rooms"]
                          if r["last_activity"]), key=lambda r: -(r[3] or 0.0))[:6],
            recent=[(e["ts"], e["edge_id"], e["device"], e["capability"], e["value"]) for e in recent],
            anticipation=antic,
            anticipation_problem=watcher.problems.get(cid),
            truth=_truth(labels[cid], now),
        ))
    return DemoFrame(sim_now=now, speed=clock.speed, wall_s=clock.wall_elapsed(), broker=broker,
                     dashboard=dashboard, customers=views)
