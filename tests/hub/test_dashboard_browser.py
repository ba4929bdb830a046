"""The dashboard in a real headless Chromium (Debian's, driven by Playwright) against a live hub.

Simulated customers publish through the hub broker while the browser signs in with a token,
watches the ingest counter change live (SSE), and opens a customer page. Screenshots land in
the test's ``tmp_path`` (and in ``$GENIUS_SCREENSHOTS`` when set, to look at them).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from devices.wire import Anticipation, JobForecast
from hub.http.customers import CustomerQueries
from simulations.brokers import Mosquitto

from . import fake_edge as fe
from .http_testkit import Api, running_api

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _ensure_chromium() -> None:
    """The test setup installs Debian's chromium when it is missing (root, as CI is), like mosquitto."""
    if CHROMIUM.exists():
        return
    if shutil.which("apt-get") is None:
        pytest.skip("chromium is missing and apt-get is not available to install it")
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)


async def _customers_publish(api: Api, customers: list[tuple[str, str]], stop: asyncio.Event) -> None:
    """Each customer's edge: online status, an inventory with privacy, then a batch every 0.3 s."""
    host, port = api.hub.settings.broker.host, api.hub.settings.broker.port
    async with fe.client(host, port) as pub:
        for c, e in customers:
            await fe.publish_status(pub, c, e, {"state": "online", "backlog": 0, "ts": time.time(), "version": "0.1",
                                                "role": "home"})
            await fe.publish_devices(pub, c, e, [
                {"device": "hall_pir", "adapter": "zigbee2mqtt", "room": "hall", "capabilities": ["occupancy"],
                 "privacy": {"occupancy": "coarse"}},
                {"device": "kitchen_plug", "adapter": "tasmota", "room": "kitchen", "capabilities": ["power", "switch"],
                 "privacy": {"power": "share", "switch": "share"}},
                {"device": "bedroom_cam", "adapter": "homeassistant", "room": "bedroom", "capabilities": ["media"],
                 "privacy": {"media": "local"}},
            ])
        seq = {e: 0 for _, e in customers}
        for _ in range(300):  # bounded: at most 90 s of traffic
            if stop.is_set():
                return
            for c, e in customers:
                now = time.time()
                events = [
                    fe.event(seq[e] + i + 1, ts=now - 0.05 * (5 - i), device=dev, capability=cap, value=val, room=room)
                    for i, (dev, cap, val, room) in enumerate([
                        ("hall_pir", "occupancy", True, "hall"), ("kitchen_plug", "power", 40.0 + seq[e] % 17, "kitchen"),
                        ("kitchen_plug", "switch", True, "kitchen"), ("hall_pir", "occupancy", False, "hall"),
                        ("kitchen_plug", "power", 12.5, "kitchen"),
                    ])
                ]
                seq[e] += len(events)
                await pub.publish(f"genius/v1/{c}/{e}/events", fe.batch(c, e, events, sent_at=now), qos=1)
            await asyncio.sleep(0.3)


def _show_anticipations(api: Api, customer_id: str) -> None:
    """Stand in for the anticipation service's queries (the ``CustomerQueries`` seam of the API)."""
    assert api.hub.http is not None and api.hub.http.state is not None
    now = time.time()

    async def anticipations_for(store: object, cid: str, limit: int) -> list[Anticipation]:
        jobs = [JobForecast(job="make_coffee", probability=0.62, expected_in_s=300.0,
                            because=["kitchen plug switched on at this time on 4 of the last 5 weekdays"]),
                JobForecast(job="leave_home", probability=0.21, expected_in_s=1800.0, because=["hall motion"])]
        rows = [Anticipation(id=f"a{i}", customer_id=cid, market="home:weekday", ts=now - 600 * i,
                             model="household@1", jobs=jobs) for i in range(3)]
        return rows[:limit] if cid == customer_id else []

    async def sacrifice_series(store: object, cid: str) -> list[dict[str, object]]:
        return [{"ts": now - 86_400 * (14 - d), "market": "home:weekday", "sacrifice": 0.7 - 0.03 * d}
                for d in range(15)]

    api.hub.http.state.queries = CustomerQueries(anticipations_for, sacrifice_series)  # type: ignore[arg-type]


async def test_dashboard_signs_in_updates_live_and_opens_a_customer_page(
    mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path, prefix: str
) -> None:
    _ensure_chromium()
    playwright = pytest.importorskip("playwright.async_api")
    broker = mosquitto_factory()
    db = tmp_path / "hub.db"
    customers = [(f"{prefix}-anna", f"{prefix}-anna-home"), (f"{prefix}-ben", f"{prefix}-ben-flat")]
    shots: list[Path] = []
    async with running_api(broker, db, f"hub-{prefix}") as api:
        _show_anticipations(api, customers[0][0])
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(_customers_publish(api, customers, stop))
            try:
                async with asyncio.timeout(90), playwright.async_playwright() as p:
                    browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                    try:
                        page = await browser.new_page(viewport={"width": 1400, "height": 1000})
                        await page.goto(api.url + "/")
                        await page.fill("#token", "gt_nope_wrong")
                        await page.click("button[type=submit]")
                        await page.wait_for_selector("#login-error:has-text('not accepted')", timeout=10_000)
                        await page.fill("#token", api.operator)
                        await page.click("button[type=submit]")
                        await page.wait_for_selector("#app:not([hidden])", timeout=10_000)
                        assert "alice (operator)" in await page.inner_text("#who")

                        # The ingest counter is a number and changes without a reload.
                        await page.wait_for_function(
                            "() => /^[0-9,]+$/.test(document.querySelector('#events-total').textContent)",
                            timeout=15_000)
                        first = int((await page.inner_text("#events-total")).replace(",", ""))
                        await page.wait_for_function(
                            f"() => Number(document.querySelector('#events-total').textContent.replace(/,/g, '')) > {first}",
                            timeout=15_000)
                        await page.wait_for_function("() => document.querySelectorAll('#edges tbody tr').length === 2",
                                                     timeout=10_000)
                        assert (await page.inner_text("#edges-online")) == "2"
                        await asyncio.sleep(2.5)  # a few chart points
                        shots.append(tmp_path / "fleet.png")
                        await page.screenshot(path=str(shots[-1]), full_page=True)

                        # Open a customer from the fleet table.
                        await page.click(f"#edges tbody tr:has-text('{customers[0][1]}')")
                        await page.wait_for_selector(f"#c-title:has-text('{customers[0][0]}')", timeout=10_000)
                        await page.wait_for_function(
                            "() => document.querySelectorAll('#c-privacy tbody tr').length === 3", timeout=10_000)
                        privacy = await page.inner_text("#c-privacy")
                        assert "occupancy: coarse" in privacy and "media: local" in privacy
                        await page.wait_for_function(
                            "() => document.querySelectorAll('#c-latest tbody tr').length >= 3", timeout=10_000)
                        assert (await page.inner_text("#c-home")).startswith("home")
                        await page.wait_for_selector("#c-anticipations li:has-text('make_coffee 62%')", timeout=10_000)
                        assert "4 of the last 5 weekdays" in await page.inner_text("#c-anticipations")
                        assert await page.inner_text("#c-market") == "home:weekday"
                        assert await page.is_visible("#sacrifice")
                        shots.append(tmp_path / "customer.png")
                        await page.screenshot(path=str(shots[-1]), full_page=True)
                    finally:
                        await browser.close()
            finally:
                stop.set()
    for shot in shots:
        assert shot.stat().st_size > 10_000  # a real rendering, not a blank page
    if out := os.environ.get("GENIUS_SCREENSHOTS"):
        for shot in shots:
            shutil.copy(shot, Path(out) / shot.name)
    with sqlite3.connect(db) as conn:
        audited = conn.execute("SELECT token_name, resource FROM audit_log WHERE customer_id = ?",
                               (customers[0][0],)).fetchall()
    assert ("alice", "context") in audited and ("alice", "stream") in audited
