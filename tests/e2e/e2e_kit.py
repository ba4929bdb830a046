"""End-to-end harness: simulated homes → local Mosquitto → edge process → hub Mosquitto → hub process.

Nothing here is a fake peer. Each home has its own local Mosquitto (device topics such as
``zigbee2mqtt/…`` are the same in every home), the hub has its own; the edge runs as a child
process (``genius --strict edge run`` or ``e2e_edge_main.py``, the same code with simulated
time), the hub too (``genius hub run``), so ``kill -9`` means what it says. The tests observe
only what an operator could: the hub's database (``hub.Store``, ``genius hub status --json``)
and the edge's outbox file (``genius edge status``'s report).

Test modules import the fixtures from here (a ``conftest.py`` in this folder would shadow
``tests/conftest.py`` as the module ``conftest``)::

    from e2e_kit import e2e  # noqa: F401 (fixture)
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from devices.errors import StorageError
from e2e_simtime import write_stamps
from genius.cli.edge import outbox_report
from hub.store import EdgeRecord, Store
from simulations import CustomerSimulation, Population, WireMessage, to_epoch
from simulations.brokers import Mosquitto

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
START = to_epoch(date(2024, 3, 4))  # a Monday
DAY = 86_400.0

# (device, capability, ts, value): what the tests compare between simulator and hub.
EventKey = tuple[str, str, float, bool | float | str]

# Timings shrunk so resends, status refreshes and reconnects happen within a test's seconds.
FAST_UPLINK: dict[str, float] = {
    "resend_after_s": 1.0,
    "resend_max_s": 4.0,
    "status_interval_s": 1.0,
    "inventory_debounce_s": 0.1,
    "backoff_initial_s": 0.1,
    "backoff_max_s": 1.0,
    "shutdown_timeout_s": 3.0,
}
FAST_LOCAL: dict[str, float] = {"backoff_initial_s": 0.1, "backoff_max_s": 1.0}
# The hub's reconnect backoff may grow to 30 s by default; a test's broker outage is shorter.
HUB_ENV = {"GENIUS_HUB_BROKER__RECONNECT_MAX_S": "1.0"}


def event_key(device: str, capability: str, ts: float, value: bool | float | str) -> EventKey:
    # Unit conversions (Wh → kWh …) may differ in the last bits: compare numbers to 1e-6.
    return (device, capability, float(ts), round(value, 6) if isinstance(value, float) else value)


# ---------------------------------------------------------------------------- simulated homes


@dataclass(frozen=True)
class Feed:
    """One simulated home: its retained discovery, its message stream, the events it means."""

    customer_id: str
    edge_id: str
    discovery: tuple[WireMessage, ...]
    stream: tuple[WireMessage, ...]
    expected: Counter[EventKey] = field(compare=False)
    # Home Assistant entities: their state topics are subscribed only once discovery is read.
    discovered: frozenset[str] = frozenset()

    @property
    def events(self) -> int:
        return sum(self.expected.values())

    @property
    def protocols(self) -> set[str]:
        """Which device families the stream speaks, told by their topics."""
        found = set()
        for m in self.stream:
            if m.topic.startswith("zigbee2mqtt/"):
                found.add("zigbee2mqtt")
            elif m.topic.startswith("tele/"):
                found.add("tasmota")
            elif "/status/switch:" in m.topic:
                found.add("shelly")
            elif m.topic.endswith("/sensor/illuminance/state"):
                found.add("homeassistant")
        return found

    def stamps(self) -> Iterator[tuple[str, bytes, float]]:
        return ((m.topic, m.payload, m.ts) for m in self.stream)

    def slices(self, n: int) -> list[tuple[WireMessage, ...]]:
        """The stream cut into ``n`` consecutive parts."""
        size = -(-len(self.stream) // n)
        return [self.stream[i : i + size] for i in range(0, len(self.stream), size)]


def home_feed(index: int, *, seed: int = 21, days: float = 1.0, start: float = START) -> Feed:
    """Customer ``index`` of the simulated population: the home edge's messages over ``days``."""
    spec = Population.customer(index, seed)
    home = spec.home.edge_id
    discovery: list[WireMessage] = []
    stream: list[WireMessage] = []
    expected: Counter[EventKey] = Counter()
    discovered: set[str] = set()
    for msg, events in CustomerSimulation(spec).run_with_events(start, start + days * DAY):
        if msg.edge_id != home:
            continue
        (discovery if msg.retain else stream).append(msg)
        expected.update(event_key(e.device, e.capability, e.ts, e.value) for e in events)
        if msg.topic.endswith("/sensor/illuminance/state"):
            discovered.update(e.device for e in events)
    return Feed(spec.customer_id, home, tuple(discovery), tuple(stream), expected, frozenset(discovered))


# ---------------------------------------------------------------------------- devices


@asynccontextmanager
async def device_client(broker: Mosquitto, *, window: int = 100) -> AsyncIterator[aiomqtt.Client]:
    """A device-side client that keeps ``window`` QoS 1 publishes in flight."""
    client = aiomqtt.Client(broker.host, broker.port, max_inflight_messages=window, timeout=30)
    client.pending_calls_threshold = 100_000  # many concurrent publishes are the point here
    async with client:
        yield client


async def publish(
    client: aiomqtt.Client, messages: Iterable[WireMessage | tuple[str, bytes]], *, retain: bool = False,
    window: int = 100,
) -> int:
    """Publish at QoS 1 as fast as the broker takes them (``window`` at once), in order; how many."""
    items = [(m[0], m[1]) if not isinstance(m, WireMessage) else (m.topic, m.payload) for m in messages]
    for i in range(0, len(items), window):
        async with asyncio.TaskGroup() as tg:
            for topic, payload in items[i : i + window]:
                tg.create_task(client.publish(topic, payload, qos=1, retain=retain))
    return len(items)


# ---------------------------------------------------------------------------- processes


class Process:
    """A child process whose output goes to ``log``; killed at teardown if still running."""

    def __init__(self, name: str, args: Sequence[str], *, log: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.args = [sys.executable, *args]
        self.log = log
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)]), **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> Process:
        assert not self.alive, f"{self.name} is already running"
        with self.log.open("ab") as out:
            out.write(f"---- start {self.starts + 1}: {' '.join(self.args)}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(self.args, cwd=REPO, env=self.env, stdout=out, stderr=out)
        self.starts += 1
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def kill9(self) -> None:
        """``kill -9``: no cleanup, no last commit, no offline status (the MQTT will says it)."""
        assert self.proc is not None and self.alive, f"{self.name} is not running"
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    async def terminate(self, *, timeout: float = 20.0) -> int:
        """SIGTERM and wait for the exit code."""
        assert self.proc is not None
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(timeout):
            while self.proc.poll() is None:
                await asyncio.sleep(0.05)
        return self.proc.returncode

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} ({self.log}):\n" + "\n".join(text.splitlines()[-lines:])


def toml_document(values: dict[str, Any]) -> str:
    """A flat TOML document: top-level scalars, then one table per dict value."""
    def scalar(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        return json.dumps(str(v))  # TOML basic strings share JSON's escapes

    head = [f"{k} = {scalar(v)}" for k, v in values.items() if not isinstance(v, dict)]
    tables = [
        f"[{k}]\n" + "\n".join(f"{kk} = {scalar(vv)}" for kk, vv in v.items())
        for k, v in values.items() if isinstance(v, dict)
    ]
    return "\n".join(head) + "\n\n" + "\n\n".join(tables) + "\n"


@dataclass
class EdgeRig:
    """One edge process and what it reads: its local broker, config, outbox, optional stamps."""

    customer_id: str
    edge_id: str
    local: Mosquitto
    config: Path
    outbox: Path
    process: Process

    def report(self) -> dict[str, Any] | None:
        """``genius edge status --json`` of the outbox (None before the edge created it)."""
        if not self.outbox.exists():
            return None
        return outbox_report(self.outbox)

    def committed(self) -> int:
        """The highest seq the outbox has handed out: every event it ever committed."""
        report = self.report()
        return 0 if report is None else int(report["next_seq"]) - 1


@dataclass
class HubRig:
    broker: Mosquitto
    db: Path
    process: Process | None  # None when the test runs the hub in its own event loop

    async def edges(self) -> dict[str, EdgeRecord]:
        """The hub's view of every edge, from its database (empty before it has one)."""
        if not self.db.exists():
            return {}
        try:
            async with Store(self.db, readonly=True) as store:
                return {e.edge_id: e for e in await store.edges()}
        except StorageError:
            return {}  # created but not migrated yet

    async def events(self, customer_id: str) -> Counter[EventKey]:
        """Every stored event of a customer as ``(device, capability, ts, value)``."""
        async with Store(self.db, readonly=True) as store:
            frame = await store.events_for(customer_id)
        return Counter(event_key(d, c, t, v) for t, _, _, d, c, v, _ in frame.rows())

    async def stored_rows(self, edge_id: str) -> tuple[int, int]:
        """``(rows, distinct seqs)`` of one edge in the events table itself."""
        async with Store(self.db, readonly=True) as store:
            async with store.db.execute(
                "SELECT COUNT(*), COUNT(DISTINCT seq) FROM events JOIN edges USING (edge_key) WHERE edge_id = ?",
                (edge_id,),
            ) as cur:
                row = await cur.fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    async def status_json(self) -> dict[str, Any]:
        """``genius hub status --db … --json``, run as the operator would."""
        out = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "genius", "hub", "status", "--db", str(self.db), "--json"],
            cwd=REPO, capture_output=True, timeout=60, check=True,
        )
        return json.loads(out.stdout)


class E2E:
    """Brokers and processes of one test; everything started here is stopped at teardown."""

    def __init__(self, factory: Callable[..., Mosquitto], tmp_path: Path) -> None:
        self._factory = factory
        self.tmp = tmp_path
        self.processes: list[Process] = []
        self.hub_broker: Mosquitto | None = None
        self.hub: HubRig | None = None
        self.edges: list[EdgeRig] = []

    def broker(self, **kwargs: Any) -> Mosquitto:
        return self._factory(**kwargs)

    def start_hub(self, *, broker: Mosquitto | None = None, client_id: str = "genius-hub-e2e") -> HubRig:
        """``genius hub run`` on ``broker`` (a new one with Mosquitto's defaults if not given)."""
        self.hub_broker = broker or self.hub_broker or self.broker()
        db = self.tmp / "hub.db"
        args = ["-m", "genius", "-v", "hub", "run", "--broker", self.hub_broker.url, "--db", str(db),
                "--client-id", client_id]
        process = Process("hub", args, log=self.tmp / "hub.log", env=HUB_ENV)
        self.processes.append(process)
        process.start()
        self.hub = HubRig(self.hub_broker, db, process)
        return self.hub

    def adopt_hub(self, broker: Mosquitto, db: Path) -> HubRig:
        """Observe a hub the test runs itself (in its own event loop) on ``broker`` and ``db``."""
        self.hub_broker = broker
        self.hub = HubRig(broker, db, None)
        return self.hub

    def start_edge(
        self,
        customer_id: str,
        edge_id: str,
        *,
        stamps: Iterable[tuple[str, bytes, float]] | None = None,
        uplink: dict[str, Any] | None = None,
        local: Mosquitto | None = None,
    ) -> EdgeRig:
        """An edge process on a local broker of its own (a new one unless given).

        With ``stamps`` it runs ``e2e_edge_main.py`` (readings at simulated time); without,
        the ``genius --strict edge run`` command itself.
        """
        assert self.hub_broker is not None, "start the hub (or its broker) first"
        local = local or self.broker()
        name = f"edge-{edge_id}"
        config = self.tmp / f"{name}.toml"
        outbox = self.tmp / f"{name}.db"
        config.write_text(toml_document({
            "customer": customer_id,
            "edge": edge_id,
            "local_broker": local.url,
            "hub_broker": self.hub_broker.url,
            "outbox": {"path": str(outbox)},
            "uplink": {**FAST_UPLINK, **(uplink or {})},
            "local": FAST_LOCAL,
        }))
        if stamps is not None:
            stamp_file = write_stamps(self.tmp / f"{name}.stamps.json", stamps)
            args = [str(HERE / "e2e_edge_main.py"), "--config", str(config), "--stamps", str(stamp_file)]
        else:
            args = ["-m", "genius", "--strict", "edge", "run", "--config", str(config)]
        process = Process(name, args, log=self.tmp / f"{name}.log")
        self.processes.append(process)
        process.start()
        rig = EdgeRig(customer_id, edge_id, local, config, outbox, process)
        self.edges.append(rig)
        return rig

    def start_feed_edge(self, feed: Feed, **kwargs: Any) -> EdgeRig:
        """The edge of a simulated home, its readings stamped with simulated time."""
        return self.start_edge(feed.customer_id, feed.edge_id, stamps=feed.stamps(), **kwargs)

    # -------------------------------------------------------------------- observing

    def diagnose(self) -> str:
        return "\n".join(p.tail() for p in self.processes)

    async def eventually(
        self, check: Callable[[], Awaitable[bool]], *, timeout: float, what: str, every: float = 0.2
    ) -> None:
        """Poll ``check`` until it holds; on timeout fail with the processes' last log lines."""
        try:
            async with asyncio.timeout(timeout):
                while not await check():
                    await asyncio.sleep(every)
        except TimeoutError:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{self.diagnose()}") from None

    async def devices_known(self, edge: EdgeRig, devices: Iterable[str], *, timeout: float = 30.0) -> None:
        """Wait until the hub holds the edge's inventory listing ``devices`` (discovery is done)."""
        assert self.hub is not None
        hub, wanted = self.hub, set(devices)

        async def check() -> bool:
            record = (await hub.edges()).get(edge.edge_id)
            return record is not None and wanted <= {d["device"] for d in record.inventory}

        await self.eventually(check, timeout=timeout, what=f"inventory of {edge.edge_id} to list {sorted(wanted)}")

    async def delivered(self, edge: EdgeRig, *, events: int | None = None) -> bool:
        """Everything the edge committed is stored at the hub, acknowledged and gone from the outbox."""
        assert self.hub is not None
        report = edge.report()
        if report is None:
            return False
        committed = int(report["next_seq"]) - 1
        record = (await self.hub.edges()).get(edge.edge_id)
        return (
            record is not None
            and report["events"] == 0
            and record.events == record.contiguous == record.high_seq == committed
            and (events is None or committed == events)
        )

    async def all_delivered(self, *, timeout: float, events: dict[str, int] | None = None) -> None:
        async def check() -> bool:
            for edge in self.edges:
                if not await self.delivered(edge, events=(events or {}).get(edge.edge_id)):
                    return False
            return True

        await self.eventually(check, timeout=timeout, what="every committed event stored and acknowledged")

    async def stop_all(self) -> dict[str, int]:
        """SIGTERM every running process (edges first); their exit codes by name."""
        codes = {}
        for p in sorted(self.processes, key=lambda p: p.name == "hub"):
            if p.alive:
                codes[p.name] = await p.terminate()
        return codes

    def cleanup(self) -> None:
        for p in self.processes:
            p.cleanup()


@pytest.fixture
def e2e(mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path) -> Iterator[E2E]:
    rig = E2E(mosquitto_factory, tmp_path)
    try:
        yield rig
    finally:
        rig.cleanup()  # before mosquitto_factory kills the brokers


async def assert_feed_stored(e2e: E2E, feed: Feed, edge: EdgeRig) -> dict[str, Any]:
    """The hub holds exactly the feed's events, each once, with no gap; the status report agrees.

    Returns the edge's entry of ``genius hub status --json``.
    """
    assert e2e.hub is not None
    got = await e2e.hub.events(feed.customer_id)
    missing, extra = feed.expected - got, got - feed.expected
    assert not missing and not extra, (
        f"{feed.edge_id}: {sum(missing.values())} expected events missing (e.g. {list(missing)[:3]}), "
        f"{sum(extra.values())} unexpected (e.g. {list(extra)[:3]})"
    )
    rows, distinct = await e2e.hub.stored_rows(feed.edge_id)
    assert rows == distinct == feed.events, "each (edge, seq) stored once"
    assert edge.committed() == feed.events, "one seq per event: the outbox's counter agrees"
    status = await e2e.hub.status_json()
    [entry] = [x for x in status["edges"] if x["edge_id"] == feed.edge_id]
    assert (entry["events"], entry["high_seq"], entry["contiguous"], entry["gaps"]) == (
        feed.events, feed.events, feed.events, []
    )
    return entry
