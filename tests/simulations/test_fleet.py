"""Fleet runs: simulated customers through real edges, real brokers and a real hub lose nothing.

The proof is read from the hub's own store and compared with the edges' outboxes and the
devices' ground truth (``simulations.fleet_report``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from devices.errors import ConfigError
from simulations.fleet import FleetConfig, run_fleet
from simulations.fleet_faults import FaultPlan
from simulations.fleet_report import EdgeTally, FleetReport

def _nothing_silent(report: FleetReport) -> None:
    """Every device event that is not in the store was dead-lettered at the edge with a reason.

    Edge crashes used to break this: local QoS 1 messages were acknowledged on arrival, so
    what an edge had received but not committed died with it. The edge now acknowledges
    them only once committed (``edge.acks``), and the broker sends the rest again.
    """
    assert report.missing == sum(report.dead_letters["edge"].values()), (
        report.missing, report.dead_letters["edge"], report.missing_examples)


def _delivery_proof(report: FleetReport) -> None:
    assert report.drained
    assert report.sent > 300
    assert report.sent == report.stored
    for edge in report.per_edge:
        assert edge.sent == edge.stored, edge
        assert edge.gaps == [] and edge.left_in_outbox == 0, edge
    assert report.gaps == 0
    assert report.duplicates_stored == 0
    assert report.malformed["local"]["injected"] == report.malformed["local"]["dead_lettered"]


def test_cli_fleet_with_every_fault_kind_loses_nothing_and_nothing_vanishes_silently(tmp_path: Path) -> None:
    """One run, every fault kind: hub broker stopped and killed, edge links cut, edge agents
    crashed mid-stream, local and batch copies, local swaps and late batches, skewed clocks,
    malformed payloads on both sides."""
    proc = subprocess.run(
        [sys.executable, "-m", "genius", "simulate", "fleet", "--customers", "3", "--for", "6", "--speed", "900",
         "--faults", "broker,offline,crash=3,duplicates=0.1,reorder=0.1,skew,malformed=0.03",
         "--workdir", str(tmp_path), "--json"],
        capture_output=True, text=True, timeout=150,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    report = FleetReport(**{**doc, "per_edge": [EdgeTally(**e) for e in doc["per_edge"]]})
    _delivery_proof(report)
    _nothing_silent(report)
    assert report.ok and report.problems == [] and report.missing == 0
    assert report.customers == 3 and report.edges == 12
    assert report.device_events == report.stored  # every device event, and only those
    assert report.duplicates_discarded > 0  # copies did reach the hub, and were dropped there
    assert report.malformed["local"]["injected"] > 0
    kinds = {e["kind"] for e in report.fault_log}
    assert {"broker", "offline", "online", "crash"} <= kinds
    assert sum(e.crashes for e in report.per_edge) == 3
    assert any(e.skew_s for e in report.per_edge)
    # Reordering happened, on both sides: local messages went out after a newer one of their
    # edge, and late copies of batches reached the hub after newer batches of that edge.
    assert report.wire["local swaps"] > 0 and report.wire["local copies"] > 0
    assert report.wire["late copies after newer batches"] > 0
    assert (tmp_path / "hub.db").is_file()  # the evidence stays in --workdir


@pytest.mark.slow
async def test_edge_crashes_lose_no_committed_event_and_nothing_vanishes_silently(tmp_path: Path) -> None:
    report = await run_fleet(FleetConfig(customers=3, duration_s=12, speed=600, seed=3, workdir=tmp_path,
                                         faults=FaultPlan.parse("crash=5,malformed=0.02")))
    _delivery_proof(report)
    assert sum(e.crashes for e in report.per_edge) == 5
    assert report.ok and report.missing == 0
    _nothing_silent(report)


def test_fault_plan_parses_names_values_and_all() -> None:
    assert not FaultPlan.parse("none").any
    everything = FaultPlan.parse("all")
    assert everything.broker_restarts and everything.crashes and everything.malformed_rate
    plan = FaultPlan.parse("crash=4, duplicates=0.2,skew")
    assert (plan.crashes, plan.duplicate_p, plan.skew_max_s) == (4, 0.2, everything.skew_max_s)
    assert plan.broker_restarts == 0
    for bad in ("teleport", "crash=lots", "duplicates=2"):
        with pytest.raises(ConfigError):
            FaultPlan.parse(bad)


@pytest.mark.slow
@pytest.mark.timeout(480)  # 120 s of traffic and up to 120 s of drain, on a shared machine
async def test_soak_with_every_fault_keeps_the_delivery_proof(tmp_path: Path) -> None:
    report = await run_fleet(FleetConfig(customers=20, duration_s=120, speed=600, seed=11, workdir=tmp_path,
                                         faults=FaultPlan.parse("broker=4,offline=0.3,crash=10,duplicates=0.05,"
                                                                "reorder=0.05,skew,malformed=0.01"),
                                         drain_timeout_s=120))
    _delivery_proof(report)
    _nothing_silent(report)


pytestmark = pytest.mark.timeout(240)
