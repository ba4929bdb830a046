"""The fast batch validator accepts and rejects exactly what ``decode_batch`` does."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.errors import ValidationFailed
from devices.wire import EventBatch, decode_batch
from hub.validation import decode_batch_dicts, mirror_model

from . import fake_edge as fe
from .helpers import verdicts

C, E = "alice", "alice-home"


def test_mirror_has_every_wire_field_under_its_wire_name() -> None:
    mirrored = mirror_model(EventBatch)
    assert set(mirrored.__annotations__) == {f.alias or n for n, f in EventBatch.model_fields.items()}
    assert "schema" in mirrored.__annotations__


def test_valid_batch_decodes_to_the_same_events_as_the_models() -> None:
    payload = fe.batch(C, E, [fe.event(s) for s in range(1, 30)] + [fe.event(30, room=None)])
    fast = decode_batch_dicts(payload, customer_id=C, edge_id=E)
    slow = decode_batch(payload, customer_id=C, edge_id=E)
    assert [{"room": None, **e} for e in fast["events"]] == [e.model_dump() for e in slow.events]


@pytest.mark.parametrize(
    ("payload", "customer", "reason"),
    [(b"[", C, "json"), (fe.batch(C, E, [fe.event(1, capability="lock", value="yes")]), C, "schema"),
     (fe.batch(C, E, [fe.event(1)]), "bob", "identity")],
)
def test_rejections_carry_the_contract_reason(payload: bytes, customer: str, reason: str) -> None:
    with pytest.raises(ValidationFailed) as fast:
        decode_batch_dicts(payload, customer_id=customer, edge_id=E)
    with pytest.raises(ValidationFailed) as slow:
        decode_batch(payload, customer_id=customer, edge_id=E)
    assert (fast.value.reason, str(fast.value)) == (slow.value.reason, str(slow.value))


_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**64), 2**64), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.sampled_from(["occupancy", "temperature", "action", "\x00bad", "", "x" * 200]),
)
_event = st.one_of(
    st.builds(lambda s: fe.event(s), st.integers(1, 9)),
    st.builds(lambda s, k, v: {**fe.event(s), k: v}, st.integers(1, 9),
              st.sampled_from(["seq", "ts", "device", "capability", "value", "room", "extra"]), _scalar),
    st.builds(lambda s, k: {x: y for x, y in fe.event(s).items() if x != k}, st.integers(1, 9),
              st.sampled_from(["seq", "ts", "device", "capability", "value", "room"])),
)
_batch = st.builds(
    lambda evs, k, v, drop: {
        **{x: y for x, y in {"schema": "genius.events/1", "customer_id": C, "edge_id": E, "sent_at": 5.0,
                                 "events": evs}.items() if x != drop},
        **({k: v} if k else {}),
    },
    st.lists(_event, max_size=4),
    st.sampled_from([None, "schema", "sent_at", "signature", "customer_id", "extra", "events"]),
    _scalar,
    st.sampled_from([None, "schema", "sent_at", "events"]),
)


@settings(max_examples=300, deadline=None)
@given(_batch)
def test_fast_and_model_validation_agree(doc: dict[str, Any]) -> None:
    payload = json.dumps(doc, allow_nan=True).encode()
    expected, got = verdicts(payload, C, E)
    assert got == expected
