"""Simulator throughput: simulated customer-days per second, and 100 customers x 28 days wall time.

    .venv/bin/python bench/simulate.py [--customers 100] [--days 28] [--seed 1] [--wire-customers 5]

Measures, on one core, without MQTT:
* ``simulate``: planning + every sensor model for every customer (``event_blocks``), the path a
  labelled dataset takes;
* ``dataset``: the same plus building the ``Dataset`` (sorting, dictionary encoding);
* ``save``/``load``: writing and reading it in the one format;
* ``wire``: encoding every report as its real MQTT payload (``run``) for a few customers.
Writes ``bench/results/simulate.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.dataset import DatasetBuilder, load, save  # noqa: E402
from simulations import JOBS, MARKETS, CustomerSimulation, Population, to_epoch  # noqa: E402
from simulations.export import DEFAULT_START, add_simulation  # noqa: E402

DAY = 86400.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--wire-customers", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "simulate.json")
    args = parser.parse_args()

    start = to_epoch(DEFAULT_START)
    end = start + args.days * DAY
    customer_days = args.customers * args.days

    t = time.perf_counter()
    specs = Population.generate(args.customers, args.seed)
    t_population = time.perf_counter() - t

    t = time.perf_counter()
    n_events = n_labels = 0
    for spec in specs:
        sim = CustomerSimulation(spec)
        n_events += sum(b.ts.size for b in sim.event_blocks(start, end))
        n_labels += len(sim.labels(start, end))
    t_simulate = time.perf_counter() - t

    t = time.perf_counter()
    builder = DatasetBuilder(source="simulation", jobs=JOBS, markets=MARKETS)
    for spec in specs:
        add_simulation(builder, CustomerSimulation(spec), start, end)
    dataset = builder.build(seed=args.seed)
    t_dataset = time.perf_counter() - t

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        save(dataset, Path(tmp) / "ds")
        t_save = time.perf_counter() - t
        size = sum(p.stat().st_size for p in (Path(tmp) / "ds").iterdir())
        t = time.perf_counter()
        loaded = load(Path(tmp) / "ds")
        t_load = time.perf_counter() - t
        assert loaded.events.size == dataset.events.size

    t = time.perf_counter()
    n_messages = n_bytes = 0
    for spec in specs[: args.wire_customers]:
        for msg in CustomerSimulation(spec).run(start, end):
            n_messages += 1
            n_bytes += len(msg.payload)
    t_wire = time.perf_counter() - t
    wire_days = min(args.wire_customers, args.customers) * args.days

    result = {
        "customers": args.customers,
        "days": args.days,
        "seed": args.seed,
        "events": n_events,
        "labels": n_labels,
        "events_per_customer_day": round(n_events / customer_days, 1),
        "population_s": round(t_population, 3),
        "simulate_s": round(t_simulate, 2),
        "customer_days_per_s": round(customer_days / t_simulate, 1),
        "events_per_s": round(n_events / t_simulate),
        "dataset_build_s": round(t_dataset, 2),
        "save_s": round(t_save, 2),
        "load_s": round(t_load, 2),
        "dataset_bytes": size,
        "wall_100x28_equivalent_s": round(t_dataset + t_save, 2),
        "wire_customers": min(args.wire_customers, args.customers),
        "wire_messages": n_messages,
        "wire_messages_per_s": round(n_messages / t_wire),
        "wire_customer_days_per_s": round(wire_days / t_wire, 1),
        "wire_mean_payload_bytes": round(n_bytes / max(1, n_messages), 1),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "note": "one process, one core, shared 2-core machine: timings are noisy",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{args.customers} customers x {args.days} days: {n_events:,} events, {n_labels:,} labels")
    print(f"simulate: {t_simulate:.1f} s = {result['customer_days_per_s']} customer-days/s "
          f"({result['events_per_s']:,} events/s)")
    print(f"dataset build {t_dataset:.1f} s, save {t_save:.1f} s ({size / 1e6:.0f} MB), load {t_load:.1f} s; "
          f"simulate+build+save {result['wall_100x28_equivalent_s']} s")
    print(f"wire: {n_messages:,} messages for {result['wire_customers']} customers in {t_wire:.1f} s "
          f"= {result['wire_messages_per_s']:,} msg/s ({result['wire_customer_days_per_s']} customer-days/s)")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
