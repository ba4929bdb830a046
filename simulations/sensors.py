"""Sensors that behave like sensors, vectorised over a whole simulated window per device.

Each model turns one device's effects into a ``Track``: one row per report the device would
send (one wire message), with the canonical values that report carries (NaN where a
capability is not in that report). What they model:

* PIR motion: movements arrive as a Poisson process at the activity's rate; each is missed
  with the device's ``miss_p``; spurious triggers arrive at ``false_per_day``; occupancy goes
  true on the first detection and false ``timeout`` seconds after the last one.
* contacts: open (``contact`` false) and close (true) at the effect's times.
* climate: temperature and humidity follow a daily cycle with slow drift; a shower raises
  humidity towards saturation and the temperature by a degree or two, decaying afterwards;
  a report is sent when the value moves by one step (0.3 °C, 3 %) or at the heartbeat.
* plugs: the appliance's draw with a little noise; cumulative energy; reports on every
  change of state and periodically while drawing power, at each protocol's cadence.
* illuminance: daylight with a per-day cloud factor, plus a lamp when someone is in the room
  after dark.
* battery: a slow drain reported every few hours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .places import DeviceSpec

__all__ = [
    "BATTERY",
    "RELEASE",
    "STATE",
    "TASMOTA_STATE",
    "Track",
    "button_track",
    "climate_track",
    "contact_track",
    "lux_track",
    "motion_track",
    "plug_track",
    "reader_track",
]

DAY = 86400.0
# Message kinds (how the protocol encoder writes a row).
STATE, BATTERY, RELEASE, TASMOTA_STATE = 0, 1, 2, 3
NAN = float("nan")


@dataclass(slots=True)
class Track:
    """One device's reports in time order: ``values[capability][i]`` is NaN if absent in row i."""

    edge_id: str
    device: DeviceSpec
    ts: np.ndarray
    kind: np.ndarray
    values: dict[str, np.ndarray]
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    texts: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.ts.shape[0])


class _Rows:
    """Gathers row blocks and sorts them into a ``Track``."""

    def __init__(self) -> None:
        self.blocks: list[tuple[np.ndarray, int, dict[str, np.ndarray], dict[str, np.ndarray]]] = []

    def add(self, ts: np.ndarray, kind: int, values: dict[str, np.ndarray], extra: dict[str, np.ndarray] | None = None) -> None:
        if ts.size:
            self.blocks.append((np.asarray(ts, np.float64), kind, values, extra or {}))

    def track(self, edge_id: str, device: DeviceSpec, start: float, end: float, rng: np.random.Generator,
              *, texts: tuple[str, ...] = (), linkquality: bool = False) -> Track:
        caps = sorted({c for _, _, v, _ in self.blocks for c in v})
        extras = sorted({c for _, _, _, e in self.blocks for c in e})
        if not self.blocks:
            empty = np.empty(0)
            return Track(edge_id, device, empty, np.empty(0, np.int8), {c: empty for c in caps}, texts=texts)
        ts = np.concatenate([b[0] for b in self.blocks])
        kind = np.concatenate([np.full(b[0].size, b[1], np.int8) for b in self.blocks])
        values = {c: np.concatenate([b[2].get(c, np.full(b[0].size, NAN)) for b in self.blocks]) for c in caps}
        extra = {c: np.concatenate([b[3].get(c, np.full(b[0].size, NAN)) for b in self.blocks]) for c in extras}
        keep = (ts >= start) & (ts < end)
        order = np.argsort(ts[keep], kind="stable")
        pick = np.flatnonzero(keep)[order]
        track = Track(edge_id, device, ts[pick], kind[pick], {c: v[pick] for c, v in values.items()},
                      {c: v[pick] for c, v in extra.items()}, texts)
        if linkquality:
            track.extra["linkquality"] = rng.integers(30, 220, size=len(track)).astype(np.float64)
        return track


def _battery(rows: _Rows, device: DeviceSpec, start: float, end: float, rng: np.random.Generator) -> None:
    if device.battery_s <= 0:
        return
    n = int((end - start) / device.battery_s) + 1
    ts = start + rng.uniform(0, device.battery_s) + np.arange(n) * device.battery_s
    ts = ts + rng.normal(0.0, 0.05 * device.battery_s, size=n)
    level0 = float(rng.uniform(55.0, 100.0))
    drain = float(rng.uniform(0.02, 0.12))  # % per day
    battery = np.floor(level0 - drain * (ts - start) / DAY).clip(1, 100)
    voltage = np.round(2700.0 + 3.5 * battery + rng.normal(0, 4, size=n))
    rows.add(ts, BATTERY, {"battery": battery}, {"voltage": voltage})


def _intervals(items: Sequence[tuple[float, ...]], width: int) -> np.ndarray:
    return np.asarray(items, dtype=np.float64).reshape(-1, width)


def motion_track(edge_id: str, device: DeviceSpec, presence: Sequence[tuple[float, float, float]], start: float,
                 end: float, rng: np.random.Generator) -> Track:
    iv = _intervals(presence, 3)
    t0, t1, rate = iv[:, 0], iv[:, 1], iv[:, 2]
    dur = np.maximum(t1 - t0, 0.0)
    n = rng.poisson(dur * rate)
    moving = np.repeat(t0, n) + rng.random(int(n.sum())) * np.repeat(dur, n)
    det = np.concatenate([t0[rate > 0], moving])  # walking in is a movement too
    det = det[rng.random(det.size) >= device.miss_p]
    spurious = rng.uniform(start, end, size=rng.poisson(device.false_per_day * (end - start) / DAY))
    det = np.sort(np.concatenate([det, spurious]))
    det = det[(det >= start) & (det < end)]
    rows = _Rows()
    if det.size:
        first = np.empty(det.size, dtype=bool)
        first[0] = True
        first[1:] = np.diff(det) > device.timeout
        starts = np.flatnonzero(first)
        on = det[starts]
        off = det[np.r_[starts[1:] - 1, det.size - 1]] + device.timeout
        rows.add(on, STATE, {"occupancy": np.ones(on.size)})
        rows.add(off, STATE, {"occupancy": np.zeros(off.size)})
    _battery(rows, device, start, end, rng)
    return rows.track(edge_id, device, start, end, rng, linkquality=True)


def contact_track(edge_id: str, device: DeviceSpec, opens: Sequence[tuple[float, float]], start: float, end: float,
                  rng: np.random.Generator) -> Track:
    iv = _intervals(opens, 2)
    rows = _Rows()
    rows.add(iv[:, 0], STATE, {"contact": np.zeros(iv.shape[0])})  # contact false = open
    rows.add(iv[:, 1], STATE, {"contact": np.ones(iv.shape[0])})
    _battery(rows, device, start, end, rng)
    return rows.track(edge_id, device, start, end, rng, linkquality=True)


def button_track(edge_id: str, device: DeviceSpec, presses: Sequence[tuple[float, str]], start: float, end: float,
                 rng: np.random.Generator) -> Track:
    texts = tuple(sorted({a for _, a in presses}))
    rows = _Rows()
    if presses:
        ts = np.array([t for t, _ in presses], dtype=np.float64)
        idx = np.array([texts.index(a) for _, a in presses], dtype=np.float64)
        rows.add(ts, STATE, {"action": idx})
        rows.add(ts + 0.05, RELEASE, {})  # zigbee2mqtt's legacy follow-up ``{"action": ""}``
    _battery(rows, device, start, end, rng)
    return rows.track(edge_id, device, start, end, rng, texts=texts, linkquality=True)


def reader_track(edge_id: str, device: DeviceSpec, taps: Sequence[tuple[float, str]], start: float, end: float,
                 rng: np.random.Generator) -> Track:
    texts = tuple(sorted({v for _, v in taps}))
    rows = _Rows()
    if taps:
        ts = np.array([t for t, _ in taps], dtype=np.float64)
        rows.add(ts, STATE, {"checkin": np.array([texts.index(v) for _, v in taps], dtype=np.float64)})
    return rows.track(edge_id, device, start, end, rng, texts=texts)


def _slow_noise(rng: np.random.Generator, t: np.ndarray, amplitude: float) -> np.ndarray:
    """Drift: three slow sinusoids, evaluated every 10 minutes and interpolated (it is slow)."""
    if t.size == 0:
        return np.zeros(0)
    coarse = np.arange(t[0], t[-1] + 1200.0, 600.0)
    out = np.zeros_like(coarse)
    for _ in range(3):
        period = float(rng.uniform(3.0, 14.0)) * 3600.0
        out += amplitude * np.sin(2 * np.pi * coarse / period + float(rng.uniform(0, 2 * np.pi)))
    return np.interp(t, coarse, out)


def climate_track(edge_id: str, device: DeviceSpec, showers: Sequence[tuple[float, float]], start: float, end: float,
                  rng: np.random.Generator, *, base_temp: float) -> Track:
    grid = np.arange(start + float(rng.uniform(0, 60)), end, 60.0)
    hours = (grid % DAY) / 3600.0
    temp = base_temp + 0.7 * np.sin(2 * np.pi * (hours - 10.0) / 24.0) + _slow_noise(rng, grid, 0.12)
    hum = float(rng.uniform(38.0, 55.0)) + 4.0 * np.sin(2 * np.pi * (hours - 4.0) / 24.0) + _slow_noise(rng, grid, 0.8)
    for a, b in showers:
        i0, i1 = np.searchsorted(grid, [a, b + 3 * 3600.0])
        x = grid[i0:i1]
        inside = np.minimum(x, b) - a
        decay_h = np.where(x < b, 1.0, np.exp(-(x - b) / 1500.0))
        decay_t = np.where(x < b, 1.0, np.exp(-(x - b) / 2400.0))
        hum[i0:i1] += float(rng.uniform(30.0, 45.0)) * (1 - np.exp(-inside / 150.0)) * decay_h
        temp[i0:i1] += float(rng.uniform(0.8, 2.2)) * (1 - np.exp(-inside / 500.0)) * decay_t
    hum = np.clip(hum, 5.0, 99.0)
    rows = _Rows()
    if grid.size == 0:
        return rows.track(edge_id, device, start, end, rng)
    step_t, step_h = np.round(temp / 0.3), np.round(hum / 3.0)
    moved = np.empty(grid.size, dtype=bool)
    moved[0] = True
    moved[1:] = (np.diff(step_t) != 0) | (np.diff(step_h) != 0)
    beat = np.floor((grid - grid[0]) / device.report_s) if grid.size else grid
    moved[1:] |= np.diff(beat) != 0
    pick = np.flatnonzero(moved)
    rows.add(grid[pick] + rng.uniform(0, 30, size=pick.size), STATE,
             {"temperature": np.round(temp[pick], 2), "humidity": np.round(hum[pick], 2)},
             {"pressure": np.round(1013.0 + _slow_noise(rng, grid[pick], 3.0), 1)})
    _battery(rows, device, start, end, rng)
    return rows.track(edge_id, device, start, end, rng, linkquality=True)


def _profile(runs: Sequence[tuple[float, float, float]], relay: Sequence[tuple[float, float]]
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Merge overlapping runs (two people, one kettle) into segments; relay-on intervals likewise."""
    segs: list[list[float]] = []
    for a, b, w in sorted(runs):
        if segs and a < segs[-1][1]:
            segs[-1][1] = max(segs[-1][1], b)
            segs[-1][2] = max(segs[-1][2], w)
        else:
            segs.append([a, b, w])
    seg = np.asarray(segs, dtype=np.float64).reshape(-1, 3)
    rel: list[list[float]] = []
    for a, b in sorted(relay):
        if rel and a <= rel[-1][1]:
            rel[-1][1] = max(rel[-1][1], b)
        else:
            rel.append([a, b])
    rl = np.asarray(rel, dtype=np.float64).reshape(-1, 2)
    return seg[:, 0], seg[:, 1], seg[:, 2], rl


def _inside(t: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    idx = np.searchsorted(a, t, side="right") - 1
    ok = idx >= 0
    ok[ok] = t[ok] < b[idx[ok]]
    return ok, idx


def plug_track(edge_id: str, device: DeviceSpec, runs: Sequence[tuple[float, float, float]],
               relay: Sequence[tuple[float, float]], start: float, end: float, rng: np.random.Generator) -> Track:
    a, b, w, rl = _profile(runs, relay)
    switched = device.appliance == "desk"  # the only relay people switch; other plugs stay on

    def level(t: np.ndarray) -> np.ndarray:
        on, idx = _inside(t, a, b)
        p = np.where(on, w[np.maximum(idx, 0)], device.standby) if w.size else np.full(t.size, device.standby)
        if switched:
            relay_on, _ = _inside(t, rl[:, 0], rl[:, 1])
            p = np.where(relay_on, p, 0.0)
        return p

    # breakpoints of the noise-free draw, for exact cumulative energy
    bp = np.unique(np.concatenate([[start, end], a, b, rl.ravel()]))
    bp = bp[(bp >= start) & (bp <= end)]
    mid_level = level((bp[:-1] + bp[1:]) / 2) if bp.size > 1 else np.zeros(0)
    cum = np.concatenate([[0.0], np.cumsum(mid_level * np.diff(bp))]) / 3.6e6  # kWh
    e0 = float(rng.uniform(0.5, 400.0))

    def energy(t: np.ndarray) -> np.ndarray:
        j = np.clip(np.searchsorted(bp, t, side="right") - 1, 0, max(bp.size - 2, 0))
        lv = mid_level[j] if mid_level.size else np.zeros_like(t)
        return e0 + cum[j] + lv * (t - bp[j]) / 3.6e6

    digits = 1 if device.protocol == "shelly" else 0  # Shelly reports tenths of a watt, the others whole watts

    def noisy(t: np.ndarray) -> np.ndarray:
        p = level(t)
        p = p * (1.0 + rng.normal(0.0, 0.015, size=t.size)) + np.where(p > 0, rng.normal(0.0, 0.3, size=t.size), 0.0)
        return np.round(np.clip(p, 0.0, None), digits)

    edges = np.concatenate([a, b + 0.5])
    rel_edges = rl.ravel() + 0.2 if switched else np.zeros(0)

    def periodic(period: float, *, while_on: bool) -> np.ndarray:
        if while_on:
            n = np.floor((b - a) / period).astype(np.int64)
            k = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n) + 1
            return np.repeat(a, n) + k * period + rng.uniform(-2, 2, size=k.size)
        phase = float(rng.uniform(0, period))
        return np.arange(start + phase, end, period)

    rows = _Rows()
    proto = device.protocol
    if proto == "zigbee2mqtt":
        ts = np.sort(np.concatenate([edges, periodic(30.0, while_on=True), periodic(3600.0, while_on=False)]))
        e = np.round(energy(ts), 2)
        changed = np.r_[True, np.diff(e) != 0]
        p = noisy(ts)
        volts = np.round(rng.normal(231.0, 1.5, size=ts.size))
        rows.add(ts, STATE, {"power": p, "energy": np.where(changed, e, NAN)},
                 {"voltage": volts, "current": np.round(p / volts, 2)})
        state_ts = np.concatenate([[start], rel_edges])
        state = np.concatenate([[0.0 if switched else 1.0], np.tile([1.0, 0.0], rl.shape[0]) if switched else []])
        rows.add(state_ts, STATE, {"switch": state})
    elif proto == "tasmota":
        ts = np.sort(np.concatenate([edges, periodic(device.report_s, while_on=False)]))
        p = noisy(ts)
        volts = np.round(rng.normal(230.0, 1.5, size=ts.size))
        day_start = np.floor(ts / DAY) * DAY
        rows.add(ts, STATE, {"power": p, "energy": np.round(energy(ts), 3)},
                 {"voltage": volts, "current": np.round(p / volts, 3), "today": np.round(energy(ts) - energy(day_start), 3),
                  "yesterday": np.round(np.clip(energy(day_start) - energy(day_start - DAY), 0.0, None), 3)})
        st = np.arange(start + float(rng.uniform(0, device.report_s)), end, device.report_s)
        rows.add(np.concatenate([[start], st]), TASMOTA_STATE, {"switch": np.ones(st.size + 1)},
                 {"uptime": np.concatenate([[0.0], st - start])})
    else:  # shelly gen2: status/switch:0 on change, every minute while the counter moves, hourly otherwise
        ts = np.sort(np.concatenate([edges, rel_edges, periodic(60.0, while_on=True), periodic(device.report_s, while_on=False)]))
        p = noisy(ts)
        out = np.ones(ts.size)
        if switched:
            out, _ = _inside(ts, rl[:, 0], rl[:, 1])
            out = out.astype(np.float64)
        wh = np.round(energy(ts) * 1000.0, 3)
        tc = np.round(32.0 + p / 120.0 + rng.normal(0, 0.3, size=ts.size), 1)
        volts = np.round(rng.normal(231.0, 1.2, size=ts.size), 1)
        rows.add(ts, STATE, {"switch": out, "power": p, "energy": wh / 1000.0, "temperature": tc},
                 {"voltage": volts, "current": np.round(p / volts, 3), "wh": wh})
    return rows.track(edge_id, device, start, end, rng, linkquality=proto == "zigbee2mqtt")


def lux_track(edge_id: str, device: DeviceSpec, presence: Sequence[tuple[float, float, float]], start: float,
              end: float, rng: np.random.Generator) -> Track:
    ts = np.arange(start + float(rng.uniform(0, device.report_s)), end, device.report_s)
    day = np.floor((ts - start) / DAY).astype(np.int64)
    n_days = int(day.max()) + 1 if ts.size else 0
    cloud = rng.uniform(0.25, 1.0, size=n_days)
    peak = float(rng.uniform(150.0, 600.0))
    hours = (ts % DAY) / 3600.0
    daylight = peak * np.clip(np.sin(np.pi * (hours - 7.5) / 10.0), 0.0, None) * cloud[day]
    awake = [(t0, t1) for t0, t1, rate in presence if rate > 1 / 1000]
    iv = _intervals(sorted(awake), 2)
    lit, _ = _inside(ts, iv[:, 0], np.maximum.accumulate(iv[:, 1]) if iv.size else iv[:, 1])
    lamp = np.where(lit & (daylight < 60.0), float(rng.uniform(120.0, 260.0)), 0.0)
    lux = np.round(np.clip((daylight + lamp) * (1 + rng.normal(0, 0.03, size=ts.size)), 0.0, None), 1)
    rows = _Rows()
    rows.add(ts, STATE, {"illuminance": lux})
    return rows.track(edge_id, device, start, end, rng)
