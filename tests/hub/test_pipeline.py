"""The ingest pipeline over a real SQLite store, without a broker."""

from __future__ import annotations

import json
from pathlib import Path
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.errors import ValidationFailed
from devices.topics import ack_topic, devices_topic, events_topic, feedback_topic, status_topic
from devices.wire import decode_batch
from hub.pipeline import Incoming
from hub.schema import SCHEMA_VERSION
from hub.store import Store

from . import fake_edge as fe
from .helpers import feed, open_pipeline

C, E = "alice", "alice-home"
EV = events_topic(C, E)


async def test_new_database_is_migrated_and_reopening_keeps_capability_codes(tmp_path: Path) -> None:
    async with Store(tmp_path / "hub.db") as store:
        first = (await store.load_catalog()).capabilities
        async with store.db.execute("PRAGMA user_version") as cur:
            assert (await cur.fetchone())[0] == SCHEMA_VERSION  # type: ignore[index]
        async with store.db.execute("PRAGMA journal_mode") as cur:
            assert (await cur.fetchone())[0] == "wal"  # type: ignore[index]
    async with Store(tmp_path / "hub.db") as store:
        assert (await store.load_catalog()).capabilities == first
    assert first["occupancy"] == 0 and len(set(first.values())) == len(first)


async def test_batches_are_stored_once_and_duplicates_counted_across_restarts(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    async with Store(db) as store:
        p = await open_pipeline(store)
        await feed(store, p, (EV, fe.seq_batch(C, E, 1, 10)), (EV, fe.seq_batch(C, E, 1, 10)))
        await feed(store, p, (EV, fe.seq_batch(C, E, 5, 11)))  # replay overlapping 5..10, new 11..15
    async with Store(db) as store:  # a restarted hub still knows what it holds
        p = await open_pipeline(store)
        await feed(store, p, (EV, fe.seq_batch(C, E, 1, 15)))
        [edge] = await store.edges()
        assert (edge.events, edge.duplicates, edge.contiguous, edge.gaps) == (15, 10 + 6 + 15, 15, [])
        async with store.db.execute("SELECT COUNT(*), COUNT(DISTINCT seq) FROM events") as cur:
            assert tuple(await cur.fetchone()) == (15, 15)  # type: ignore[arg-type]


async def test_out_of_order_batches_show_a_gap_until_it_is_filled(tmp_path: Path) -> None:
    async with Store(tmp_path / "hub.db") as store:
        p = await open_pipeline(store)
        await feed(store, p, (EV, fe.seq_batch(C, E, 1, 10)), (EV, fe.seq_batch(C, E, 21, 10)))
        [edge] = await store.edges()
        assert (edge.contiguous, edge.high_seq, edge.gaps) == (10, 30, [(11, 20)])
        sealed_ack = p.ack_for(p.catalog.edges[E].edge_key)
        assert sealed_ack is not None and sealed_ack[0] == ack_topic(C, E)
        assert json.loads(sealed_ack[1])["gaps"] == [[11, 20]]
        await feed(store, p, (EV, fe.seq_batch(C, E, 11, 10)))
        [edge] = await store.edges()
        assert (edge.contiguous, edge.gaps) == (30, [])


async def test_events_come_back_in_their_wire_types_ordered_by_time(tmp_path: Path) -> None:
    async with Store(tmp_path / "hub.db") as store:
        p = await open_pipeline(store)
        events = [
            fe.event(1, ts=30.0, device="pir", capability="occupancy", value=True, room="hall"),
            fe.event(2, ts=10.0, device="th", capability="temperature", value=21.5, room=None),
            fe.event(3, ts=20.0, device="btn", capability="action", value="double", room="hall"),
        ]
        await feed(store, p, (EV, fe.batch(C, E, events)))
        frame = await store.events_for(C)
        assert list(frame.rows()) == [
            (10.0, E, 2, "th", "temperature", 21.5, None),
            (20.0, E, 3, "btn", "action", "double", "hall"),
            (30.0, E, 1, "pir", "occupancy", True, "hall"),
        ]
        assert frame.value[2] is True and frame.ts.dtype.name == "float64"
        assert len(await store.events_for(C, since=15.0, until=25.0)) == 1
        assert len(await store.events_for("someone-else")) == 0


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (EV, b"{not json", "json"),
        (EV, json.dumps({"schema": "genius.events/1", "customer_id": C, "edge_id": E, "events": []}).encode(), "schema"),
        (EV, fe.batch(C, E, [fe.event(1, capability="temperature", value="hot")]), "schema"),
        (EV, fe.batch(C, E, [fe.event(0)]), "schema"),
        (EV, fe.batch("mallory", E, [fe.event(1)]), "identity"),
        (events_topic(C, "other-edge"), fe.batch(C, E, [fe.event(1)]), "identity"),
        (status_topic(C, E), b'{"state": "sleeping", "ts": 1.0}', "schema"),
        (devices_topic(C, E), b'[{"device": "x"}]', "schema"),
        (feedback_topic(C), b'{"anticipation_id": "a", "verdict": "maybe", "ts": 1.0}', "schema"),
        (ack_topic(C, E), b"{}", "topic"),
        ("genius/v1/NOT_AN_ID/e/events", b"{}", "topic"),
    ],
)
async def test_bad_messages_become_dead_letters_with_a_reason(
    tmp_path: Path, topic: str, payload: bytes, reason: str
) -> None:
    async with Store(tmp_path / "hub.db") as store:
        p = await open_pipeline(store)
        await feed(store, p, (topic, payload), (EV, fe.seq_batch(C, E, 1, 5)))
        assert await store.dead_letter_counts() == {reason: 1}
        [letter] = await store.dead_letters()
        assert (letter.topic, letter.reason, bytes(letter.raw)) == (topic, reason, payload)
        assert letter.detail
        edges = {e.edge_id: e for e in await store.edges()}
        assert edges[E].events == 5  # good events in the same group are not lost


async def test_an_edge_belongs_to_the_customer_that_registered_it(tmp_path: Path) -> None:
    async with Store(tmp_path / "hub.db") as store:
        p = await open_pipeline(store)
        await feed(store, p, (EV, fe.seq_batch(C, E, 1, 5)))
        await feed(
            store, p,
            (events_topic("bob", E), fe.seq_batch("bob", E, 6, 5)),
            (status_topic("bob", E), b'{"state": "online", "ts": 1.0}'),
        )
        assert await store.dead_letter_counts() == {"identity": 2}
        [edge] = await store.edges()
        assert (edge.customer_id, edge.events, edge.online) == (C, 5, None)


async def test_status_devices_and_feedback_are_recorded(tmp_path: Path) -> None:
    async with Store(tmp_path / "hub.db") as store:
        p = await open_pipeline(store)
        profiles = [{"device": "pir", "adapter": "zigbee2mqtt", "room": "hall", "capabilities": ["occupancy"]}]
        await feed(
            store, p,
            (status_topic(C, E), b'{"state": "online", "backlog": 42, "ts": 5.0, "version": "0.1"}'),
            (devices_topic(C, E), json.dumps(profiles).encode()),
            (feedback_topic(C), b'{"anticipation_id": "a1", "verdict": "accepted", "ts": 7.0}'),
            (status_topic(C, E), b""),  # a retained status being cleared is not an error
        )
        [edge] = await store.edges()
        assert (edge.online, edge.backlog, edge.version) == (True, 42, "0.1")
        assert edge.inventory[0]["device"] == "pir"
        [fb] = await store.feedback_for(C)
        assert (fb.anticipation_id, fb.verdict, fb.ts) == ("a1", "accepted", 7.0)
        assert await store.dead_letter_counts() == {}
        assert p.context.snapshot(C)["edges"][0]["backlog"] == 42


async def test_context_is_persisted_with_the_commit_and_restored_on_start(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    async with Store(db) as store:
        p = await open_pipeline(store)
        events = [fe.event(1, device="pir", capability="occupancy", value=True, room="kitchen")]
        await feed(store, p, (EV, fe.batch(C, E, events)))
        before = p.context.snapshot(C, now=2e9)
    async with Store(db) as store:
        p = await open_pipeline(store)
        assert p.context.snapshot(C, now=2e9) == before
        assert before["occupied_rooms"] == ["kitchen"]


def _mutations() -> st.SearchStrategy[bytes]:
    scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
                       st.text(max_size=20))
    good_event = st.builds(lambda s: fe.event(s), st.integers(1, 50))
    bad_event = st.dictionaries(st.sampled_from(["seq", "ts", "device", "capability", "value", "room", "x"]),
                                scalar, max_size=7)
    batch = st.fixed_dictionaries(
        {"schema": st.sampled_from(["genius.events/1", "genius.events/2"]),
         "customer_id": st.sampled_from([C, "bob", "BAD ID"]),
         "edge_id": st.sampled_from([E, "x"]),
         "sent_at": st.one_of(st.floats(0, 2e9), scalar),
         "events": st.lists(st.one_of(good_event, bad_event), max_size=5)},
        optional={"extra": scalar},
    )
    as_json = batch.map(lambda d: json.dumps(d, allow_nan=True).encode())
    return st.one_of(as_json, st.binary(max_size=64), as_json.map(lambda b: b[: len(b) // 2]))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payloads=st.lists(_mutations(), min_size=1, max_size=6))
async def test_malformed_batches_never_break_the_pipeline_and_never_vanish(
    tmp_path_factory: pytest.TempPathFactory, payloads: list[bytes]
) -> None:
    db = tmp_path_factory.mktemp("fuzz") / "hub.db"
    async with Store(db) as store:
        p = await open_pipeline(store)
        messages: list[tuple[str, bytes]] = [(EV, b) for b in payloads] + [(EV, fe.seq_batch(C, E, 1000, 3))]
        valid_events: set[int] = {1000, 1001, 1002}
        invalid = 0
        for _, payload in messages[:-1]:
            try:
                valid_events.update(e.seq for e in decode_batch(payload, customer_id=C, edge_id=E).events)
            except ValidationFailed:
                invalid += 1
        await feed(store, p, *messages)
        assert sum((await store.dead_letter_counts()).values()) == invalid
        async with store.db.execute("SELECT seq FROM events") as cur:
            assert {row[0] for row in await cur.fetchall()} == valid_events



async def test_a_bug_while_handling_a_batch_is_a_dead_letter_and_records_nothing_as_stored(tmp_path: Path) -> None:
    async with Store(tmp_path / "hub.db") as store:
        p = await open_pipeline(store)
        del p.catalog.capabilities["battery"]  # simulate a hub that lost track of a capability
        bad = fe.batch(C, E, [fe.event(1), fe.event(2, capability="battery", value=80.0)])
        await feed(store, p, (EV, bad), (EV, fe.seq_batch(C, E, 3, 3)))
        assert await store.dead_letter_counts() == {"internal": 1}
        [edge] = await store.edges()
        assert (edge.events, edge.contiguous, edge.gaps) == (3, 0, [(1, 2)])  # 1..2 stay missing: resent later


async def test_an_edge_role_can_be_recorded_for_later_market_logic(tmp_path: Path) -> None:
    async with Store(tmp_path / "hub.db") as store:
        p = await open_pipeline(store)
        await feed(store, p, (EV, fe.seq_batch(C, E, 1, 1)))
        assert await store.set_edge_role(E, "home") is True
        assert await store.set_edge_role("unknown-edge", "car") is False
        assert [e.role for e in await store.edges()] == ["home"]


async def test_a_retained_status_replayed_on_subscribe_does_not_make_an_edge_seen_now(tmp_path: Path) -> None:
    async with Store(tmp_path / "hub.db") as store:
        p = await open_pipeline(store, now=5_000.0)
        p.process(Incoming(status_topic(C, E), b'{"state": "offline", "ts": 1000.0}', retain=True))
        await store.write(p.seal().group)
        [edge] = await store.edges()
        assert (edge.online, edge.last_seen) == (False, 1000.0)
        p.process(Incoming(status_topic(C, E), b'{"state": "online", "ts": 4990.0}'))  # live
        await store.write(p.seal().group)
        [edge] = await store.edges()
        assert (edge.online, edge.last_seen) == (True, 5000.0)


async def test_seqs_the_edge_no_longer_holds_stay_visible_but_the_ack_passes_them(tmp_path: Path) -> None:
    """An edge whose outbox overflowed reports ``oldest_seq``: the hole is lost for good, so
    the ack steps over it (or the edge could never drain), while status still shows the gap."""
    db = tmp_path / "hub.db"
    status = json.dumps({"state": "online", "backlog": 10, "ts": 100.0, "oldest_seq": 21}).encode()
    async with Store(db) as store:
        p = await open_pipeline(store)
        await feed(store, p, (EV, fe.seq_batch(C, E, 1, 10)), (EV, fe.seq_batch(C, E, 21, 10)))
        key = p.catalog.edges[E].edge_key
        assert json.loads(p.ack_for(key)[1])["stored_through"] == 10  # type: ignore[index]
        await feed(store, p, (status_topic(C, E), status))
        ack = json.loads(p.ack_for(key)[1])  # type: ignore[index]
        assert (ack["stored_through"], ack["gaps"]) == (30, [])
        [edge] = await store.edges()
        assert edge.gaps == [(11, 20)]  # lost data is visible, not silent
    async with Store(db) as store:  # the floor survives a hub restart
        p = await open_pipeline(store)
        ack = json.loads(p.ack_for(p.catalog.edges[E].edge_key)[1])  # type: ignore[index]
        assert ack["stored_through"] == 30
