"""The fast batch validator accepts and rejects exactly what ``decode_batch`` does."""

from __future__ import annotations

import json
import typing
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.errors import ValidationFailed
from devices.wire import BoolEvent, EventBatch, NumberEvent, TextEvent, decode_batch
import msgspec

from hub.validation import EVENT_TYPES, WireBatch, decode_wire_batch, event_dict

from . import fake_edge as fe
from .helpers import verdicts

C, E = "alice", "alice-home"


def test_mirror_has_every_wire_field_under_its_wire_name() -> None:
    assert set(WireBatch.__struct_fields__) == {f.alias or n for n, f in EventBatch.model_fields.items()}
    assert "schema" in WireBatch.__struct_fields__
    # one tagged struct per capability the contract knows, each with the events' fields
    caps = {c for m in (BoolEvent, NumberEvent, TextEvent) for c in typing.get_args(m.model_fields["capability"].annotation)}
    assert set(EVENT_TYPES) == caps
    assert all(set(t.__struct_fields__) | {"capability"} == set(BoolEvent.model_fields) for t in EVENT_TYPES.values())


def test_constraints_are_the_wire_models_own() -> None:
    info = msgspec.inspect.type_info(EVENT_TYPES["temperature"])
    f = {x.name: x.type for x in info.fields}
    assert (f["seq"].ge, f["seq"].le) == (1, 2**63 - 1)
    assert (f["ts"].ge, f["ts"].lt) == (0.0, 32503680000.0)
    assert (f["value"].ge, f["value"].le) == (-1e12, 1e12)
    assert (f["device"].min_length, f["device"].max_length, f["device"].pattern) == (1, 128, None)  # see the docstring
    batch = {x.name: x.type for x in msgspec.inspect.type_info(WireBatch).fields}
    assert batch["customer_id"].pattern.endswith(r"\Z") and batch["events"].max_length == 10_000


def test_valid_batch_decodes_to_the_same_events_as_the_models() -> None:
    payload = fe.batch(C, E, [fe.event(s) for s in range(1, 30)] + [fe.event(30, room=None)])
    fast = decode_wire_batch(payload, customer_id=C, edge_id=E)
    slow = decode_batch(payload, customer_id=C, edge_id=E)
    assert [event_dict(e) for e in fast.events] == [e.model_dump() for e in slow.events]
    assert (fast.customer_id, fast.edge_id, fast.sent_at, fast.signature) == (C, E, slow.sent_at, None)


def test_a_payload_with_escapes_is_judged_by_the_models_and_comes_back_as_structs() -> None:
    payload = fe.batch(C, E, [{**fe.event(1), "device": "caf\u00e9 lamp"}])
    assert b"\\" in payload
    fast = decode_wire_batch(payload, customer_id=C, edge_id=E)
    assert fast.events[0].device == "caf\u00e9 lamp" and type(fast.events[0]) is EVENT_TYPES[fast.events[0].capability]


@pytest.mark.parametrize(
    ("payload", "customer", "reason"),
    [(b"[", C, "json"), (fe.batch(C, E, [fe.event(1, capability="lock", value="yes")]), C, "schema"),
     (fe.batch(C, E, [fe.event(1)]), "bob", "identity")],
)
def test_rejections_carry_the_contract_reason(payload: bytes, customer: str, reason: str) -> None:
    with pytest.raises(ValidationFailed) as fast:
        decode_wire_batch(payload, customer_id=customer, edge_id=E)
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


def test_a_constraint_the_decoder_cannot_mirror_stops_the_import_rather_than_being_skipped() -> None:
    import annotated_types as at

    from hub import validation

    with pytest.raises(TypeError, match="cannot mirror"):
        validation._meta([at.MultipleOf(2)], number=int)
    with pytest.raises(TypeError, match="cannot mirror"):
        validation._spec(dict[str, int])
