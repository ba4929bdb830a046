"""``RecentEvents`` holds exactly what a sorted, trimmed list of rows would, in columns."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.recent import RecentEvents

_NAMES = ("ts", "device", "room", "capability", "value", "edge", "seq")


def _columns(rows: list[tuple[float, int, int, int, float, int, int]]) -> dict[str, np.ndarray]:
    cols = list(zip(*rows)) if rows else [()] * len(_NAMES)
    dtypes = (np.float64, np.int16, np.int16, np.int16, np.float64, np.int32, np.int64)
    return {name: np.array(col, dtype=dtype) for name, col, dtype in zip(_NAMES, cols, dtypes)}


def _held(recent: RecentEvents) -> list[tuple[float, ...]]:
    return list(zip(*(recent.column(n).tolist() for n in _NAMES)))


_row = st.tuples(
    st.integers(0, 400).map(float), st.integers(-1, 20), st.integers(-1, 6), st.integers(0, 9),
    st.floats(-5, 5, allow_nan=False), st.integers(0, 3), st.integers(0, 10**6),
)


@settings(max_examples=150, deadline=None)
@given(batches=st.lists(st.lists(_row, max_size=40), max_size=30), since_cap=st.integers(20, 500),
       max_events=st.integers(1, 90))
def test_appends_trims_and_windows_match_a_sorted_list(
    batches: list[list[tuple]], since_cap: int, max_events: int
) -> None:
    recent, model = RecentEvents(), []
    for batch in batches:
        recent.extend(**_columns(batch))
        model = sorted(model + batch, key=lambda r: r[0])  # stable: ties stay in arrival order
        if model:
            horizon = model[-1][0] - since_cap
            dropped = recent.trim(horizon=horizon, max_events=max_events)
            kept = [r for r in model if r[0] >= horizon][-max_events:]
            assert dropped == len(model) - len(kept)
            model = kept
        assert _held(recent) == [tuple(float(x) if i in (0, 4) else x for i, x in enumerate(r)) for r in model]
        assert len(recent) == len(model)
    if model:
        lo, hi = model[0][0] + 1.0, model[-1][0] - 1.0
        window = recent.window(lo, hi)
        expected = [r for r in model if lo <= r[0] <= hi]
        assert window.ts.tolist() == [r[0] for r in expected]
        assert window.device.dtype == np.int32 and window.device.tolist() == [r[1] for r in expected]
        assert window.value.tolist() == [r[4] for r in expected]
        assert list(zip(recent.column("edge").tolist(), recent.column("seq").tolist())) == [(r[5], r[6]) for r in model]


def test_a_full_buffer_stays_within_twice_its_bound_and_gives_memory_back() -> None:
    recent = RecentEvents()
    for k in range(400):  # 400 batches of 500 in order, 20,000 kept: a busy customer
        ts = np.arange(k * 500, (k + 1) * 500, dtype=np.float64)
        recent.extend(ts=ts, device=np.zeros(500, np.int16), room=np.zeros(500, np.int16),
                      capability=np.zeros(500, np.int16), value=np.ones(500), edge=np.zeros(500, np.int32),
                      seq=ts.astype(np.int64))
        recent.trim(horizon=-1.0, max_events=20_000)
        assert len(recent) == min((k + 1) * 500, 20_000)
        assert recent.column("ts")[0] == max(0, (k + 1) * 500 - 20_000)
    assert recent.nbytes <= 2 * 20_000 * 34
    recent.trim(horizon=float(400 * 500 - 100), max_events=20_000)
    assert len(recent) == 100 and recent.nbytes <= 4 * 100 * 34 * 2 + 64 * 34
    recent.clear()
    assert len(recent) == 0 and recent.nbytes == 0


def test_columns_must_be_complete_and_of_equal_length() -> None:
    recent = RecentEvents()
    cols = _columns([(1.0, 0, 0, 0, 1.0, 0, 1)])
    with pytest.raises(ValueError, match="exactly"):
        recent.extend(**{k: v for k, v in cols.items() if k != "seq"})
    with pytest.raises(ValueError, match="equal"):
        recent.extend(**{**cols, "seq": np.array([1, 2])})
    assert len(recent) == 0
