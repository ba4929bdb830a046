"""Captured payload fixtures: the loader the adapter tests share, and the fixtures' own hygiene.

Other test modules import ``FIXTURES``, ``replay`` and ``assert_expected`` from here (pytest's
default import mode puts this folder on ``sys.path``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devices import AdapterResult, AdapterSession, PayloadError, load_registry
from devices.capabilities import KIND
from devices.wire import event_from_values

FIXTURE_DIR = Path(__file__).parent / "fixtures"
TS = 1_700_000_000.0


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    doc: Any  # the decoded JSON document, or None for text payloads
    expect: dict[str, Any] | None
    error: str | None

    @property
    def is_json(self) -> bool:
        return self.doc is not None


@dataclass(frozen=True)
class FixtureFile:
    adapter: str
    path: Path
    source: str
    messages: tuple[Message, ...]

    @property
    def id(self) -> str:
        return f"{self.adapter}/{self.path.stem}"


def _message(raw: dict[str, Any]) -> Message:
    if "json" in raw:
        doc = raw["json"]
        payload = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    else:
        doc = None
        payload = raw["text"].encode()
    return Message(raw["topic"], payload, doc, raw.get("expect"), raw.get("error"))


def load_fixture_file(path: Path) -> FixtureFile:
    data = json.loads(path.read_text(encoding="utf-8"))
    return FixtureFile(path.parent.name, path, data["source"], tuple(_message(m) for m in data["messages"]))


FIXTURES: dict[str, list[FixtureFile]] = {}
for _path in sorted(FIXTURE_DIR.glob("*/*.json")):
    FIXTURES.setdefault(_path.parent.name, []).append(load_fixture_file(_path))


def replay(session: AdapterSession, messages: Iterable[Message]) -> None:
    """Feed messages to ``session`` ignoring their outcome: brings it to the state they build."""
    for m in messages:
        try:
            session.handle(m.topic, m.payload, ts=TS)
        except PayloadError:
            pass


def assert_valid_result(result: AdapterResult) -> None:
    """Every reading has the value kind of its capability and is a valid wire event."""
    assert isinstance(result, AdapterResult)
    for r in result.readings:
        kind = KIND[r.capability]
        expected_type = {"bool": bool, "number": float, "text": str}[kind]
        assert type(r.value) is expected_type, f"{r}: {kind} capability with {type(r.value).__name__} value"
        if kind == "number":
            assert math.isfinite(r.value)
        event_from_values(seq=1, ts=r.ts, device=r.device, capability=r.capability, value=r.value, room=r.room)
    for a in result.availability:
        assert isinstance(a.online, bool) and 1 <= len(a.device) <= 128


def assert_expected(result: AdapterResult, expect: dict[str, Any], where: str) -> None:
    if "readings" in expect:
        got = sorted(result.readings, key=lambda r: (r.device, r.capability, r.ts))
        want = sorted((tuple(w) for w in expect["readings"]), key=lambda w: (w[0], w[1]))
        assert [(r.device, r.capability) for r in got] == [(w[0], w[1]) for w in want], where
        for r, w in zip(got, want):
            assert r.room == w[3], f"{where}: room of {r}"
            if isinstance(w[2], float):
                assert r.value == pytest.approx(w[2]), f"{where}: {r}"
            else:
                assert r.value == w[2] and type(r.value) is type(w[2]), f"{where}: {r}"
    if "availability" in expect:
        assert [(a.device, a.online) for a in result.availability] == [tuple(a) for a in expect["availability"]], where
    for key in ("subscribe", "unsubscribe"):
        if key in expect:
            assert sorted(getattr(result, key)) == sorted(expect[key]), f"{where}: {key}"
    if "profiles" in expect:
        assert sorted(p.device for p in result.profiles) == sorted(expect["profiles"]), f"{where}: profiles"


def play_and_check(session: AdapterSession, fixture: FixtureFile) -> int:
    """Play every message of ``fixture`` and hold each to its expectation; the count checked."""
    checked = 0
    for i, m in enumerate(fixture.messages):
        where = f"{fixture.id} message {i} ({m.topic})"
        if m.error is not None:
            with pytest.raises(PayloadError) as info:
                session.handle(m.topic, m.payload, ts=TS)
            assert info.value.reason == m.error, f"{where}: {info.value}"
        else:
            result = session.handle(m.topic, m.payload, ts=TS)
            assert_valid_result(result)
            if m.expect is not None:
                assert_expected(result, m.expect, where)
        checked += 1
    return checked


# -- the fixtures' own hygiene -----------------------------------------------------------------


def test_every_fixture_folder_belongs_to_a_registered_adapter() -> None:
    registered = set(load_registry(strict=True).adapters)
    assert set(FIXTURES) <= registered, f"fixtures for unknown adapters: {set(FIXTURES) - registered}"


@pytest.mark.parametrize("fixture", [f for files in FIXTURES.values() for f in files], ids=lambda f: f.id)
def test_fixture_names_its_source_and_states_expectations(fixture: FixtureFile) -> None:
    assert "http" in fixture.source or "README" in fixture.source, "each fixture file notes where its shapes come from"
    assert fixture.messages, "a fixture file holds at least one message"
    with_expectations = [m for m in fixture.messages if m.expect is not None or m.error is not None]
    assert len(with_expectations) >= len(fixture.messages) // 2, "most messages state what they must produce"
