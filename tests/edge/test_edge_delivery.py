"""End-to-end delivery through real Mosquitto: local devices → edge → fake hub, acknowledged."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable

from devices import DefinitionsAdapter
from edge import EdgeAgent, EdgeSettings
from edge_testkit import FakeHub, background, devices, edge_settings, hub_broker, multi_sensor, running  # noqa: F401 (fixtures)
from simulations.brokers import Mosquitto


def _agent(settings: EdgeSettings, root: str) -> EdgeAgent:
    return EdgeAgent(settings, sessions=[DefinitionsAdapter.of([multi_sensor(root)]).new_session()])


def _rows(path: object) -> list[int]:
    with sqlite3.connect(str(path)) as db:
        return [r[0] for r in db.execute("SELECT seq FROM events ORDER BY seq")]


async def test_every_reading_arrives_once_in_seq_order_and_acks_empty_the_outbox(
    mosquitto: Mosquitto, hub_broker: Mosquitto, prefix: str, edge_settings: Callable[..., EdgeSettings]
) -> None:
    settings = edge_settings()
    hub = FakeHub(hub_broker.host, hub_broker.port, prefix, "e1")
    async with background(hub.run), running(_agent(settings, prefix)) as agent:
        async with devices(mosquitto.host, mosquitto.port, prefix) as dev:
            for i in range(300):
                await dev.publish(f"d{i % 7}", {"t": 20 + i / 10, "p": i})
        await hub.wait_for(lambda: hub.stored_through == 600, what="600 readings stored")
        assert agent.outbox is not None
        await hub.wait_for(lambda: agent.outbox.count == 0, what="acks empty the outbox")  # type: ignore[union-attr]
    assert hub.errors == []
    assert hub.seqs == set(range(1, 601))
    temps = [hub.stored[s]["value"] for s in sorted(hub.stored) if hub.stored[s]["capability"] == "temperature"]
    assert temps == [20 + i / 10 for i in range(300)]  # order kept end to end
    assert _rows(settings.outbox.path) == []


async def _prefill(settings: EdgeSettings, n: int) -> None:
    from devices.readings import Reading
    from edge import Outbox

    async with Outbox.open(settings.outbox) as box:
        box.put(Reading(1_700_000_000.0 + i, f"d{i % 3}", "power", float(i), None) for i in range(n))
        await box.flush()


async def test_backlog_goes_out_in_batches_of_at_most_batch_max_events(
    mosquitto: Mosquitto, hub_broker: Mosquitto, prefix: str, edge_settings: Callable[..., EdgeSettings]
) -> None:
    settings = edge_settings(uplink={"batch_max_events": 500})
    await _prefill(settings, 1800)
    hub = FakeHub(hub_broker.host, hub_broker.port, prefix, "e1")
    async with background(hub.run), running(_agent(settings, prefix)):
        await hub.wait_for(lambda: hub.stored_through == 1800)
        assert sorted(size for _, size in hub.batches) == [300, 500, 500, 500]
        hub.batches.clear()
        async with devices(mosquitto.host, mosquitto.port, prefix) as dev:
            t0 = asyncio.get_running_loop().time()
            await dev.publish("solo", {"p": 1})
            await hub.wait_for(lambda: hub.stored_through == 1801)
            latency = asyncio.get_running_loop().time() - t0
    assert [size for _, size in hub.batches] == [1]
    assert latency < 1.5  # ≤ 50 ms commit + ≤ 200 ms batching nominal; a loaded CI box is slower


async def test_puback_alone_deletes_nothing_and_an_ack_deletes_only_what_it_covers(
    mosquitto: Mosquitto, hub_broker: Mosquitto, prefix: str, edge_settings: Callable[..., EdgeSettings]
) -> None:
    settings = edge_settings(uplink={"resend_after_s": 30.0})
    await _prefill(settings, 100)
    hub = FakeHub(hub_broker.host, hub_broker.port, prefix, "e1", ack=False)
    async with background(hub.run), running(_agent(settings, prefix)) as agent:
        await hub.wait_for(lambda: len(hub.stored) == 100)
        await asyncio.sleep(0.3)
        assert _rows(settings.outbox.path) == list(range(1, 101))  # delivered to the broker, still kept
        await hub.publish_ack(stored_through=40)
        await hub.wait_for(lambda: agent.outbox.count == 60)  # type: ignore[union-attr]
        assert _rows(settings.outbox.path) == list(range(41, 101))


async def test_unacknowledged_events_are_resent_in_order_after_resend_after(
    mosquitto: Mosquitto, hub_broker: Mosquitto, prefix: str, edge_settings: Callable[..., EdgeSettings]
) -> None:
    settings = edge_settings(uplink={"resend_after_s": 0.5, "batch_max_events": 20})
    await _prefill(settings, 50)
    hub = FakeHub(hub_broker.host, hub_broker.port, prefix, "e1", ack=False)
    arrivals: list[int] = []
    async with background(hub.run), running(_agent(settings, prefix)) as agent:
        await hub.wait_for(lambda: hub.deliveries[50] >= 2, what="a second round after the timeout")
        assert all(hub.deliveries[s] >= 2 for s in range(1, 51))
        assert agent.uplink is not None and agent.uplink.counters.timeouts >= 1
        hub.ack = True
        await hub.publish_ack()
        await hub.wait_for(lambda: agent.outbox.count == 0)  # type: ignore[union-attr]
        settled = sum(hub.deliveries.values())
        await asyncio.sleep(1.2)  # longer than resend_after: nothing more may come
        arrivals = sorted(hub.deliveries)
    assert sum(hub.deliveries.values()) == settled
    assert arrivals == list(range(1, 51))


async def test_gaps_in_the_ack_are_resent_at_once_without_waiting_for_the_timeout(
    mosquitto: Mosquitto, hub_broker: Mosquitto, prefix: str, edge_settings: Callable[..., EdgeSettings]
) -> None:
    settings = edge_settings(uplink={"resend_after_s": 60.0, "batch_max_events": 100})
    await _prefill(settings, 400)
    hub = FakeHub(hub_broker.host, hub_broker.port, prefix, "e1", lose_first=lambda s: 101 <= s <= 150 or s == 333)
    async with background(hub.run), running(_agent(settings, prefix)) as agent:
        await hub.wait_for(lambda: hub.stored_through == 400, timeout=10, what="gaps filled")
        await hub.wait_for(lambda: agent.outbox.count == 0)  # type: ignore[union-attr]
        assert agent.uplink is not None and agent.uplink.counters.timeouts == 0
    assert all(hub.deliveries[s] >= 2 for s in [*range(101, 151), 333])
    assert hub.seqs == set(range(1, 401))


async def test_sending_stops_when_the_inflight_window_is_full_until_acks_arrive(
    mosquitto: Mosquitto, hub_broker: Mosquitto, prefix: str, edge_settings: Callable[..., EdgeSettings]
) -> None:
    settings = edge_settings(uplink={"resend_after_s": 60.0, "batch_max_events": 100, "max_inflight_events": 250})
    await _prefill(settings, 1000)
    hub = FakeHub(hub_broker.host, hub_broker.port, prefix, "e1", ack=False)
    async with background(hub.run), running(_agent(settings, prefix)):
        await hub.wait_for(lambda: len(hub.stored) == 250)
        await asyncio.sleep(0.5)
        assert max(hub.seqs) == 250  # window full: nothing beyond it
        await hub.publish_ack()
        await hub.wait_for(lambda: max(hub.seqs) == 500)
        await asyncio.sleep(0.3)
        assert max(hub.seqs) == 500
        hub.ack = True
        await hub.publish_ack()
        await hub.wait_for(lambda: hub.stored_through == 1000)


async def test_events_published_while_the_hub_broker_is_down_all_arrive_after_it_returns(
    mosquitto: Mosquitto, hub_broker: Mosquitto, prefix: str, edge_settings: Callable[..., EdgeSettings]
) -> None:
    settings = edge_settings()
    hub = FakeHub(hub_broker.host, hub_broker.port, prefix, "e1")
    async with background(hub.run), running(_agent(settings, prefix)) as agent:
        async with devices(mosquitto.host, mosquitto.port, prefix) as dev:
            for i in range(50):
                await dev.publish(f"d{i % 4}", {"p": i})
            await hub.wait_for(lambda: hub.stored_through == 50)
            hub_broker.stop()
            for i in range(50, 350):
                await dev.publish(f"d{i % 4}", {"p": i})
                if i % 50 == 0:
                    await asyncio.sleep(0.3)  # devices keep publishing for a couple of seconds
            assert agent.uplink is not None and not agent.uplink.connected.is_set()
            await hub.wait_for(lambda: agent.outbox.count == 300, what="offline events committed")  # type: ignore[union-attr]
            hub_broker.start()
            await hub.wait_for(lambda: hub.stored_through == 350, timeout=30, what="backlog delivered")
            await hub.wait_for(lambda: agent.outbox.count == 0)  # type: ignore[union-attr]
    assert hub.seqs == set(range(1, 351))
    assert [hub.stored[s]["value"] for s in range(1, 351)] == [float(i) for i in range(350)]
    assert hub.errors == []


async def test_status_is_retained_online_with_backlog_and_offline_after_a_graceful_stop(
    mosquitto: Mosquitto, hub_broker: Mosquitto, prefix: str, edge_settings: Callable[..., EdgeSettings]
) -> None:
    settings = edge_settings(role="venue", devices={"d1": {"room": "lobby", "privacy": "coarse"}})
    await _prefill(settings, 10)
    hub = FakeHub(hub_broker.host, hub_broker.port, prefix, "e1", ack=False)
    async with background(hub.run):
        async with running(_agent(settings, prefix)):
            await hub.wait_for(lambda: any(s["state"] == "online" and s["backlog"] == 10 for s in hub.statuses))
            async with devices(mosquitto.host, mosquitto.port, prefix) as dev:
                await dev.publish("d1", {"t": 20.0})
            await hub.wait_for(lambda: bool(hub.inventories), what="inventory published")
        await hub.wait_for(lambda: hub.statuses[-1]["state"] == "offline", what="offline after stop")
    online = [s for s in hub.statuses if s["state"] == "online"][0]
    assert online["role"] == "venue" and online["oldest_seq"] == 1 and online["overflow_policy"] == "drop_oldest"
    assert hub.statuses[-1]["backlog"] >= 10
    assert hub.inventories[-1] == [
        {"device": "d1", "adapter": "definitions", "vendor": "test", "model": "multi", "room": "lobby",
         "capabilities": ["action", "occupancy", "power", "switch", "temperature"],
         "privacy": {c: "coarse" for c in ["action", "occupancy", "power", "switch", "temperature"]}}
    ]


async def test_purge_command_erases_the_queue_and_seqs_continue_after_it(
    mosquitto: Mosquitto, hub_broker: Mosquitto, prefix: str, edge_settings: Callable[..., EdgeSettings]
) -> None:
    settings = edge_settings(uplink={"resend_after_s": 60.0})
    await _prefill(settings, 50)
    hub = FakeHub(hub_broker.host, hub_broker.port, prefix, "e1", ack=False)
    async with background(hub.run), running(_agent(settings, prefix)) as agent:
        await hub.wait_for(lambda: len(hub.stored) == 50)
        await hub.control({"command": "purge", "ts": 1_700_000_000.0})
        await hub.wait_for(lambda: agent.outbox.count == 0, what="purged")  # type: ignore[union-attr]
        async with devices(mosquitto.host, mosquitto.port, prefix) as dev:
            await dev.publish("d1", {"p": 5})
        await hub.wait_for(lambda: 51 in hub.stored)
        await hub.wait_for(lambda: any(s.get("oldest_seq") == 51 for s in hub.statuses))
    assert _rows(settings.outbox.path) == [51]


async def test_malformed_local_payloads_are_dead_lettered_and_the_agent_keeps_going(
    mosquitto: Mosquitto, hub_broker: Mosquitto, prefix: str, edge_settings: Callable[..., EdgeSettings]
) -> None:
    settings = edge_settings()
    hub = FakeHub(hub_broker.host, hub_broker.port, prefix, "e1")
    garbage = [b"\xff\xfe", b"{", b"null", b'{"t": "hot"}', b'{"p": true}', b"x" * 70_000]
    async with background(hub.run), running(_agent(settings, prefix)) as agent:
        async with devices(mosquitto.host, mosquitto.port, prefix) as dev:
            for i, bad in enumerate(garbage):
                await dev.publish(f"bad{i}", bad)
                await dev.publish("good", {"p": i})
        await hub.wait_for(lambda: hub.stored_through == len(garbage))
        await hub.wait_for(lambda: any(s.get("dead_letters") == len(garbage) for s in hub.statuses))
        assert agent.local is not None and agent.local.connects == 1
    with sqlite3.connect(str(settings.outbox.path)) as db:
        reasons = sorted(r for (r,) in db.execute("SELECT reason FROM dead_letters"))
        payloads = {bytes(p) for (p,) in db.execute("SELECT payload FROM dead_letters")}
    assert reasons == sorted(["json", "json", "schema", "value", "value", "size"])
    assert b"{" in payloads and b"\xff\xfe" in payloads


async def test_an_ack_beyond_our_counter_renumbers_the_queue_so_no_seq_is_reused(
    mosquitto: Mosquitto, hub_broker: Mosquitto, prefix: str, edge_settings: Callable[..., EdgeSettings]
) -> None:
    """The hub already holds seqs 1..1000 of this edge (its database was replaced)."""
    settings = edge_settings()
    await _prefill(settings, 5)
    hub = FakeHub(hub_broker.host, hub_broker.port, prefix, "e1")
    hub.stored.update({s: {} for s in range(1, 1001)})
    async with background(hub.run):
        await hub.wait_for(lambda: hub._client is not None)
        await hub.publish_ack()
        async with running(_agent(settings, prefix)) as agent:
            await hub.wait_for(lambda: hub.stored_through == 1005)
            await hub.wait_for(lambda: agent.outbox.count == 0)  # type: ignore[union-attr]
    assert [hub.stored[s]["value"] for s in range(1001, 1006)] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert all(hub.deliveries[s] == 0 for s in range(1, 1001))


async def test_discovery_subscribes_to_new_local_topics_while_running(
    mosquitto: Mosquitto, hub_broker: Mosquitto, prefix: str, edge_settings: Callable[..., EdgeSettings]
) -> None:
    from devices import DeviceProfile
    from devices.adapter import Adapter, AdapterSession
    from devices.readings import AdapterResult, Reading

    class Session(AdapterSession):
        def __init__(self, adapter: Adapter) -> None:
            self.adapter = adapter
            self.known: list[str] = []

        def subscriptions(self) -> list[str]:
            return [f"{prefix}/bridge", *(f"{prefix}/dev/{d}" for d in self.known)]

        def handle(self, topic: str, payload: bytes, *, ts: float) -> AdapterResult:
            if topic == f"{prefix}/bridge":
                self.known.append(payload.decode())
                return AdapterResult(
                    profiles=[DeviceProfile(device=payload.decode(), adapter="disco", capabilities=("power",))],
                    subscribe=[f"{prefix}/dev/{payload.decode()}"],
                )
            return AdapterResult(readings=[Reading(ts, topic.rsplit("/", 1)[1], "power", float(payload), None)])

    settings = edge_settings()
    hub = FakeHub(hub_broker.host, hub_broker.port, prefix, "e1")
    adapter = DefinitionsAdapter.of([multi_sensor(prefix)])
    agent = EdgeAgent(settings, sessions=[Session(adapter)])
    async with background(hub.run), running(agent):
        async with devices(mosquitto.host, mosquitto.port, prefix) as dev:
            await dev.publish("", b"meter", topic=f"{prefix}/bridge")
            await hub.wait_for(lambda: bool(hub.inventories), what="inventory after discovery")
            await dev.publish("", b"42", topic=f"{prefix}/dev/meter")
            await hub.wait_for(lambda: 1 in hub.stored)
    assert hub.stored[1]["device"] == "meter" and hub.stored[1]["value"] == 42.0
    assert hub.inventories[-1][0]["device"] == "meter"


async def test_control_commands_that_are_unknown_or_already_done_change_nothing(
    mosquitto: Mosquitto, hub_broker: Mosquitto, prefix: str, edge_settings: Callable[..., EdgeSettings]
) -> None:
    settings = edge_settings(uplink={"resend_after_s": 60.0})
    await _prefill(settings, 20)
    hub = FakeHub(hub_broker.host, hub_broker.port, prefix, "e1", ack=False)
    async with background(hub.run), running(_agent(settings, prefix)) as agent:
        await hub.wait_for(lambda: len(hub.stored) == 20)
        await hub.control({"command": "purge", "ts": 100.0})
        await hub.wait_for(lambda: agent.outbox.count == 0)  # type: ignore[union-attr]
        await _prefill_live(agent, 3)
        await hub.control({"command": "purge", "ts": 100.0})  # a replay of the same purge
        await hub.control({"command": "reboot"})
        await hub.wait_for(lambda: agent.dead_letters.by_reason[("hub", "command")] == 1)
        assert agent.outbox.count == 3  # type: ignore[union-attr]
        assert agent.uplink is not None and agent.uplink.counters.purges == 1


async def _prefill_live(agent: EdgeAgent, n: int) -> None:
    from devices.readings import Reading

    assert agent.outbox is not None
    agent.outbox.put(Reading(1_700_000_000.0 + i, "x", "power", 1.0, None) for i in range(n))
    await agent.outbox.flush()


async def test_overflow_drops_the_oldest_visibly_and_the_status_lets_the_hub_stop_waiting(
    mosquitto: Mosquitto, hub_broker: Mosquitto, prefix: str, edge_settings: Callable[..., EdgeSettings]
) -> None:
    settings = edge_settings(outbox={"max_events": 100})
    await _prefill(settings, 150)  # seven days offline, in small: seqs 1..50 were dropped
    stuck = FakeHub(hub_broker.host, hub_broker.port, prefix, "e1", honour_oldest_seq=False)
    async with background(stuck.run), running(_agent(settings, prefix)) as agent:
        await stuck.wait_for(lambda: stuck.seqs == set(range(51, 151)))
        status = stuck.statuses[0]
        assert status["overflow_dropped"] == 50 and status["oldest_seq"] == 51
        assert stuck.stored_through == 0  # a hub that ignores oldest_seq waits for 1..50 forever
        assert agent.outbox.count == 100  # type: ignore[union-attr]
    hub = FakeHub(hub_broker.host, hub_broker.port, prefix, "e1")
    hub.stored.update(stuck.stored)
    async with background(hub.run), running(_agent(settings, prefix)) as agent:
        await hub.wait_for(lambda: hub.stored_through == 150 and agent.outbox.count == 0)  # type: ignore[union-attr]
    assert hub.seqs == set(range(51, 151))


async def test_resend_timeout_backs_off_while_the_hub_stays_silent(
    mosquitto: Mosquitto, hub_broker: Mosquitto, prefix: str, edge_settings: Callable[..., EdgeSettings]
) -> None:
    settings = edge_settings(uplink={"resend_after_s": 0.25, "resend_max_s": 60.0})
    await _prefill(settings, 10)
    hub = FakeHub(hub_broker.host, hub_broker.port, prefix, "e1", ack=False)
    async with background(hub.run), running(_agent(settings, prefix)) as agent:
        await hub.wait_for(lambda: len(hub.stored) == 10)
        await asyncio.sleep(2.5)  # fixed timeouts would resend 10 times; doubling: 0.25+0.5+1 → 3
        assert agent.uplink is not None
        assert 2 <= agent.uplink.counters.timeouts <= 4
