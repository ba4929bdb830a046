"""The wire contract and the declarative definition API hold their promises."""

from __future__ import annotations

import json

import pytest

from devices import (
    DefinitionError,
    PayloadError,
    Topic,
    ValidationFailed,
    decode_batch,
    define,
    power,
    switch,
    temperature,
)
from devices.topics import parse_hub_topic


def _batch(**over: object) -> bytes:
    doc = {
        "schema": "genius.events/1",
        "customer_id": "c1",
        "edge_id": "e1",
        "sent_at": 1.0,
        "events": [
            {"seq": 1, "ts": 10, "device": "plug", "capability": "power", "value": 12},
            {"seq": 2, "ts": 11.5, "device": "door", "capability": "contact", "value": True, "room": "hall"},
            {"seq": 3, "ts": 12.0, "device": "btn", "capability": "action", "value": "single"},
        ],
    }
    doc.update(over)
    return json.dumps(doc).encode()


def test_valid_batch_decodes_with_canonical_types() -> None:
    batch = decode_batch(_batch(), customer_id="c1", edge_id="e1")
    assert [e.value for e in batch.events] == [12.0, True, "single"]
    assert isinstance(batch.events[0].value, float)


@pytest.mark.parametrize(
    ("event", "why"),
    [
        ({"seq": 1, "ts": 1, "device": "d", "capability": "power", "value": True}, "bool is not a power"),
        ({"seq": 1, "ts": 1, "device": "d", "capability": "contact", "value": 1}, "1 is not a bool"),
        ({"seq": 1, "ts": 1, "device": "d", "capability": "action", "value": 3}, "3 is not text"),
        ({"seq": 0, "ts": 1, "device": "d", "capability": "power", "value": 1}, "seq starts at 1"),
        ({"seq": 1, "ts": 1, "device": "d", "capability": "warp", "value": 1}, "unknown capability"),
        ({"seq": 1, "ts": 1, "device": "", "capability": "power", "value": 1}, "empty device"),
        ({"seq": 1, "ts": 1, "device": "d", "capability": "power", "value": 1, "x": 1}, "extra field"),
    ],
)
def test_invalid_events_are_rejected_with_schema_reason(event: dict[str, object], why: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        decode_batch(_batch(events=[event]))
    assert info.value.reason == "schema", why


def test_topic_payload_identity_mismatch_is_rejected() -> None:
    with pytest.raises(ValidationFailed) as info:
        decode_batch(_batch(), customer_id="c2", edge_id="e1")
    assert info.value.reason == "identity"


def test_not_json_is_rejected_with_json_reason() -> None:
    with pytest.raises(ValidationFailed) as info:
        decode_batch(b"\xff{")
    assert info.value.reason == "json"


def test_hub_topics_parse_and_reject() -> None:
    assert parse_hub_topic("genius/v1/c1/e1/events") == ("c1", "e1", "events")
    assert parse_hub_topic("genius/v1/c1/anticipations") == ("c1", None, "anticipations")
    for bad in ("genius/v1/C1/e1/events", "genius/v2/c1/e1/events", "genius/v1/c1/e1/other", "x"):
        with pytest.raises(PayloadError):
            parse_hub_topic(bad)


def test_definition_mistakes_fail_at_declaration() -> None:
    with pytest.raises(DefinitionError):
        define(vendor="acme", model="K", match=Topic("acme/kettle"), exposes=(switch(),))  # no '+'
    with pytest.raises(DefinitionError):
        define(vendor="acme", model="K", match=Topic("acme/+"), exposes=(switch(scale=2.0),))
    with pytest.raises(DefinitionError):
        define(vendor="acme", model="K", match=Topic("acme/+"), exposes=(power(), power()))


def test_definition_extracts_scaled_values_and_device_name() -> None:
    th = define(
        vendor="acme",
        model="TH-2",
        match=Topic("acme/+/th2/state"),
        exposes=(temperature(path="t", scale=0.1), power(path="p.w")),
    )
    assert th.match.device_of("acme/den/th2/state") == "den"
    assert th.match.device_of("acme/den/th2/other") is None
    readings = th.readings("den", {"t": 215, "p": {"w": "3.5"}}, ts=5.0)
    assert [(r.capability, r.value) for r in readings] == [("temperature", 21.5), ("power", 3.5)]
    with pytest.raises(PayloadError):
        th.readings("den", {"t": "warm"}, ts=5.0)
