"""The hub as a separate process: kill -9 mid-ingest, SIGTERM, and the status command."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devices.topics import events_topic
from simulations.brokers import Mosquitto

from . import fake_edge as fe

REPO = Path(__file__).resolve().parents[2]


class HubProcess:
    """``python -m hub`` as a child process (killed at teardown if still running)."""

    def __init__(self, broker: Mosquitto, db: Path, client_id: str) -> None:
        self.args = [sys.executable, "-m", "hub", "--broker", broker.url, "--db", str(db), "--client-id", client_id]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> HubProcess:
        self.proc = subprocess.Popen(self.args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return self

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._close()

    def terminate(self, timeout: float = 20.0) -> tuple[int, str]:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
        self._close()
        return code, err

    def _close(self) -> None:
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._close()


@pytest.fixture
def hub_process() -> Iterator[Callable[[Mosquitto, Path, str], HubProcess]]:
    started: list[HubProcess] = []

    def make(broker: Mosquitto, db: Path, client_id: str) -> HubProcess:
        hp = HubProcess(broker, db, client_id)
        started.append(hp)
        return hp

    yield make
    for hp in started:
        hp.cleanup()


def _db_facts(db: Path) -> tuple[int, int, int, str]:
    with sqlite3.connect(db) as conn:
        n, distinct, total = conn.execute("SELECT COUNT(*), COUNT(DISTINCT seq), COALESCE(SUM(seq), 0) FROM events").fetchone()
        (ranges,) = conn.execute("SELECT ranges FROM edge_progress").fetchone()
    return int(n), int(distinct), int(total), ranges


async def test_kill_9_mid_ingest_then_restart_stores_every_batch_exactly_once(
    mosquitto_factory: Callable[..., Mosquitto],
    hub_process: Callable[[Mosquitto, Path, str], HubProcess],
    tmp_path: Path,
) -> None:
    broker = mosquitto_factory()
    db = tmp_path / "hub.db"
    c, e, size, total = "crash-c", "crash-e", 100, 40_000
    payloads = fe.batches(c, e, total, size)
    hub = hub_process(broker, db, "hub-crash").start()
    # Until the hub has subscribed, publishes are not kept for it: resend until acked.
    await fe.deliver(broker.host, broker.port, c, e, {1: payloads[1]}, total=size, quiet_s=0.5, timeout=30)

    async with fe.client(broker.host, broker.port) as pub:
        await fe.publish(pub, c, e, [payloads[f] for f in sorted(payloads) if f > 1])
        killed_at = (await fe.wait_ack(pub, c, e, through=5_000, timeout=30))["stored_through"]
    hub.kill9()
    assert killed_at < total  # it really died mid-ingest

    hub.start()
    async with fe.client(broker.host, broker.port) as watcher:
        # The persistent session alone brings the rest: nothing has been republished yet.
        resumed = await fe.wait_ack(watcher, c, e, through=killed_at + size, timeout=30)
    assert resumed["stored_through"] > killed_at
    # And the edge republishes whatever its ack does not cover, until all is covered.
    view = await fe.deliver(broker.host, broker.port, c, e, payloads, total=total, quiet_s=1.0, timeout=120)
    assert view.stored_through == total

    code, err = hub.terminate()
    assert code == 0, err
    n, distinct, seq_sum, ranges = _db_facts(db)
    assert (n, distinct, seq_sum) == (total, total, total * (total + 1) // 2)
    assert json.loads(ranges) == [[1, total]]


async def test_sigterm_commits_and_exits_cleanly_and_status_reports_it(
    mosquitto_factory: Callable[..., Mosquitto],
    hub_process: Callable[[Mosquitto, Path, str], HubProcess],
    tmp_path: Path,
) -> None:
    broker = mosquitto_factory()
    db = tmp_path / "hub.db"
    c, e = "term-c", "term-e"
    hub = hub_process(broker, db, "hub-term").start()
    await fe.deliver(broker.host, broker.port, c, e, fe.batches(c, e, 1000, 100), total=1000, quiet_s=0.5, timeout=30)
    async with fe.client(broker.host, broker.port) as pub:
        await fe.publish(pub, c, e, [fe.seq_batch(c, e, 1101, 50)])  # leaves a gap 1001..1100
        await fe.publish_status(pub, c, e, {"state": "online", "backlog": 3, "ts": 1.0})
        await pub.publish(events_topic(c, e), b"garbage", qos=1)
        await fe.wait_ack(pub, c, e, through=1000)
        await asyncio.sleep(0.5)  # let the last group commit
    t0 = time.monotonic()
    code, err = hub.terminate()
    assert code == 0, err
    assert time.monotonic() - t0 < 10  # within the flush timeout, not killed

    out = subprocess.run(
        [sys.executable, "-m", "genius", "hub", "status", "--db", str(db), "--json"],
        cwd=REPO, capture_output=True, timeout=60, check=True,
    )
    report = json.loads(out.stdout)
    assert {"edges", "customers", "dead_letters"} <= set(report)
    [edge] = report["edges"]
    assert {"edge_id", "customer_id", "online", "events", "high_seq", "gaps", "backlog"} <= set(edge)
    assert (edge["edge_id"], edge["customer_id"], edge["events"], edge["high_seq"]) == (e, c, 1050, 1150)
    assert (edge["gaps"], edge["online"], edge["backlog"], edge["contiguous"]) == ([[1001, 1100]], True, 3, 1000)
    assert report["customers"] == [{"customer_id": c, "edges": 1, "events": 1050,
                                    "first_seen": report["customers"][0]["first_seen"]}]
    assert report["dead_letters"] == {"json": 1}

    human = subprocess.run(
        [sys.executable, "-m", "genius", "hub", "status", "--db", str(db)],
        cwd=REPO, capture_output=True, timeout=60, check=True, env={**os.environ, "COLUMNS": "160"},
    )
    assert e.encode() in human.stdout and b"Dead letters" in human.stdout


def test_status_of_a_missing_database_is_a_clear_error(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "genius", "hub", "status", "--db", str(tmp_path / "nope.db"), "--json"],
        cwd=REPO, capture_output=True, timeout=60,
    )
    assert out.returncode == 2
    assert b"no hub database" in out.stderr
