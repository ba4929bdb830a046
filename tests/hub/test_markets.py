"""Market inference: calendar, venues, holiday homes, guests, declared markets, and in the hub."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt

from devices.topics import anticipations_topic, events_topic, status_topic
from hub.markets import declare_market, declared_market, infer_market, venue_kind, withdraw_market
from hub.store import Store
from simulations.brokers import Mosquitto

from .anticipation_kit import batch, hub_settings, model_path, morning_events, next_anticipation
from .helpers import running_hub

__all__ = ["model_path"]

MONDAY_NOON = datetime(2024, 1, 1, 12, tzinfo=UTC).timestamp()
SATURDAY_NOON = datetime(2024, 1, 6, 12, tzinfo=UTC).timestamp()


def _latest(edge: str, device: str, capability: str, value: Any, ts: float, room: str | None = None) -> dict[str, Any]:
    return {"edge_id": edge, "device": device, "capability": capability, "value": value, "ts": ts, "room": room}


def test_home_market_follows_the_customers_calendar() -> None:
    assert infer_market({}, {}, now=MONDAY_NOON).market == "home:weekday"
    assert infer_market({}, {}, now=SATURDAY_NOON).market == "home:weekend"
    # Sunday 23:30 UTC is already Monday for a customer two hours east
    sunday_late = datetime(2024, 1, 7, 23, 30, tzinfo=UTC).timestamp()
    assert infer_market({}, {}, now=sunday_late).market == "home:weekend"
    assert infer_market({}, {}, now=sunday_late, tz_offset_s=7200).market == "home:weekday"


def test_a_hotel_check_in_at_a_venue_edge_is_a_business_trip_until_departure() -> None:
    now = SATURDAY_NOON
    arrived = {"latest": [_latest("c1-hotel", "hotel-3-reader", "checkin", "arrival", now - 20 * 3600)]}
    reading = infer_market(arrived, {"c1-hotel": "venue"}, now=now)
    assert reading.market == "travel:business" and "c1-hotel" in reading.why
    left = {"latest": [_latest("c1-hotel", "hotel-3-reader", "checkin", "departure", now - 600)]}
    assert infer_market(left, {"c1-hotel": "venue"}, now=now).market == "home:weekend"


def test_a_gym_entry_is_the_gym_market_for_a_visit_only() -> None:
    entered = {"latest": [_latest("c1-gym", "gym-2-reader", "checkin", "entry", MONDAY_NOON - 1800)]}
    assert infer_market(entered, {"c1-gym": "venue"}, now=MONDAY_NOON).market == "venue:gym"
    hours_later = MONDAY_NOON + 5 * 3600
    assert infer_market(entered, {"c1-gym": "venue"}, now=hours_later).market == "home:weekday"


def test_venue_kind_comes_from_role_then_edge_id_then_check_in_words() -> None:
    assert venue_kind("x1", "venue:spa") == "spa"
    assert venue_kind("x1", "gym") == "gym"
    assert venue_kind("c7-hotel", "venue") == "hotel"
    assert venue_kind("v9", "venue", "arrival") == "hotel"
    assert venue_kind("v9", "venue", "entry") == "gym"
    assert venue_kind("v9", None) == "other"


def test_activity_at_a_holiday_home_is_a_leisure_trip() -> None:
    now = MONDAY_NOON
    snap = {"latest": [], "rooms": [
        {"edge_id": "c1-home", "room": "kitchen", "last_activation": now - 3 * 86400, "last_activity": now - 3 * 86400},
        {"edge_id": "c1-villa", "room": "living", "last_activation": now - 600, "last_activity": now - 600},
    ]}
    roles = {"c1-home": "home", "c1-villa": "holiday_home"}
    assert infer_market(snap, roles, now=now).market == "travel:leisure"
    assert infer_market(snap, roles, now=now + 2 * 86400).market == "home:weekday"  # long gone


def test_guest_room_activity_is_hosting() -> None:
    snap = {"latest": [_latest("c1-home", "guest_room/motion", "occupancy", True, MONDAY_NOON - 60, "guest_room")]}
    assert infer_market(snap, {"c1-home": "home"}, now=MONDAY_NOON).market == "hosting"


def test_a_declared_market_wins_over_everything() -> None:
    arrived = {"latest": [_latest("c1-hotel", "r", "checkin", "arrival", MONDAY_NOON - 60)]}
    reading = infer_market(arrived, {}, now=MONDAY_NOON, declared="travel:leisure")
    assert reading == ("travel:leisure", "declared by the customer")


async def test_declared_markets_are_stored_expire_and_can_be_withdrawn(tmp_path: Path) -> None:
    async with Store(tmp_path / "hub.db") as store:
        await declare_market(store, "c1", "hosting", until=1_000.0, now=0.0)
        assert await declared_market(store, "c1", now=999.0) == "hosting"
        assert await declared_market(store, "c1", now=1_000.0) is None
        await declare_market(store, "c1", "travel:leisure")
        assert await declared_market(store, "c1", now=1e12) == "travel:leisure"
        assert await withdraw_market(store, "c1") and await declared_market(store, "c1", now=0.0) is None


async def test_the_hub_anticipates_in_the_market_of_a_hotel_check_in_and_a_declared_one(
    mosquitto: Mosquitto, tmp_path: Path, prefix: str, model_path: Path
) -> None:
    customer, home, hotel = f"{prefix}-tr", f"{prefix}-tr-home", f"{prefix}-tr-hotel"
    topic = anticipations_topic(customer)
    settings = hub_settings(mosquitto.url, tmp_path / "hub.db", f"{prefix}-hub", model_path)
    async with running_hub(settings) as hub:
        assert hub.anticipation is not None
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as c:
            await c.subscribe(topic, qos=1)
            now = time.time()
            await c.publish(status_topic(customer, hotel), json.dumps(
                {"state": "online", "ts": now, "role": "venue"}).encode(), qos=1, retain=True)
            checkin = [{"seq": 1, "ts": now - 120, "device": "hotel-3-reader", "capability": "checkin",
                        "value": "arrival", "room": "lobby"}]
            await c.publish(events_topic(customer, hotel), batch(customer, hotel, checkin), qos=1)
            await c.publish(events_topic(customer, home), batch(customer, home, morning_events(1, now=now - 86000)),
                            qos=1)
            antic = await next_anticipation(c, topic)
            assert antic.market == "travel:business"
            await declare_market(hub.store, customer, "hosting", until=time.time() + 60)
            hub.anticipation.request(customer)
            declared = await next_anticipation(c, topic, not_ids=(antic.id,))
            assert declared.market == "hosting"
            await c.publish(status_topic(customer, hotel), b"", qos=1, retain=True)  # leave the broker clean
