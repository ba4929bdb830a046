"""Feature kernels: what each feature means, and numba == numpy reference == plain Python."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from devices.capabilities import KIND
from models.features import EventWindow, _time_of_day, compute_features, features_at, warmup
from models.features_reference import python_features, reference_features
from models.schema import FeatureSchema

CAP = {name: i for i, name in enumerate(KIND)}
DAY = 86400.0
SATURDAY_0600_UTC = 1_704_520_800.0  # 2024-01-06 06:00:00 UTC


@pytest.fixture(scope="module")
def home() -> FeatureSchema:
    return FeatureSchema(
        devices=("kitchen_motion", "front_door", "button", "thermo", "kettle"),
        rooms=("kitchen", "hall"),
        markets=("home:weekday", "home:weekend"),
        jobs=("cook", "leave_home"),
    )


def window(*events: tuple[float, int, int, str, float]) -> EventWindow:
    """Events as (ts, device, room, capability name, value)."""
    if not events:
        return EventWindow.empty()
    ts, dev, room, cap, value = zip(*events, strict=True)
    return EventWindow.from_arrays(ts, dev, room, [CAP[c] for c in cap], value)


def column(schema: FeatureSchema, rows: NDArray[np.float32], name: str) -> list[float]:
    return rows[:, schema.names.index(name)].tolist()


def scaled(seconds: float, cap: float = DAY) -> float:
    return math.log1p(min(seconds, cap)) / math.log1p(cap)


# ------------------------------------------------------------------ what features mean


def test_activations_count_inside_each_horizon_window(home: FeatureSchema) -> None:
    w = window((0.0, 0, 0, "occupancy", 1.0), (100.0, 0, 0, "occupancy", 0.0), (200.0, 0, 0, "occupancy", 1.0))
    rows = compute_features(home, w, [250.0, 300.0, 500.0, 1900.0, 2000.0, 7400.0])
    # (t-300, t]: at 300 the event at 0 has just left; at 500 the one at 200 has too.
    assert column(home, rows, "dev[kitchen_motion].act_5m") == [2, 1, 0, 0, 0, 0]
    assert column(home, rows, "dev[kitchen_motion].act_30m") == [2, 2, 2, 1, 0, 0]
    assert column(home, rows, "dev[kitchen_motion].act_2h") == [2, 2, 2, 2, 2, 0]
    assert column(home, rows, "room[kitchen].act_30m") == [2, 2, 2, 1, 0, 0]
    assert column(home, rows, "room[hall].act_2h") == [0] * 6


def test_since_is_log_scaled_time_since_the_latest_activation(home: FeatureSchema) -> None:
    w = window((0.0, 0, 0, "occupancy", 1.0), (100.0, 0, 0, "occupancy", 0.0))
    rows = compute_features(home, w, [-5.0, 0.0, 50.0, 3600.0, 2 * DAY])
    assert column(home, rows, "dev[kitchen_motion].since") == pytest.approx([1.0, 0.0, scaled(50), scaled(3600), 1.0], abs=1e-6)
    assert column(home, rows, "dev[front_door].since") == [1.0] * 5  # never activated


def test_state_is_whether_the_latest_state_event_was_an_activation(home: FeatureSchema) -> None:
    w = window(
        (0.0, 1, 1, "contact", 1.0),  # closed
        (10.0, 1, 1, "contact", 0.0),  # opened: activation
        (20.0, 1, 1, "contact", 1.0),  # closed again
        (30.0, 0, 0, "occupancy", 1.0),
    )
    rows = compute_features(home, w, [5.0, 15.0, 25.0, 35.0])
    assert column(home, rows, "dev[front_door].state") == [0, 1, 0, 0]
    assert column(home, rows, "dev[front_door].act_5m") == [0, 1, 1, 1]  # only the opening counts
    assert column(home, rows, "dev[kitchen_motion].state") == [0, 0, 0, 1]


def test_actions_always_count_and_never_set_state(home: FeatureSchema) -> None:
    w = window((0.0, 2, 0, "action", 0.0), (1.0, 2, 0, "action", 3.0))
    rows = compute_features(home, w, [2.0])
    assert column(home, rows, "dev[button].act_5m") == [2]
    assert column(home, rows, "dev[button].state") == [0]


def test_numbers_activate_only_by_their_rule(home: FeatureSchema) -> None:
    w = window(
        (0.0, 3, 0, "temperature", 21.5),
        (1.0, 4, 0, "power", 2.0),  # standby
        (2.0, 4, 0, "power", 1800.0),  # kettle on
        (3.0, 0, 0, "occupancy", math.nan),  # unreadable: ignored
    )
    rows = compute_features(home, w, [1.5, 2.5, 3.5])
    assert column(home, rows, "dev[thermo].act_5m") == [0, 0, 0]
    assert column(home, rows, "dev[kettle].act_5m") == [0, 1, 1]
    assert column(home, rows, "dev[kettle].state") == [0, 1, 1]
    assert column(home, rows, "dev[kitchen_motion].act_5m") == [0, 0, 0]
    assert column(home, rows, "room[kitchen].act_5m") == [0, 1, 1]


def test_unknown_indices_contribute_only_what_is_known(home: FeatureSchema) -> None:
    w = EventWindow.from_arrays(
        [0.0, 1.0, 2.0, 3.0],
        [-1, 0, 99, 0],
        [1, -1, 1, 7],
        [CAP["occupancy"], CAP["occupancy"], CAP["occupancy"], 1000],
        [1.0, 1.0, 1.0, 1.0],
    )
    rows = compute_features(home, w, [4.0])
    assert column(home, rows, "room[hall].act_5m") == [2]  # device unknown, room known
    assert column(home, rows, "dev[kitchen_motion].act_5m") == [1]  # unknown capability ignored
    assert column(home, rows, "room[kitchen].act_5m") == [0]


def test_simultaneous_events_are_all_seen_and_the_last_sets_state(home: FeatureSchema) -> None:
    w = window((5.0, 0, 0, "occupancy", 1.0), (5.0, 0, 0, "occupancy", 0.0), (5.0, 1, 1, "contact", 0.0))
    rows = compute_features(home, w, [4.999, 5.0])
    assert column(home, rows, "dev[kitchen_motion].act_5m") == [0, 1]
    assert column(home, rows, "dev[kitchen_motion].state") == [0, 0]
    assert column(home, rows, "dev[front_door].state") == [0, 1]


def test_time_columns_use_local_time_and_monday_first_weeks(home: FeatureSchema) -> None:
    rows = compute_features(home, EventWindow.empty(), [SATURDAY_0600_UTC, SATURDAY_0600_UTC + 2 * DAY], tz_offset_s=3600.0)
    tod = 2 * math.pi * 7 / 24  # 07:00 local
    assert column(home, rows, "time.tod_sin") == pytest.approx([math.sin(tod)] * 2, abs=1e-6)
    assert column(home, rows, "time.tod_cos") == pytest.approx([math.cos(tod)] * 2, abs=1e-6)
    saturday, monday = 2 * math.pi * 5 / 7, 0.0
    assert column(home, rows, "time.dow_sin") == pytest.approx([math.sin(saturday), math.sin(monday)], abs=1e-6)
    assert column(home, rows, "time.weekend") == [1.0, 0.0]


def test_market_and_job_are_one_hot_and_job_since_is_scaled(home: FeatureSchema) -> None:
    rows = compute_features(
        home, EventWindow.empty(), [0.0, 1.0, 2.0, 3.0],
        markets=[1, -1, 5, 0], jobs=[0, 1, -1, 9], job_since_s=[math.nan, 0.0, 600.0, -4.0],
    )
    assert column(home, rows, "market[home:weekday]") == [0, 0, 0, 1]
    assert column(home, rows, "market[home:weekend]") == [1, 0, 0, 0]
    assert column(home, rows, "job[cook]") == [1, 0, 0, 0]
    assert column(home, rows, "job[leave_home]") == [0, 1, 0, 0]
    assert column(home, rows, "job.since") == pytest.approx([1.0, 0.0, scaled(600), 0.0], abs=1e-6)


def test_times_before_the_first_event_see_nothing(home: FeatureSchema) -> None:
    rows = compute_features(home, window((100.0, 0, 0, "occupancy", 1.0)), [-1e9, 0.0, 99.9])
    lay = home.layout
    assert not rows[:, : lay.since].any()
    assert (rows[:, lay.since : lay.state] == 1.0).all()
    assert not rows[:, lay.state : lay.time].any()


def test_out_buffer_is_filled_in_place_and_checked(home: FeatureSchema) -> None:
    w = window((0.0, 0, 0, "occupancy", 1.0))
    out = np.full((2, home.n_features), np.nan, dtype=np.float32)
    assert compute_features(home, w, [1.0, 2.0], out=out) is out
    assert np.isfinite(out).all()
    row = np.empty(home.n_features, dtype=np.float32)
    assert features_at(home, w, 2.0, out=row) is row
    np.testing.assert_array_equal(row, out[1])
    with pytest.raises(ValueError, match="out must be"):
        compute_features(home, w, [1.0], out=np.empty((1, home.n_features), dtype=np.float64))
    with pytest.raises(ValueError, match="out must be"):
        features_at(home, w, 1.0, out=np.empty(3, dtype=np.float32))


def test_a_reused_output_holds_nothing_of_its_previous_contents(home: FeatureSchema) -> None:
    """Every cell of every row is written on each call: stale one-hots, counts or NaN in a
    reused buffer never leak into the result."""
    rng = np.random.default_rng(11)
    n = 400
    ts = np.sort(rng.uniform(0, 2 * DAY, n)).round(0)
    caps = np.array([CAP[c] for c in ("occupancy", "contact", "action", "temperature", "power")])
    device = rng.integers(-1, 6, n)  # some unknown devices and rooms too
    w = EventWindow.from_arrays(ts, device, rng.integers(-1, 3, n), caps[device % 5], rng.choice([0.0, 1.0, 1500.0], n))
    times = np.linspace(ts[0] - 60, ts[-1] + 60, 300)
    inputs = {"markets": rng.integers(-1, 3, 300), "jobs": rng.integers(-1, 3, 300), "job_since_s": rng.uniform(0, DAY, 300)}
    fresh = compute_features(home, w, times, **inputs)
    for garbage in (np.nan, 1.0, -7.5):
        out = np.full_like(fresh, garbage)
        compute_features(home, w, times, **inputs, out=out)
        np.testing.assert_array_equal(out, fresh)


def test_unsorted_or_mismatched_inputs_are_refused(home: FeatureSchema) -> None:
    with pytest.raises(ValueError, match="sorted"):
        EventWindow.from_arrays([2.0, 1.0], [0, 0], [0, 0], [0, 0], [1.0, 1.0])
    with pytest.raises(ValueError, match="finite"):
        EventWindow.from_arrays([math.nan], [0], [0], [0], [1.0])
    with pytest.raises(ValueError, match="equal length"):
        EventWindow.from_arrays([1.0, 2.0], [0], [0, 0], [0, 0], [1.0, 1.0])
    with pytest.raises(ValueError, match="sorted"):
        compute_features(home, EventWindow.empty(), [2.0, 1.0])
    with pytest.raises(ValueError, match="one entry per anticipation time"):
        compute_features(home, EventWindow.empty(), [1.0, 2.0], markets=[0])


def test_since_scaling_is_accurate_to_float32_over_its_range(home: FeatureSchema) -> None:
    cap = home.since_cap_s
    seconds = np.concatenate([[0.0, 1e-9, 1e-4, 0.5, 1.0, 59.999, cap - 1e-3, cap, 10 * cap], np.geomspace(1e-6, cap, 20_000)])
    rows = compute_features(home, EventWindow.empty(), np.zeros(seconds.size), job_since_s=seconds)
    want = np.log1p(np.minimum(seconds, cap)) / math.log1p(cap)
    assert np.abs(rows[:, home.names.index("job.since")] - want).max() < 1e-6


def test_time_of_day_table_matches_libm() -> None:
    seconds = np.concatenate([[0.0, 1e-6, 59.999999, 60.0, 43200.0, DAY - 1e-6, DAY], np.linspace(0, DAY, 10_001)])
    got = np.array([_time_of_day(s) for s in seconds])
    angle = 2 * np.pi * seconds / DAY
    np.testing.assert_allclose(got[:, 0], np.sin(angle), atol=1e-12)
    np.testing.assert_allclose(got[:, 1], np.cos(angle), atol=1e-12)


def test_warmup_compiles_every_kernel_and_reports_its_time() -> None:
    assert warmup() > 0.0


# ------------------------------------------------ numba == numpy reference == plain Python

SMALL = FeatureSchema(
    devices=("d0", "d1", "d2"),
    rooms=("r0", "r1"),
    markets=("m0", "m1"),
    jobs=("j0", "j1", "j2"),
    horizons_s=(5.0, 17.5, 40.0),
    since_cap_s=60.0,
)
VALUES = st.sampled_from([0.0, 1.0, 2.5, 5.0, 7.0, -1.0, math.nan])


@st.composite
def cases(draw: st.DrawFn) -> tuple[EventWindow, NDArray[np.float64], dict[str, object]]:
    """Small random windows on a coarse time grid, so ties, empty windows and times before
    the first event are common; indices stray outside every vocabulary."""
    n = draw(st.integers(0, 40))
    ts = sorted(draw(st.lists(st.integers(0, 80), min_size=n, max_size=n)))
    w = EventWindow.from_arrays(
        np.array(ts, dtype=np.float64) * 1.25,
        draw(st.lists(st.integers(-2, 4), min_size=n, max_size=n)),
        draw(st.lists(st.integers(-2, 3), min_size=n, max_size=n)),
        draw(st.lists(st.integers(-1, len(KIND)), min_size=n, max_size=n)),
        draw(st.lists(VALUES, min_size=n, max_size=n)),
    )
    m = draw(st.integers(0, 25))
    times = np.sort(np.array(draw(st.lists(st.integers(-40, 480), min_size=m, max_size=m)), dtype=np.float64) * 0.25)
    inputs = {
        "markets": draw(st.lists(st.integers(-1, 3), min_size=m, max_size=m)),
        "jobs": draw(st.lists(st.integers(-1, 4), min_size=m, max_size=m)),
        "job_since_s": draw(st.lists(st.sampled_from([math.nan, -3.0, 0.0, 2.5, 30.0, 1e9, math.inf]), min_size=m, max_size=m)),
        "tz_offset_s": draw(st.sampled_from([0.0, 3600.0, -18000.0])),
    }
    return w, times, inputs


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(cases())
def test_numba_kernel_equals_numpy_reference(case: tuple[EventWindow, NDArray[np.float64], dict[str, object]]) -> None:
    w, times, inputs = case
    np.testing.assert_allclose(
        compute_features(SMALL, w, times, **inputs), reference_features(SMALL, w, times, **inputs), rtol=0, atol=1e-6  # type: ignore[arg-type]
    )


@PROPERTY
@given(cases())
def test_single_time_kernel_equals_the_matching_row(case: tuple[EventWindow, NDArray[np.float64], dict[str, object]]) -> None:
    w, times, inputs = case
    rows = compute_features(SMALL, w, times, **inputs)  # type: ignore[arg-type]
    for j, t in enumerate(times):
        row = features_at(
            SMALL, w, t, market=inputs["markets"][j], job=inputs["jobs"][j],  # type: ignore[index]
            job_since_s=inputs["job_since_s"][j], tz_offset_s=inputs["tz_offset_s"],  # type: ignore[index, arg-type]
        )
        np.testing.assert_allclose(row, rows[j], rtol=0, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(cases())
def test_plain_python_equals_numpy_reference(case: tuple[EventWindow, NDArray[np.float64], dict[str, object]]) -> None:
    w, times, inputs = case
    np.testing.assert_allclose(
        python_features(SMALL, w, times, **inputs), reference_features(SMALL, w, times, **inputs), rtol=0, atol=1e-6  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    "events",
    [
        [],
        [(3.0, 0, 0, "occupancy", 1.0)],
        [(3.0, 0, 0, "occupancy", 1.0), (3.0, 1, 1, "contact", 0.0), (3.0, 0, 0, "occupancy", 0.0)],
    ],
    ids=["empty", "single", "simultaneous"],
)
def test_edge_cases_agree_across_implementations(events: list[tuple[float, int, int, str, float]]) -> None:
    w = window(*events)
    times = np.array([-10.0, 0.0, 2.999, 3.0, 3.0, 8.0, 8.5, 1e6])
    expected = reference_features(SMALL, w, times)
    np.testing.assert_allclose(compute_features(SMALL, w, times), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(python_features(SMALL, w, times), expected, rtol=0, atol=1e-6)
    for j, t in enumerate(times):
        np.testing.assert_allclose(features_at(SMALL, w, t), expected[j], rtol=0, atol=1e-6)


def test_a_long_realistic_window_agrees_with_the_reference(home: FeatureSchema) -> None:
    rng = np.random.default_rng(3)
    n = 20_000
    ts = np.sort(rng.uniform(0, 20 * DAY, n)).round(0)  # whole seconds: plenty of ties
    caps = np.array([CAP[c] for c in ("occupancy", "contact", "action", "temperature", "power")])
    device = rng.integers(0, 5, n)
    w = EventWindow.from_arrays(ts, device, device % 2, caps[device], rng.choice([0.0, 1.0, 1500.0], n))
    times = np.concatenate([ts[::3], np.linspace(ts[0] - 10, ts[-1] + DAY, 500)])
    times.sort()
    inputs = {"markets": rng.integers(-1, 2, times.size), "jobs": rng.integers(-1, 2, times.size)}
    rows = compute_features(home, w, times, **inputs)
    np.testing.assert_allclose(rows, reference_features(home, w, times, **inputs), rtol=0, atol=1e-6)
    for j in range(0, times.size, 97):
        row = features_at(home, w, times[j], market=inputs["markets"][j], job=inputs["jobs"][j])
        np.testing.assert_allclose(row, rows[j], rtol=0, atol=1e-6)


@pytest.mark.fuzz
@settings(max_examples=5000, deadline=None)
@given(cases())
def test_fuzz_numba_kernel_equals_numpy_reference(case: tuple[EventWindow, NDArray[np.float64], dict[str, object]]) -> None:
    w, times, inputs = case
    np.testing.assert_allclose(
        compute_features(SMALL, w, times, **inputs), reference_features(SMALL, w, times, **inputs), rtol=0, atol=1e-6  # type: ignore[arg-type]
    )


def test_empty_vocabularies_leave_only_the_context_columns() -> None:
    bare = FeatureSchema(devices=(), rooms=())
    w = window((1.0, 0, 0, "occupancy", 1.0), (2.0, 1, 0, "contact", 0.0))
    rows = compute_features(bare, w, [0.0, 3.0])
    assert bare.names == ("time.tod_sin", "time.tod_cos", "time.dow_sin", "time.dow_cos", "time.weekend", "job.since")
    np.testing.assert_allclose(rows, reference_features(bare, w, [0.0, 3.0]), rtol=0, atol=1e-6)
    np.testing.assert_allclose(features_at(bare, w, 3.0), rows[1], rtol=0, atol=1e-6)
