"""ContextFuser: latest values, room occupancy, home/away, edges, and restore from state."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from devices.wire import DeviceProfile, EdgeStatus, event_from_values
from hub.context import ContextFuser
from hub.settings import ContextSettings
from hub.validation import wire_event

T0 = 1_700_000_000.0
DEVICES = ("pir", "front_door", "lamp", "btn", "th")
ROOM_OF = {"pir": "living", "front_door": "hall", "lamp": "living", "btn": None, "th": "kitchen"}
CAPS = (("occupancy", True), ("occupancy", False), ("contact", True), ("contact", False), ("switch", True),
        ("action", "single"), ("temperature", 20.5), ("presence", True))


def ev(seq: int, ts: float, device: str, capability: str, value: Any, room: str | None = None) -> Any:
    """A validated event, as the hub hands it to the fuser (a wire struct)."""
    event = event_from_values(seq=seq, ts=ts, device=device, capability=capability, value=value, room=room)
    return wire_event(event.seq, event.ts, event.device, event.capability, event.value, event.room)


def fuser(now: float) -> ContextFuser:
    return ContextFuser(ContextSettings(occupancy_window_s=300, away_after_s=1800), clock=lambda: now)


def test_latest_value_per_device_capability_wins_by_timestamp_not_arrival() -> None:
    f = fuser(T0 + 100)
    f.apply_events("c", "e", [ev(2, T0 + 20, "th", "temperature", 22.0, "kitchen")])
    f.apply_events("c", "e", [ev(1, T0 + 10, "th", "temperature", 19.0, "kitchen")])  # late, older
    latest = f.snapshot("c")["latest"]
    assert latest == [{"edge_id": "e", "device": "th", "capability": "temperature", "value": 22.0,
                       "ts": T0 + 20, "room": "kitchen"}]


def test_room_is_occupied_while_sensor_on_and_for_the_window_after_it_turns_off() -> None:
    f = fuser(T0 + 200)
    f.apply_events("c", "e", [
        ev(1, T0, "pir1", "occupancy", True, "kitchen"),
        ev(2, T0 + 60, "pir1", "occupancy", False, "kitchen"),
        ev(3, T0 + 100, "pir2", "occupancy", True, "office"),
    ])
    snap = f.snapshot("c")
    assert snap["occupied_rooms"] == ["kitchen", "office"]  # kitchen: activation 200 s ago < 300 s
    assert snap["home"] is True and snap["home_basis"] == "occupancy"
    later = f.snapshot("c", now=T0 + 1000)
    assert later["occupied_rooms"] == ["office"]  # office sensor still reads on
    kitchen = next(r for r in later["rooms"] if r["room"] == "kitchen")
    assert kitchen["occupied"] is False and kitchen["last_activation"] == T0


def test_presence_sensor_decides_home_when_there_is_one() -> None:
    f = fuser(T0 + 10)
    f.apply_events("c", "e", [ev(1, T0, "pir", "occupancy", True, "hall"), ev(2, T0 + 1, "phone", "presence", False)])
    snap = f.snapshot("c")
    assert (snap["home"], snap["home_basis"]) == (False, "presence")


def test_door_then_nothing_moving_means_away_and_movement_after_it_means_home() -> None:
    f = fuser(T0)
    f.apply_events("c", "e", [
        ev(1, T0, "pir", "occupancy", True, "living"),
        ev(2, T0 + 30, "pir", "occupancy", False, "living"),
        ev(3, T0 + 40, "front_door", "contact", False, "hall"),
        ev(4, T0 + 45, "front_door", "contact", True, "hall"),
    ])
    assert f.snapshot("c", now=T0 + 120)["home"] is True  # just left or arrived: not decided yet
    away = f.snapshot("c", now=T0 + 45 + 301)
    assert (away["home"], away["home_basis"]) == (False, "door")
    f.apply_events("c", "e", [ev(5, T0 + 2000, "lamp", "switch", True, "living")])
    back = f.snapshot("c", now=T0 + 2000 + 400)
    assert (back["home"], back["home_basis"]) == (True, "door")


def test_without_doors_home_follows_recent_activity() -> None:
    f = fuser(T0)
    f.apply_events("c", "e", [ev(1, T0, "button", "action", "single", "bedroom")])
    assert f.snapshot("c", now=T0 + 600)["home"] is True
    snap = f.snapshot("c", now=T0 + 1801)
    assert (snap["home"], snap["home_basis"]) == (False, "activity")


def test_ambient_readings_are_not_activity_and_no_signal_means_unknown() -> None:
    f = fuser(T0)
    f.apply_events("c", "e", [ev(1, T0, "th", "temperature", 20.0, "kitchen")])
    snap = f.snapshot("c")
    assert (snap["home"], snap["home_basis"]) == (None, "none")
    assert f.snapshot("nobody")["home"] is None


def test_edges_online_backlog_and_inventory_are_fused_across_edges() -> None:
    f = fuser(T0)
    f.apply_status("c", "home", EdgeStatus(state="online", backlog=12, ts=T0, version="1.0"))
    f.apply_status("c", "car", EdgeStatus(state="online", ts=T0))
    f.apply_status("c", "car", EdgeStatus(state="offline", ts=T0 + 5))  # its last will
    f.apply_devices("c", "home", [DeviceProfile(device="pir", adapter="zigbee2mqtt", room="hall",
                                                capabilities=("occupancy",))])
    edges = {e["edge_id"]: e for e in f.snapshot("c")["edges"]}
    assert edges["home"]["online"] is True and edges["home"]["backlog"] == 12
    assert edges["car"]["online"] is False
    assert edges["home"]["devices"][0]["device"] == "pir"


def test_snapshot_is_json_serialisable_and_state_restores_to_the_same_snapshot() -> None:
    f = fuser(T0 + 50)
    f.apply_events("c", "e", [ev(1, T0, "pir", "occupancy", True, "hall"), ev(2, T0 + 1, "th", "humidity", 40.0)])
    f.apply_status("c", "e", EdgeStatus(state="online", ts=T0))
    before = f.snapshot("c")
    json.dumps(before)
    g = fuser(T0 + 50)
    g.restore({cid: json.loads(json.dumps(state)) for cid, state in f.take_dirty()})
    assert g.snapshot("c") == before
    assert f.take_dirty() == []  # taken once


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.sampled_from(CAPS), st.integers(0, 50)), min_size=1, max_size=40),
       st.booleans())
def test_folding_per_key_matches_folding_event_by_event(
    draws: list[tuple[int, tuple[str, Any], int]], shuffle: bool
) -> None:
    # Devices keep their room, as real devices do (the per-key fold reads rooms per device).
    events = [ev(i + 1, T0 + t, DEVICES[d], cap, value, ROOM_OF[DEVICES[d]]) for i, (d, (cap, value), t) in enumerate(draws)]
    events.sort(key=lambda e: e.ts)
    if shuffle:
        events.reverse()
    per_key, each = fuser(T0 + 60), fuser(T0 + 60)
    per_key.apply_events("c", "e", events)  # ascending → per-key fold (or event by event if reversed)
    for e in events:
        each.apply_events("c", "e", [e])  # one event at a time: always the reference fold
    assert per_key.snapshot("c") == each.snapshot("c")
