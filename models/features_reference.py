"""Reference implementations of the feature kernels, for tests and the benchmark.

- :func:`reference_features` — plain numpy, vectorised: one ``searchsorted`` per horizon over
  the event times and prefix sums of per-entity activation counts; ``maximum.accumulate``
  for the latest activation and state. Memory O(n·(D+R)): for tests and benchmarks only.
- :func:`python_features` — the kernels' sliding-window algorithm in plain Python (lists and
  ``math``), to show what the compiled kernel buys.

Both take and return what :func:`models.features.compute_features` does, and compute the
same features (see that module's docstring) with libm's ``log1p``; results agree with the
kernels to float32 precision.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from models.features import EventWindow, _check_times, _output, _per_time
from models.schema import ActivationRule, FeatureSchema

__all__ = ["python_features", "reference_features"]

_DAY = 86400.0


def _inputs(
    schema: FeatureSchema,
    times: ArrayLike,
    markets: ArrayLike | None,
    jobs: ArrayLike | None,
    job_since_s: ArrayLike | None,
) -> tuple[NDArray[np.float64], NDArray[Any], NDArray[Any], NDArray[Any]]:
    times_ = np.ascontiguousarray(times, dtype=np.float64)
    _check_times(times_, "anticipation times")
    m = times_.shape[0]
    return (
        times_,
        _per_time(markets, m, np.int32, -1, "markets"),
        _per_time(jobs, m, np.int32, -1, "jobs"),
        _per_time(job_since_s, m, np.float64, np.nan, "job_since_s"),
    )


def _activation_kinds(schema: FeatureSchema, window: EventWindow) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Per event: is it an activation, and does it bear its device's state."""
    codes, thresholds = schema.rule_arrays
    cap = window.capability
    known = (cap >= 0) & (cap < codes.shape[0]) & ~np.isnan(window.value)
    safe = np.where(known, cap, 0)
    rule = np.where(known, codes[safe], ActivationRule.NONE)
    v = window.value
    act = (
        ((rule == ActivationRule.TRUTHY) & (v != 0))
        | ((rule == ActivationRule.FALSY) & (v == 0))
        | (rule == ActivationRule.EVENT)
        | ((rule == ActivationRule.ABOVE) & (v > thresholds[safe]))
    )
    bears = np.isin(rule, (ActivationRule.TRUTHY, ActivationRule.FALSY, ActivationRule.ABOVE))
    return act, bears


def _scaled_since(seconds: NDArray[np.float64], cap: float) -> NDArray[np.float64]:
    s = np.clip(np.nan_to_num(seconds, nan=np.inf), 0.0, cap)
    return np.log1p(s) / np.log1p(cap)


def _context_columns(
    schema: FeatureSchema,
    out: NDArray[np.float32],
    times: NDArray[np.float64],
    markets: NDArray[np.int32],
    jobs: NDArray[np.int32],
    job_since: NDArray[np.float64],
    tz_offset_s: float,
) -> None:
    lay = schema.layout
    m = times.shape[0]
    local = times + tz_offset_s
    day = np.floor(local / _DAY)
    angle = 2.0 * np.pi * ((local - day * _DAY) / _DAY)
    weekday = (day.astype(np.int64) + 3) % 7
    dow_angle = 2.0 * np.pi * np.arange(7) / 7.0
    out[:, lay.time] = np.sin(angle)
    out[:, lay.time + 1] = np.cos(angle)
    out[:, lay.time + 2] = np.sin(dow_angle)[weekday]
    out[:, lay.time + 3] = np.cos(dow_angle)[weekday]
    out[:, lay.time + 4] = weekday >= 5
    out[:, lay.market : lay.job_since] = 0.0
    rows = np.arange(m)
    ok = (markets >= 0) & (markets < lay.n_markets)
    out[rows[ok], lay.market + markets[ok]] = 1.0
    ok = (jobs >= 0) & (jobs < lay.n_jobs)
    out[rows[ok], lay.job + jobs[ok]] = 1.0
    out[:, lay.job_since] = _scaled_since(job_since, schema.since_cap_s)


def reference_features(
    schema: FeatureSchema,
    window: EventWindow,
    times: ArrayLike,
    *,
    markets: ArrayLike | None = None,
    jobs: ArrayLike | None = None,
    job_since_s: ArrayLike | None = None,
    tz_offset_s: float = 0.0,
    out: NDArray[np.float32] | None = None,
    chunk: int = 16384,
) -> NDArray[np.float32]:
    """Plain-numpy :func:`models.features.compute_features`.

    Per event: prefix sums of activations per entity and the index of each entity's latest
    activation and state event (``(n+1, D+R)`` int32 tables). Per anticipation time: one
    ``searchsorted`` for what is seen and one per horizon for what has left the window,
    then gathers from the tables, ``chunk`` times at a time so temporaries stay in cache
    instead of costing fresh pages.
    """
    times_, markets_, jobs_, job_since = _inputs(schema, times, markets, jobs, job_since_s)
    lay = schema.layout
    m, n, n_dev, n_ent = times_.shape[0], window.ts.shape[0], lay.n_devices, lay.n_entities
    result = _output(out, (m, lay.width))
    act, bears = _activation_kinds(schema, window)

    # Entity columns of each event: its device (0..D-1) and its room (D..D+R-1).
    dev_ok = (window.device >= 0) & (window.device < n_dev)
    room_ok = (window.room >= 0) & (window.room < lay.n_rooms)
    events = np.arange(n, dtype=np.int32)
    dev_act, room_act, carriers = act & dev_ok, act & room_ok, bears & dev_ok
    # Row i of each table describes the first i events; row 0 is "nothing seen".
    counts = np.zeros((n + 1, n_ent), dtype=np.int32)
    counts[events[dev_act] + 1, window.device[dev_act]] = 1
    counts[events[room_act] + 1, n_dev + window.room[room_act]] = 1
    latest = np.where(counts > 0, np.arange(-1, n, dtype=np.int32)[:, None], np.int32(-1))
    np.maximum.accumulate(latest, axis=0, out=latest)
    np.cumsum(counts, axis=0, out=counts)
    state_at = np.full((n + 1, n_dev), -1, dtype=np.int32)
    state_at[events[carriers] + 1, window.device[carriers]] = events[carriers]
    np.maximum.accumulate(state_at, axis=0, out=state_at)
    # Sentinels so gathers need no masks: event -1 has ts -inf (never) and is no activation.
    ts_ext = np.append(window.ts, -np.inf)
    act_ext = np.append(act, False)

    seen = np.searchsorted(window.ts, times_, side="right")
    gone = [np.searchsorted(window.ts, times_ - h, side="right") for h in schema.horizons_s]
    log_cap = np.log1p(schema.since_cap_s)
    for lo in range(0, m, chunk):
        hi = min(lo + chunk, m)
        rows = result[lo:hi]
        now = counts[seen[lo:hi]]
        for h in range(lay.n_horizons):
            rows[:, h * n_ent : (h + 1) * n_ent] = now - counts[gone[h][lo:hi]]
        elapsed = times_[lo:hi, None] - ts_ext[latest[seen[lo:hi]]]
        np.minimum(elapsed, schema.since_cap_s, out=elapsed)
        np.maximum(elapsed, 0.0, out=elapsed)
        # float32 log1p: the output's precision, at SIMD speed.
        rows[:, lay.since : lay.state] = np.log1p(elapsed.astype(np.float32)) * np.float32(1.0 / log_cap)
        rows[:, lay.state : lay.time] = act_ext[state_at[seen[lo:hi]]]

    _context_columns(schema, result, times_, markets_, jobs_, job_since, tz_offset_s)
    return result


def python_features(
    schema: FeatureSchema,
    window: EventWindow,
    times: ArrayLike,
    *,
    markets: ArrayLike | None = None,
    jobs: ArrayLike | None = None,
    job_since_s: ArrayLike | None = None,
    tz_offset_s: float = 0.0,
    out: NDArray[np.float32] | None = None,
) -> NDArray[np.float32]:
    """Plain-Python :func:`models.features.compute_features` (the same two-pointer pass)."""
    times_, markets_, jobs_, job_since = _inputs(schema, times, markets, jobs, job_since_s)
    lay = schema.layout
    m = times_.shape[0]
    result = _output(out, (m, lay.width))
    codes, thresholds = (a.tolist() for a in schema.rule_arrays)
    horizons = list(schema.horizons_s)
    cap = schema.since_cap_s
    log_cap = math.log1p(cap)
    n_dev, n_room, n_ent = lay.n_devices, lay.n_rooms, lay.n_entities
    ts, dev, room, capability, value = (a.tolist() for a in window)
    n = len(ts)

    def kind(i: int) -> int:
        c, v = capability[i], value[i]
        if not 0 <= c < len(codes) or math.isnan(v):
            return 0
        r = codes[c]
        if r == ActivationRule.TRUTHY:
            return 2 if v != 0 else 1
        if r == ActivationRule.FALSY:
            return 2 if v == 0 else 1
        if r == ActivationRule.EVENT:
            return 3
        if r == ActivationRule.ABOVE:
            return 2 if v > thresholds[c] else 1
        return 0

    def scaled(s: float) -> float:
        return math.log1p(min(max(s, 0.0), cap)) / log_cap

    row = [0.0] * lay.width
    last = [-math.inf] * n_ent
    tails = [0] * len(horizons)
    head = 0
    for j, t in enumerate(times_.tolist()):
        while head < n and ts[head] <= t:
            k = kind(head)
            d, r = dev[head], room[head]
            d_ok, r_ok = 0 <= d < n_dev, 0 <= r < n_room
            if k >= 2:
                for h in range(len(horizons)):
                    if d_ok:
                        row[h * n_ent + d] += 1
                    if r_ok:
                        row[h * n_ent + n_dev + r] += 1
                if d_ok:
                    last[d] = ts[head]
                if r_ok:
                    last[n_dev + r] = ts[head]
            if d_ok and k in (1, 2):
                row[lay.state + d] = 1.0 if k == 2 else 0.0
            head += 1
        for h, horizon in enumerate(horizons):
            edge = t - horizon
            i = tails[h]
            while i < head and ts[i] <= edge:
                if kind(i) >= 2:
                    d, r = dev[i], room[i]
                    if 0 <= d < n_dev:
                        row[h * n_ent + d] -= 1
                    if 0 <= r < n_room:
                        row[h * n_ent + n_dev + r] -= 1
                i += 1
            tails[h] = i
        for e in range(n_ent):
            row[lay.since + e] = scaled(t - last[e])
        local = t + tz_offset_s
        day = math.floor(local / _DAY)
        angle = 2.0 * math.pi * ((local - day * _DAY) / _DAY)
        weekday = (day + 3) % 7
        dow_angle = 2.0 * math.pi * weekday / 7.0
        row[lay.time : lay.market] = [
            math.sin(angle), math.cos(angle), math.sin(dow_angle), math.cos(dow_angle),
            1.0 if weekday >= 5 else 0.0,
        ]
        context = [0.0] * (lay.width - lay.market)
        mk, jb, js = int(markets_[j]), int(jobs_[j]), float(job_since[j])
        if 0 <= mk < lay.n_markets:
            context[mk] = 1.0
        if 0 <= jb < lay.n_jobs:
            context[lay.n_markets + jb] = 1.0
        context[-1] = 1.0 if math.isnan(js) else scaled(js)
        row[lay.market :] = context
        result[j] = row
    return result
