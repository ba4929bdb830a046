"""Normalise: routing, room overrides, contract checks, dead letters, discovery, inventory, batch JSON."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices import DefinitionsAdapter, DeviceDefinition, DeviceProfile, Topic, occupancy, power, temperature
from devices.adapter import Adapter, AdapterSession
from devices.readings import AdapterResult, Availability, Reading
from devices.wire import decode_batch
from edge import DeviceSettings, Inventory, Outbox, OutboxSettings, Pipeline, PrivacyFilter, PrivacySettings
from edge.batch import encode_batch
from edge.pipeline import reading_problem

TH = DeviceDefinition(vendor="t", model="th", match=Topic("home/+/th"), exposes=(temperature(path="t"), occupancy(path="o")))
PLUG = DeviceDefinition(vendor="t", model="plug", match=Topic("home/+/plug"), exposes=(power(path="p"),))


@dataclass(frozen=True, slots=True)
class _Discovering(Adapter):
    """Announces devices on ``disco/announce``; then reads ``disco/<device>`` (raw number = power)."""

    def new_session(self) -> AdapterSession:
        return _DiscoveringSession(self)


class _DiscoveringSession(AdapterSession):
    def __init__(self, adapter: _Discovering) -> None:
        self.adapter = adapter
        self.known: list[str] = []

    def subscriptions(self) -> list[str]:
        return ["disco/announce", *(f"disco/{d}" for d in self.known)]

    def handle(self, topic: str, payload: bytes, *, ts: float) -> AdapterResult:
        if payload == b"boom":
            raise RuntimeError("adapter bug")
        if topic == "disco/announce":
            device = payload.decode()
            self.known.append(device)
            profile = DeviceProfile(device=device, adapter="disco", capabilities=("power",))
            return AdapterResult(profiles=[profile], subscribe=[f"disco/{device}"])
        device = topic.split("/")[1]
        if payload == b"gone":
            return AdapterResult(availability=[Availability(device, False)])
        return AdapterResult(readings=[Reading(ts, device, "power", float(payload), None)])


@pytest.fixture
async def box(tmp_path: Path):  # type: ignore[no-untyped-def]
    async with Outbox.open(OutboxSettings(path=tmp_path / "o.db")) as b:
        yield b


def _pipeline(box: Outbox, devices: dict[str, DeviceSettings] | None = None, **privacy: object) -> Pipeline:
    devices = devices or {}
    pf = PrivacyFilter.from_settings(PrivacySettings(**privacy), devices)  # type: ignore[arg-type]
    return Pipeline(
        [DefinitionsAdapter.of([TH, PLUG]).new_session(), _Discovering(name="disco", topics=("disco/announce",)).new_session()],
        outbox=box, privacy=pf, inventory=Inventory(pf.resolver, devices), dead_letters=box.dead_letters,
        devices=devices,
    )


async def _events(box: Outbox) -> list[tuple[str, str, object, str | None]]:
    await box.flush()
    rows = await box.read(0, limit=10_000)
    n = box.names
    return [(n[d], n[c], v, n[r] if r is not None else None) for _s, _t, d, c, v, r in rows]


async def test_readings_take_the_configured_room_over_the_adapters(box: Outbox) -> None:
    p = _pipeline(box, {"k1": DeviceSettings(room="kitchen")})
    p.handle("home/k1/th", b'{"t": 21.5, "o": "occupied"}', ts=1000.0)
    p.handle("home/k2/th", b'{"t": 19}', ts=1001.0)
    assert await _events(box) == [
        ("k1", "temperature", 21.5, "kitchen"), ("k1", "occupancy", 1, "kitchen"), ("k2", "temperature", 19.0, None),
    ]


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("home/k1/th", b"{not json", "json"),
        ("home/k1/th", b"[1, 2]", "schema"),
        ("home/k1/th", b'{"t": "warm"}', "value"),
        ("home/k1/nothing", b"{}", "unrouted"),
        ("disco/announce", b"boom", "adapter_error"),
        ("home/k1/th", b'{"t": 1e300}', "value"),
    ],
)
async def test_bad_messages_are_dead_lettered_with_their_reason_and_raw_bytes(
    box: Outbox, topic: str, payload: bytes, reason: str
) -> None:
    p = _pipeline(box)
    p.handle(topic, payload, ts=1000.0)
    p.handle("home/k1/th", b'{"t": 20}', ts=1001.0)  # the next good message still counts
    assert await _events(box) == [("k1", "temperature", 20.0, None)]
    rows = await box.dead_letter_rows()
    assert [(r[1], r[2], r[3], r[4]) for r in rows] == [("local", topic, payload, reason)]
    assert box.dead_letters.total == 1


def test_readings_that_would_break_the_wire_contract_are_named() -> None:
    ok = Reading(1.0, "d", "power", 1.0, None)
    assert reading_problem(ok) is None
    assert reading_problem(ok._replace(value=float("nan"))) is not None
    assert reading_problem(ok._replace(value=True)) is not None
    assert reading_problem(ok._replace(capability="warp")) is not None
    assert reading_problem(ok._replace(device="bad\nname")) is not None
    assert reading_problem(ok._replace(room="")) is not None
    assert reading_problem(ok._replace(ts=-1.0)) is not None
    assert reading_problem(Reading(1.0, "d", "action", "x" * 257, None)) is not None


async def test_discovery_adds_subscriptions_and_inventory_with_privacy(box: Outbox) -> None:
    p = _pipeline(box, {"meter": DeviceSettings(room="garage", privacy="coarse")})
    assert "disco/meter" not in p.subscriptions()
    assert p.handle("disco/meter", b"5", ts=1.0).subscribe == ()  # not announced yet: nobody owns it
    changes = p.handle("disco/announce", b"meter", ts=2.0)
    assert changes.subscribe == ("disco/meter",) and "disco/meter" in p.subscriptions()
    p.handle("disco/meter", b"gone", ts=3.0)
    [doc] = json.loads(p.inventory.to_json())
    assert doc == {"device": "meter", "adapter": "disco", "room": "garage", "capabilities": ["power"],
                   "available": False, "privacy": {"power": "coarse"}}
    assert box.dead_letters.by_reason[("local", "unrouted")] == 1


async def test_after_a_reconnect_unrouted_messages_wait_for_discovery_then_dead_letter(box: Outbox) -> None:
    p = _pipeline(box)
    p.hold_unrouted(until=10.0)
    # Queued for the persistent session while the edge was down: they arrive before discovery.
    assert p.handle("disco/meter", b"5", ts=1.0) == p.handle("disco/nobody", b"7", ts=2.0)
    assert box.dead_letters.total == 0
    changes = p.handle("disco/announce", b"meter", ts=3.0)  # the retained announcement comes back
    assert changes.subscribe == ("disco/meter",)
    assert await _events(box) == [("meter", "power", 5.0, None)]
    assert p.tick(9.0) == 0 and box.dead_letters.total == 0
    p.tick(10.0)  # the grace is over: what no session claimed is a dead letter, as without it
    assert box.dead_letters.by_reason[("local", "unrouted")] == 1
    p.handle("disco/other", b"1", ts=11.0)
    assert box.dead_letters.by_reason[("local", "unrouted")] == 2


async def test_local_devices_never_reach_the_outbox(box: Outbox) -> None:
    p = _pipeline(box, {"k1": DeviceSettings(privacy="local")})
    p.handle("home/k1/th", b'{"t": 21.5, "o": true}', ts=1000.0)
    p.handle("home/k2/plug", b'{"p": 3}', ts=1000.0)
    assert await _events(box) == [("k2", "power", 3.0, None)]
    assert p.privacy.counters.local == 2


reading = st.builds(
    Reading,
    ts=st.floats(0, 4e9, allow_nan=False),
    device=st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=40),
    capability=st.sampled_from(["power", "temperature", "occupancy", "contact", "action", "media"]),
    value=st.just(None),
    room=st.none() | st.sampled_from(["kitchen", "salle à manger", 'a "quoted" room']),
)


def _valued(r: Reading, data: st.DataObject) -> Reading:
    if r.capability in ("occupancy", "contact"):
        v: object = data.draw(st.booleans())
    elif r.capability in ("power", "temperature"):
        v = data.draw(st.floats(-1e12, 1e12, allow_nan=False) | st.integers(-1000, 1000))
    else:
        v = data.draw(st.text(max_size=256))
    return r._replace(value=v)  # type: ignore[arg-type]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), readings=st.lists(reading, min_size=1, max_size=60))
async def test_fast_batch_json_is_a_valid_event_batch_with_the_same_events(
    tmp_path: Path, data: st.DataObject, readings: list[Reading]
) -> None:
    readings = [_valued(r, data) for r in readings]
    readings = [r for r in readings if reading_problem(r) is None]
    async with Outbox.open(OutboxSettings(path=tmp_path / f"{uuid.uuid4().hex}.db")) as box:
        box.put(readings)
        await box.flush()
        rows = await box.read(0, limit=1000)
        payload = encode_batch(
            customer_id="alice", edge_id="alice-home", sent_at=12.5, rows=rows, names_json=box.names_json, names=box.names
        )
    batch = decode_batch(payload, customer_id="alice", edge_id="alice-home")
    assert [e.seq for e in batch.events] == list(range(1, len(readings) + 1))
    for event, r in zip(batch.events, readings):
        assert (event.ts, event.device, event.capability, event.room) == (float(r.ts), r.device, r.capability, r.room)
        assert event.value == r.value and type(event.value) is (str if isinstance(r.value, str) else bool if isinstance(r.value, bool) else float)
