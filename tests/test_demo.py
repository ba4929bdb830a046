"""``genius demo``: one command, no external service, three customers through real edges into the hub."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from devices.topics import anticipations_topic
from devices.wire import Anticipation, JobForecast
from hub.status import status_report
from simulations.brokers import Mosquitto
from simulations.demo import DemoConfig, choose_scenario, run_demo
from simulations.demo_view import DemoFrame, plain_lines, render_frame


def _genius(*args: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "genius", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kwargs)


# `genius demo --for 20` on both brokers, as the issue asks (the traveller checks in 5 wall
# seconds in: 600 simulated seconds at 120x); the 8 s runs are the quick variants.
@pytest.mark.parametrize(("broker", "seconds"), [
    ("embedded", 20),
    ("mosquitto", 20),
    pytest.param("embedded", 8, marks=pytest.mark.slow),
    pytest.param("mosquitto", 8, marks=pytest.mark.slow),
])
async def test_demo_for_a_fixed_time_exits_0_with_all_three_customers_stored_and_one_on_a_business_trip(
    broker: str, seconds: int, tmp_path: Path
) -> None:
    db = tmp_path / "hub.db"
    proc = _genius("demo", "--for", str(seconds), "--broker", broker, "--db", str(db), "--json")
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-3000:]
    summary = json.loads(out)
    assert broker.replace("embedded", "amqtt").lower() in summary["broker"].lower()
    customers = summary["customers"]
    assert len(customers) == 3
    assert all(c["events_stored"] > 0 for c in customers.values())
    travellers = [cid for cid, c in customers.items() if c["market_from_context"] == "travel:business"]
    assert travellers == [cid for cid, c in customers.items() if c["traveller"]]
    for cid, c in customers.items():  # what the hub's anticipation service published, if it has a model
        if c["anticipation"] is not None:
            assert c["anticipation"]["customer_id"] == cid and c["anticipation"]["jobs"]
    # The hub's own database says the same, read after the demo stopped.
    report = await status_report(db)
    stored = {c["customer_id"]: c["events"] for c in report["customers"]}
    assert set(stored) == set(customers) and all(n > 0 for n in stored.values())
    hotel = next(e for e in report["edges"] if e["edge_id"] == f"{travellers[0]}-hotel")
    assert hotel["events"] > 0 and hotel["gaps"] == []


def test_demo_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    proc = _genius("demo", "--for", "0", "--plain", "--every", "1", "--broker", "mosquitto", env={**os.environ})
    try:
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while time.monotonic() < deadline:  # until the demo shows its first summary
            line = proc.stdout.readline()
            if "events stored by the hub" in line or not line:
                break
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert "genius demo: stopped at simulated" in out


async def test_demo_shows_the_retained_anticipation_and_its_reasons_else_no_model_yet(
    mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The hub's own anticipation service is switched off (its documented setting), so the only
    # anticipation on the topic is the one published here: the view must show it as it is.
    monkeypatch.setenv("GENIUS_HUB_ANTICIPATION__ENABLED", "false")
    broker = mosquitto_factory()
    traveller = choose_scenario().traveller
    anticipation = Anticipation(
        id="a-1", customer_id=traveller, market="travel:business", ts=0.0, model="genius-sim@1.0.0",
        jobs=[JobForecast(job="check_in", probability=0.8, expected_in_s=600.0,
                          because=["the hotel's key-card reader saw you arrive"])],
    )
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.publish(anticipations_topic(traveller), anticipation.model_dump_json().encode(), qos=1, retain=True)
    frames: list[DemoFrame] = []
    summary = await asyncio.wait_for(
        run_demo(DemoConfig(duration_s=6, broker=broker.url, db=tmp_path / "hub.db"), show=frames.append,
                 stop=asyncio.Event()),
        timeout=90,
    )
    shown = summary["customers"][traveller]["anticipation"]
    assert shown is not None and shown["jobs"][0]["because"] == ["the hotel's key-card reader saw you arrive"]
    text = "\n".join(plain_lines(frames[-1]))
    assert "check in 80%" in text and "because the hotel's key-card reader saw you arrive" in text
    assert "no model yet" in text  # the two others have none
    render_frame(frames[-1])  # draws without error


pytestmark = pytest.mark.timeout(180)
