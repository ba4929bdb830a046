"""Edge ingest through real Mosquitto brokers, against bare-subscriber ceilings (issue 2 §6).

    python bench/edge_ingest.py                     # 200,000 messages (full size)
    python bench/edge_ingest.py --messages 20000    # smaller
    python bench/edge_ingest.py --acker hub         # acknowledged by a real `genius hub run`

Devices: one paho publisher process sends ``--messages`` single-reading zigbee2mqtt state
messages (``zigbee2mqtt/bench/plugN`` → ``{"power": i}``, 50 plugs listed in a retained
``bridge/devices``) at QoS 1 to a local Mosquitto, as fast as the broker takes them. Three
runs over the same broker and the same messages:

* **ceiling, aiomqtt**: a bare aiomqtt subscriber (its own process; QoS 1, the edge's socket
  options) that does nothing but count;
* **ceiling, paho**: the same with bare paho;
* **edge**: ``genius --strict edge run`` as its own process with its default settings:
  every message normalised by the zigbee2mqtt adapter, committed to the SQLite outbox,
  batched to the hub broker (a second Mosquitto), and deleted when acknowledged. Acks come
  from a minimal acker in this process (``--acker minimal``, the default: it publishes
  ``stored_through`` for every batch it sees, no storage) or from a real hub process
  (``--acker hub``). Throughput is counted where events *arrive on the hub broker*.

Rates are messages per second from the first publish to the last arrival. Then the edge is
offered half its measured rate for ``--latency-seconds`` and the latency from each local
publish to its event's arrival on the hub broker is reported (p50/p90/p99/max), with the
edge's peak RSS. Both brokers queue without limit and set TCP_NODELAY (``--no-broker-nodelay``
for Mosquitto's own default), so nothing is dropped: the figures are capacities, not loss
rates. The publisher's own rate is reported beside each ceiling: a ceiling close to it is a
lower bound.

Targets: edge ≥ 50 % of the bare aiomqtt ceiling, p99 < 250 ms at half rate, RSS < 100 MB.
Writes ``bench/results/edge_ingest.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from pathlib import Path
from typing import Any

import aiomqtt
import numpy as np
import paho.mqtt.client as mqtt
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from devices.topics import PREFIX, ack_topic, devices_topic, status_topic  # noqa: E402
from genius.cli.edge import outbox_report  # noqa: E402
from simulations.brokers import Mosquitto  # noqa: E402

RESULTS = REPO / "bench" / "results" / "edge_ingest.json"
PLUGS = 500  # devices: each stays far below the edge's per-device rate limit (200 msgs/s)
PUBLISH_WINDOW = 500  # QoS 1 publishes the device side keeps unacknowledged
CUSTOMER, EDGE = "bench", "e1"
TARGETS = {"ratio_vs_aiomqtt": 0.5, "p99_ms": 250.0, "rss_mb": 100.0}
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def topic_of(i: int) -> str:
    return f"zigbee2mqtt/bench/plug{i % PLUGS}"


def payload_of(i: int) -> bytes:
    return b'{"power":%d}' % i


def bridge_devices() -> bytes:
    expose = {"access": 1, "name": "power", "property": "power", "type": "numeric", "unit": "W"}
    return json.dumps([
        {"friendly_name": f"bench/plug{k}", "ieee_address": f"0x{k:016x}", "type": "Router", "supported": True,
         "definition": {"vendor": "Bench", "model": "plug", "description": "Smart plug", "exposes": [expose]}}
        for k in range(PLUGS)
    ]).encode()


# --------------------------------------------------------------------------- child roles


def role_publish(args: argparse.Namespace) -> None:
    """Publish ``--messages`` from index ``--offset``; at ``--rate`` per second if given.

    Prints one JSON line: monotonic start, end (last PUBACK) and count. With ``--times``,
    the monotonic send time of every message is written there (float64).
    """
    # paho rescans every message it holds on each PUBACK when it has an in-flight limit (O(n)
    # per ack), which capped this publisher near 1,000 msgs/s: no paho limit, our own window.
    window = threading.BoundedSemaphore(PUBLISH_WINDOW)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="", protocol=mqtt.MQTTv311)
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)
    client.on_publish = lambda *_: window.release()
    client.connect("127.0.0.1", args.port)
    client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.loop_start()
    times = array("d")
    n, offset, rate = args.messages, args.offset, args.rate
    acquire = window.acquire
    t0 = time.monotonic()
    if not rate:
        for i in range(offset, offset + n):
            acquire()
            client.publish(topic_of(i), payload_of(i), qos=1)
    else:
        sent = 0
        while sent < n:
            due = min(n, int((time.monotonic() - t0) * rate) + 1)
            while sent < due:
                i = offset + sent
                acquire()
                times.append(time.monotonic())
                client.publish(topic_of(i), payload_of(i), qos=1)
                sent += 1
            time.sleep(0.002)
    for _ in range(PUBLISH_WINDOW):  # every PUBACK is in
        acquire(timeout=600)
    t1 = time.monotonic()
    client.disconnect()
    client.loop_stop()
    if args.times:
        with open(args.times, "wb") as fh:
            times.tofile(fh)
    print(json.dumps({"start": t0, "end": t1, "sent": n}), flush=True)


def role_count_paho(args: argparse.Namespace) -> None:
    """Bare paho subscriber: count ``--messages`` non-retained messages, print first/last times."""
    state = {"n": 0, "first": 0.0, "last": 0.0}
    n = args.messages

    def on_message(client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.retain:
            return
        state["n"] += 1
        if state["n"] == 1:
            state["first"] = time.monotonic()
        if state["n"] >= n:
            state["last"] = time.monotonic()
            client.disconnect()

    def on_connect(client: mqtt.Client, *_: Any) -> None:
        client.subscribe("zigbee2mqtt/#", qos=1)

    def on_subscribe(*_: Any) -> None:
        print(json.dumps({"ready": True}), flush=True)

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-bare-paho", clean_session=True,
                         protocol=mqtt.MQTTv311)
    client.on_message, client.on_connect, client.on_subscribe = on_message, on_connect, on_subscribe
    client.connect("127.0.0.1", args.port)
    client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.loop_forever()
    print(json.dumps({"received": state["n"], "first": state["first"], "last": state["last"],
                      "cpu_s": time.process_time()}), flush=True)


async def _count_aiomqtt(args: argparse.Namespace) -> None:
    n = args.messages
    received, first, last = 0, 0.0, 0.0
    async with aiomqtt.Client("127.0.0.1", args.port, identifier="bench-bare-aiomqtt", socket_options=NODELAY,
                              max_queued_incoming_messages=0) as client:
        await client.subscribe("zigbee2mqtt/#", qos=1)
        print(json.dumps({"ready": True}), flush=True)
        async for message in client.messages:
            if message.retain:
                continue
            received += 1
            if received == 1:
                first = time.monotonic()
            if received >= n:
                last = time.monotonic()
                break
    print(json.dumps({"received": received, "first": first, "last": last, "cpu_s": time.process_time()}), flush=True)


def role_count_aiomqtt(args: argparse.Namespace) -> None:
    """Bare aiomqtt subscriber: count ``--messages`` non-retained messages."""
    asyncio.run(_count_aiomqtt(args))


# --------------------------------------------------------------------------- orchestration


async def child(role: str, port: int, *extra: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--role", role, "--port", str(port), *extra,
        stdout=asyncio.subprocess.PIPE, cwd=REPO, env=env,
    )


async def line(proc: asyncio.subprocess.Process, *, timeout: float) -> dict[str, Any]:
    assert proc.stdout is not None
    async with asyncio.timeout(timeout):
        raw = await proc.stdout.readline()
    if not raw:
        raise RuntimeError(f"child exited with {await proc.wait()} without a result")
    return json.loads(raw)


async def ceiling(kind: str, broker: Mosquitto, messages: int, *, offset: int) -> dict[str, Any]:
    counter = await child(f"count-{kind}", broker.port, "--messages", str(messages))
    await line(counter, timeout=30)  # subscribed
    publisher = await child("publish", broker.port, "--messages", str(messages), "--offset", str(offset))
    pub = await line(publisher, timeout=600)
    got = await line(counter, timeout=600)
    await publisher.wait()
    await counter.wait()
    seconds = got["last"] - pub["start"]
    return {
        "received": got["received"],
        "seconds": seconds,
        "msgs_per_s": got["received"] / seconds,
        "subscriber_cpu_s": got["cpu_s"],
        "publisher_msgs_per_s": pub["sent"] / (pub["end"] - pub["start"]),
    }


class HubSide:
    """Watches the hub broker: the edge's status and event batches; optionally acknowledges them."""

    def __init__(self, *, ack: bool) -> None:
        self.ack = ack
        self.events = 0
        self.contiguous = 0
        self.online = asyncio.Event()
        self.inventory = asyncio.Event()  # the edge has read bridge/devices: its local side is up
        self.last_arrival = 0.0
        self.arrivals: dict[int, float] | None = None  # value → arrival time, when measuring latency
        self.progress = asyncio.Event()

    async def run(self, broker: Mosquitto, ready: asyncio.Event) -> None:
        async with aiomqtt.Client(broker.host, broker.port, identifier="bench-acker", clean_session=True,
                                  socket_options=NODELAY, max_queued_incoming_messages=0) as client:
            await client.subscribe([(f"{PREFIX}/{CUSTOMER}/{EDGE}/events", 1), (status_topic(CUSTOMER, EDGE), 1),
                                    (devices_topic(CUSTOMER, EDGE), 1)])
            ready.set()
            async for message in client.messages:
                payload = message.payload
                assert isinstance(payload, bytes)
                if message.topic.value.endswith("/devices"):
                    if len(json.loads(payload or b"[]")) >= PLUGS:
                        self.inventory.set()
                    continue
                if message.topic.value.endswith("/status"):
                    if payload and json.loads(payload).get("state") == "online":
                        self.online.set()
                    continue
                now = time.monotonic()
                events = json.loads(payload)["events"]
                if not events:
                    continue
                first, last = events[0]["seq"], events[-1]["seq"]
                if first <= self.contiguous + 1 and last > self.contiguous:
                    self.events += last - self.contiguous
                    self.contiguous = last
                    self.last_arrival = now
                    if self.arrivals is not None:
                        arrivals = self.arrivals
                        for e in events:
                            arrivals.setdefault(int(e["value"]), now)
                    self.progress.set()
                if self.ack:
                    ack = json.dumps({"stored_through": self.contiguous, "ts": time.time()})
                    await client.publish(ack_topic(CUSTOMER, EDGE), ack, qos=1, retain=True)

    async def wait_events(self, n: int, *, stall_s: float = 30.0) -> bool:
        """Until ``n`` events arrived in order (True), or ``stall_s`` passed without progress (False)."""
        while self.events < n:
            self.progress.clear()
            try:
                async with asyncio.timeout(stall_s):
                    await self.progress.wait()
            except TimeoutError:
                return False
        return True


class RssSampler:
    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0

    async def run(self) -> None:
        while True:
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return
            await asyncio.sleep(0.2)


async def edge_run(args: argparse.Namespace, local: Mosquitto, hub_broker: Mosquitto, tmp: Path) -> dict[str, Any]:
    n = args.messages
    hub_side = HubSide(ack=args.acker == "minimal")
    watching = asyncio.Event()
    config = tmp / "edge.toml"
    outbox = tmp / "edge.db"
    config.write_text(
        f'customer = "{CUSTOMER}"\nedge = "{EDGE}"\nlocal_broker = "{local.url}"\nhub_broker = "{hub_broker.url}"\n'
        f'[outbox]\npath = "{outbox}"\n'
    )
    edge_log = (tmp / "edge.log").open("wb")
    hub_log = (tmp / "hub.log").open("wb")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        if args.acker == "hub":
            # Lift the hub's per-edge rate limit (2,000 events/s by default): this is a benchmark.
            env = {**os.environ, "GENIUS_HUB_LIMITS__EVENTS_PER_S": "1e9", "GENIUS_HUB_LIMITS__EVENTS_BURST": "1000000000"}
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "genius", "hub", "run", "--broker", hub_broker.url, "--db", str(tmp / "hub.db"),
                 "--client-id", "bench-hub"], cwd=REPO, env=env, stdout=hub_log, stderr=hub_log))
        async with asyncio.TaskGroup() as tg:
            watcher = tg.create_task(hub_side.run(hub_broker, watching))
            await watching.wait()
            profile = ["-m", "cProfile", "-o", str(args.profile_edge)] if args.profile_edge else []
            edge = subprocess.Popen(
                [sys.executable, *profile, "-m", "genius", "--strict", "edge", "run", "--config", str(config)],
                cwd=REPO, stdout=edge_log, stderr=edge_log,
            )
            procs.append(edge)
            async with asyncio.timeout(60):
                await hub_side.online.wait()
                await hub_side.inventory.wait()
            rss = RssSampler(edge.pid)
            sampler = tg.create_task(rss.run())
            ps = psutil.Process(edge.pid)
            cpu0 = sum(ps.cpu_times()[:2])

            # Throughput: as fast as the local broker takes the messages.
            publisher = await child("publish", local.port, "--messages", str(n), "--offset", str(args.offset))
            pub = await line(publisher, timeout=600)
            await publisher.wait()
            complete = await hub_side.wait_events(n)
            cpu1 = sum(ps.cpu_times()[:2])
            seconds = hub_side.last_arrival - pub["start"]
            rate = hub_side.events / seconds
            throughput = {
                "complete": complete,
                "events": hub_side.events,
                "seconds": seconds,
                "msgs_per_s": rate,
                "edge_cpu_s": cpu1 - cpu0,
                "edge_cpu_us_per_msg": (cpu1 - cpu0) / n * 1e6,
                "publisher_msgs_per_s": n / (pub["end"] - pub["start"]),
            }
            print(f"edge: {rate:,.0f} msgs/s ({seconds:.1f} s, {throughput['edge_cpu_us_per_msg']:.0f} µs CPU/msg)",
                  flush=True)

            # Latency at half that rate.
            offered = rate / 2
            m = max(1000, int(offered * args.latency_seconds))
            start_value = args.offset + n
            hub_side.arrivals = {}
            base = hub_side.events
            times_file = tmp / "send_times.f64"
            publisher = await child("publish", local.port, "--messages", str(m), "--offset", str(start_value),
                                    "--rate", f"{offered:.1f}", "--times", str(times_file))
            await line(publisher, timeout=args.latency_seconds * 4 + 60)
            await publisher.wait()
            await hub_side.wait_events(base + m)
            sent = np.fromfile(times_file, dtype=np.float64)
            arrivals = hub_side.arrivals
            arrived = np.array([arrivals.get(start_value + i, np.nan) for i in range(m)])
            lat_ms = (arrived - sent) * 1000.0
            latency = {
                "offered_msgs_per_s": offered,
                "messages": m,
                "missing": int(np.isnan(lat_ms).sum()),
                "p50_ms": float(np.nanpercentile(lat_ms, 50)),
                "p90_ms": float(np.nanpercentile(lat_ms, 90)),
                "p99_ms": float(np.nanpercentile(lat_ms, 99)),
                "max_ms": float(np.nanmax(lat_ms)),
            }
            print(f"latency at {offered:,.0f} msgs/s: p50 {latency['p50_ms']:.0f} ms, p99 {latency['p99_ms']:.0f} ms",
                  flush=True)
            sampler.cancel()
            edge.terminate()
            code = await asyncio.to_thread(edge.wait, 30)
            watcher.cancel()
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        edge_log.close()
        hub_log.close()
    report = outbox_report(outbox)
    return {
        "acker": args.acker,
        "throughput": throughput,
        "latency": latency,
        "rss_peak_mb": rss.peak / 2**20,
        "exit_code": code,
        "outbox": {k: report[k] for k in ("events", "next_seq", "overflow_dropped", "dead_letters",
                                          "dead_letters_by_reason")},
    }


async def orchestrate(args: argparse.Namespace) -> dict[str, Any]:
    n = args.messages
    extra = "set_tcp_nodelay true\n" if args.broker_nodelay else ""
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = args.workdir or Path(tmpdir)
        tmp.mkdir(parents=True, exist_ok=True)
        # Both brokers queue without limit: measure capacity, not Mosquitto's drop policy.
        local = Mosquitto(tmp / "local", max_queued_messages=0, extra=extra).start()
        hub_broker = Mosquitto(tmp / "hub", max_queued_messages=0, extra=extra).start()
        try:
            setup = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
            setup.connect(local.host, local.port)
            setup.loop_start()
            setup.publish("zigbee2mqtt/bridge/devices", bridge_devices(), qos=1, retain=True).wait_for_publish(10)
            setup.disconnect()
            setup.loop_stop()
            ceilings = {}
            for kind in () if args.skip_ceilings else ("aiomqtt", "paho"):
                ceilings[kind] = await ceiling(kind, local, n, offset=0)
                print(f"ceiling, bare {kind}: {ceilings[kind]['msgs_per_s']:,.0f} msgs/s", flush=True)
            args.offset = n
            edge = await edge_run(args, local, hub_broker, tmp)
        finally:
            local.stop()
            hub_broker.stop()
    rate = edge["throughput"]["msgs_per_s"]
    return {
        "benchmark": "edge_ingest",
        "messages": n,
        "broker": {"set_tcp_nodelay": args.broker_nodelay, "max_queued_messages": "unlimited"},
        "message": {"topic": topic_of(0), "payload": payload_of(0).decode(), "qos": 1, "readings": 1},
        "ceiling": ceilings,
        "edge": edge,
        "ratio_vs_aiomqtt": rate / ceilings["aiomqtt"]["msgs_per_s"] if "aiomqtt" in ceilings else None,
        "ratio_vs_paho": rate / ceilings["paho"]["msgs_per_s"] if "paho" in ceilings else None,
        "targets": TARGETS,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_avg_1m_at_end": os.getloadavg()[0],
        },
        "ts": time.time(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--acker", choices=("minimal", "hub"), default="minimal")
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--broker-nodelay", action=argparse.BooleanOptionalAction, default=True,
                        help="Mosquitto's set_tcp_nodelay (default on; off is Mosquitto's own default)")
    parser.add_argument("--profile-edge", type=Path, metavar="PATH", help="run the edge under cProfile, stats to PATH")
    parser.add_argument("--workdir", type=Path, help="keep brokers' data, outbox and logs here")
    parser.add_argument("--skip-ceilings", action="store_true", help="measure the edge only (profiling)")
    # internal: the child roles
    parser.add_argument("--role", choices=("publish", "count-paho", "count-aiomqtt"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--offset", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--times", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "publish":
        return role_publish(args)
    if args.role == "count-paho":
        return role_count_paho(args)
    if args.role == "count-aiomqtt":
        return role_count_aiomqtt(args)
    result = asyncio.run(orchestrate(args))
    edge = result["edge"]
    ceiling = result["ceiling"]
    print(json.dumps({
        "edge_msgs_per_s": round(edge["throughput"]["msgs_per_s"]),
        "ceiling_aiomqtt_msgs_per_s": round(ceiling["aiomqtt"]["msgs_per_s"]) if "aiomqtt" in ceiling else None,
        "ceiling_paho_msgs_per_s": round(ceiling["paho"]["msgs_per_s"]) if "paho" in ceiling else None,
        "ratio_vs_aiomqtt": result["ratio_vs_aiomqtt"],
        "ratio_vs_paho": result["ratio_vs_paho"],
        "p99_ms_at_half_rate": round(edge["latency"]["p99_ms"], 1),
        "edge_rss_peak_mb": round(edge["rss_peak_mb"], 1),
        "acker": edge["acker"],
    }, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
