"""Privacy: share forwards, local never leaves, coarse forwards nothing finer than allowed."""

from __future__ import annotations

import math
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices import DefinitionsAdapter, DeviceDefinition, Topic, action, occupancy, power, temperature
from devices.readings import Reading
from edge import DeadLetters, DeviceSettings, Inventory, Outbox, OutboxSettings, Pipeline, PrivacyFilter, PrivacySettings
from edge.privacy import Coarsener, PolicyResolver

T0 = 1_700_000_040.0  # a whole minute


def _coarsener(**kw: object) -> Coarsener:
    p = PrivacySettings()
    return Coarsener(window_s=60.0, resolution=p.resolution, allowed_text=p.allowed_text, **kw)  # type: ignore[arg-type]


def test_policy_resolution_prefers_device_capability_then_device_then_capability_then_default() -> None:
    resolver = PolicyResolver(
        PrivacySettings(default="coarse", capabilities={"media": "local"}),
        {
            "tv": DeviceSettings(privacy={"media": "share", "*": "coarse"}),
            "cam": DeviceSettings(privacy="local"),
            "lamp": DeviceSettings(room="hall"),
        },
    )
    assert resolver.policy("tv", "media") == "share"
    assert resolver.policy("tv", "power") == "coarse"
    assert resolver.policy("cam", "occupancy") == "local"
    assert resolver.policy("lamp", "media") == "local"
    assert resolver.policy("lamp", "switch") == "coarse"


def test_coarse_booleans_say_whether_true_at_any_time_once_per_minute_at_the_minute() -> None:
    c = _coarsener()
    out: list[Reading] = []
    for i, v in enumerate([False, True, False, False]):
        c.offer(Reading(T0 + 5 + i * 10, "pir", "occupancy", v, "hall"), out)
    for i in range(3):
        c.offer(Reading(T0 + 60 + i * 10, "pir", "occupancy", False, "hall"), out)
    assert out == [Reading(T0, "pir", "occupancy", True, "hall")]
    c.due(T0 + 120 + 5, out)
    assert out[1:] == [Reading(T0 + 60, "pir", "occupancy", False, "hall")]


def test_coarse_numbers_are_rounded_means_once_per_minute() -> None:
    c = _coarsener()
    out: list[Reading] = []
    for v in (21.1, 21.3, 21.4):
        c.offer(Reading(T0 + 1, "th", "temperature", v, None), out)
    for v in (1234.0, 1236.0):
        c.offer(Reading(T0 + 2, "plug", "power", v, None), out)
    c.due(T0 + 63, out)
    assert sorted(out) == sorted(
        [Reading(T0, "th", "temperature", 21.5, None), Reading(T0, "plug", "power", 1240.0, None)]
    )


def test_coarse_text_keeps_only_allowed_values_else_activity() -> None:
    c = _coarsener()
    out: list[Reading] = []
    c.offer(Reading(T0 + 1, "btn", "action", "single", None), out)
    c.offer(Reading(T0 + 2, "btn", "action", "double", None), out)
    c.offer(Reading(T0 + 3, "tv", "media", "Watching: Private Show S01E02", None), out)
    c.due(T0 + 70, out)
    assert sorted(out) == sorted(
        [Reading(T0, "btn", "action", "single", None), Reading(T0, "tv", "media", "activity", None)]
    )


def test_late_reading_for_an_emitted_window_is_dropped_not_sent_twice() -> None:
    c = _coarsener()
    out: list[Reading] = []
    c.offer(Reading(T0 + 1, "pir", "occupancy", True, None), out)
    c.due(T0 + 65, out)
    c.offer(Reading(T0 + 30, "pir", "occupancy", False, None), out)
    c.drain(out)
    assert out == [Reading(T0, "pir", "occupancy", True, None)] and c.late == 1


COARSE = DeviceDefinition(
    vendor="t", model="coarse", match=Topic("p/+/coarse"),
    exposes=(occupancy(path="o"), temperature(path="t"), power(path="p"), action(path="a")),
)
LOCAL = DeviceDefinition(vendor="t", model="local", match=Topic("p/+/local"), exposes=(temperature(path="t"),))
SHARED = DeviceDefinition(vendor="t", model="shared", match=Topic("p/+/shared"), exposes=(temperature(path="t"),))

message = st.tuples(
    st.sampled_from(["c1", "c2"]),
    st.floats(0, 600),  # seconds after T0
    st.booleans(),
    st.floats(-20, 40, allow_nan=False),
    st.floats(0, 3000, allow_nan=False),
    st.sampled_from(["single", "double", "hold", "secret-scene-name", "Movie title"]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(message, min_size=1, max_size=120))
async def test_nothing_finer_than_the_policy_allows_is_ever_queued(tmp_path: Path, messages: list[tuple]) -> None:  # type: ignore[type-arg]
    import json
    import uuid

    privacy = PrivacySettings()
    devices = {"c1": DeviceSettings(privacy="coarse"), "c2": DeviceSettings(privacy="coarse"),
               "hidden": DeviceSettings(privacy="local")}
    pf = PrivacyFilter.from_settings(privacy, devices)
    dl = DeadLetters()
    path = tmp_path / f"{uuid.uuid4().hex}.db"
    async with Outbox.open(OutboxSettings(path=path), dead_letters=dl) as box:
        pipeline = Pipeline(
            [DefinitionsAdapter.of([COARSE, LOCAL, SHARED]).new_session()],
            outbox=box, privacy=pf, inventory=Inventory(pf.resolver, devices), dead_letters=dl, devices=devices,
        )
        for dev, dt, occ, temp, watts, act in sorted(messages, key=lambda m: m[1]):
            body = json.dumps({"o": occ, "t": temp, "p": watts, "a": act}).encode()
            pipeline.handle(f"p/{dev}/coarse", body, ts=T0 + dt)
            pipeline.handle("p/hidden/local", json.dumps({"t": temp}).encode(), ts=T0 + dt)
            pipeline.tick(T0 + dt)
        pipeline.drain()
        await box.flush()
        rows = await box.read(0, limit=100_000)
        names = box.names
    assert dl.total == 0
    seen: set[tuple[str, str, float]] = set()
    for _seq, ts, device, capability, value, _room in rows:
        dev, cap = names[device], names[capability]
        assert dev != "hidden", "a local device left the edge"
        assert ts % 60 == 0, "coarse timestamp not floored to the minute"
        assert (dev, cap, ts) not in seen, "two coarse events in one window"
        seen.add((dev, cap, ts))
        if cap in privacy.resolution:
            step = privacy.resolution[cap]
            assert math.isclose(value / step, round(value / step), abs_tol=1e-6), (cap, value)
        if cap == "action":
            assert value in {"single", "double", "hold", "activity"}
    assert {(d, c) for d, c, _ in seen} <= {(d, c) for d in ("c1", "c2") for c in ("occupancy", "temperature", "power", "action")}
    assert rows, "coarse devices still report"
