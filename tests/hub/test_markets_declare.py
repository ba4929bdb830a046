"""A customer declares their market: validation, the report, expiry, the API doors, the hub, erasure."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import httpx
import pytest

from devices.errors import ConfigError
from devices.topics import anticipations_topic, events_topic, feedback_topic
from devices.wire import Feedback
from hub.http.tokens import create_customer_token, create_token, revoke_customer_tokens, verify_token
from hub.markets import (
    check_market, declare_market, known_markets, market_now, market_report, parse_duration, parse_until,
)
from hub.rights import forget_customer
from hub.service import Hub
from hub.settings import HubSettings
from hub.store import Store
from simulations.brokers import Mosquitto

from .anticipation_kit import batch, model_path, morning_events, next_anticipation
from .helpers import forget_session, running_hub

__all__ = ["model_path"]

MONDAY_NOON = datetime(2024, 1, 1, 12, tzinfo=UTC).timestamp()


# -- validation and parsing --------------------------------------------------------------------
def test_only_known_markets_may_be_declared_and_the_error_lists_them() -> None:
    assert check_market("hosting") == "hosting"
    assert check_market("venue:gym") == "venue:gym"
    assert check_market("casas:night", extra=("casas:night",)) == "casas:night"  # the model's own markets
    with pytest.raises(ConfigError, match="unknown market 'hotel'.*home:weekday.*travel:business"):
        check_market("hotel")
    assert "venue:hotel" not in known_markets()  # a hotel stay is travel, as inference says


def test_durations_and_until_times_parse_or_say_what_is_wrong() -> None:
    assert parse_duration("3d") == 3 * 86400 and parse_duration("90m") == 5400 and parse_duration("45") == 45
    for bad in ("", "0", "-1h", "3 days", "nan"):
        with pytest.raises(ConfigError, match="duration"):
            parse_duration(bad)
    assert parse_until("2024-01-01T13:00", now=MONDAY_NOON) == MONDAY_NOON + 3600  # no offset: UTC
    assert parse_until("2024-01-01T13:00+01:00", now=MONDAY_NOON - 1) == MONDAY_NOON
    assert parse_until(MONDAY_NOON + 5, now=MONDAY_NOON) == MONDAY_NOON + 5
    with pytest.raises(ConfigError, match="not in the future"):
        parse_until("2024-01-01T11:00", now=MONDAY_NOON)
    with pytest.raises(ConfigError, match="ISO 8601"):
        parse_until("tomorrow", now=MONDAY_NOON)


async def test_the_report_says_declared_until_expiry_then_inferred_again(tmp_path: Path) -> None:
    async with Store(tmp_path / "hub.db") as store:
        empty = await market_report(store, "c1", {}, now=MONDAY_NOON)
        assert (empty["market"], empty["source"], empty["declared"]) == ("home:weekday", "inferred", None)
        await declare_market(store, "c1", "travel:leisure", until=MONDAY_NOON + 3600, now=MONDAY_NOON)
        held = await market_report(store, "c1", {}, now=MONDAY_NOON + 60)
        assert (held["market"], held["source"]) == ("travel:leisure", "declared")
        assert held["declared"]["until_iso"] == "2024-01-01T13:00:00+00:00"
        assert held["inferred"] == {"market": "home:weekday", "why": "a weekday"}
        assert (await market_now(store, "c1", {}, now=MONDAY_NOON + 60)).market == "travel:leisure"
        expired = await market_now(store, "c1", {}, now=MONDAY_NOON + 3600)  # what anticipation uses
        assert expired == ("home:weekday", "a weekday")


# -- end to end: a hub with the API, a customer token, anticipation -----------------------------
@contextlib.asynccontextmanager
async def _hub(mosquitto: Mosquitto, db: Path, client_id: str, model: Path) -> AsyncIterator[tuple[Hub, str]]:
    settings = HubSettings.load(
        broker={"url": mosquitto.url, "client_id": client_id}, store={"path": db},
        ingest={"context_persist_s": 0.0}, http={"listen": "127.0.0.1:0"},
        anticipation={"model_path": model, "debounce_s": 0.2, "feedback_poll_s": 3600.0},
    )
    async with running_hub(settings) as hub:
        assert hub.http is not None and hub.anticipation is not None
        async with asyncio.timeout(10):
            await hub.http.ready.wait()
        yield hub, hub.http.url
    await forget_session(mosquitto.host, mosquitto.port, client_id)


async def test_a_market_declared_with_the_customers_token_drives_anticipation_and_its_personal_layer(
    mosquitto: Mosquitto, tmp_path: Path, prefix: str, model_path: Path
) -> None:
    customer, edge = f"{prefix}-dm", f"{prefix}-dm-home"
    topic = anticipations_topic(customer)
    async with _hub(mosquitto, tmp_path / "hub.db", f"{prefix}-hub", model_path) as (hub, url):
        service = hub.anticipation
        assert service is not None
        token, _ = await create_customer_token(hub.store, customer)
        me = httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        async with me, aiomqtt.Client(mosquitto.host, mosquitto.port) as c:
            await c.subscribe(topic, qos=1)
            await c.publish(events_topic(customer, edge), batch(customer, edge, morning_events(1)), qos=1)
            inferred = await next_anticipation(c, topic)
            assert inferred.market.startswith("home:")

            r = await me.put("/api/me/market", json={"market": "hosting", "for": "2h"})
            assert r.status_code == 200, r.text
            assert (r.json()["market"], r.json()["source"]) == ("hosting", "declared")
            declared = await next_anticipation(c, topic, not_ids=(inferred.id,))  # the PUT asked for one at once
            assert declared.market == "hosting"

            # Feedback on the declared anticipation teaches the (customer, hosting) layer only.
            fb = Feedback(anticipation_id=declared.id, verdict="accepted", ts=declared.ts, job=declared.jobs[2].job)
            await c.publish(feedback_topic(customer), fb.model_dump_json().encode(), qos=1)
            await c.publish(events_topic(customer, edge), batch(customer, edge, morning_events(13)), qos=1)
            async with asyncio.timeout(15):
                while not (await service.layers.get(customer, "hosting")).to_dict()["buckets"]:
                    await asyncio.sleep(0.05)
            assert not (await service.layers.get(customer, inferred.market)).to_dict()["buckets"]

            r = await me.delete("/api/me/market")
            assert r.status_code == 200 and r.json()["withdrawn"] is True and r.json()["source"] == "inferred"
            seen = [inferred.id, declared.id]
            async with asyncio.timeout(15):
                while (again := await next_anticipation(c, topic, not_ids=tuple(seen))).market == "hosting":
                    seen.append(again.id)  # one the second batch triggered before the withdrawal
            assert again.market == inferred.market
            await c.publish(topic, b"", qos=1, retain=True)  # leave the broker clean


async def test_a_market_declared_with_the_cli_while_the_hub_runs_holds_until_it_expires(
    mosquitto: Mosquitto, tmp_path: Path, prefix: str, model_path: Path
) -> None:
    from genius.cli import main

    customer, edge = f"{prefix}-dc", f"{prefix}-dc-home"
    topic, db, client_id = anticipations_topic(customer), tmp_path / "hub.db", f"{prefix}-hub"
    settings = HubSettings.load(broker={"url": mosquitto.url, "client_id": client_id}, store={"path": db},
                                anticipation={"model_path": model_path, "debounce_s": 0.2})
    skew = [0.0]  # the hub's clock runs ahead by this much: expiry without waiting for it
    hub = Hub(settings, clock=lambda: time.time() + skew[0])
    async with hub, asyncio.TaskGroup() as tg, aiomqtt.Client(mosquitto.host, mosquitto.port) as c:
        task = tg.create_task(hub.run())
        async with asyncio.timeout(10):
            await hub.ready.wait()
        service = hub.anticipation
        assert service is not None
        await c.subscribe(topic, qos=1)
        await c.publish(events_topic(customer, edge), batch(customer, edge, morning_events(1)), qos=1)
        inferred = await next_anticipation(c, topic)
        code = await asyncio.to_thread(main, ["customer", "market", "--db", str(db), "--customer", customer,
                                              "--declare", "venue:gym", "--for", "10m"])
        assert code == 0
        service.request(customer)
        declared = await next_anticipation(c, topic, not_ids=(inferred.id,))
        assert declared.market == "venue:gym"
        skew[0] = 601.0
        service.request(customer)
        expired = await next_anticipation(c, topic, not_ids=(inferred.id, declared.id))
        assert expired.market != "venue:gym" and expired.market.startswith("home:")
        await c.publish(topic, b"", qos=1, retain=True)
        task.cancel()
    await forget_session(mosquitto.host, mosquitto.port, client_id)


async def test_customer_tokens_open_only_their_own_routes_and_operator_changes_are_audited(
    mosquitto: Mosquitto, tmp_path: Path, prefix: str, model_path: Path
) -> None:
    customer, edge = f"{prefix}-dt", f"{prefix}-dt-home"
    db = tmp_path / "hub.db"
    async with _hub(mosquitto, db, f"{prefix}-hub", model_path) as (hub, url):
        token, _ = await create_customer_token(hub.store, customer, name="alice-phone")
        operator, _ = await create_token(hub.store, role="operator", name="ops")
        viewer, _ = await create_token(hub.store, role="viewer", name="grafana")
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as c:
            await c.publish(events_topic(customer, edge), batch(customer, edge, morning_events(1)), qos=1)
        async with asyncio.timeout(10):
            while hub.stats.events_stored < 12:
                await asyncio.sleep(0.05)

        def client(t: str) -> httpx.AsyncClient:
            return httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {t}"}, timeout=10)

        async with client(token) as me, client(operator) as ops, client(viewer) as view:
            who = (await me.get("/api/whoami")).json()
            assert who["role"] == "customer" and who["customer_id"] == customer and who["name"] == "alice-phone"
            for route in ("/api/edges", "/metrics", "/api/customers", f"/api/customers/{customer}/context",
                          f"/api/customers/{customer}/market", "/api/stream"):
                assert (await me.get(route)).status_code == 403, route
            assert (await ops.get("/api/me/market")).json() == {"error": "forbidden", "needs": "customer"}
            assert (await view.get(f"/api/customers/{customer}/market")).status_code == 403

            bad = await me.put("/api/me/market", json={"market": "the moon"})
            assert bad.status_code == 400 and "unknown market 'the moon'" in bad.json()["error"]
            assert "hosting" in bad.json()["known"]
            for body in ({"market": "hosting", "until": "2000-01-01T00:00"}, {"market": "hosting", "for": "-3d"},
                         {"market": "hosting", "for": "1h", "until": time.time() + 60}, [1, 2]):
                assert (await me.put("/api/me/market", json=body)).status_code == 400, body

            r = await ops.put(f"/api/customers/{customer}/market", json={"market": "venue:gym", "until": time.time() + 600})
            assert r.status_code == 200 and r.json()["market"] == "venue:gym"
            mine = (await me.get("/api/me/market")).json()
            assert mine["market"] == "venue:gym" and mine["declared"]["until"] is not None
            shown = (await ops.get(f"/api/customers/{customer}/context")).json()["declared"]  # the dashboard's
            assert shown == {"market": "venue:gym", "until": mine["declared"]["until"]}
            assert (await ops.delete(f"/api/customers/{customer}/market")).json()["withdrawn"] is True
            assert (await ops.get("/api/customers/nobody-here/market")).status_code == 404

    with sqlite3.connect(db) as conn:
        audit = conn.execute("SELECT token_name, customer_id, resource, detail FROM audit_log").fetchall()
    assert audit == [("ops", customer, "market", "PUT"), ("ops", customer, "context", ""),
                     ("ops", customer, "market", "DELETE")]


async def test_erasing_a_customer_erases_declarations_and_customer_tokens_revoking_keeps_none_alive(tmp_path: Path) -> None:
    async with Store(tmp_path / "hub.db") as store:
        await declare_market(store, "c1", "hosting")
        await declare_market(store, "c2", "hosting")
        token, _ = await create_customer_token(store, "c1")
        assert (await verify_token(store, token)) is not None
        report = await forget_customer(store, "c1")
        assert report.rows.get("declared_markets") == 1 and report.rows.get("customer_tokens") == 1
        assert await verify_token(store, token) is None
        assert (await market_now(store, "c1", {}, now=MONDAY_NOON)).market == "home:weekday"
        assert (await market_now(store, "c2", {}, now=MONDAY_NOON)).market == "hosting"

        kept, _ = await create_customer_token(store, "c2")
        assert await revoke_customer_tokens(store, "c2") == 1 and await verify_token(store, kept) is None
        with pytest.raises(ConfigError, match="customer id"):
            await create_customer_token(store, "Not An Id")


async def test_the_token_hash_is_redacted_from_an_export(tmp_path: Path) -> None:
    from hub.http.tokens import hash_token
    from hub.rights import export_customer

    async with Store(tmp_path / "hub.db") as store:
        token, _ = await create_customer_token(store, "c1")
        doc = json.dumps(await export_customer(store, "c1"))
    assert "customer_tokens" in doc and hash_token(token) not in doc
