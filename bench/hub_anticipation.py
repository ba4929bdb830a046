"""Anticipation in the hub: cold start to first anticipation, and commit-to-publish latency.

    python bench/hub_anticipation.py [--model PATH] [--customers 20] [--rounds 5] [--debounce 2.0]

A real Mosquitto and a real hub (in this process). **Cold start**: from building the hub
(store, model load, kernel warm-up) through subscribing to the broker, one batch of events,
to the retained anticipation arriving at a subscriber. **Latency**: ``--customers``
customers each publish a batch per round; the hub measures, per anticipation, the time from
the first commit it covers to its publish (debounce included, so at least ``--debounce``)
and the service's own work per anticipation (market, features, heads, explanations,
personal layer, store, publish). Writes ``bench/results/hub_anticipation.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiomqtt
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devices.topics import anticipations_topic, events_topic  # noqa: E402
from hub.service import Hub  # noqa: E402
from hub.settings import HubSettings  # noqa: E402
from models.artifact import default_artifact  # noqa: E402
from simulations.brokers import Mosquitto  # noqa: E402

PLAN = (
    ("bedroom/motion", "occupancy", True, "bedroom"),
    ("kitchen/motion", "occupancy", True, "kitchen"),
    ("kitchen/coffee_machine", "power", 900.0, "kitchen"),
    ("kettle", "power", 1800.0, "kitchen"),
    ("living/motion", "occupancy", True, "living"),
    ("kitchen/fridge", "contact", False, "kitchen"),
)


def _batch(customer: str, edge: str, first: int, n: int) -> bytes:
    now = time.time()
    events = [{"seq": first + i, "ts": now - (n - i), "device": PLAN[(first + i) % len(PLAN)][0],
               "capability": PLAN[(first + i) % len(PLAN)][1], "value": PLAN[(first + i) % len(PLAN)][2],
               "room": PLAN[(first + i) % len(PLAN)][3]} for i in range(n)]
    return json.dumps({"schema": "genius.events/1", "customer_id": customer, "edge_id": edge, "sent_at": now,
                       "events": events}).encode()


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    model = Path(args.model) if args.model else default_artifact()
    with tempfile.TemporaryDirectory() as tmp:
        broker = Mosquitto(Path(tmp) / "broker").start()
        try:
            settings = HubSettings.load(
                broker={"url": broker.url, "client_id": "bench-hub"}, store={"path": Path(tmp) / "hub.db"},
                anticipation={"model_path": model, "debounce_s": args.debounce},
            )
            async with aiomqtt.Client(broker.host, broker.port) as c:
                await c.subscribe("genius/v1/+/anticipations", qos=1)
                started = time.perf_counter()
                hub = Hub(settings)
                async with hub, asyncio.TaskGroup() as tg:
                    opened = time.perf_counter() - started
                    task = tg.create_task(hub.run())
                    async with asyncio.timeout(30):
                        await hub.ready.wait()
                    ready = time.perf_counter() - started
                    await c.publish(events_topic("b0", "b0-home"), _batch("b0", "b0-home", 1, 20), qos=1)
                    async with asyncio.timeout(60):
                        async for msg in c.messages:
                            if msg.topic.value == anticipations_topic("b0"):
                                break
                    first = time.perf_counter() - started
                    assert hub.anticipation is not None
                    hub.anticipation.compute_latency.clear()
                    hub.anticipation.figures.latency.count = 0
                    latencies: list[float] = []
                    base = len(hub.anticipation.compute_latency)
                    for r in range(args.rounds):
                        for k in range(args.customers):
                            cid = f"b{k + 1}"
                            await c.publish(events_topic(cid, f"{cid}-home"),
                                            _batch(cid, f"{cid}-home", 1 + r * 20, 20), qos=1)
                        await asyncio.sleep(args.debounce + 1.0)
                    async with asyncio.timeout(60):
                        while hub.anticipation.figures.published < 1 + args.customers * args.rounds:
                            await asyncio.sleep(0.1)
                    async with hub.store.db.execute(
                        "SELECT latency_s FROM anticipations WHERE customer_id != 'b0' AND latency_s IS NOT NULL"
                    ) as cur:
                        latencies = [float(r[0]) for r in await cur.fetchall()]
                    work = hub.anticipation.compute_latency[base:]
                    task.cancel()
        finally:
            broker.stop()
    return {
        "model": str(model),
        "machine": platform.platform(),
        "cold_start": {"open_s": round(opened, 3), "subscribed_s": round(ready, 3),
                       "first_anticipation_s": round(first, 3), "debounce_s": args.debounce},
        "commit_to_publish_s": {"n": len(latencies), "p50": round(_pct(latencies, 50), 4),
                                "p99": round(_pct(latencies, 99), 4)},
        "service_work_s": {"n": len(work), "p50": round(_pct(work, 50), 4), "p99": round(_pct(work, 99), 4)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--debounce", type=float, default=2.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result = asyncio.run(_main(args))
    out = Path(__file__).resolve().parent / "results" / "hub_anticipation.json"
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
