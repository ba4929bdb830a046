"""Hub ingest throughput through a real Mosquitto, against a no-logic ceiling (issue 2 §6).

    python bench/hub_ingest.py [--events 2000000] [--edges 100] [--batch 500]

Simulated edges (``--publishers`` processes, one paho client each, ``--edges`` edges in
all) publish ``EventBatch`` JSON at QoS 1 the way an edge does: each edge keeps at most
``--window`` batches (default 4, i.e. 2,000 events; a real edge allows 20,000) beyond its
last ack outstanding and resends what the ack does not cover after ``--resend-after``
seconds without progress (default 30 s, so a loaded machine measures ingest rather than a
resend storm). Batches are generated before the clock starts. Two runs over the same
broker (Mosquitto's defaults unless ``--broker-config``) and the same batches:

* **ceiling**: one process, paho with automatic QoS 1 acks, ``json.loads`` and
  ``executemany`` into the hub's own schema, one commit per drain, then a plain
  ``stored_through`` ack per edge. No validation, dedupe bookkeeping, context or dead letters.
* **hub**: ``python -m hub`` as its own process (the real thing).

Prints events/s of both and their ratio; writes ``bench/results/hub_ingest.json``.
Targets: hub ≥ 100,000 events/s and ≥ 40 % of the ceiling.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from devices.topics import ack_topic, events_topic, status_topic  # noqa: E402
from hub.schema import MIGRATIONS  # noqa: E402
from simulations.brokers import Mosquitto  # noqa: E402

RESULTS = REPO / "bench" / "results" / "hub_ingest.json"
CAPS: tuple[tuple[str, Any], ...] = (
    ("occupancy", True), ("temperature", 21.5), ("contact", True), ("power", 12.5),
    ("action", "single"), ("occupancy", False), ("humidity", 41.0), ("switch", True),
    ("illuminance", 230.0), ("media", "playing"),
)
ROOMS = ("kitchen", "living", "bedroom", "hall", "office", "bath")


def ids(i: int) -> tuple[str, str]:
    return f"bench-c{i:03d}", f"bench-e{i:03d}"


def make_batches(edge_index: int, *, batches: int, size: int) -> list[bytes]:
    """The same bytes every run: one edge's batches, seqs 1..batches*size.

    Like a real home: 23 devices, each with one capability and one room.
    """
    customer, edge = ids(edge_index)
    out = []
    t0 = 1_700_000_000.0 + edge_index
    for b in range(batches):
        events = []
        for k in range(size):
            seq = b * size + k + 1
            d = seq % 23
            cap, value = CAPS[d % len(CAPS)]
            if isinstance(value, float):
                value = value + (seq % 7) * 0.5
            elif isinstance(value, bool):
                value = (seq // 23) % 2 == 0
            events.append({"seq": seq, "ts": t0 + seq * 0.25, "device": f"dev{d}", "capability": cap,
                           "value": value, "room": ROOMS[d % len(ROOMS)]})
        out.append(json.dumps({"schema": "genius.events/1", "customer_id": customer, "edge_id": edge,
                               "sent_at": t0 + b, "events": events}, separators=(",", ":")).encode())
    return out


# -- publishers (simulated edges) -------------------------------------------------------------
def publisher(
    index: int, edge_indexes: list[int], args: dict[str, Any], ready: Any, go: Any, done: Any
) -> None:
    batches = {i: make_batches(i, batches=args["batches_per_edge"], size=args["batch"]) for i in edge_indexes}
    size, window, resend_after = args["batch"], args["window"], args["resend_after"]
    acked = {i: 0 for i in edge_indexes}  # stored_through per edge
    nxt = {i: 0 for i in edge_indexes}  # index of the next batch to send
    progress = {i: time.monotonic() for i in edge_indexes}
    by_topic = {ack_topic(*ids(i)): i for i in edge_indexes}
    wake = threading.Event()
    lock = threading.Lock()

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        i = by_topic.get(msg.topic)
        if i is None or not msg.payload:
            return
        through = json.loads(msg.payload)["stored_through"]
        with lock:
            if through > acked[i]:
                acked[i] = through
                progress[i] = time.monotonic()
        wake.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{index}-{os.getpid()}",
                         protocol=mqtt.MQTTv311, clean_session=True)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.on_message = on_message
    client.connect(args["host"], args["port"], keepalive=60)
    client.loop_start()
    client.subscribe([(t, 1) for t in by_topic])
    ready.set()
    go.wait()
    cpu0 = time.process_time()
    total_batches = args["batches_per_edge"]
    resent = 0
    deadline = time.monotonic() + args["timeout"]
    while time.monotonic() < deadline:
        now = time.monotonic()
        all_done = True
        with lock:
            snapshot = dict(acked)
        for i in edge_indexes:
            covered = snapshot[i] // size  # batches wholly acknowledged
            if covered >= total_batches:
                continue
            all_done = False
            if nxt[i] > covered and now - progress[i] > resend_after:  # go-back-N
                resent += nxt[i] - covered
                nxt[i] = covered
                progress[i] = now
            topic = events_topic(*ids(i))
            while nxt[i] < total_batches and nxt[i] - covered < window:
                client.publish(topic, batches[i][nxt[i]], qos=1)
                nxt[i] += 1
        if all_done:
            break
        wake.wait(0.05)
        wake.clear()
    done.put((index, time.monotonic(), resent, all_done, time.process_time() - cpu0))
    client.loop_stop()
    client.disconnect()


def run_publishers(args: dict[str, Any]) -> tuple[float, int, float]:
    """Start the publishers, let them go together, wait until every edge is acknowledged."""
    ctx = mp.get_context("spawn")
    n = args["publishers"]
    groups = [list(range(args["edges"]))[k::n] for k in range(n)]
    readies = [ctx.Event() for _ in groups]
    go = ctx.Event()
    done = ctx.Queue()
    procs = [ctx.Process(target=publisher, args=(k, g, args, readies[k], go, done)) for k, g in enumerate(groups)]
    for p in procs:
        p.start()
    for r in readies:
        if not r.wait(timeout=600):
            raise RuntimeError("publishers did not get ready")
    t0 = time.monotonic()
    go.set()
    results = [done.get(timeout=args["timeout"] + 60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    if not all(r[3] for r in results):
        raise RuntimeError(f"not every edge was acknowledged in time: {results}")
    return max(r[1] for r in results) - t0, sum(r[2] for r in results), sum(r[4] for r in results)


# -- ceiling: decode + executemany + commit + ack, nothing else --------------------------------
def ceiling(args: dict[str, Any], db: str, ready: Any, stop: Any, out: Any) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    for m in MIGRATIONS:
        conn.executescript(m.sql)
    caps = {name: code for code, name in enumerate(c for c, _ in CAPS)}
    edges: dict[str, int] = {}
    devices: dict[tuple[int, str], int] = {}
    rooms: dict[tuple[int, str], int] = {}
    through: dict[str, int] = {}
    pending: list[bytes] = []
    lock = threading.Condition()

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with lock:
            pending.append(msg.payload)
            lock.notify()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-ceiling", protocol=mqtt.MQTTv311)
    client.on_message = on_message
    client.connect(args["host"], args["port"], keepalive=60)
    client.loop_start()
    client.subscribe("genius/v1/+/+/events", qos=1)
    time.sleep(0.5)
    ready.set()
    stored = 0
    while not stop.is_set():
        with lock:
            if not pending:
                lock.wait(0.05)
            taken, pending[:] = list(pending), []
        if not taken:
            continue
        rows = []
        touched: dict[str, str] = {}
        for payload in taken:
            doc = json.loads(payload)
            edge_id = doc["edge_id"]
            ek = edges.setdefault(edge_id, len(edges) + 1)
            for e in doc["events"]:
                dk = devices.setdefault((ek, e["device"]), len(devices) + 1)
                rk = rooms.setdefault((ek, e["room"]), len(rooms) + 1)
                rows.append((ek, e["seq"], e["ts"], dk, caps[e["capability"]], e["value"], rk))
            last = doc["events"][-1]["seq"]
            if last > through.get(edge_id, 0):
                through[edge_id] = last
            touched[edge_id] = doc["customer_id"]
        conn.execute("BEGIN")
        cur = conn.executemany("INSERT OR IGNORE INTO events VALUES (?,?,?,?,?,?,?)", rows)
        conn.execute("COMMIT")
        stored += cur.rowcount
        for edge_id, customer in touched.items():
            client.publish(ack_topic(customer, edge_id),
                           json.dumps({"stored_through": through[edge_id], "ts": time.time(), "gaps": []}), qos=1)
    client.loop_stop()
    client.disconnect()
    conn.close()
    out.put(stored)


def _broker_pid(broker: Mosquitto) -> int:
    assert broker._proc is not None  # noqa: SLF001 (the harness keeps the process private)
    return broker._proc.pid  # noqa: SLF001


def _cpu(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


def run_ceiling(args: dict[str, Any], broker: Mosquitto, workdir: Path) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    ready, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=ceiling, args=(args, str(workdir / "ceiling.db"), ready, stop, out))
    proc.start()
    if not ready.wait(timeout=60):
        raise RuntimeError("ceiling subscriber did not start")
    cpu0, broker0 = _cpu(proc.pid), _cpu(_broker_pid(broker))
    elapsed, resent, publishers_cpu = run_publishers(args)
    cpu1, broker1 = _cpu(proc.pid), _cpu(_broker_pid(broker))
    stop.set()
    stored = out.get(timeout=60)
    proc.join(timeout=30)
    return {"seconds": elapsed, "events_per_s": args["events"] / elapsed, "stored": stored, "resent_batches": resent,
            "subscriber_cpu_s": cpu1 - cpu0, "broker_cpu_s": broker1 - broker0, "publishers_cpu_s": publishers_cpu}


# -- the hub -------------------------------------------------------------------------------------
# ``--hub-profile``: cProfile on the hub's main thread with that thread's CPU clock, so time
# spent waiting in epoll (or for the GIL) is not charged to whatever happened to wait.
_PROFILED_HUB = """
import cProfile, os, sys, time
from hub.entry import main
prof = cProfile.Profile(time.thread_time)
try:
    prof.runcall(main, sys.argv[1:])
finally:
    prof.dump_stats(os.environ["HUB_PROFILE_OUT"])
"""


class _RssSampler(threading.Thread):
    """Samples a process's RSS every ``interval_s`` (peak and a coarse series for the JSON)."""

    def __init__(self, pid: int, *, interval_s: float = 0.25) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.proc = psutil.Process(pid)
        self.interval_s = interval_s
        self.samples: list[tuple[float, float]] = []  # (seconds since start, MiB)
        self.peak = 0.0
        self._stop_evt = threading.Event()

    def run(self) -> None:
        t0 = time.monotonic()
        while not self._stop_evt.wait(self.interval_s):
            try:
                mib = self.proc.memory_info().rss / 2**20
            except psutil.Error:
                return
            self.peak = max(self.peak, mib)
            self.samples.append((round(time.monotonic() - t0, 2), round(mib, 1)))

    def stop(self) -> None:
        self._stop_evt.set()
        self.join(timeout=5)

    def series(self, points: int = 40) -> list[tuple[float, float]]:
        step = max(1, len(self.samples) // points)
        return self.samples[::step]


def _thread_cpu(pid: int) -> dict[int, float]:
    return {t.id: t.user_time + t.system_time for t in psutil.Process(pid).threads()}


def run_hub(args: dict[str, Any], broker: Mosquitto, workdir: Path) -> dict[str, Any]:
    db = workdir / "hub.db"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if args.get("hub_profile"):
        env["HUB_PROFILE_OUT"] = str(workdir / "hub.prof")
        command = [sys.executable, "-c", _PROFILED_HUB]
    else:
        command = [sys.executable, "-m", "hub"]
    proc = subprocess.Popen(
        [*command, "--broker", broker.url, "--db", str(db), "--client-id", "bench-hub",
         *(["-v"] if args["hub_verbose"] else [])],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=open(workdir / "hub.log", "wb"),  # noqa: SIM115
    )
    sampler: _RssSampler | None = None
    try:
        # Ready once the hub has subscribed: it then receives a retained probe status.
        probe = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-probe")
        probe.connect(broker.host, broker.port)
        probe.loop_start()
        probe.publish(status_topic("bench-probe", "bench-probe"), json.dumps({"state": "online", "ts": 1.0}),
                      qos=1, retain=True).wait_for_publish(10)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if db.exists():
                with sqlite3.connect(db) as conn, _suppress_db_errors():
                    if conn.execute("SELECT 1 FROM edges WHERE edge_id='bench-probe'").fetchone():
                        break
            time.sleep(0.1)
        else:
            raise RuntimeError("hub did not come up")
        probe.publish(status_topic("bench-probe", "bench-probe"), b"", qos=1, retain=True).wait_for_publish(10)
        probe.loop_stop()
        probe.disconnect()
        rss0 = psutil.Process(proc.pid).memory_info().rss
        sampler = _RssSampler(proc.pid)
        sampler.start()
        cpu0, broker0, threads0 = _cpu(proc.pid), _cpu(_broker_pid(broker)), _thread_cpu(proc.pid)
        elapsed, resent, publishers_cpu = run_publishers(args)
        cpu1, broker1, threads1 = _cpu(proc.pid), _cpu(_broker_pid(broker)), _thread_cpu(proc.pid)
        rss = psutil.Process(proc.pid).memory_info().rss
        sampler.stop()
    finally:
        if sampler is not None:
            sampler.stop()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        dups = conn.execute("SELECT COALESCE(SUM(duplicates), 0) FROM edge_progress").fetchone()[0]
    if stored != args["events"]:
        raise RuntimeError(f"hub stored {stored} events, expected {args['events']}")
    # The main thread is the event loop (decode, validate, route); the others are SQLite's
    # (aiosqlite) and whatever libraries start (onnxruntime pools …).
    main_cpu = threads1.get(proc.pid, 0.0) - threads0.get(proc.pid, 0.0)
    others = sorted((threads1[t] - threads0.get(t, 0.0) for t in threads1 if t != proc.pid), reverse=True)
    hub_cpu = cpu1 - cpu0
    return {"seconds": elapsed, "events_per_s": args["events"] / elapsed, "stored": stored, "duplicates": dups,
            "resent_batches": resent, "exit_code": code, "hub_cpu_s": hub_cpu,
            "hub_cpu_us_per_event": hub_cpu / args["events"] * 1e6,
            "hub_main_thread_cpu_s": main_cpu, "hub_other_threads_cpu_s": [round(c, 2) for c in others if c >= 0.01],
            "broker_cpu_s": broker1 - broker0, "publishers_cpu_s": publishers_cpu,
            "hub_rss_mb": rss / 2**20, "hub_rss_start_mb": rss0 / 2**20, "hub_rss_peak_mb": max(sampler.peak, rss / 2**20),
            "hub_rss_series_mb": sampler.series()}


class _suppress_db_errors:  # noqa: N801
    def __enter__(self) -> None:
        return None

    def __exit__(self, et: Any, e: Any, tb: Any) -> bool:
        return et is not None and issubclass(et, sqlite3.Error)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--edges", type=int, default=100)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--publishers", type=int, default=2, help="publisher processes")
    parser.add_argument("--window", type=int, default=4, help="batches per edge beyond its ack")
    parser.add_argument("--resend-after", type=float, default=30.0, help="seconds without ack progress")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--skip-ceiling", action="store_true")
    parser.add_argument("--broker-config", action="append", default=[], metavar="LINE",
                        help="extra mosquitto.conf line, e.g. 'max_inflight_messages 100' (repeatable)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--workdir", type=Path, help="keep broker, databases and hub log here")
    parser.add_argument("--hub-verbose", action="store_true", help="hub logs at INFO to <workdir>/hub.log")
    parser.add_argument("--hub-profile", action="store_true",
                        help="cProfile the hub's main thread (its CPU time) into <workdir>/hub.prof")
    ns = parser.parse_args()
    per_edge = max(1, ns.events // (ns.edges * ns.batch))
    events = per_edge * ns.edges * ns.batch
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        workdir = ns.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        # Mosquitto's defaults (max_queued_messages 1000, max_inflight_messages 20) unless told
        broker = Mosquitto(workdir / "mosquitto", extra="".join(f"{line}\n" for line in ns.broker_config))
        broker.start()
        try:
            args = {"host": broker.host, "port": broker.port, "edges": ns.edges, "batch": ns.batch,
                    "batches_per_edge": per_edge, "events": events, "publishers": ns.publishers,
                    "window": ns.window, "resend_after": ns.resend_after, "timeout": ns.timeout,
                    "hub_verbose": ns.hub_verbose, "hub_profile": ns.hub_profile}
            ceil = None if ns.skip_ceiling else run_ceiling(args, broker, workdir)
            hub = run_hub(args, broker, workdir)
        finally:
            broker.stop()
    result = {
        "benchmark": "hub_ingest",
        "events": events,
        "edges": ns.edges,
        "batch": ns.batch,
        "window_batches_per_edge": ns.window,
        "publishers": ns.publishers,
        "broker_config": ns.broker_config,
        "hub": hub,
        "ceiling": ceil,
        "ratio": None if ceil is None else hub["events_per_s"] / ceil["events_per_s"],
        "targets": {"events_per_s": 100_000, "ratio": 0.40},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_avg_1m_at_end": os.getloadavg()[0]},
        "ts": time.time(),
    }
    ns.out.parent.mkdir(parents=True, exist_ok=True)
    ns.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"events: {events:,} from {ns.edges} edges in batches of {ns.batch}")
    if ceil is not None:
        print(f"ceiling: {ceil['events_per_s']:,.0f} events/s ({ceil['seconds']:.1f} s, subscriber CPU "
              f"{ceil['subscriber_cpu_s']:.1f} s, broker {ceil['broker_cpu_s']:.1f} s, publishers {ceil['publishers_cpu_s']:.1f} s)")
    print(f"hub:     {hub['events_per_s']:,.0f} events/s ({hub['seconds']:.1f} s, hub CPU {hub['hub_cpu_s']:.1f} s, "
          f"broker {hub['broker_cpu_s']:.1f} s, publishers {hub['publishers_cpu_s']:.1f} s, "
          f"duplicates {hub['duplicates']}, resent batches {hub['resent_batches']})")
    print(f"hub CPU: {hub['hub_cpu_us_per_event']:.2f} µs/event (main thread {hub['hub_main_thread_cpu_s']:.1f} s, "
          f"other threads {hub['hub_other_threads_cpu_s']} s)")
    print(f"hub RSS: {hub['hub_rss_start_mb']:.0f} MiB before the load, peak {hub['hub_rss_peak_mb']:.0f} MiB, "
          f"{hub['hub_rss_mb']:.0f} MiB at the end")
    if result["ratio"] is not None:
        print(f"ratio:   {result['ratio']:.0%} of the ceiling")
    print(f"written: {ns.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
