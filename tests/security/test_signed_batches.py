"""The hub's guard on signed batches and limits, through the real ingest ``Pipeline`` and store.

Every refusal is a dead letter with its reason, counted by reason; nothing raises.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from security_kit import batch_doc, encode

from devices.errors import ValidationFailed
from devices.signing import canonical_bytes, sign_document, sign_payload, verify_payload
from devices.topics import events_topic
from devices.wire import decode_batch
from hub.context import ContextFuser
from hub.deadletters import DeadLetters
from hub.pipeline import Incoming, Pipeline
from hub.security import BatchGuard, KeyRing, LimitsSettings, SecuritySettings, load_keys, provision_edge, rotate_key
from hub.store import Store

NOW = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


class Rig:
    """A pipeline over a real store with a guard reading keys from the same database."""

    def __init__(self, store: Store, db: Path, clock: Clock, *, security: dict[str, Any] | None = None,
                 limits: dict[str, Any] | None = None) -> None:
        self.store = store
        self.clock = clock
        keys = KeyRing(lambda: load_keys(db), reload_s=0.0)
        self.guard = BatchGuard(SecuritySettings(**(security or {})), LimitsSettings(**(limits or {})), keys=keys)
        self.dead = DeadLetters(clock=clock)
        self.pipeline: Pipeline | None = None

    async def open(self) -> Rig:
        catalog, progress = await self.store.load_catalog(), await self.store.load_progress()
        self.pipeline = Pipeline(catalog, progress, ContextFuser(clock=self.clock), self.dead, clock=self.clock,
                                 guard=self.guard)
        return self

    async def send(self, customer: str, edge: str, payload: bytes) -> tuple[int, int]:
        """Process one batch and commit it; (events stored, dead letters) by this message."""
        assert self.pipeline is not None
        self.pipeline.process(Incoming(events_topic(customer, edge), payload))
        sealed = self.pipeline.seal()
        await self.store.write(sealed.group)
        return sealed.summary.stored, sealed.summary.dead_letters


@pytest.fixture
async def rig(tmp_path: Path) -> Any:
    db = tmp_path / "hub.db"
    async with Store(db) as store:
        yield lambda **kw: Rig(store, db, Clock(), **kw).open()


def signed(doc: dict[str, Any], key_id: str, key: bytes) -> bytes:
    return encode(sign_document(doc, key_id=key_id, key=key))


def test_signature_format_and_canonical_bytes_are_stable() -> None:
    doc = batch_doc("alice", "a1", 1, 2, sent_at=NOW)
    key = bytes(range(32))
    sig = sign_document(doc, key_id="k1", key=key)["signature"]
    assert sig.startswith("v1:k1:") and len(sig.split(":")[2]) == 64
    # Key order and whitespace of the sent document do not matter; values do.
    reordered = json.dumps(dict(reversed(list({**doc, "signature": sig}.items()))), indent=2).encode()
    assert verify_payload(reordered, keys={"k1": key}) == "k1"
    # The edge's byte-preserving signer agrees with the document signer, and the wire model accepts it.
    fast = sign_payload(encode(doc), key_id="k1", key=key)
    assert json.loads(fast)["signature"] == sig
    assert decode_batch(fast).signature == sig
    assert fast.startswith(canonical_bytes(doc)[:-1])  # the wire bytes are the canonical bytes
    # The fast path (no parsing) refuses any change to those bytes, as the full path does.
    for i in (2, len(fast) // 2, len(fast) - 90):
        changed = fast[:i] + (b"1" if fast[i:i + 1] != b"1" else b"2") + fast[i + 1:]
        with pytest.raises(ValidationFailed):
            verify_payload(changed, keys={"k1": key})


def test_a_document_without_canonical_bytes_is_refused_not_crashed() -> None:
    # JSON may escape a lone surrogate, which has no UTF-8 form (found by the long fuzz run).
    payload = b'{"customer_id":"\\ud800","edge_id":"a1","signature":"v1:k1:' + b"0" * 64 + b'"}'
    with pytest.raises(ValidationFailed) as info:
        verify_payload(payload, keys={"k1": bytes(32)})
    assert info.value.reason == "signature"


async def test_a_registered_edge_must_sign_and_only_its_key_verifies(rig: Any, tmp_path: Path) -> None:
    r = await rig()
    alice = provision_edge(tmp_path / "hub.db", customer_id="alice", edge_id="a1")
    doc = batch_doc("alice", "a1", 1, 5, sent_at=NOW)
    assert await r.send("alice", "a1", encode(doc)) == (0, 1)  # unsigned
    assert await r.send("alice", "a1", signed(doc, alice.key_id, bytes(32))) == (0, 1)  # wrong key
    assert await r.send("alice", "a1", signed(doc, "a1.other", alice.key)) == (0, 1)  # unknown key id
    tampered = sign_document(doc, key_id=alice.key_id, key=alice.key)
    tampered["events"][0]["value"] = False
    assert await r.send("alice", "a1", encode(tampered)) == (0, 1)
    bad = {**doc, "signature": "v1:" + alice.key_id + ":zz"}
    assert await r.send("alice", "a1", encode(bad)) == (0, 1)
    assert await r.send("alice", "a1", signed(doc, alice.key_id, alice.key)) == (5, 0)
    assert r.dead.counts == {"unsigned": 1, "signature": 3, "unknown_key": 1}


async def test_replays_and_stale_or_future_sent_at_are_refused_but_resends_pass(rig: Any, tmp_path: Path) -> None:
    r = await rig(security={"max_skew_s": 60, "replay_window_s": 600})
    k = provision_edge(tmp_path / "hub.db", customer_id="alice", edge_id="a1")
    first = signed(batch_doc("alice", "a1", 1, 3, sent_at=NOW), k.key_id, k.key)
    assert await r.send("alice", "a1", first) == (3, 0)
    assert await r.send("alice", "a1", first) == (0, 1)  # exact replay
    r.clock.now += 30
    assert await r.send("alice", "a1", first) == (0, 1)  # still within the window
    resend = signed(batch_doc("alice", "a1", 1, 4, sent_at=r.clock.now), k.key_id, k.key)
    assert await r.send("alice", "a1", resend) == (1, 0)  # a legit resend: new sent_at, only seq 4 is new
    old = signed(batch_doc("alice", "a1", 5, 1, sent_at=r.clock.now - 120), k.key_id, k.key)
    ahead = signed(batch_doc("alice", "a1", 5, 1, sent_at=r.clock.now + 120), k.key_id, k.key)
    assert await r.send("alice", "a1", old) == (0, 1)
    assert await r.send("alice", "a1", ahead) == (0, 1)
    r.clock.now += 10_000  # far past the window: the replay is refused by its sent_at
    assert await r.send("alice", "a1", first) == (0, 1)
    assert r.dead.counts == {"replay": 2, "skew": 3}


async def test_an_edge_registered_to_one_customer_cannot_write_for_another(rig: Any, tmp_path: Path) -> None:
    r = await rig()
    k = provision_edge(tmp_path / "hub.db", customer_id="alice", edge_id="a1")
    doc = batch_doc("bob", "a1", 1, 2, sent_at=NOW)
    assert await r.send("bob", "a1", signed(doc, k.key_id, k.key)) == (0, 1)
    assert await r.send("alice", "a1", encode(batch_doc("bob", "a1", 1, 2, sent_at=NOW))) == (0, 1)  # topic != payload
    assert r.dead.counts == {"identity": 2}


async def test_unregistered_edges_pass_unsigned_unless_signing_is_required(rig: Any) -> None:
    lax, strict = await rig(), await rig(security={"signing": "required"})
    doc = encode(batch_doc("carol", "c1", 1, 2, sent_at=NOW))
    assert await lax.send("carol", "c1", doc) == (2, 0)
    assert await strict.send("carol", "c1", encode(batch_doc("carol", "c1", 3, 2, sent_at=NOW))) == (0, 1)
    assert strict.dead.counts == {"unregistered": 1}


async def test_rotation_accepts_the_previous_key_during_the_grace_period_only(rig: Any, tmp_path: Path) -> None:
    r = await rig(security={"max_skew_s": 1e9, "replay_window_s": 1e9})
    db = tmp_path / "hub.db"
    k = provision_edge(db, customer_id="alice", edge_id="a1", now=NOW)
    in_flight = [signed(batch_doc("alice", "a1", s, 1, sent_at=NOW + s), k.key_id, k.key) for s in (1, 2, 3)]
    new_id, new_key = rotate_key(db, edge_id="a1", grace_s=600, now=NOW)
    assert await r.send("alice", "a1", in_flight[0]) == (1, 0)  # old key, within grace
    assert await r.send("alice", "a1", signed(batch_doc("alice", "a1", 4, 1, sent_at=NOW + 4), new_id, new_key)) == (1, 0)
    r.clock.now = NOW + 599
    assert await r.send("alice", "a1", in_flight[1]) == (1, 0)
    r.clock.now = NOW + 601
    assert await r.send("alice", "a1", in_flight[2]) == (0, 1)  # grace is over
    assert await r.send("alice", "a1", signed(batch_doc("alice", "a1", 5, 1, sent_at=NOW + 5), new_id, new_key)) == (1, 0)
    assert r.dead.counts == {"unknown_key": 1}


async def test_limits_refuse_oversized_and_out_of_range_batches_with_their_reason(rig: Any) -> None:
    r = await rig(limits={"max_payload_bytes": 4096, "max_events_per_batch": 10, "max_name_chars": 8,
                          "max_text_chars": 5, "max_future_s": 3600, "max_past_s": 86_400})
    big = batch_doc("dave", "d1", 1, 10, sent_at=NOW)
    big["events"][0]["device"] = "x" * 8
    big["pad"] = "y" * 5000  # (also not in the contract: size is checked first)
    cases = {
        "payload_too_large": encode(big),
        "too_many_events": encode(batch_doc("dave", "d1", 1, 11, sent_at=NOW)),
        "name_too_long": encode(batch_doc("dave", "d1", 1, 1, sent_at=NOW, device="ninechars")),
        "ts_future": encode(batch_doc("dave", "d1", 1, 1, sent_at=NOW, ts=NOW + 7200)),
        "ts_past": encode(batch_doc("dave", "d1", 1, 1, sent_at=NOW, ts=NOW - 2 * 86_400)),
    }
    text = batch_doc("dave", "d1", 1, 1, sent_at=NOW)
    text["events"][0].update(capability="action", value="toolong")
    cases["text_too_long"] = encode(text)
    for reason, payload in cases.items():
        assert await r.send("dave", "d1", payload) == (0, 1), reason
    assert r.dead.counts == {reason: 1 for reason in cases}
    assert await r.send("dave", "d1", encode(batch_doc("dave", "d1", 1, 10, sent_at=NOW))) == (10, 0)
    letters = await r.store.dead_letters(reason="payload_too_large")
    assert len(letters) == 1 and len(letters[0].raw) <= 65_536


async def test_the_rate_limit_delays_a_flooding_edge_without_losing_its_events(rig: Any) -> None:
    r = await rig(limits={"events_per_s": 10, "events_burst": 20})
    assert await r.send("erin", "e1", encode(batch_doc("erin", "e1", 1, 15, sent_at=NOW))) == (15, 0)
    assert await r.send("erin", "e1", encode(batch_doc("erin", "e1", 16, 15, sent_at=NOW))) == (0, 1)
    assert await r.send("frank", "f1", encode(batch_doc("frank", "f1", 1, 15, sent_at=NOW))) == (15, 0)  # others unaffected
    r.clock.now += 1.0  # 10 more tokens: 15 available
    assert await r.send("erin", "e1", encode(batch_doc("erin", "e1", 16, 15, sent_at=NOW))) == (15, 0)
    assert r.dead.counts == {"rate_limited": 1}
    edges = {e.edge_id: e.events for e in await r.store.edges()}
    assert edges == {"e1": 30, "f1": 15}
