"""``FleetReport``: the proof, read from the hub's own store, that a fleet run lost nothing.

Three sources are compared after the run has drained and stopped:

* the hub's database (``hub.status_report`` and the ``events`` table): what was stored,
  per-edge progress (highest contiguous seq, gaps), duplicates the hub discarded, dead
  letters by reason;
* each edge's outbox file: how many events the edge committed (``sent``: its seq counter)
  and its dead letters, injected (``FAULT_MARK``) or not;
* the ``FeedLedger``: the canonical events the devices' messages carry (ground truth).

``ok`` holds when every event an edge committed is stored once (sent == stored, no gaps),
every device event is stored (nothing missing) and none twice (nothing unexpected), every
injected malformed payload is dead-lettered, and no good message was dead-lettered.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hub.status import status_report
from hub.store import decode_value

from .fleet_feed import FAULT_MARK, EventKey, FeedLedger, event_key

__all__ = ["EdgeTally", "FleetReport", "OutboxTally", "build_report", "read_outbox", "render_report"]


@dataclass(frozen=True, slots=True)
class OutboxTally:
    sent: int  # the edge's seq counter: events it committed for the hub
    left: int  # rows still waiting for the hub's ack
    overflow_dropped: int
    dead_letters_injected: int
    dead_letters_other: dict[str, int]  # "source:reason" -> count


def read_outbox(path: Path) -> OutboxTally:
    """Read a stopped (or running: WAL) edge outbox file."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        (left,) = db.execute("SELECT count(*) FROM events").fetchone()
        rows = db.execute(
            "SELECT source || ':' || reason, instr(payload, ?) > 0, count(*) FROM dead_letters GROUP BY 1, 2",
            (FAULT_MARK,),
        ).fetchall()
    finally:
        db.close()
    injected = sum(n for _, marked, n in rows if marked)
    other: Counter[str] = Counter()
    for reason, marked, n in rows:
        if not marked:
            other[reason] += n
    return OutboxTally(
        sent=int(meta.get("next_seq", 1)) - 1,
        left=int(left),
        overflow_dropped=int(meta.get("overflow_dropped", 0)),
        dead_letters_injected=injected,
        dead_letters_other=dict(other),
    )


@dataclass(frozen=True, slots=True)
class EdgeTally:
    edge_id: str
    customer_id: str
    role: str | None
    sent: int
    stored: int
    high_seq: int
    contiguous: int
    gaps: list[list[int]]
    duplicates_discarded: int
    left_in_outbox: int
    crashes: int
    skew_s: float


@dataclass(slots=True)
class FleetReport:
    """Everything a fleet run proves (``as_dict`` is the ``--json`` document)."""

    ok: bool
    problems: list[str]
    customers: int
    edges: int
    speed: float
    seed: int
    wall_s: float
    sim_s: float
    drained: bool
    feed_lag_s: float  # most wall seconds a device message went out after its time
    published: int  # device messages published on the local broker (copies and malformed included)
    device_events: int  # canonical events those messages carry (the ground truth)
    sent: int  # events the edges committed (sum of their seq counters)
    stored: int  # events in the hub's store
    missing: int  # device events not in the store
    duplicates_stored: int  # device events stored more often than the devices produced them
    duplicates_discarded: int  # copies the hub received and did not store again
    gaps: int  # seqs missing below each edge's highest stored seq
    malformed: dict[str, dict[str, int]]  # "local"/"hub" -> {"injected", "dead_lettered"}
    dead_letters: dict[str, dict[str, int]]  # "edge"/"hub" -> reason -> count
    faults: dict[str, Any]
    fault_log: list[dict[str, Any]]
    wire: dict[str, int]  # copies and reorders injected
    per_edge: list[EdgeTally] = field(default_factory=list)
    missing_examples: list[list[Any]] = field(default_factory=list)
    unexpected_examples: list[list[Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def stored_content(db: Path) -> Counter[EventKey]:
    """Every stored event's content (edge, device, capability, value), counted."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            """SELECT e.edge_id, d.name, cap.name, ev.value, count(*) FROM events ev
               JOIN edges e ON e.edge_key = ev.edge_key
               JOIN devices d ON d.device_key = ev.device_key
               JOIN capabilities cap ON cap.capability = ev.capability
               GROUP BY ev.edge_key, ev.device_key, ev.capability, ev.value"""
        ).fetchall()
    finally:
        conn.close()
    out: Counter[EventKey] = Counter()
    for edge, device, cap, raw, n in rows:
        out[event_key(edge, device, cap, decode_value(cap, raw))] += n
    return out


async def build_report(
    *,
    db: Path,
    outboxes: dict[str, Path],
    ledger: FeedLedger,
    crashes: dict[str, int],
    skews: dict[str, float],
    hub_malformed: int,
    broker_kills: int,
    wire: dict[str, int],
    faults: dict[str, Any],
    fault_log: list[dict[str, Any]],
    speed: float,
    seed: int,
    wall_s: float,
    drained: bool,
) -> FleetReport:
    """Compare the hub's store with the edges' outboxes and the devices' ground truth."""
    hub = await status_report(db, max_gaps=10_000)
    hub_edges = {e["edge_id"]: e for e in hub["edges"]}
    tallies: list[EdgeTally] = []
    edge_dead: Counter[str] = Counter()
    local_dead_injected = 0
    for edge_id, path in sorted(outboxes.items()):
        box = read_outbox(path)
        h = hub_edges.get(edge_id, {})
        local_dead_injected += box.dead_letters_injected
        edge_dead.update(box.dead_letters_other)
        tallies.append(EdgeTally(
            edge_id=edge_id, customer_id=h.get("customer_id", edge_id.rsplit("-", 1)[0]), role=h.get("role"),
            sent=box.sent, stored=int(h.get("events", 0)), high_seq=int(h.get("high_seq", 0)),
            contiguous=int(h.get("contiguous", 0)), gaps=[list(g) for g in h.get("gaps", [])],
            duplicates_discarded=int(h.get("duplicates", 0)), left_in_outbox=box.left,
            crashes=crashes.get(edge_id, 0), skew_s=round(skews.get(edge_id, 0.0), 1),
        ))
    stored_total = sum(t.stored for t in tallies)
    content = stored_content(db)
    missing = ledger.expected - content
    unexpected = content - ledger.expected
    gaps = sum(b - a + 1 for t in tallies for a, b in t.gaps)
    hub_dead: dict[str, int] = hub["dead_letters"]
    local_injected = sum(ledger.malformed.values())
    problems: list[str] = []
    if not drained:
        problems.append("the run did not drain: some edges still held unacknowledged events")
    for t in tallies:
        if t.sent != t.stored:
            problems.append(f"{t.edge_id}: sent {t.sent} but the hub stored {t.stored}")
    if gaps:
        problems.append(f"{gaps} seqs missing below the edges' highest stored seqs")
    if missing:
        problems.append(f"{sum(missing.values())} device events never reached the store")
    if unexpected:
        problems.append(f"{sum(unexpected.values())} events stored more often than the devices produced them")
    if local_dead_injected != local_injected:
        problems.append(f"{local_injected} malformed device payloads injected, {local_dead_injected} dead-lettered")
    if edge_dead:
        problems.append(f"good device messages dead-lettered at the edge: {dict(edge_dead)}")
    hub_dead_total = sum(hub_dead.values())
    if hub_dead_total < hub_malformed and not broker_kills:
        # A broker killed with -9 loses what it had not saved, malformed batches included.
        problems.append(f"{hub_malformed} malformed batches injected, {hub_dead_total} dead-lettered at the hub")
    return FleetReport(
        ok=not problems,
        problems=problems,
        customers=len({t.customer_id for t in tallies}),
        edges=len(tallies),
        speed=speed,
        seed=seed,
        wall_s=round(wall_s, 1),
        sim_s=round(((ledger.last_ts or 0.0) - (ledger.first_ts or 0.0)), 1),
        drained=drained,
        feed_lag_s=round(ledger.max_lag_s / speed, 3),
        published=sum(ledger.messages.values()),
        device_events=ledger.expected_events,
        sent=sum(t.sent for t in tallies),
        stored=stored_total,
        missing=sum(missing.values()),
        duplicates_stored=sum(unexpected.values()),
        duplicates_discarded=sum(t.duplicates_discarded for t in tallies),
        gaps=gaps,
        malformed={
            "local": {"injected": local_injected, "dead_lettered": local_dead_injected},
            "hub": {"injected": hub_malformed, "dead_lettered": hub_dead_total},
        },
        dead_letters={"edge": dict(edge_dead), "hub": dict(hub_dead)},
        faults=faults,
        fault_log=fault_log,
        wire=wire,
        per_edge=tallies,
        missing_examples=[[*k, n] for k, n in missing.most_common(10)],
        unexpected_examples=[[*k, n] for k, n in unexpected.most_common(10)],
    )


def render_report(report: FleetReport) -> list[str]:
    """Plain lines for people (the CLI prints them)."""
    r = report
    local, hub = r.malformed["local"], r.malformed["hub"]
    lines = [
        f"fleet: {r.customers} customers, {r.edges} edges, {r.sim_s / 3600:.1f} simulated hours in {r.wall_s:.0f} s "
        f"(speed {r.speed:g}, seed {r.seed})",
        f"faults: {', '.join(f'{k}={v}' for k, v in r.faults.items()) or 'none'}"
        f" ({len(r.fault_log)} injected)",
        f"device messages published: {r.published:,} (at most {r.feed_lag_s:.2f} s late); "
        f"device events: {r.device_events:,}",
        f"events sent by edges: {r.sent:,}   stored by the hub: {r.stored:,}",
        f"missing device events: {r.missing:,}   duplicates stored: {r.duplicates_stored:,}   gaps: {r.gaps:,}",
        f"duplicates received and discarded by the hub: {r.duplicates_discarded:,}",
        f"malformed: device payloads {local['injected']} injected / {local['dead_lettered']} dead-lettered at the edges; "
        f"batches {hub['injected']} injected / {hub['dead_lettered']} dead-lettered at the hub",
        f"dead letters: edge {r.dead_letters['edge'] or '{}'}, hub {r.dead_letters['hub'] or '{}'}",
    ]
    if r.wire:
        lines.append("wire faults: " + ", ".join(f"{k} {v}" for k, v in r.wire.items()))
    lines.append("OK: nothing was lost" if r.ok else "LOST OR WRONG: " + "; ".join(r.problems))
    return lines
