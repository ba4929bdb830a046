"""The CLI side of the operator API: token create, hub run --http (graceful SIGTERM), status alarms, tail."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from devices.topics import events_topic, status_topic
from genius.cli import main
from hub.http.tokens import verify_token
from hub.store import Store
from simulations.brokers import Mosquitto, free_port

from . import fake_edge as fe
from .helpers import feed, open_pipeline

REPO = Path(__file__).resolve().parents[2]
GENIUS = [str(Path(sys.executable).with_name("genius"))]  # the console script of this venv


def _make_db(db: Path, *, now: float) -> None:
    """A hub database as of ``now``: one edge that went offline with a gap, one dead letter."""

    async def build() -> None:
        async with Store(db) as store:
            pipeline = await open_pipeline(store, now=now)
            await feed(store, pipeline,
                       (status_topic("acme", "home1"), json.dumps({"state": "offline", "ts": now}).encode()),
                       (events_topic("acme", "home1"), fe.seq_batch("acme", "home1", 1, 10)),
                       (events_topic("acme", "home1"), fe.seq_batch("acme", "home1", 20, 5)),
                       (events_topic("acme", "home1"), b"{broken"))

    asyncio.run(build())


def test_token_create_prints_the_token_once_and_stores_only_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "hub.db"
    assert main(["hub", "token", "create", "--role", "viewer", "--name", "grafana", "--db", str(db)]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("gt_")
    with sqlite3.connect(db) as conn:
        dump = "\n".join(conn.iterdump())
    assert token not in dump and token.split("_", 2)[2] not in dump

    async def check() -> None:
        async with Store(db, readonly=True) as store:
            who = await verify_token(store, token)
            assert who is not None and (who.role, who.name) == ("viewer", "grafana")
            assert await verify_token(store, token + "x") is None

    asyncio.run(check())
    assert main(["hub", "token", "list", "--db", str(db)]) == 0
    assert "viewer" in capsys.readouterr().out


def test_status_reports_alarms_offline_edge_gap_and_dead_letters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "hub.db"
    _make_db(db, now=time.time() - 3600)
    assert main(["hub", "status", "--db", str(db), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sorted((a["kind"], a["subject"]) for a in report["alarms"]) == [("edge_offline", "home1"), ("gap", "home1")]
    gap = next(a for a in report["alarms"] if a["kind"] == "gap")
    assert "9 events missing" in gap["message"]
    assert main(["hub", "status", "--db", str(db)]) == 0
    text = capsys.readouterr().out
    assert "Alarms" in text and "edge_offline" in text


def test_tail_prints_committed_events_and_dead_letters_as_json_lines(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    _make_db(db, now=time.time())
    out = subprocess.run(
        [*GENIUS, "hub", "tail", "--db", str(db), "--json", "--from-start", "--count", "16", "--for", "20",
         "--poll", "0.1"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    items = [json.loads(line) for line in out.splitlines()]
    assert [i["seq"] for i in items if i["kind"] == "ingest"] == [*range(1, 11), *range(20, 25)]
    assert [i["reason"] for i in items if i["kind"] == "dead_letter"] == ["json"]
    first = items[0]
    assert set(first) == {"kind", "ts", "customer_id", "edge_id", "seq", "device", "capability", "value", "room"}


def test_hub_run_http_serves_and_sigterm_stops_it_gracefully_with_a_stream_open(
    mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path, prefix: str
) -> None:
    broker = mosquitto_factory()
    db = tmp_path / "hub.db"
    assert main(["hub", "token", "create", "--role", "operator", "--db", str(db), "--json"]) == 0
    port = free_port()
    proc = subprocess.Popen(
        [*GENIUS, "hub", "run", "--broker", broker.url, "--db", str(db), "--client-id", f"hub-{prefix}",
         "--http", f"127.0.0.1:{port}"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        asyncio.run(_serve_then_stop(proc, port, db))
        code = proc.wait(timeout=15)
        assert code == 0, proc.stderr.read().decode() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()


async def _serve_then_stop(proc: subprocess.Popen[bytes], port: int, db: Path) -> None:
    with sqlite3.connect(db) as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM api_tokens").fetchone()
    assert count == 1
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        async with asyncio.timeout(20):
            while True:
                try:
                    if (await http.get("/healthz")).json() == {"status": "ok"}:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        assert (await http.get("/api/edges")).status_code == 401
        # A live stream is open (a bad token is refused at once, so open one with a real token).
        from hub.http.tokens import create_token

        async with Store(db) as store:
            token, _ = await create_token(store, role="viewer")
        async with asyncio.timeout(15), http.stream("GET", "/api/stream", params={"token": token}) as r:
            lines = r.aiter_lines()
            assert (await anext(lines)).startswith("retry:")
            os.kill(proc.pid, signal.SIGTERM)
            started = time.monotonic()
            async for _ in lines:  # the stream must end by itself when the hub stops
                pass
            assert time.monotonic() - started < 10


def test_hub_run_on_a_busy_http_port_exits_2_with_a_clear_message(
    mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path, prefix: str
) -> None:
    broker = mosquitto_factory()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [*GENIUS, "hub", "run", "--broker", broker.url, "--db", str(tmp_path / "hub.db"),
             "--client-id", f"hub-{prefix}", "--http", f"127.0.0.1:{port}"],
            cwd=REPO, capture_output=True, text=True, timeout=60,
        )
    assert done.returncode == 2, done.stderr[-2000:]
    # The last word is the error itself, not a TaskGroup traceback.
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"genius: error: hub http cannot listen on 127.0.0.1:{port}"), done.stderr
    assert "unhandled errors in a TaskGroup" not in done.stderr
