"""Fleet load with fault injection: N simulated customers through real edges into a real hub.

    report = await run_fleet(FleetConfig(customers=5, speed=600, duration_s=20,
                                         faults=FaultPlan.parse("all")))
    report.ok, report.sent, report.stored, report.gaps

What runs, all on loopback and in one process (``SimStack``):

* two Mosquittos of our own: the **local** broker every edge reads its devices from (one
  broker for the whole fleet, each edge under its own topic root, see ``fleet_topics``;
  no queue limit, so it holds what an edge misses while it is down) and the **hub**
  broker (persistence on, restartable), unless ``hub_broker`` names one;
* the hub (SQLite in the work directory) and one edge agent per place of every customer
  (home, hotel room, holiday home, gym), on one ``SimClock`` running ``speed`` times the wall;
* the ``Feeder`` publishing every device message of ``[start, start + duration_s × speed)``
  when the clock reaches it, and the ``FaultInjector`` / ``HubReplayer`` / ``LinkProxy``
  playing the ``FaultPlan``.

It is bounded: the feed stops at the end of the window, faults heal, the run waits at most
``drain_timeout_s`` for every edge to be acknowledged, stops the edges then the hub, and
reads the ``FleetReport`` from the hub's own store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .brokers import Mosquitto
from .customer import CustomerSimulation
from .fleet_clock import SimClock
from .fleet_faults import FaultInjector, FaultPlan, HubReplayer, LinkProxy
from .fleet_feed import Feeder, LocalFaults
from .fleet_report import FleetReport, build_report
from .fleet_stack import SimStack
from .population import Population

__all__ = ["FLEET_START", "FleetConfig", "run_fleet"]

log = logging.getLogger(__name__)

# A Monday, 06:00 UTC: households are waking up, so a short run already sees a lot.
FLEET_START = datetime(2024, 1, 8, 6, tzinfo=timezone.utc).timestamp()


@dataclass(frozen=True, slots=True)
class FleetConfig:
    customers: int = 5
    speed: float = 600.0  # simulated seconds per wall second
    duration_s: float = 20.0  # wall seconds of device traffic (then drain)
    seed: int = 0
    start: float = FLEET_START  # simulated UTC epoch seconds
    hub_broker: str | None = None  # URL of an existing hub broker; None starts our own Mosquitto
    faults: FaultPlan = field(default_factory=FaultPlan)
    workdir: Path | None = None  # kept after the run when given; a temporary directory otherwise
    drain_timeout_s: float = 60.0
    ready_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if self.customers < 1 or not self.speed > 0 or not self.duration_s > 0:
            raise ValueError("customers, speed and duration must be positive")


@contextlib.asynccontextmanager
async def _broker(workdir: Path, **kwargs: object) -> AsyncIterator[Mosquitto]:
    broker = Mosquitto(workdir, **kwargs)  # type: ignore[arg-type]
    await asyncio.to_thread(broker.start)
    try:
        yield broker
    finally:
        await asyncio.to_thread(broker.stop)


async def run_fleet(config: FleetConfig, *, progress: Callable[[str], None] | None = None) -> FleetReport:
    """Run the fleet once and report; never leaves a broker, task or file handle behind."""
    say = progress or (lambda _m: None)
    with contextlib.ExitStack() as files:
        workdir = config.workdir or Path(files.enter_context(tempfile.TemporaryDirectory(prefix="genius-fleet-")))
        workdir.mkdir(parents=True, exist_ok=True)
        return await _run(config, workdir, say)


async def _run(config: FleetConfig, workdir: Path, say: Callable[[str], None]) -> FleetReport:
    plan = config.faults
    rng = random.Random(config.seed)
    specs = Population.generate(config.customers, config.seed)
    edges = [p.edge_id for s in specs for p in s.places]
    skews: dict[str, float] = {}
    if plan.skew_max_s:
        for edge in rng.sample(edges, max(1, len(edges) // 3)):
            skews[edge] = rng.choice((-1, 1)) * rng.uniform(0.1, 1.0) * plan.skew_max_s
    clock = SimClock(config.start, speed=config.speed)
    end = config.start + config.duration_s * config.speed
    db = workdir / "hub.db"
    started = time.monotonic()
    async with AsyncExitStack() as stack:
        local = await stack.enter_async_context(_broker(workdir / "local-broker", max_queued_messages=0,
                                                        persistence=False))
        hub_broker: Mosquitto | None = None
        hub_url = config.hub_broker
        if hub_url is None:
            hub_broker = await stack.enter_async_context(_broker(workdir / "hub-broker"))
            hub_url = hub_broker.url
        elif plan.broker_restarts:
            log.warning("hub broker %s is not ours: broker restarts are skipped", hub_url)
        links: dict[str, LinkProxy] = {}
        if plan.offline_fraction:
            for edge in edges:
                links[edge] = await stack.enter_async_context(LinkProxy(hub_url, name=edge))
        sim_stack = SimStack(specs, clock=clock, local_broker=local.url, hub_broker=hub_url, workdir=workdir, db=db,
                             links={e: p.url for e, p in links.items()}, skews=skews, hub_client_id="genius-fleet-hub")
        replayer = None
        if plan.duplicate_p or plan.reorder_p or plan.malformed_rate:
            replayer = HubReplayer(hub_url, duplicate_p=plan.duplicate_p, reorder_p=plan.reorder_p,
                                   malformed_rate=plan.malformed_rate, seed=config.seed)
        feeder = Feeder((CustomerSimulation(s) for s in specs), sim_stack.spaces, broker=local.url, clock=clock,
                        start=config.start, end=end, seed=config.seed,
                        faults=LocalFaults(plan.duplicate_p, plan.reorder_p, plan.malformed_rate))
        injector = FaultInjector(plan, duration_s=config.duration_s, runners=sim_stack.runners, links=links,
                                 hub_broker=hub_broker, seed=config.seed)
        say(f"{config.customers} customers, {len(edges)} edges; work directory {workdir}")
        async with asyncio.TaskGroup() as tg:
            stack_task = tg.create_task(sim_stack.run(), name="stack")
            replay_task = tg.create_task(replayer.run(), name="replayer") if replayer is not None else None
            await sim_stack.wait_ready(timeout=config.ready_timeout_s)
            if replayer is not None:
                async with asyncio.timeout(config.ready_timeout_s):
                    await replayer.connected.wait()
            async with asyncio.TaskGroup() as run:
                run.create_task(feeder.run(), name="feeder")
                async with asyncio.timeout(config.ready_timeout_s):
                    await feeder.announced.wait()
                await sim_stack.wait_discovered(feeder.retained, timeout=config.ready_timeout_s)
                say(f"all edges connected and discovered after {time.monotonic() - started:.1f} s; feeding "
                    f"{config.duration_s:g} s at {config.speed:g}x")
                clock.begin()
                fed_at = time.monotonic()
                feeder.go()
                run.create_task(injector.run(), name="faults")
            injector.heal()
            if replayer is not None:
                await replayer.flush()
            say(f"feed done after {time.monotonic() - fed_at:.1f} s; draining (at most {config.drain_timeout_s:g} s)")
            drained = await sim_stack.wait_settled(timeout=config.drain_timeout_s)
            wall_s = time.monotonic() - fed_at
            if replay_task is not None:
                replay_task.cancel()
            sim_stack.stop()
            await stack_task
        hub_malformed = replayer.malformed if replayer is not None else 0
        wire = {"local copies": feeder.ledger.duplicated, "local swaps": feeder.ledger.reordered}
        if replayer is not None:
            wire |= {"batch copies": replayer.counters.duplicated, "late batch copies": replayer.counters.delayed,
                     "late copies after newer batches": replayer.counters.overtaken}
        wire = {k: v for k, v in wire.items() if v}
    return await build_report(
        db=db,
        outboxes={e: workdir / "edges" / f"{e}.db" for e in edges},
        ledger=feeder.ledger,
        crashes={e: r.crashes for e, r in sim_stack.runners.items()},
        skews=skews,
        hub_malformed=hub_malformed,
        broker_kills=injector.broker_kills,
        wire=wire,
        faults=plan.as_dict(),
        fault_log=[asdict(e) for e in injector.log],
        speed=config.speed,
        seed=config.seed,
        wall_s=wall_s,
        drained=drained,
    )
