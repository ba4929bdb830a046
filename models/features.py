"""numba feature kernels: a customer's event window → feature vectors at anticipation times.

Two entry points share one definition of every feature (the schema's column layout):

- :func:`compute_features` — a vector at each of many sorted times (training: at every event),
  one forward pass with a head pointer and one tail pointer per horizon, O(n + m·F);
- :func:`features_at` — one vector at one time, a backward scan from that time;
- :class:`models.features_stream.FeatureStream` — the forward pass kept alive between calls,
  for the hub: push events as they arrive, read the vector now.

What the features mean, at anticipation time ``t`` (events with ``ts <= t`` are *seen*):

- ``act_<h>``: seen activations with ``ts > t - h`` (window ``(t-h, t]``), per device and per
  the event's room. Activation rules per capability are the schema's (:class:`ActivationRule`).
- ``since``: ``log1p(min(t - last, cap)) / log1p(cap)`` where ``last`` is the latest seen
  activation; 1.0 when there is none. Computed to float32 precision (|error| < 1e-6) with an
  inlined branch-free ``log1p`` that vectorises, because libm's scalar one cost 3x the budget.
- ``state``: 1.0 when the device's latest seen state-bearing event (rule truthy, falsy or
  above, value not NaN) was an activation (occupied, open, on, unlocked), else 0.0.
- time of day and day of week as sin/cos at ``t + tz_offset_s`` (local time), ``weekend``
  1.0 on Saturday and Sunday.
- one-hot market and recognised job per anticipation time (input index, ``-1`` none) and
  ``job.since`` from the given seconds since the last recognised job (NaN = never → 1.0,
  negative → 0, capped as above).

Inputs out of range (device, room, capability, market, job index) are unknown and skipped:
the kernels never index out of bounds, whatever they are given. Simultaneous timestamps are
all seen at that time; among them the latest in array order sets the state.
Outputs are float32 (what ONNX models take); pass ``out=`` to reuse a buffer, since first
touch of fresh memory costs about 2.5 s/GB on this machine.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, NamedTuple

import numpy as np
from numba import njit, types
from numba.extending import intrinsic
from numpy.typing import ArrayLike, NDArray

from models.schema import FeatureSchema

__all__ = [
    "EventWindow",
    "compute_features",
    "features_at",
    "warmup",
]

log = logging.getLogger(__name__)

_DAY = 86400.0
_TWO_PI = 2.0 * math.pi
# 1970-01-01 was a Thursday: (day number + 3) % 7 gives Monday = 0.
_EPOCH_WEEKDAY = 3

# error_model="numpy": float division without a ZeroDivisionError branch, which is what
# lets LLVM vectorise the loops; "contract" fuses multiply-adds (no NaN/inf assumptions).
_KERNEL: dict[str, Any] = {"cache": True, "nogil": True, "error_model": "numpy", "fastmath": {"contract"}}

# log of a float32 x >= 1 from its bits (see _ln): exponent and mantissa masks, and the
# float32 whose bits are 2**23 + e for a small e, so e comes out by one subtraction.
_F32 = np.float32
_MANTISSA = np.int32(0x007FFFFF)
_ONE_BITS = np.int32(0x3F800000)
_EXP_MAGIC = np.int32(0x4B000000)
_EXP_BIAS = _F32(8388608.0 + 127.0)
_SQRT2_F32 = _F32(math.sqrt(2.0))
_LN2_F32 = _F32(math.log(2.0))
_ATANH = (_F32(2.0), _F32(2.0 / 3.0), _F32(2.0 / 5.0), _F32(2.0 / 7.0))

# Time of day by table: sin/cos at each minute, then the angle-addition formulas over the
# remaining < 60 s (a 4.4e-3 rad angle, where short Taylor series are exact to 1e-16),
# because two libm calls per row cost more than the rest of the context columns.
_MINUTE = 60.0
_MINUTE_ANGLES = np.arange(1441) * (_TWO_PI / 1440.0)
_TOD_SIN = np.sin(_MINUTE_ANGLES)
_TOD_COS = np.cos(_MINUTE_ANGLES)
_RAD_PER_S = _TWO_PI / _DAY

# Scratch for the since block is padded to whole AVX float32 vectors.
_LANES = 8


def _f32_bits_typing(typingctx, x):  # type: ignore[no-untyped-def]
    """The int32 whose bits are float32 ``x`` (LLVM bitcast; vectorises, unlike frexp)."""
    if x != types.float32:
        return None

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        return builder.bitcast(args[0], context.get_value_type(types.int32))

    return types.int32(types.float32), codegen


def _bits_f32_typing(typingctx, x):  # type: ignore[no-untyped-def]
    """The float32 whose bits are integer ``x`` truncated to int32."""
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        value = context.cast(builder, args[0], sig.args[0], types.int32)
        return builder.bitcast(value, context.get_value_type(types.float32))

    return types.float32(x), codegen


# Typed as Any: inside kernels they are called with one argument, numba supplies the rest.
_f32_bits: Any = intrinsic(_f32_bits_typing)
_bits_f32: Any = intrinsic(_bits_f32_typing)


class EventWindow(NamedTuple):
    """A customer's events, sorted by time; indices refer to a :class:`FeatureSchema`.

    ``device``, ``room`` and ``capability`` are indices into the schema's vocabularies
    (``-1`` or anything out of range = unknown), ``value`` is float64 (bool → 0/1, text → a
    category index, as the dataset format stores it).
    """

    ts: NDArray[np.float64]
    device: NDArray[np.int32]
    room: NDArray[np.int32]
    capability: NDArray[np.int32]
    value: NDArray[np.float64]

    @classmethod
    def from_arrays(
        cls,
        ts: ArrayLike,
        device: ArrayLike,
        room: ArrayLike,
        capability: ArrayLike,
        value: ArrayLike,
    ) -> EventWindow:
        """Normalise dtypes (no copy when they already fit) and check the contract.

        Raises ``ValueError`` for unequal lengths or timestamps that are not sorted
        ascending or not finite.
        """
        window = cls(
            np.ascontiguousarray(ts, dtype=np.float64),
            np.ascontiguousarray(device, dtype=np.int32),
            np.ascontiguousarray(room, dtype=np.int32),
            np.ascontiguousarray(capability, dtype=np.int32),
            np.ascontiguousarray(value, dtype=np.float64),
        )
        n = window.ts.shape[0]
        if any(a.ndim != 1 or a.shape[0] != n for a in window):
            raise ValueError("event arrays must be one-dimensional and of equal length")
        _check_times(window.ts, "event timestamps")
        return window

    @classmethod
    def empty(cls) -> EventWindow:
        return cls.from_arrays(np.empty(0), np.empty(0), np.empty(0), np.empty(0), np.empty(0))


def _check_times(times: NDArray[np.float64], what: str) -> None:
    if times.size and not np.isfinite(times).all():
        raise ValueError(f"{what} must be finite")
    if times.size > 1 and bool((times[1:] < times[:-1]).any()):
        raise ValueError(f"{what} must be sorted ascending")


# ---------------------------------------------------------------------------- kernels


@njit(inline="always", **_KERNEL)
def _u(index: int) -> int:
    """``index`` (known to be ``>= 0``) as unsigned, so numba skips its negative-index
    wraparound: that select on every computed offset kept LLVM from vectorising stores at
    ``base + k`` and cost a few instructions on every scattered access."""
    return np.uint64(index)


@njit(inline="always", **_KERNEL)
def _effect(
    rule: NDArray[np.int8], threshold: NDArray[np.float64], cap: int, v: float
) -> tuple[bool, bool]:
    """(is an activation, bears its device's state) for an event of capability index ``cap``.

    Branch-free (selects and bitwise ``&``/``|`` on bools): capabilities arrive in no
    predictable order, so branches here would mispredict on most events.
    """
    known = (cap >= 0) & (cap < rule.shape[0]) & (v == v)
    safe = cap if known else 0
    r = rule[safe] if known else 0
    zero = v == 0.0
    act = known & (
        ((r == 1) & (zero == False))  # noqa: E712 - bool arithmetic, not a truth test
        | ((r == 2) & zero)
        | (r == 3)
        | ((r == 4) & (v > threshold[safe]))
    )
    bears = known & ((r == 1) | (r == 2) | (r == 4))
    return act, bears


@njit(inline="always", **_KERNEL)
def _ln(x: float) -> float:
    """Natural log of a float32 ``x >= 1`` without libm, so loops over it vectorise.

    ``x = 2**k * m`` from the bits, ``m`` folded into ``[sqrt(1/2), sqrt(2))``, then the
    atanh series ``log m = 2(z + z³/3 + z⁵/5 + z⁷/7)``, ``z = (m-1)/(m+1)``, ``|z| < 0.172``:
    |error| < 1e-7, the precision of the float32 output.
    """
    bits = _f32_bits(x)
    k = _bits_f32((bits >> 23) | _EXP_MAGIC) - _EXP_BIAS
    m = _bits_f32((bits & _MANTISSA) | _ONE_BITS)
    fold = m >= _SQRT2_F32
    m = m * _F32(0.5) if fold else m
    k = k + _F32(1.0) if fold else k
    z = (m - _F32(1.0)) / (m + _F32(1.0))
    z2 = z * z
    series = z * (_ATANH[0] + z2 * (_ATANH[1] + z2 * (_ATANH[2] + z2 * _ATANH[3])))
    return k * _LN2_F32 + series


@njit(inline="always", **_KERNEL)
def _since_block(
    t: float,
    last: NDArray[np.float64],
    cap: float,
    scratch: NDArray[np.float32],
    scale: float,
    dst: NDArray[np.float32],
    offset: int,
    count: int,
) -> None:
    """``dst[offset + e] = log1p(clip(t - last[e], 0, cap)) * scale`` for ``e < count``;
    ``scratch[count]`` gets the value for ``last[count]`` (the job's slot).

    Two passes over a padded float32 scratch so both loops vectorise without remainders.
    """
    for e in range(scratch.shape[0]):
        s = t - last[e]
        s = s if s < cap else cap
        s = s if s > 0.0 else 0.0
        scratch[e] = 1.0 + s
    scale32 = _F32(scale)
    for e in range(scratch.shape[0]):
        scratch[e] = _ln(scratch[e]) * scale32
    for e in range(count):
        dst[_u(offset + e)] = scratch[e]


@njit(inline="always", **_KERNEL)
def _job_last(t: float, job_since: float) -> float:
    """The job's slot in ``last``: seconds since the job become a time; NaN (never) -inf."""
    return -np.inf if job_since != job_since else t - job_since


@njit(inline="always", **_KERNEL)
def _time_of_day(seconds: float) -> tuple[float, float]:
    """sin and cos of ``2π·seconds/86400`` for ``0 <= seconds < 86400``."""
    # Any anchor within a minute or two is as exact, so multiply rather than divide.
    minute = min(max(int(seconds * (1.0 / _MINUTE)), 0), 1440)  # the table has both ends
    d = (seconds - minute * _MINUTE) * _RAD_PER_S
    d2 = d * d
    sin_d = d * (1.0 - d2 / 6.0 * (1.0 - d2 / 20.0))
    cos_d = 1.0 - d2 / 2.0 * (1.0 - d2 / 12.0 * (1.0 - d2 / 30.0))
    s0, c0 = _TOD_SIN[minute], _TOD_COS[minute]
    return s0 * cos_d + c0 * sin_d, c0 * cos_d - s0 * sin_d


@njit(inline="always", **_KERNEL)
def _weekday(day: int) -> tuple[float, float, float]:
    """sin and cos of the weekday angle (Monday = 0) and the weekend flag of a day number."""
    weekday = (day + _EPOCH_WEEKDAY) % 7
    angle = _TWO_PI * weekday / 7.0
    return math.sin(angle), math.cos(angle), 1.0 if weekday >= 5 else 0.0


@njit(inline="always", **_KERNEL)
def _write_context(
    dst: NDArray[np.float32],
    base: int,
    seconds_of_day: float,
    weekday: tuple[float, float, float],
    market: int,
    job: int,
    time_off: int,
    n_markets: int,
    n_jobs: int,
) -> None:
    """Time, market and job columns; the market and job blocks must be zero."""
    tod_sin, tod_cos = _time_of_day(seconds_of_day)
    at = base + time_off
    dst[_u(at)] = tod_sin
    dst[_u(at + 1)] = tod_cos
    dst[_u(at + 2)] = weekday[0]
    dst[_u(at + 3)] = weekday[1]
    dst[_u(at + 4)] = weekday[2]
    market_off = at + 5
    job_off = market_off + n_markets
    if 0 <= market < n_markets:
        dst[_u(market_off + market)] = 1.0
    if 0 <= job < n_jobs:
        dst[_u(job_off + job)] = 1.0


@njit(**_KERNEL)
def _features_many(
    ts: NDArray[np.float64],
    device: NDArray[np.int32],
    room: NDArray[np.int32],
    capability: NDArray[np.int32],
    value: NDArray[np.float64],
    n: int,
    rule: NDArray[np.int8],
    threshold: NDArray[np.float64],
    horizons: NDArray[np.float64],
    since_cap: float,
    n_devices: int,
    n_rooms: int,
    n_markets: int,
    n_jobs: int,
    times: NDArray[np.float64],
    markets: NDArray[np.int32],
    jobs: NDArray[np.int32],
    job_since: NDArray[np.float64],
    tz_offset: float,
    row: NDArray[np.float32],
    last: NDArray[np.float64],
    flags: NDArray[np.uint8],
    cursors: NDArray[np.int64],
    out: NDArray[np.float32],
) -> None:
    """Fill ``out[j]`` with the features at ``times[j]`` (sorted) in one forward pass over
    the first ``n`` events, continuing from the state in ``row``, ``last``, ``flags`` and
    ``cursors`` (see :class:`_State`) and leaving it there for the next call.

    ``row`` holds the running counts and states in output layout, so each anticipation
    time costs its pointer moves, one copy of the row and the ``since`` block.

    What keeps it fast: every computed index goes through :func:`_u`, so no access pays
    for negative-index wraparound and LLVM vectorises the row copy and the ``since``
    stores (together about +30% over indexing with signed offsets); the output is written
    through one flat view at a row offset rather than a view per row (whose reference
    count costs two atomic operations per row); the row is copied in one pass (its since
    and context cells are zero, then overwritten). Tried and dropped, no measurable gain:
    branch-free steps for the events a horizon forgets, a sink cell per write site, and
    computing the ``since`` block in one fused pass (slower: it vectorised 4 wide).
    """
    n_h = horizons.shape[0]
    n_ent = n_devices + n_rooms
    since_off = n_h * n_ent
    state_off = since_off + n_ent
    time_off = state_off + n_devices
    width = time_off + 5 + n_markets + n_jobs + 1
    scale = 1.0 / math.log1p(since_cap)
    # Entities, then the job's slot, padded to whole vectors.
    padded = -(-(n_ent + 1) // _LANES) * _LANES

    sink = width
    last_sink = padded
    scratch = np.empty(padded, dtype=np.float32)
    flat = out.reshape(out.size)
    tails = cursors[1:]
    head = cursors[0]
    day = np.iinfo(np.int64).min
    weekday = (0.0, 0.0, 0.0)
    for j in range(times.shape[0]):
        t = times[j]
        while head < n and ts[_u(head)] <= t:
            at = _u(head)
            act, bears = _effect(rule, threshold, capability[at], value[at])
            d = device[at]
            r = room[at]
            d_act = act & (d >= 0) & (d < n_devices)
            r_act = act & (r >= 0) & (r < n_rooms)
            # Unknown or inactive entities write to the sinks: no branch to mispredict.
            for h in range(n_h):
                row[_u(h * n_ent + d if d_act else sink)] += 1.0
                row[_u(h * n_ent + n_devices + r if r_act else sink)] += 1.0
            last[_u(d if d_act else last_sink)] = ts[at]
            last[_u(n_devices + r if r_act else last_sink)] = ts[at]
            d_state = bears & (d >= 0) & (d < n_devices)
            row[_u(state_off + d if d_state else sink)] = 1.0 if act else 0.0
            flags[at] = np.uint8(d_act) | (np.uint8(r_act) << 1)
            head += 1
        for h in range(n_h):
            edge = t - horizons[h]
            base = h * n_ent
            i = tails[h]
            while i < head and ts[_u(i)] <= edge:
                k = _u(i)
                flag = flags[k]
                row[_u(base + device[k] if flag & 1 else sink)] -= 1.0
                row[_u(base + n_devices + room[k] if flag & 2 else sink)] -= 1.0
                i += 1
            tails[h] = i
        base = j * width
        for k in range(width):
            flat[_u(base + k)] = row[k]
        last[n_ent] = _job_last(t, job_since[j])
        _since_block(t, last, since_cap, scratch, scale, flat, base + since_off, n_ent)
        flat[_u(base + width - 1)] = scratch[n_ent]
        local = t + tz_offset
        today = math.floor(local / _DAY)
        if today != day:
            day = today
            weekday = _weekday(day)
        _write_context(flat, base, local - today * _DAY, weekday, markets[j], jobs[j], time_off, n_markets, n_jobs)
    cursors[0] = head


@njit(**_KERNEL)
def _features_one(
    ts: NDArray[np.float64],
    device: NDArray[np.int32],
    room: NDArray[np.int32],
    capability: NDArray[np.int32],
    value: NDArray[np.float64],
    rule: NDArray[np.int8],
    threshold: NDArray[np.float64],
    horizons: NDArray[np.float64],
    since_cap: float,
    n_devices: int,
    n_rooms: int,
    n_markets: int,
    n_jobs: int,
    t: float,
    market: int,
    job: int,
    job_since: float,
    tz_offset: float,
    out: NDArray[np.float32],
) -> None:
    """Fill the row ``out`` with the features at ``t``, scanning back from ``t``.

    The scan stops once it is past every horizon and the cap and every device's state is
    known, so its cost is the recent window, not the customer's history.
    """
    n_h = horizons.shape[0]
    n_ent = n_devices + n_rooms
    since_off = n_h * n_ent
    state_off = since_off + n_ent
    time_off = state_off + n_devices
    scale = 1.0 / math.log1p(since_cap)
    padded = -(-(n_ent + 1) // _LANES) * _LANES

    out[:] = 0.0
    last = np.full(padded, -np.inf)
    scratch = np.empty(padded, dtype=np.float32)
    state_known = np.zeros(n_devices, dtype=np.bool_)
    unknown_states = n_devices
    reach = since_cap
    for h in range(n_h):
        reach = max(reach, horizons[h])
    oldest = t - reach
    i = np.searchsorted(ts, t, side="right") - 1
    while i >= 0:
        ti = ts[i]
        if ti <= oldest and unknown_states == 0:
            break
        act, bears = _effect(rule, threshold, capability[i], value[i])
        d = device[i]
        d_ok = 0 <= d < n_devices
        if act:
            r = room[i]
            r_ok = 0 <= r < n_rooms
            for h in range(n_h):
                if ti > t - horizons[h]:
                    if d_ok:
                        out[h * n_ent + d] += 1.0
                    if r_ok:
                        out[h * n_ent + n_devices + r] += 1.0
            if d_ok and last[d] == -np.inf:
                last[d] = ti
            if r_ok and last[n_devices + r] == -np.inf:
                last[n_devices + r] = ti
        if d_ok and bears and not state_known[d]:
            state_known[d] = True
            unknown_states -= 1
            out[state_off + d] = 1.0 if act else 0.0
        i -= 1
    last[n_ent] = _job_last(t, job_since)
    _since_block(t, last, since_cap, scratch, scale, out, since_off, n_ent)
    out[out.shape[0] - 1] = scratch[n_ent]
    local = t + tz_offset
    today = math.floor(local / _DAY)
    _write_context(out, 0, local - today * _DAY, _weekday(today), market, job, time_off, n_markets, n_jobs)


# ---------------------------------------------------------------------------- public API


class _State(NamedTuple):
    """What the forward kernel carries from one anticipation time to the next."""

    row: NDArray[np.float32]  # running counts and states in output layout, then a sink cell
    last: NDArray[np.float64]  # latest activation per entity, the job's slot, padding, a sink
    flags: NDArray[np.uint8]  # per event seen: activation of a known device (1), room (2)
    cursors: NDArray[np.int64]  # next event to see, then per horizon the next to forget

    @classmethod
    def fresh(cls, schema: FeatureSchema, capacity: int) -> _State:
        lay = schema.layout
        padded = -(-(lay.n_entities + 1) // _LANES) * _LANES
        return cls(
            np.zeros(lay.width + 1, dtype=np.float32),
            np.full(padded + 1, -np.inf),
            np.empty(capacity, dtype=np.uint8),
            np.zeros(lay.n_horizons + 1, dtype=np.int64),
        )


def _run_many(
    schema: FeatureSchema,
    window: EventWindow,
    n: int,
    times: NDArray[np.float64],
    markets: NDArray[np.int32],
    jobs: NDArray[np.int32],
    job_since: NDArray[np.float64],
    tz_offset_s: float,
    state: _State,
    out: NDArray[np.float32],
) -> None:
    rule, threshold = schema.rule_arrays
    lay = schema.layout
    _features_many(
        window.ts, window.device, window.room, window.capability, window.value, n,
        rule, threshold, np.asarray(schema.horizons_s, dtype=np.float64), schema.since_cap_s,
        lay.n_devices, lay.n_rooms, lay.n_markets, lay.n_jobs,
        times, markets, jobs, job_since, float(tz_offset_s),
        state.row, state.last, state.flags, state.cursors, out,
    )


def _per_time(
    values: ArrayLike | None, m: int, dtype: type[np.generic], fill: float, what: str
) -> NDArray[Any]:
    if values is None:
        return np.full(m, fill, dtype=dtype)
    array = np.ascontiguousarray(values, dtype=dtype)
    if array.shape != (m,):
        raise ValueError(f"{what} must have one entry per anticipation time ({m}), got {array.shape}")
    return array


def _output(out: NDArray[np.float32] | None, shape: tuple[int, ...]) -> NDArray[np.float32]:
    if out is None:
        return np.empty(shape, dtype=np.float32)
    if out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {shape}, got {out.dtype}{out.shape}")
    return out


def compute_features(
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
    """Feature vectors at each of ``times`` (sorted ascending, finite): ``(m, F)`` float32.

    ``markets`` / ``jobs`` are per-time indices into the schema's vocabularies (default -1,
    none), ``job_since_s`` seconds since the last recognised job (default NaN, never).
    ``out`` (C-contiguous float32 ``(m, F)``) is filled and returned when given. Raises
    ``ValueError`` for unsorted times or mismatched shapes. Releases the GIL while it runs.
    """
    times_ = np.ascontiguousarray(times, dtype=np.float64)
    if times_.ndim != 1:
        raise ValueError("times must be one-dimensional")
    _check_times(times_, "anticipation times")
    m = times_.shape[0]
    result = _output(out, (m, schema.n_features))
    n = window.ts.shape[0]
    _run_many(
        schema, window, n, times_,
        _per_time(markets, m, np.int32, -1, "markets"),
        _per_time(jobs, m, np.int32, -1, "jobs"),
        _per_time(job_since_s, m, np.float64, np.nan, "job_since_s"),
        tz_offset_s, _State.fresh(schema, n), result,
    )
    return result


def features_at(
    schema: FeatureSchema,
    window: EventWindow,
    t: float,
    *,
    market: int = -1,
    job: int = -1,
    job_since_s: float = math.nan,
    tz_offset_s: float = 0.0,
    out: NDArray[np.float32] | None = None,
) -> NDArray[np.float32]:
    """The feature vector at one time ``t``: ``(F,)`` float32, equal to the matching row of
    :func:`compute_features` over the same window.

    Cost: the scan stops once it is past the longest horizon and the since-cap and every
    device has shown its state; a device that never bears state (a thermometer) makes it
    read the whole window. For repeated calls on a growing window prefer
    :class:`models.features_stream.FeatureStream`. State older than the window is unknown
    (0.0): keep at least
    ``since_cap_s`` of history in the window.
    """
    result = _output(out, (schema.n_features,))
    rule, threshold = schema.rule_arrays
    layout = schema.layout
    _features_one(
        window.ts, window.device, window.room, window.capability, window.value,
        rule, threshold, np.asarray(schema.horizons_s, dtype=np.float64), schema.since_cap_s,
        layout.n_devices, layout.n_rooms, layout.n_markets, layout.n_jobs,
        float(t), int(market), int(job), float(job_since_s), float(tz_offset_s),
        result,
    )
    return result


def warmup() -> float:
    """Compile (or load from numba's cache) every kernel; returns the seconds it took.

    Call once at process start so the first anticipation does not pay for compilation:
    a cold compile takes seconds, loading the on-disk cache a fraction of that.
    """
    started = time.perf_counter()
    schema = FeatureSchema(devices=("d",), rooms=("r",), markets=("m",), jobs=("j",))
    window = EventWindow.from_arrays([0.0, 1.0], [0, 0], [0, 0], [0, 0], [1.0, 0.0])
    compute_features(schema, window, [0.5, 2.0])
    features_at(schema, window, 2.0)
    elapsed = time.perf_counter() - started
    log.info("feature kernels ready in %.3f s", elapsed)
    return elapsed
