"""What ``genius demo`` shows: one frame of hub-side facts per customer, drawn with rich or as text.

``DemoFrame`` is plain data (``as_dict`` is the ``--json`` summary); ``render_frame`` draws it
for a terminal (``rich.live.Live``), ``plain_lines`` writes it as a few lines per customer
for logs and pipes. Everything but ``truth`` comes from the hub; ``truth`` is the
simulator's narration and is always labelled so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from rich.columns import Columns
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from devices.wire import Anticipation

__all__ = ["CustomerView", "DemoFrame", "EdgeView", "plain_lines", "render_frame"]


@dataclass(frozen=True, slots=True)
class EdgeView:
    edge_id: str
    role: str | None
    online: bool | None
    devices: int
    events: int


@dataclass(frozen=True, slots=True)
class CustomerView:
    customer_id: str
    traveller: bool
    market: str  # as the hub infers it from the customer's context (``hub.markets``)
    market_why: str
    home: bool | None
    home_basis: str
    occupied: list[str]
    edges: list[EdgeView]
    rooms: list[tuple[str, str, bool, float | None]]  # (edge, room, occupied, last activity)
    recent: list[tuple[float, str, str, str, Any]]  # (ts, edge, device, capability, value)
    anticipation: Anticipation | None
    anticipation_problem: str | None
    truth: list[str] = field(default_factory=list)

    @property
    def events(self) -> int:
        return sum(e.events for e in self.edges)

    @property
    def shown_market(self) -> str:
        """The anticipation's market when the hub published one, else the context's."""
        return self.anticipation.market if self.anticipation is not None else self.market


@dataclass(frozen=True, slots=True)
class DemoFrame:
    sim_now: float
    speed: float
    wall_s: float
    broker: str
    dashboard: str | None
    customers: list[CustomerView]

    @property
    def events(self) -> int:
        return sum(c.events for c in self.customers)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sim_time": _when(self.sim_now),
            "speed": self.speed,
            "wall_s": round(self.wall_s, 1),
            "broker": self.broker,
            "dashboard": self.dashboard,
            "events_stored": self.events,
            "customers": {
                c.customer_id: {
                    "traveller": c.traveller,
                    "market": c.shown_market,
                    "market_from_context": c.market,
                    "why": c.market_why,
                    "home": c.home,
                    "occupied_rooms": c.occupied,
                    "events_stored": c.events,
                    "edges": [asdict(e) for e in c.edges],
                    "anticipation": c.anticipation.model_dump(mode="json") if c.anticipation is not None else None,
                    "simulation_truth": c.truth,
                }
                for c in self.customers
            },
        }


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%a %Y-%m-%d %H:%M")


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%H:%M")


def _ago(now: float, ts: float | None) -> str:
    if ts is None:
        return "-"
    m = max(0, int((now - ts) // 60))
    return f"{m} min ago" if m < 120 else f"{m // 60} h ago"


_BOOL_WORDS = {"contact": ("closed", "open"), "occupancy": ("occupied", "clear"), "presence": ("present", "away"),
               "lock": ("locked", "unlocked")}


def _value(v: Any, capability: str = "") -> str:
    if isinstance(v, bool):
        yes, no = _BOOL_WORDS.get(capability, ("on", "off"))
        return yes if v else no
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _home(c: CustomerView) -> str:
    return {True: "someone home", False: "nobody home", None: "home: no signal yet"}[c.home] + f" ({c.home_basis})"


def _anticipation_lines(c: CustomerView) -> list[str]:
    if c.anticipation_problem:
        return [c.anticipation_problem]
    a = c.anticipation
    if a is None:
        return ["no model yet (nothing on the hub's anticipations topic)"]
    out = [f"{a.model} · {a.market}"]
    for job in a.jobs[:3]:
        mins = "" if job.expected_in_s is None else f" in ~{job.expected_in_s / 60:.0f} min"
        because = "; ".join(job.because[:2])
        out.append(f"{job.job.replace('_', ' ')} {job.probability:.0%}{mins}" + (f" — because {because}" if because else ""))
    return out


def _panel(c: CustomerView, now: float) -> Panel:
    t = Table.grid(padding=(0, 1))
    t.add_column(style="bold", no_wrap=True)
    t.add_column()
    t.add_row("market", Text(f"{c.shown_market}  ({c.market_why})", style="bold cyan"))
    t.add_row("context", f"{_home(c)}; occupied: {', '.join(c.occupied) or '-'}")
    edges = Text()
    for e in c.edges:
        dot = {True: ("●", "green"), False: ("●", "red"), None: ("○", "dim")}[e.online]
        edges.append(dot[0] + " ", style=dot[1])
        edges.append(f"{e.edge_id.split('-', 1)[-1]} ({e.role or '?'}): {e.devices} devices, {e.events:,} events\n")
    t.add_row("edges", edges)
    rooms = "\n".join(f"{'■' if occ else '□'} {room} @ {edge.split('-', 1)[-1]}: {_ago(now, ts)}"
                      for edge, room, occ, ts in c.rooms) or "-"
    t.add_row("rooms", rooms)
    recent = "\n".join(f"{_clock(ts)} {device} @ {edge.split('-', 1)[-1]}: {cap}={_value(v, cap)}"
                       for ts, edge, device, cap, v in c.recent) or "-"
    t.add_row("last events", recent)
    t.add_row("anticipation", "\n".join(_anticipation_lines(c)))
    t.add_row(Text("simulation truth", style="dim"), Text("\n".join(c.truth) or "-", style="dim italic"))
    title = f"{c.customer_id}" + ("  ✈ business trip" if c.traveller else "")
    return Panel(t, title=title, title_align="left", border_style="cyan" if c.traveller else "blue")


def render_frame(frame: DemoFrame) -> RenderableType:
    head = Text()
    head.append("Genius demo", style="bold")
    head.append(f"  ·  simulated {_when(frame.sim_now)} UTC  ·  {frame.speed:g}× ·  {frame.wall_s:.0f} s  ·  "
                f"{frame.events:,} events stored by the hub  ·  {frame.broker}")
    if frame.dashboard:
        head.append(f"\ndashboard: {frame.dashboard}", style="underline")
    head.append("\nEverything but 'simulation truth' is read from the hub. Ctrl-C stops.", style="dim")
    return Group(head, Columns([_panel(c, frame.sim_now) for c in frame.customers], equal=True, expand=True))


def plain_lines(frame: DemoFrame) -> list[str]:
    out = [f"[{_when(frame.sim_now)} UTC, {frame.wall_s:.0f} s] {frame.events:,} events stored by the hub"]
    for c in frame.customers:
        rooms = ", ".join(c.occupied) or "-"
        out.append(f"  {c.customer_id}: market {c.shown_market} ({c.market_why}); {_home(c)}; occupied {rooms}; "
                   f"{c.events:,} events from {sum(1 for e in c.edges if e.events)} edges")
        out.append(f"    anticipation: {' | '.join(_anticipation_lines(c))}")
        if c.truth:
            out.append(f"    simulation truth: {'; '.join(c.truth)}")
    return out
