"""The fast batch decoder skips the names' regex only where no name can break it."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.errors import ValidationFailed
from devices.wire import TextEvent
from hub import validation as v
from hub.validation import decode_wire_batch

from . import fake_edge as fe
from .helpers import verdicts

C, E = "alice", "alice-home"


def _payload(device: str, room: str | None = "kitchen", *, ensure_ascii: bool) -> bytes:
    doc = {"schema": "genius.events/1", "customer_id": C, "edge_id": E, "sent_at": 5.0,
           "events": [{**fe.event(1), "device": device, "room": room}]}
    return json.dumps(doc, ensure_ascii=ensure_ascii).encode()


def _patterns(t: Any) -> list[str]:
    """Every regex in a msgspec type (``msgspec.inspect``), nested structs included."""
    if isinstance(t, msgspec.inspect.StructType):
        return [p for f in t.fields for p in _patterns(f.type)]
    if isinstance(t, msgspec.inspect.UnionType):
        return [p for x in t.types for p in _patterns(x)]
    if isinstance(t, msgspec.inspect.ListType):
        return _patterns(t.item_type)
    return [t.pattern] if isinstance(t, msgspec.inspect.StrType) and t.pattern else []


def test_the_fast_decoder_drops_only_the_names_regex() -> None:
    # the contract's names pattern is the one the skip is argued for
    assert [m.pattern for m in TextEvent.model_fields["device"].metadata if hasattr(m, "pattern")] == [v.CONTROL_FREE]
    # customer and edge identifiers keep theirs, anchored as pydantic anchors it
    assert _patterns(msgspec.inspect.type_info(v.WireBatch)) == [r"^[a-z0-9][a-z0-9_-]{0,62}\Z"] * 2


@pytest.mark.parametrize("name", ["a\x7fb", "a\x01b", "tab\there", "nl\n", "\x00"])
@pytest.mark.parametrize("where", ["device", "room"])
def test_names_with_control_characters_are_refused_written_raw_or_escaped(name: str, where: str) -> None:
    for ensure_ascii in (True, False):
        payload = _payload(name, ensure_ascii=ensure_ascii) if where == "device" else _payload(
            "lamp", name, ensure_ascii=ensure_ascii)
        with pytest.raises(ValidationFailed) as exc:
            decode_wire_batch(payload, customer_id=C, edge_id=E)
        assert exc.value.reason == "schema"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=6), st.one_of(st.none(), st.text(max_size=6)), st.booleans())
def test_any_names_are_judged_as_the_wire_models_judge_them(device: str, room: str | None, ensure_ascii: bool) -> None:
    payload = _payload(device, room, ensure_ascii=ensure_ascii)
    expected, got = verdicts(payload, C, E)
    assert got == expected
