"""One conformance suite over every registered adapter and device definition.

scikit-learn's ``parametrize_with_checks`` pattern: each (adapter, check) pair is its own
test, so a new plugin gets the whole suite by being registered, and a failure names both.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_adapters_fixtures import FIXTURES, TS, FixtureFile, Message, assert_valid_result, play_and_check, replay

from devices import (
    Adapter,
    AdapterResult,
    DefinitionsAdapter,
    DeviceDefinition,
    PayloadError,
    load_registry,
    topic_matches,
)
from devices.capabilities import KIND

REGISTRY = load_registry(strict=True)
ADAPTERS = REGISTRY.all_adapters()
DEFINITIONS = list(REGISTRY.definitions.values())

Check = Callable[[Adapter], None]


def _fixtures(adapter: Adapter) -> list[FixtureFile]:
    if isinstance(adapter, DefinitionsAdapter):
        return [_synthetic_fixture(d) for d in adapter.definitions]
    return FIXTURES.get(adapter.name, [])


def _outcome(adapter: Adapter, fixture: FixtureFile, upto: int, topic: str, payload: bytes) -> AdapterResult | None:
    """Handle ``payload`` on a session primed with the first ``upto`` messages; ``None`` for PayloadError."""
    session = adapter.new_session()
    replay(session, fixture.messages[:upto])
    try:
        result = session.handle(topic, payload, ts=TS)
    except PayloadError:
        return None
    assert_valid_result(result)
    return result


# -- checks ----------------------------------------------------------------------------------


def check_adapter_is_frozen_data(adapter: Adapter) -> None:
    assert dataclasses.is_dataclass(adapter)
    with pytest.raises(dataclasses.FrozenInstanceError):
        adapter.name = "other"  # type: ignore[misc]
    assert adapter.topics and all(isinstance(t, str) and t for t in adapter.topics)
    hash(adapter)


def check_has_fixtures(adapter: Adapter) -> None:
    fixtures = _fixtures(adapter)
    assert fixtures, f"adapter {adapter.name!r} ships no fixtures under tests/devices/fixtures/{adapter.name}/"
    assert any(m.expect and m.expect.get("readings") for f in fixtures for m in f.messages), (
        "at least one fixture message must state the readings it produces"
    )


def check_fixtures_parse_to_valid_readings(adapter: Adapter) -> None:
    checked = sum(play_and_check(adapter.new_session(), f) for f in _fixtures(adapter))
    assert checked > 0


def check_truncated_payloads_raise(adapter: Adapter) -> None:
    tried = 0
    for fixture in _fixtures(adapter):
        for i, m in enumerate(fixture.messages):
            if m.error is not None or len(m.payload) < 4:
                continue
            # Plain-text payloads may legitimately end anywhere near the end ("…\tKitche").
            cuts = {1, len(m.payload) // 2, len(m.payload) - 1} if m.is_json else {1, len(m.payload) // 2}
            for cut in cuts:
                result = _outcome(adapter, fixture, i, m.topic, m.payload[:cut])
                tried += 1
                # Raise, or (for a topic the adapter owns but never reads, like a /set command) nothing.
                assert result is None or not (result.readings or result.availability or result.profiles), (
                    f"{fixture.id} message {i} truncated to {cut} bytes gave {result}"
                )
    assert tried > 0


def _wrong_leaves(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: _wrong_leaves(v) for k, v in doc.items()}
    if isinstance(doc, list) and doc and all(isinstance(x, (dict, list)) for x in doc):
        return [_wrong_leaves(x) for x in doc]
    return ["wrong"]


def check_wrong_types_raise(adapter: Adapter) -> None:
    tried = 0
    for fixture in _fixtures(adapter):
        for i, m in enumerate(fixture.messages):
            if not m.is_json or m.error is not None or not (m.expect and m.expect.get("readings")):
                continue
            payload = json.dumps(_wrong_leaves(m.doc)).encode()
            assert _outcome(adapter, fixture, i, m.topic, payload) is None, (
                f"{fixture.id} message {i}: every value of the wrong type, yet no PayloadError"
            )
            tried += 1
    assert tried > 0 or isinstance(adapter, DefinitionsAdapter) or adapter.name == "ordonez", "no JSON reading fixtures"


_SPECIAL = [b"", b" ", b"null", b"true", b"0", b"-1e999", b"NaN", b'"text"', b"[]", b"{}", b"\xff\xfe", b"[" * 5000,
            b'{"a":' * 3000, b"\x00", "é".encode(), b"ON", b"online", b"{\"state\":null}"]


def check_random_bytes_never_crash(adapter: Adapter) -> None:
    rng = random.Random(adapter.name)
    for fixture in _fixtures(adapter):
        session = adapter.new_session()
        replay(session, fixture.messages)
        topics = sorted({m.topic for m in fixture.messages})
        for topic in topics:
            cases = _SPECIAL + [rng.randbytes(rng.randrange(0, 200)) for _ in range(40)]
            for payload in cases:
                try:
                    result = session.handle(topic, payload, ts=TS)
                except PayloadError as exc:
                    assert exc.reason and isinstance(exc.reason, str)
                    continue
                assert_valid_result(result)


def _hostile(topic: str) -> list[str]:
    head, _, last = topic.rpartition("/")
    return [topic + "\n", topic + "/\x7f", f"{head}/{'d' * 200}" if head else "d" * 200, topic + "/",
            f"{head}/\x00{last}" if head else "\x00" + last, topic.replace("/", "//", 1)]


def check_hostile_topic_names_never_crash(adapter: Adapter) -> None:
    """Device names come from topics: control characters or 200-character names must not get through."""
    for fixture in _fixtures(adapter):
        session = adapter.new_session()
        replay(session, fixture.messages)
        for m in fixture.messages:
            for topic in _hostile(m.topic):
                try:
                    result = session.handle(topic, m.payload, ts=TS)
                except PayloadError:
                    continue
                assert_valid_result(result)


def check_subscriptions_cover_fixture_topics(adapter: Adapter) -> None:
    for fixture in _fixtures(adapter):
        session = adapter.new_session()
        for m in fixture.messages:
            try:
                result = session.handle(m.topic, m.payload, ts=TS)
            except PayloadError as exc:
                if exc.reason == "unknown_device":
                    continue
                result = None
            if result is not None or m.error is not None:
                assert session.matches(m.topic), f"{fixture.id}: the session handled {m.topic} but does not match it"
                assert any(topic_matches(f, m.topic) for f in session.subscriptions()), (
                    f"{fixture.id}: no subscription delivers {m.topic}"
                )


def check_sessions_are_independent(adapter: Adapter) -> None:
    first, second = adapter.new_session(), adapter.new_session()
    assert first is not second
    for fixture in _fixtures(adapter):
        replay(first, fixture.messages)
    assert second.profiles() == [], "a fresh session must not see another session's devices"
    assert sorted(second.subscriptions()) == sorted(adapter.new_session().subscriptions())
    assert copy.deepcopy(first).profiles() == first.profiles()


CHECKS: list[Check] = [
    check_adapter_is_frozen_data,
    check_has_fixtures,
    check_fixtures_parse_to_valid_readings,
    check_truncated_payloads_raise,
    check_wrong_types_raise,
    check_random_bytes_never_crash,
    check_hostile_topic_names_never_crash,
    check_subscriptions_cover_fixture_topics,
    check_sessions_are_independent,
]


def _cases() -> Iterator[Any]:
    for adapter in ADAPTERS:
        for check in CHECKS:
            yield pytest.param(adapter, check, id=f"{adapter.name}-{check.__name__.removeprefix('check_')}")


@pytest.mark.parametrize(("adapter", "check"), list(_cases()))
def test_adapter_conforms(adapter: Adapter, check: Check) -> None:
    check(adapter)


# -- device definitions (third-party plugins) --------------------------------------------------


def _sample_value(kind: str) -> Any:
    return {"bool": True, "number": 21.5, "text": "pressed"}[kind]


def _synthetic_fixture(definition: DeviceDefinition) -> FixtureFile:
    """A message with every expose of ``definition`` present, built from the definition itself."""
    doc: dict[str, Any] = {}
    for expose in definition.exposes:
        node = doc
        *parents, leaf = expose.path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = _sample_value(KIND[expose.capability])
    topic = definition.match.pattern.replace("+", "dev1").replace("#", "x")
    readings = [["dev1", e.capability.value, e.convert(_sample_value(KIND[e.capability])), None]
                for e in definition.exposes]
    message = Message(topic, json.dumps(doc).encode(), doc, {"readings": readings}, None)
    return FixtureFile("definitions", Path(definition.name), "synthetic from the definition", (message,))


@pytest.mark.parametrize("definition", DEFINITIONS, ids=lambda d: d.name)
def test_definition_reads_every_expose_from_a_payload_built_from_it(definition: DeviceDefinition) -> None:
    adapter = DefinitionsAdapter.of([definition])
    (message,) = _synthetic_fixture(definition).messages
    result = adapter.new_session().handle(message.topic, message.payload, ts=TS)
    assert_valid_result(result)
    assert sorted(r.capability for r in result.readings) == sorted(e.capability.value for e in definition.exposes)
