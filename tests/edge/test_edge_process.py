"""The edge as a separate process: kill -9 mid-stream loses no committed event; SIGTERM is graceful."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiomqtt

from edge_testkit import FakeHub, background, devices, hub_broker  # noqa: F401 (fixture)
from simulations.brokers import Mosquitto

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def _config(path: Path, *, customer: str, broker: Mosquitto, hub: Mosquitto, outbox: Path) -> Path:
    path.write_text(
        f"""
customer = "{customer}"
edge = "e1"
local_broker = "{broker.url}"
hub_broker = "{hub.url}"
[outbox]
path = "{outbox}"
[uplink]
resend_after_s = 1.0
status_interval_s = 0.5
backoff_initial_s = 0.1
backoff_max_s = 1.0
[local]
backoff_initial_s = 0.1
backoff_max_s = 1.0
"""
    )
    return path


@asynccontextmanager
async def _process(args: list[str], log: Path) -> AsyncIterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)])}
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, *args], cwd=REPO, env=env, stdout=out, stderr=out)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


async def _wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> int:
    async with asyncio.timeout(timeout):
        while proc.poll() is None:
            await asyncio.sleep(0.05)
    return proc.returncode


def _next_seq(outbox: Path) -> int:
    with sqlite3.connect(outbox) as db:
        return int(db.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()[0])


async def test_kill_9_mid_stream_then_restart_delivers_every_committed_event(
    mosquitto: Mosquitto, hub_broker: Mosquitto, prefix: str, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox.db"
    config = _config(tmp_path / "edge.toml", customer=prefix, broker=mosquitto, hub=hub_broker, outbox=outbox)
    args = [str(HERE / "edge_process.py"), str(config), prefix]
    hub = FakeHub(hub_broker.host, hub_broker.port, prefix, "e1")
    log = tmp_path / "edge.log"
    async with background(hub.run), devices(mosquitto.host, mosquitto.port, prefix) as dev:
        async with _process(args, log) as first:
            await hub.wait_for(lambda: any(s["state"] == "online" for s in hub.statuses), timeout=20)
            for i in range(600):
                await dev.publish(f"d{i % 5}", {"p": i, "t": 20.0})
                if i % 20 == 0:
                    await asyncio.sleep(0.01)
            await hub.wait_for(lambda: len(hub.stored) > 100, timeout=20)
            first.send_signal(signal.SIGKILL)
            assert await _wait_exit(first, 10) == -signal.SIGKILL
        killed_at = _next_seq(outbox) - 1
        assert killed_at > 0
        for i in range(600, 800):  # the local broker queues these for the edge's persistent session
            await dev.publish(f"d{i % 5}", {"p": i, "t": 21.0})
        hub.statuses.clear()
        async with _process(args, log) as second:
            await hub.wait_for(lambda: any(s["state"] == "online" for s in hub.statuses), timeout=20)
            for i in range(800, 1000):
                await dev.publish(f"d{i % 5}", {"p": i, "t": 22.0})
            await hub.wait_for(
                lambda: hub.stored_through == max(hub.seqs) and hub.statuses[-1]["backlog"] == 0
                and hub.statuses[-1]["oldest_seq"] == hub.stored_through + 1,
                timeout=30, what="backlog drained",
            )
            second.send_signal(signal.SIGTERM)
            assert await _wait_exit(second, 15) == 0
    n = _next_seq(outbox) - 1
    assert hub.errors == []
    assert hub.seqs == set(range(1, n + 1)), "every committed seq arrived, none missing"
    assert n >= killed_at + 2 * 400  # what the restarted edge received was queued too
    assert hub.statuses[-1]["state"] == "offline"


def _power_values(outbox: Path) -> Counter[float]:
    if not outbox.exists():
        return Counter()
    db = sqlite3.connect(f"file:{outbox}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT e.value FROM events e JOIN names n ON n.id = e.capability WHERE n.name = 'power'"
        ).fetchall()
    except sqlite3.OperationalError:  # not created yet
        rows = []
    finally:
        db.close()
    return Counter(float(v) for (v,) in rows)


async def test_kill_9_at_random_moments_stores_every_device_message_exactly_once(
    mosquitto_factory: Callable[..., Mosquitto], hub_broker: Mosquitto, prefix: str, tmp_path: Path
) -> None:
    """kill -9 three times while devices publish: nothing the edge received is lost (it was not
    acknowledged before its commit) and nothing is stored twice (a redelivery of what was
    committed carries DUP and a known key), while a payload sent twice is stored twice."""
    # No queue limit: Mosquitto's default (1000) drops what a session misses past it, and the
    # devices publish faster than that while the edge restarts.
    mosquitto = mosquitto_factory(max_queued_messages=0)
    outbox = tmp_path / "outbox.db"
    config = _config(tmp_path / "edge.toml", customer=prefix, broker=mosquitto, hub=hub_broker, outbox=outbox)
    args = [str(HERE / "edge_process.py"), str(config), prefix]
    log = tmp_path / "edge.log"
    expected: Counter[float] = Counter()
    rng = random.Random(5)
    probes = Counter({-1.0: 10**9})  # subtracting drops the probes, however many were stored

    async def publish() -> None:
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as client:
            for i in range(3000):
                for _ in range(2 if i % 30 == 0 else 1):
                    await client.publish(f"{prefix}/d{i % 5}/state", json.dumps({"p": i}).encode(), qos=1)
                    expected[float(i)] += 1
                if i % 10 == 0:
                    await asyncio.sleep(0.005)

    async with asyncio.timeout(90), asyncio.TaskGroup() as tg:
        async with _process(args, log) as first:  # subscribed (a probe is stored) before the devices start
            async with asyncio.timeout(20), aiomqtt.Client(mosquitto.host, mosquitto.port) as probe:
                while not _power_values(outbox) and first.poll() is None:
                    await probe.publish(f"{prefix}/probe/state", b'{"p": -1}', qos=1)
                    await asyncio.sleep(0.2)
            feed = tg.create_task(publish())
            await asyncio.sleep(rng.uniform(0.2, 0.6))
            first.send_signal(signal.SIGKILL)
            assert await _wait_exit(first, 10) == -signal.SIGKILL
        for _ in range(2):
            async with _process(args, log) as again:
                seen = sum(_power_values(outbox).values())
                async with asyncio.timeout(20):  # up and committing again
                    while sum(_power_values(outbox).values()) == seen and not feed.done():
                        await asyncio.sleep(0.02)
                await asyncio.sleep(rng.uniform(0.05, 0.5))
                again.send_signal(signal.SIGKILL)
                assert await _wait_exit(again, 10) == -signal.SIGKILL
        async with _process(args, log) as last:
            await feed
            for _ in range(300):  # bounded: a lost message would otherwise wait forever
                if _power_values(outbox) - probes == expected:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)  # anything stored twice would arrive now
            last.send_signal(signal.SIGTERM)
            assert await _wait_exit(last, 15) == 0
    stored = _power_values(outbox)
    del stored[-1.0]
    assert stored == expected, (
        f"lost {sum((expected - stored).values())}, stored twice {sum((stored - expected).values())}"
    )


async def test_cli_edge_run_publishes_online_then_offline_on_sigterm_and_status_reads_the_outbox(
    mosquitto: Mosquitto, hub_broker: Mosquitto, prefix: str, tmp_path: Path
) -> None:
    outbox = tmp_path / "cli.db"
    args = [
        "-m", "genius", "edge", "run", "--customer", prefix, "--edge", "e1", "--local-broker", mosquitto.url,
        "--hub-broker", hub_broker.url, "--outbox", str(outbox), "--adapters", "", "--role", "office",
    ]
    hub = FakeHub(hub_broker.host, hub_broker.port, prefix, "e1")
    async with background(hub.run):
        async with _process(args, tmp_path / "cli.log") as proc:
            await hub.wait_for(lambda: any(s["state"] == "online" for s in hub.statuses), timeout=20)
            proc.send_signal(signal.SIGTERM)
            assert await _wait_exit(proc, 15) == 0
        await hub.wait_for(lambda: hub.statuses[-1]["state"] == "offline")
    assert hub.statuses[0]["role"] == "office"
    report = subprocess.run(
        [sys.executable, "-m", "genius", "edge", "status", "--outbox", str(outbox), "--json"],
        cwd=REPO, capture_output=True, check=True, timeout=60,
    )
    doc = json.loads(report.stdout)
    assert doc["events"] == 0 and doc["next_seq"] == 1 and doc["overflow_dropped"] == 0
