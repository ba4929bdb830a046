"""Operator API against a real hub: auth (401/403), audit rows, metrics text, JSON shapes, SSE."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from simulations.brokers import Mosquitto

from . import fake_edge as fe
from .http_testkit import Api, running_api

CUSTOMER_ROUTES = ("context", "events", "anticipations")
FLEET_ROUTES = ("/metrics", "/api/edges", "/api/alarms", "/api/dead-letters", "/api/throughput", "/api/whoami")


async def _populate(api: Api, c: str, e: str, *, events: int = 40) -> None:
    """One customer with one edge: status, device inventory (with privacy) and events."""
    host, port = api.hub.settings.broker.host, api.hub.settings.broker.port
    async with fe.client(host, port) as pub:
        await fe.publish_status(pub, c, e, {"state": "online", "backlog": 3, "ts": 1.0, "version": "0.1",
                                            "overflow_dropped": 2})
        await fe.publish_devices(pub, c, e, [
            {"device": "pir", "adapter": "zigbee2mqtt", "room": "kitchen", "capabilities": ["occupancy"],
             "privacy": {"occupancy": "coarse"}},
            {"device": "cam", "adapter": "zigbee2mqtt", "room": "hall", "capabilities": ["media"],
             "privacy": {"media": "local"}},
        ])
    await fe.deliver(host, port, c, e, fe.batches(c, e, events, 10), total=events)


async def _refresh(api: Api) -> None:
    assert api.hub.http is not None and api.hub.http.state is not None
    await api.hub.http.state.monitor.refresh()


def _audit_rows(db: Path) -> list[tuple[str, str, str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT token_name, role, customer_id, resource FROM audit_log ORDER BY id").fetchall()


async def test_without_a_valid_token_every_api_route_is_401_and_says_nothing_about_customers(
    mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path, prefix: str
) -> None:
    mosquitto = mosquitto_factory()
    c, e = f"{prefix}-c", f"{prefix}-e"
    async with running_api(mosquitto, tmp_path / "hub.db", f"hub-{prefix}") as api:
        await _populate(api, c, e)
        routes = [*FLEET_ROUTES, "/api/stream", "/api/customers",
                  *(f"/api/customers/{c}/{r}" for r in CUSTOMER_ROUTES)]
        forged = f"gt_{'0' * 12}_{'x' * 43}"
        for token in (None, "nonsense", forged, api.operator[:-1] + ("A" if api.operator[-1] != "A" else "B")):
            async with api.client(token) as http:
                for route in routes:
                    r = await http.get(route)
                    assert r.status_code == 401, (route, token)
                    assert r.json() == {"error": "unauthorized"}
                    assert c not in r.text and e not in r.text
        async with api.client() as http:  # open routes hold no customer data
            health = await http.get("/healthz")
            assert health.json() == {"status": "ok"}
            page = await http.get("/")
            assert page.status_code == 200 and "<html" in page.text and c not in page.text


async def test_viewer_sees_the_fleet_but_no_customer_data(
    mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path, prefix: str
) -> None:
    mosquitto = mosquitto_factory()
    c, e = f"{prefix}-c", f"{prefix}-e"
    db = tmp_path / "hub.db"
    async with running_api(mosquitto, db, f"hub-{prefix}") as api:
        await _populate(api, c, e)
        async with api.client(api.viewer) as http:
            for route in FLEET_ROUTES:
                assert (await http.get(route)).status_code == 200, route
            for route in ("/api/customers", *(f"/api/customers/{c}/{r}" for r in CUSTOMER_ROUTES)):
                r = await http.get(route)
                assert r.status_code == 403 and r.json() == {"error": "forbidden", "needs": "operator"}, route
            assert (await http.get("/api/stream", params={"customer": c})).status_code == 403
            dead = (await http.get("/api/dead-letters")).json()
            assert set(dead) == {"counts"}  # no rows: they name customers and hold raw payloads
            edges = (await http.get("/api/edges")).json()["edges"]
            assert "inventory" not in edges[0] and "devices" in edges[0]
        assert _audit_rows(db) == []  # the viewer read nothing that needs auditing


async def test_every_operator_read_of_a_customer_writes_an_audit_row_first(
    mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path, prefix: str
) -> None:
    mosquitto = mosquitto_factory()
    c, e = f"{prefix}-c", f"{prefix}-e"
    db = tmp_path / "hub.db"
    async with running_api(mosquitto, db, f"hub-{prefix}") as api:
        await _populate(api, c, e)
        async with api.client(api.operator) as http:
            for route in CUSTOMER_ROUTES:
                assert (await http.get(f"/api/customers/{c}/{route}")).status_code == 200
            assert (await http.get("/api/customers/nobody/context")).status_code == 404
            assert (await http.get("/api/customers")).status_code == 200  # the list is not one customer's data
    assert _audit_rows(db) == [("alice", "operator", c, r) for r in CUSTOMER_ROUTES]
    with sqlite3.connect(db) as conn:
        token_id, ts = conn.execute("SELECT token_id, ts FROM audit_log LIMIT 1").fetchone()
        assert re.fullmatch(r"[0-9a-f]{12}", token_id) and ts > 1.7e9
        # Only a hash of each token is stored.
        hashes = [h for (h,) in conn.execute("SELECT hash FROM api_tokens")]
        assert len(hashes) == 2 and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes)
        assert api.operator not in hashes and api.viewer not in hashes


async def test_json_api_shapes(
    mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path, prefix: str
) -> None:
    mosquitto = mosquitto_factory()
    c, e = f"{prefix}-c", f"{prefix}-e"
    async with running_api(mosquitto, tmp_path / "hub.db", f"hub-{prefix}") as api:
        await _populate(api, c, e, events=40)
        host, port = api.hub.settings.broker.host, api.hub.settings.broker.port
        async with fe.client(host, port) as pub:
            await pub.publish(f"genius/v1/{c}/{e}/events", b"not json", qos=1)
            await pub.publish(f"genius/v1/{c}/{e}/events", fe.seq_batch(c, e, 41, 1), qos=1)
            await fe.wait_ack(pub, c, e, through=41)
        async with api.client(api.operator) as http:
            await _refresh(api)  # the fleet view re-reads the store now, not at its next tick
            edges = (await http.get("/api/edges")).json()["edges"]
            assert [(x["edge_id"], x["customer_id"], x["online"], x["events"], x["backlog"], x["devices"],
                     x["overflow_dropped"], x["gaps"]) for x in edges] == [(e, c, True, 41, 3, 2, 2, 0)]
            customers = (await http.get("/api/customers")).json()["customers"]
            assert customers == [{"customer_id": c, "edges": 1, "events": 41, "first_seen": customers[0]["first_seen"]}]
            ctx = (await http.get(f"/api/customers/{c}/context")).json()
            assert set(ctx) == {"customer_id", "market", "declared", "context", "privacy"}
            assert ctx["context"]["customer_id"] == c and ctx["context"]["edges"][0]["edge_id"] == e
            assert {(p["device"], json.dumps(p["capabilities"])) for p in ctx["privacy"]} == {
                ("pir", '{"occupancy": "coarse"}'), ("cam", '{"media": "local"}')}
            evs = (await http.get(f"/api/customers/{c}/events", params={"since": 1_700_000_030, "limit": 5})).json()
            assert [x["seq"] for x in evs["events"]] == [30, 31, 32, 33, 34]
            assert set(evs["events"][0]) == {"ts", "edge_id", "seq", "device", "capability", "value", "room"}
            assert (await http.get(f"/api/customers/{c}/events", params={"since": "soon"})).status_code == 400
            ant = (await http.get(f"/api/customers/{c}/anticipations")).json()
            assert set(ant) == {"customer_id", "anticipations", "sacrifice"} and isinstance(ant["anticipations"], list)
            dead = (await http.get("/api/dead-letters")).json()
            assert dead["counts"] == {"json": 1}
            assert [(r["reason"], r["edge_id"], r["raw_preview"]) for r in dead["rows"]] == [("json", e, "not json")]
            alarms = (await http.get("/api/alarms")).json()
            assert alarms["alarms"] == []
            samples = (await http.get("/api/throughput")).json()["samples"]
            assert samples and samples[-1]["events"] == 41
            who = (await http.get("/api/whoami")).json()
            assert who["name"] == "alice" and who["role"] == "operator"


_SAMPLE = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (\S+)')


def parse_prometheus(text: str) -> dict[str, float]:
    """A strict reader of the text format: every line is HELP, TYPE or a well-formed sample."""
    out: dict[str, float] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in {"counter", "gauge", "histogram"}, line
            typed.add(name)
            continue
        m = _SAMPLE.fullmatch(line)
        assert m is not None, f"not a sample line: {line!r}"
        name = m.group(1)
        assert re.sub(r"_(bucket|sum|count)$", "", name) in typed or name in typed, f"untyped: {name}"
        out[name + (m.group(2) or "")] = float(m.group(3))
    return out


async def test_metrics_are_prometheus_text_and_count_what_was_ingested(
    mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path, prefix: str
) -> None:
    mosquitto = mosquitto_factory()
    c, e = f"{prefix}-c", f"{prefix}-e"
    async with running_api(mosquitto, tmp_path / "hub.db", f"hub-{prefix}") as api:
        await _populate(api, c, e, events=40)
        await _refresh(api)
        async with api.client(api.viewer) as http:
            r = await http.get("/metrics")
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
        m = parse_prometheus(r.text)
        assert m["genius_hub_events_ingested_total"] == 40
        assert m["genius_hub_batches_total"] == 4
        assert m['genius_hub_edges{state="online"}'] == 1
        assert m["genius_hub_edge_backlog_events"] == 3
        assert m["genius_hub_gaps"] == 0
        assert m["genius_hub_ingest_latency_seconds_count"] == 4
        assert m['genius_hub_ingest_latency_seconds_bucket{le="+Inf"}'] == 4
        assert m["genius_hub_anticipations_published_total"] >= 0
        assert "genius_hub_anticipation_latency_seconds_count" in m
        buckets = [v for k, v in m.items() if k.startswith("genius_hub_ingest_latency_seconds_bucket")]
        assert buckets == sorted(buckets)  # cumulative


async def test_stream_pushes_live_fleet_updates_and_audits_a_customer_stream(
    mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path, prefix: str
) -> None:
    mosquitto = mosquitto_factory()
    c, e = f"{prefix}-c", f"{prefix}-e"
    db = tmp_path / "hub.db"
    async with running_api(mosquitto, db, f"hub-{prefix}") as api:
        await _populate(api, c, e, events=10)
        seen: list[int] = []
        kinds: set[str] = set()
        async with httpx.AsyncClient(base_url=api.url, timeout=10) as http:
            params = {"token": api.operator, "customer": c}
            async with asyncio.timeout(15), http.stream("GET", "/api/stream", params=params) as r:
                assert r.headers["content-type"].startswith("text/event-stream")
                event = None
                published = False
                async for line in r.aiter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                        kinds.add(event)
                    elif line.startswith("data: ") and event == "fleet":
                        seen.append(json.loads(line[6:])["counters"]["events"])
                        if not published:
                            published = True
                            host, port = api.hub.settings.broker.host, api.hub.settings.broker.port
                            await fe.deliver(host, port, c, e, fe.batches(c, e, 30, 10), total=30)
                        if seen[-1] == 30:
                            break
        # The first event may predate the last commit by one interval; then it only goes up, to 30.
        assert seen[0] <= 10 and seen[-1] == 30 and seen == sorted(seen) and kinds == {"fleet", "customer"}
    assert ("alice", "operator", c, "stream") in _audit_rows(db)


async def test_customer_anticipations_come_from_the_anticipation_service_store(
    mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path, prefix: str
) -> None:
    pytest.importorskip("hub.anticipation", reason="the anticipation service is not part of this checkout")
    mosquitto = mosquitto_factory()
    c, e = f"{prefix}-c", f"{prefix}-e"
    db = tmp_path / "hub.db"
    async with running_api(mosquitto, db, f"hub-{prefix}") as api:
        await _populate(api, c, e, events=10)
        jobs = [{"job": "cook", "probability": 0.7, "expected_in_s": 60.0, "because": ["kitchen motion"]}]
        async with api.hub.store.transaction() as conn:
            await conn.execute(
                "INSERT INTO anticipations (id, customer_id, market, ts, model, jobs, context, latency_s)"
                " VALUES (?,?,?,?,?,?,?,?)", ("a1", c, "home:weekend", 1_800_000_000.0, "m@1", json.dumps(jobs), "{}", 0.1))
            await conn.execute(
                "INSERT INTO sacrifice (customer_id, market, ts, job, anticipation_id, probability, sacrifice)"
                " VALUES (?,?,?,?,?,?,?)", (c, "home:weekend", 1_800_000_100.0, "cook", "a1", 0.7, 0.3))
        async with api.client(api.operator) as http:
            ant = (await http.get(f"/api/customers/{c}/anticipations")).json()
            ctx = (await http.get(f"/api/customers/{c}/context")).json()
    assert [(a["id"], a["market"], a["jobs"][0]["job"], a["jobs"][0]["because"]) for a in ant["anticipations"]] == [
        ("a1", "home:weekend", "cook", ["kitchen motion"])]
    assert [(s["market"], s["sacrifice"]) for s in ant["sacrifice"]] == [("home:weekend", 0.3)]
    assert ctx["market"] == "home:weekend"
