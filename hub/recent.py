"""``RecentEvents``: one customer's recent events in the model's vocabulary, as columns.

The anticipation service keeps one per customer. Rows are held in preallocated numpy
columns, about 34 bytes per event, and not as Python tuples (about 190 bytes each).
Sorted by ``ts``, with ties kept in arrival order, so a window for the feature kernels is
two binary searches and a slice.

    recent = RecentEvents()
    recent.extend(ts, device, room, capability, value, edge, seq)   # equal-length arrays
    recent.trim(horizon=t - since_cap, max_events=20_000)
    window = recent.window(since, until)                             # models.features.EventWindow

``edge`` is an integer code for the edge id. ``(edge, seq)`` identifies an event: it lets
the service merge what it read from the store with what ingest handed it meanwhile.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from models.features import EventWindow

__all__ = ["RecentEvents"]

# (column, dtype): device, room and capability indices fit int16 (schemas are far smaller).
_COLUMNS: tuple[tuple[str, type], ...] = (
    ("ts", np.float64),
    ("device", np.int16),
    ("room", np.int16),
    ("capability", np.int16),
    ("value", np.float64),
    ("edge", np.int32),
    ("seq", np.int64),
)
_MIN_CAPACITY = 64


class RecentEvents:
    """A bounded, time-sorted columnar buffer of one customer's events (module doc).

    Rows in use are ``[lo, hi)`` of each column: trimming moves ``lo`` and the rows are
    moved down only when an append needs the room, so a full buffer costs amortised O(1)
    per event instead of a copy of the whole buffer per batch.
    """

    __slots__ = ("_cols", "_lo", "_hi")

    def __init__(self) -> None:
        self._cols: dict[str, NDArray[np.generic]] = {name: np.empty(0, dtype) for name, dtype in _COLUMNS}
        self._lo = 0
        self._hi = 0

    def __len__(self) -> int:
        return self._hi - self._lo

    @property
    def nbytes(self) -> int:
        """Bytes held by the columns (capacity, not just the rows in use)."""
        return sum(col.nbytes for col in self._cols.values())

    def column(self, name: str) -> NDArray[np.generic]:
        """A read-only view of one column's rows in use."""
        view = self._cols[name][self._lo : self._hi]
        view.flags.writeable = False
        return view

    def extend(self, **columns: NDArray[np.generic]) -> None:
        """Append rows given as equal-length arrays, one keyword per column.

        Rows older than the newest held one are merged in by a stable sort of the rows in
        use (late deliveries are rare; in-order appends cost one copy per column).
        """
        if set(columns) != set(self._cols):
            raise ValueError(f"columns must be exactly {sorted(self._cols)}")
        k = len(columns["ts"])
        if any(len(c) != k for c in columns.values()):
            raise ValueError("columns must have equal lengths")
        if k == 0:
            return
        self._reserve(k)
        lo, start, end = self._lo, self._hi, self._hi + k
        for name, col in self._cols.items():
            col[start:end] = columns[name]
        self._hi = end
        ts = self._cols["ts"]
        late = start > lo and ts[start] < ts[start - 1]
        if late or (k > 1 and bool((ts[start + 1 : end] < ts[start : end - 1]).any())):
            order = np.argsort(ts[lo:end], kind="stable")
            for col in self._cols.values():
                col[lo:end] = col[lo:end][order]

    def trim(self, *, horizon: float, max_events: int) -> int:
        """Drop rows older than ``horizon`` and all but the newest ``max_events``; how many."""
        lo, hi = self._lo, self._hi
        cut = int(np.searchsorted(self._cols["ts"][lo:hi], horizon, side="left"))
        cut = max(cut, hi - lo - max_events)
        if cut <= 0:
            return 0
        self._lo = lo + cut
        if self._cols["ts"].shape[0] > 4 * max(len(self), _MIN_CAPACITY):
            self._resize(2 * max(len(self), _MIN_CAPACITY))  # give memory back after a burst
        return cut

    def clear(self) -> None:
        """Forget every row and give the memory back."""
        self.__init__()  # type: ignore[misc]

    def select(self, keep: NDArray[np.bool_]) -> dict[str, NDArray[np.generic]]:
        """Copies of the rows in use where ``keep`` is true, as ``extend`` takes them."""
        return {name: col[self._lo : self._hi][keep] for name, col in self._cols.items()}

    def window(self, since: float, until: float) -> EventWindow:
        """Rows with ``since <= ts <= until`` as the feature kernels' window (copies)."""
        ts = self._cols["ts"][self._lo : self._hi]
        a = self._lo + int(np.searchsorted(ts, since, side="left"))
        b = self._lo + int(np.searchsorted(ts, until, side="right"))
        c = self._cols
        return EventWindow(
            np.array(c["ts"][a:b]),
            c["device"][a:b].astype(np.int32),
            c["room"][a:b].astype(np.int32),
            c["capability"][a:b].astype(np.int32),
            np.array(c["value"][a:b]),
        )

    def _reserve(self, k: int) -> None:
        """Room for ``k`` more rows after ``hi``: move the rows down, or grow."""
        capacity = self._cols["ts"].shape[0]
        if self._hi + k <= capacity:
            return
        need = len(self) + k
        # Moving the rows down pays off once at least an eighth of the buffer is dead: a
        # full buffer then copies each row about eight times over its life, 34 bytes each.
        if need <= capacity and self._lo >= capacity // 8:
            self._compact()
        else:
            self._resize(max(need, 2 * capacity, _MIN_CAPACITY))

    def _compact(self) -> None:
        n = len(self)
        for col in self._cols.values():
            col[:n] = col[self._lo : self._hi]
        self._lo, self._hi = 0, n

    def _resize(self, capacity: int) -> None:
        n = len(self)
        for name, col in self._cols.items():
            grown = np.empty(capacity, col.dtype)
            grown[:n] = col[self._lo : self._hi]
            self._cols[name] = grown
        self._lo, self._hi = 0, n
