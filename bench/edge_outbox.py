"""Edge figures: CPU per message on the hot path, and the outbox holding 7 days offline.

    python bench/edge_outbox.py                 # full size: 3,024,000 events
    python bench/edge_outbox.py --events 300000 # smaller

1. Hot path: ``Pipeline.handle`` for a JSON device message (adapter session → 2 readings →
   room/contract checks → privacy → outbox buffer), then the same including the amortised
   group commit. Measured in a plain loop, without MQTT.
2. Outbox: commit ``--events`` events in 1,000-reading transactions, report bytes on disk
   per event, then drain it as the uplink does (read 500 in seq order, encode the
   ``EventBatch`` JSON, ack) and report events/s for both.

Writes ``bench/results/edge_outbox.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from devices import DefinitionsAdapter, DeviceDefinition, Topic, power, temperature
from devices.readings import Reading
from edge import DeadLetters, DeviceSettings, Inventory, Outbox, OutboxSettings, Pipeline, PrivacyFilter, PrivacySettings
from edge.batch import encode_batch
from edge.settings import SEVEN_DAYS_AT_5_PER_S

RESULTS = Path(__file__).resolve().parent / "results" / "edge_outbox.json"
DEVICE = DeviceDefinition(vendor="b", model="plug", match=Topic("home/+/plug"), exposes=(power(path="p"), temperature(path="t")))


async def hot_path(messages: int, workdir: Path) -> dict[str, float]:
    devices = {f"plug{i}": DeviceSettings(room="kitchen") for i in range(0, 20, 2)}
    pf = PrivacyFilter.from_settings(PrivacySettings(), devices)
    dl = DeadLetters()
    payloads = [json.dumps({"p": 10.0 + i % 50, "t": 20.5}).encode() for i in range(100)]
    topics = [f"home/plug{i}/plug" for i in range(20)]
    async with Outbox.open(OutboxSettings(path=workdir / "hot.db", max_pending=10**9), dead_letters=dl) as box:
        pipeline = Pipeline(
            [DefinitionsAdapter.of([DEVICE]).new_session()], outbox=box, privacy=pf,
            inventory=Inventory(pf.resolver, devices), dead_letters=dl, devices=devices,
        )
        handle = pipeline.handle
        for i in range(2000):  # warm caches (routes, names)
            handle(topics[i % 20], payloads[i % 100], ts=1e9 + i)
        await box.flush()
        t0 = time.process_time()
        for i in range(messages):
            handle(topics[i % 20], payloads[i % 100], ts=1e9 + i)
        handle_cpu = time.process_time() - t0
        box._pending.clear()  # noqa: SLF001 - measure the commit separately below
        t0 = time.process_time()
        for i in range(messages):
            handle(topics[i % 20], payloads[i % 100], ts=1e9 + i)
            if box.pending >= 1000:
                await box.flush()
        await box.flush()
        total_cpu = time.process_time() - t0
    return {
        "messages": messages,
        "readings_per_message": 2,
        "handle_us_per_message": handle_cpu / messages * 1e6,
        "handle_and_commit_us_per_message": total_cpu / messages * 1e6,
    }


async def outbox(events: int, workdir: Path) -> dict[str, float]:
    path = workdir / "outbox.db"
    settings = OutboxSettings(path=path, max_pending=10**9)
    rooms = ["kitchen", "living room", "bedroom", None]
    caps = [("power", 1.0), ("temperature", 0.1), ("occupancy", None), ("contact", None)]
    chunk = []
    for i in range(1000):
        cap, scale = caps[i % 4]
        value: bool | float = bool(i % 3) if scale is None else round(i * scale, 1)
        chunk.append(Reading(1_700_000_000.0 + i * 0.2, f"device-{i % 40:02d}", cap, value, rooms[i % 4]))
    async with Outbox.open(settings) as box:
        t0 = time.perf_counter()
        for _ in range(events // 1000):
            box.put(chunk)
            await box.flush()
        fill_s = time.perf_counter() - t0
        n = box.count
    size = path.stat().st_size
    wal = path.with_name(path.name + "-wal")
    async with Outbox.open(settings) as box:
        size = max(size, path.stat().st_size)
        t0 = time.perf_counter()
        drained = 0
        while box.count:
            rows = await box.read(box.first_seq, limit=500)
            encode_batch(customer_id="c", edge_id="e", sent_at=time.time(), rows=rows, names_json=box.names_json, names=box.names)
            await box.ack(rows[-1][0])
            drained += len(rows)
        drain_s = time.perf_counter() - t0
    return {
        "events": n,
        "bytes_on_disk": size,
        "wal_bytes_after": wal.stat().st_size if wal.exists() else 0,
        "bytes_per_event": size / n,
        "fill_events_per_s": n / fill_s,
        "drain_events_per_s": drained / drain_s,
        "drain_seconds": drain_s,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=SEVEN_DAYS_AT_5_PER_S)
    parser.add_argument("--messages", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        hot = await hot_path(args.messages, Path(tmp))
        print(json.dumps({"hot_path": hot}, indent=2))
        box = await outbox(args.events, Path(tmp))
        print(json.dumps({"outbox": box}, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"hot_path": hot, "outbox": box}, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
