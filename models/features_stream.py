"""Running features of one customer's event stream: the hub's incremental path.

:func:`models.features.features_at` rescans the window each time (its cost is the events
within the longest horizon or the since-cap). A :class:`FeatureStream` instead keeps the
forward kernel's state between calls, so pushing events costs O(events) and reading the
vector now costs O(features + events that left a horizon), whatever the history.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.features import EventWindow, _output, _run_many, _State
from models.schema import FeatureSchema

__all__ = ["FeatureStream"]


def _columns(window: EventWindow) -> tuple[NDArray[Any], ...]:
    return tuple(window)


class FeatureStream:
    """Push one customer's events as they arrive; read the feature vector at any later time.

    ``at(t)`` equals the row of :func:`models.features.compute_features` at ``t`` over every
    event pushed so far, provided every event with ``ts <= t`` was pushed before the call.
    Contract: pushed events are in time order (each push sorted and not earlier than the
    last event pushed) and queries come at non-decreasing times; either violation raises
    ``ValueError`` (build a new stream from the window then). Events later than a query
    wait for a later one. Only events still inside the longest horizon are kept, so memory
    follows the busiest horizon, not the history. Not thread-safe: one owner per customer.
    """

    def __init__(self, schema: FeatureSchema, *, capacity: int = 1024) -> None:
        self.schema = schema
        self._capacity = max(1, capacity)
        self._events = EventWindow(*(np.empty(self._capacity, dtype=a.dtype) for a in EventWindow.empty()))
        self._n = 0
        self._state = _State.fresh(schema, self._capacity)
        self._last_ts = -math.inf
        self._last_t = -math.inf

    @property
    def buffered(self) -> int:
        """Events held: those not yet seen plus those still inside some horizon."""
        return self._n

    def push(self, events: EventWindow) -> None:
        """Append events (sorted, none earlier than the last pushed); raises ``ValueError``."""
        k = events.ts.shape[0]
        if k == 0:
            return
        if events.ts[0] < self._last_ts:
            raise ValueError(
                f"events must arrive in time order: {events.ts[0]} is before {self._last_ts}"
            )
        self._make_room(k)
        for buffer, new in zip(_columns(self._events), _columns(events), strict=True):
            buffer[self._n : self._n + k] = new
        self._n += k
        self._last_ts = float(events.ts[-1])

    def at(
        self,
        t: float,
        *,
        market: int = -1,
        job: int = -1,
        job_since_s: float = math.nan,
        tz_offset_s: float = 0.0,
        out: NDArray[np.float32] | None = None,
    ) -> NDArray[np.float32]:
        """The feature vector at ``t`` (``(F,)`` float32); ``t`` must not go back in time."""
        if not math.isfinite(t) or t < self._last_t:
            raise ValueError(f"queries must come at non-decreasing finite times: {t} after {self._last_t}")
        self._last_t = t
        result = _output(out, (self.schema.n_features,))
        _run_many(
            self.schema, self._events, self._n,
            np.array([t], dtype=np.float64),
            np.array([market], dtype=np.int32),
            np.array([job], dtype=np.int32),
            np.array([job_since_s], dtype=np.float64),
            tz_offset_s, self._state, result.reshape(1, -1),
        )
        return result

    def _make_room(self, k: int) -> None:
        """Drop events every horizon has forgotten once they fill the buffer or outnumber
        the rest (so each event is moved O(1) times); grow the buffers if still short."""
        cursors = self._state.cursors
        gone = int(cursors[1:].min())
        keep = self._n - gone
        if self._n + k <= self._capacity and gone < max(keep, 64):
            return
        capacity = self._capacity
        while keep + k > capacity:
            capacity *= 2
        if capacity != self._capacity:
            grown = EventWindow(*(np.empty(capacity, dtype=a.dtype) for a in self._events))
            flags = np.empty(capacity, dtype=np.uint8)
        else:
            grown, flags = self._events, self._state.flags
        for buffer, old in zip(_columns(grown), _columns(self._events), strict=True):
            buffer[:keep] = old[gone : self._n]
        flags[:keep] = self._state.flags[gone : self._n]
        cursors -= gone
        self._events, self._n, self._capacity = grown, keep, capacity
        self._state = self._state._replace(flags=flags)
