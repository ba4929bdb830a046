"""One simulated customer over a window of time: wire messages, canonical events, ground truth.

    sim = CustomerSimulation(spec)
    for msg in sim.run(start, end): ...        # WireMessage(ts, edge_id, topic, payload, retain)
    for ev in sim.events(start, end): ...      # SimEvent(ts, edge_id, device, room, capability, value)
    sim.labels(start, end)                     # [Label(customer_id, resident, job, market, edge_id, begin, end)]

Simulated time runs without MQTT: the window is planned and every sensor modelled at once
(whole days from the UTC midnight before ``start``), then cut to ``[start, end)``. Results
are deterministic for (spec, start, end). Times are UTC epoch seconds; the simulated
households live on UTC wall-clock time.

Venue edges (hotel, holiday home, gym) relay a customer's events only while the customer is
there (from check-in to check-out, with a few minutes either side): that is the consent a
venue edge has.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date, datetime, timezone
from typing import NamedTuple

import numpy as np

from devices.capabilities import KIND

from .calendar import plan_calendar
from .payloads import WireMessage, announce, device_name, encode, track_order
from .places import PlaceSpec
from .population import CustomerSpec
from .routines import DAY, Effects, JobRun, plan_runs
from .sensors import (
    Track,
    button_track,
    climate_track,
    contact_track,
    lux_track,
    motion_track,
    plug_track,
    reader_track,
)

__all__ = ["CustomerSimulation", "EventBlock", "Label", "SimEvent", "to_epoch"]

Time = float | int | datetime | date


class SimEvent(NamedTuple):
    """A canonical event as an edge would make it from the wire message (before its ``seq``)."""

    ts: float
    edge_id: str
    device: str
    room: str | None
    capability: str
    value: bool | float | str


class Label(NamedTuple):
    """Ground truth for one job run; never sent on the wire."""

    customer_id: str
    resident: int
    job: str
    market: str
    edge_id: str
    begin: float
    end: float


class EventBlock(NamedTuple):
    """All events of one (device, capability) as arrays; text values index ``texts``."""

    edge_id: str
    device: str
    room: str | None
    capability: str
    ts: np.ndarray
    value: np.ndarray
    texts: tuple[str, ...]


def to_epoch(t: Time) -> float:
    """UTC epoch seconds from a number, an aware/naive (taken as UTC) datetime or a date."""
    if isinstance(t, datetime):
        return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).timestamp()
    if isinstance(t, date):
        return datetime(t.year, t.month, t.day, tzinfo=timezone.utc).timestamp()
    return float(t)


class _Window(NamedTuple):
    start: float
    end: float
    runs: list[JobRun]
    tracks: list[Track]


class CustomerSimulation:
    """Simulates one ``CustomerSpec``; keeps the last window so run/events/labels agree."""

    def __init__(self, spec: CustomerSpec) -> None:
        self.spec = spec
        self._last: _Window | None = None

    @property
    def customer_id(self) -> str:
        return self.spec.customer_id

    # public views ---------------------------------------------------------------------------
    def run(self, start: Time, end: Time, *, discovery: bool = True) -> Iterator[WireMessage]:
        """Every message the customer's devices publish in ``[start, end)``, in time order.

        With ``discovery`` the retained discovery/availability messages of every place come
        first, stamped ``start``.
        """
        for msg, _ in self.run_with_events(start, end, discovery=discovery):
            yield msg

    def run_with_events(self, start: Time, end: Time, *, discovery: bool = True
                        ) -> Iterator[tuple[WireMessage, list[SimEvent]]]:
        """``run``, each message paired with the canonical events an edge should read from it."""
        w = self._window(start, end)
        if discovery:
            for place in self.spec.places:
                for msg in announce(place, w.start):
                    yield msg, []
        which, row = track_order(w.tracks)
        tracks = w.tracks
        names = [device_name(t.device) for t in tracks]
        for k, i in zip(which.tolist(), row.tolist()):
            track = tracks[k]
            topic, payload = encode(track, i)
            ts = float(track.ts[i])
            events = []
            for cap, col in track.values.items():
                raw = float(col[i])
                if raw == raw:
                    events.append(SimEvent(ts, track.edge_id, names[k], track.device.room, cap,
                                           _typed(cap, raw, track.texts)))
            yield WireMessage(ts, track.edge_id, topic, payload), events

    def event_blocks(self, start: Time, end: Time) -> list[EventBlock]:
        """Canonical events as one array block per (device, capability): the fast path for datasets."""
        w = self._window(start, end)
        blocks = []
        for track in w.tracks:
            name = device_name(track.device)
            for cap, col in track.values.items():
                mask = ~np.isnan(col)
                if mask.any():
                    blocks.append(EventBlock(track.edge_id, name, track.device.room, cap, track.ts[mask], col[mask],
                                             track.texts))
        return blocks

    def events(self, start: Time, end: Time) -> Iterator[SimEvent]:
        """Canonical events in time order (ties in device order), with wire-typed values."""
        blocks = self.event_blocks(start, end)
        if not blocks:
            return
        ts = np.concatenate([b.ts for b in blocks])
        which = np.concatenate([np.full(b.ts.size, k) for k, b in enumerate(blocks)])
        row = np.concatenate([np.arange(b.ts.size) for b in blocks])
        order = np.argsort(ts, kind="stable")
        for k, i in zip(which[order].tolist(), row[order].tolist()):
            b = blocks[k]
            yield SimEvent(float(b.ts[i]), b.edge_id, b.device, b.room, b.capability,
                           _typed(b.capability, float(b.value[i]), b.texts))

    def labels(self, start: Time, end: Time) -> list[Label]:
        """Job runs that begin in ``[start, end)``, in time order."""
        w = self._window(start, end)
        cid = self.spec.customer_id
        return [Label(cid, r.resident, r.job, r.market, r.edge_id, r.begin, r.end) for r in w.runs]

    # the simulation ---------------------------------------------------------------------------
    def _window(self, start: Time, end: Time) -> _Window:
        t_start, t_end = to_epoch(start), to_epoch(end)
        if not t_end > t_start:
            raise ValueError(f"empty window [{start}, {end})")
        if self._last is not None and (self._last.start, self._last.end) == (t_start, t_end):
            return self._last
        day0 = math.floor(t_start / DAY) * DAY
        n_days = math.ceil((t_end - day0) / DAY)
        spec = self.spec
        stamp = int(day0 // DAY)
        weekday0 = (stamp + 3) % 7  # 1970-01-01 was a Thursday
        calendar = plan_calendar(np.random.default_rng([spec.seed, stamp, n_days, 1]), spec.residents,
                                 n_days=n_days, weekday0=weekday0)
        runs, effects = plan_runs(spec, calendar, t0=day0, rng=np.random.default_rng([spec.seed, stamp, 2]))
        runs = [r for r in runs if t_start <= r.begin < t_end]
        tracks: list[Track] = []
        for p, place in enumerate(spec.places):
            stays = None if place.role == "home" else _stays(runs, place.edge_id)
            if stays is not None and not stays:
                continue
            temp_rng = np.random.default_rng([spec.seed, stamp, 3, p])
            base_temp = float(temp_rng.uniform(19.0, 23.0))
            for k, device in enumerate(place.devices):
                rng = np.random.default_rng([spec.seed, stamp, 4, p, k])
                track = _track(place, device.key, effects, t_start, t_end, rng, base_temp)
                if stays is not None:
                    track = _within(track, stays)
                if len(track):
                    tracks.append(track)
        self._last = _Window(t_start, t_end, runs, tracks)
        return self._last


def _typed(capability: str, raw: float, texts: tuple[str, ...]) -> bool | float | str:
    kind = KIND[capability]
    return bool(raw) if kind == "bool" else texts[int(raw)] if kind == "text" else raw


def _track(place: PlaceSpec, key: str, fx: Effects, start: float, end: float, rng: np.random.Generator,
           base_temp: float) -> Track:
    device = place.device(key)
    assert device is not None
    edge = place.edge_id
    if device.kind == "motion":
        return motion_track(edge, device, fx.presence.get((edge, device.room), []), start, end, rng)
    if device.kind == "contact":
        return contact_track(edge, device, fx.contact.get((edge, key), []), start, end, rng)
    if device.kind == "climate":
        return climate_track(edge, device, fx.shower.get((edge, device.room), []), start, end, rng,
                             base_temp=base_temp + (1.0 if device.room == "bathroom" else 0.0))
    if device.kind == "button":
        return button_track(edge, device, fx.button.get((edge, key), []), start, end, rng)
    if device.kind == "plug":
        return plug_track(edge, device, fx.power.get((edge, key), []), fx.relay.get((edge, key), []), start, end, rng)
    if device.kind == "illuminance":
        return lux_track(edge, device, fx.presence.get((edge, device.room), []), start, end, rng)
    return reader_track(edge, device, fx.checkin.get((edge, key), []), start, end, rng)


def _stays(runs: list[JobRun], edge_id: str) -> list[tuple[float, float]]:
    """Intervals the customer spends at a venue: first to last job there between arrivals."""
    stays: list[tuple[float, float]] = []
    begin = last = None
    for r in runs:
        if r.edge_id != edge_id:
            continue
        if r.job == "check_in" or begin is None:
            if begin is not None:
                stays.append((begin, last))  # type: ignore[arg-type]
            begin = r.begin
        last = r.end
        if r.job == "check_out":
            stays.append((begin, last))
            begin = None
    if begin is not None:
        stays.append((begin, math.inf))
    return [(a - 600.0, b + 600.0) for a, b in stays]


def _within(track: Track, stays: list[tuple[float, float]]) -> Track:
    keep = np.zeros(len(track), dtype=bool)
    for a, b in stays:
        keep |= (track.ts >= a) & (track.ts < b)
    return Track(track.edge_id, track.device, track.ts[keep], track.kind[keep],
                 {c: v[keep] for c, v in track.values.items()}, {c: v[keep] for c, v in track.extra.items()},
                 track.texts)
