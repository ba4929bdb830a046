"""The edge as a separate process: kill -9 mid-stream loses no committed event; SIGTERM is graceful."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

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
