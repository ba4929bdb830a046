"""The fast batch validator skips the names' regex only where no name can break it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.errors import ValidationFailed
from hub import validation as v
from hub.validation import decode_batch_dicts

from . import fake_edge as fe
from .helpers import verdicts

C, E = "alice", "alice-home"


def _patterns(schema: Any) -> list[str]:
    """Every regex in a pydantic core schema."""
    if isinstance(schema, dict):
        own = [schema["pattern"]] if isinstance(schema.get("pattern"), str) else []
        return own + [p for value in schema.values() for p in _patterns(value)]
    if isinstance(schema, list):
        return [p for value in schema for p in _patterns(value)]
    return []


def _payload(device: str, room: str | None = "kitchen", *, ensure_ascii: bool) -> bytes:
    doc = {"schema": "genius.events/1", "customer_id": C, "edge_id": E, "sent_at": 5.0,
           "events": [{**fe.event(1), "device": device, "room": room}]}
    return json.dumps(doc, ensure_ascii=ensure_ascii).encode()


def test_the_plain_mirror_drops_only_the_names_regex() -> None:
    assert v._BATCH_PLAIN is not v._BATCH  # the contract's pattern is the one the skip is argued for
    assert v.CONTROL_FREE not in _patterns(v._BATCH_PLAIN.core_schema)
    assert _patterns(v._BATCH.core_schema).count(v.CONTROL_FREE) == 6  # device and room of three event kinds
    assert len(_patterns(v._BATCH_PLAIN.core_schema)) == 2  # customer and edge identifiers keep theirs


@pytest.mark.parametrize("name", ["a\x7fb", "a\x01b", "tab\there", "nl\n", "\x00"])
@pytest.mark.parametrize("where", ["device", "room"])
def test_names_with_control_characters_are_refused_written_raw_or_escaped(name: str, where: str) -> None:
    for ensure_ascii in (True, False):
        payload = _payload(name, ensure_ascii=ensure_ascii) if where == "device" else _payload(
            "lamp", name, ensure_ascii=ensure_ascii)
        with pytest.raises(ValidationFailed) as exc:
            decode_batch_dicts(payload, customer_id=C, edge_id=E)
        assert exc.value.reason == "schema"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=6), st.one_of(st.none(), st.text(max_size=6)), st.booleans())
def test_any_names_are_judged_as_the_wire_models_judge_them(device: str, room: str | None, ensure_ascii: bool) -> None:
    payload = _payload(device, room, ensure_ascii=ensure_ascii)
    expected, got = verdicts(payload, C, E)
    assert got == expected
