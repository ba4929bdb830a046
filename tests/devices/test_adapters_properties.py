"""Property tests: whatever arrives on an adapter's topics, the result is an AdapterResult or a PayloadError.

Sessions are primed with the adapter's fixtures first, so discovery-driven state (the z2m
device tables, Home Assistant's state topics) is live while hypothesis throws payloads at it.
The default run keeps ~200 examples per property; ``-m fuzz`` runs the long version.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_adapters_fixtures import FIXTURES, TS, assert_valid_result, replay

from devices import AdapterSession, PayloadError, load_registry
from devices.adapters._common import converter
from devices.capabilities import KIND
from devices.definitions import Expose

ADAPTERS = {a.name: a for a in load_registry(strict=True).adapters.values()}
QUICK = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
LONG = settings(max_examples=10_000, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def _keys(doc: Any, out: set[str]) -> set[str]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.add(k)
            _keys(v, out)
    elif isinstance(doc, list):
        for v in doc:
            _keys(v, out)
    return out


def _vocabulary(name: str) -> tuple[list[str], list[str], list[Any]]:
    """Topics, JSON keys and whole documents the adapter's fixtures use."""
    messages = [m for f in FIXTURES[name] for m in f.messages]
    keys: set[str] = set()
    for m in messages:
        _keys(m.doc, keys)
    docs = [m.doc for m in messages if m.doc is not None]
    return sorted({m.topic for m in messages}), sorted(keys), docs


def _primed(name: str) -> AdapterSession:
    session = ADAPTERS[name].new_session()
    for fixture in FIXTURES[name]:
        replay(session, fixture.messages)
    return session


def _json_values(keys: list[str]) -> st.SearchStrategy[Any]:
    leaves = (st.none() | st.booleans() | st.integers(-10**15, 10**15) | st.floats(allow_nan=True)
              | st.sampled_from(["ON", "OFF", "on", "online", "true", "Online", "", "C", "F", "NotifyStatus", "°C"])
              | st.text(max_size=12))
    key = st.sampled_from(keys) | st.text(max_size=8) if keys else st.text(max_size=8)
    return st.recursive(leaves, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(key, kids, max_size=6),
                        max_leaves=12)


def _mutated(docs: list[Any], values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A fixture document with some of its values replaced by arbitrary JSON, some keys dropped."""
    if not docs:
        return st.nothing()
    choice = st.integers(0, 9)

    def mutate(doc: Any, draw: st.DrawFn, depth: int = 0) -> Any:
        if isinstance(doc, dict):
            out = {}
            for k, v in doc.items():
                roll = draw(choice)
                if roll == 0:
                    continue
                out[k] = draw(values) if roll == 1 else mutate(v, draw, depth + 1)
            return out
        if isinstance(doc, list) and depth < 4:
            return [mutate(v, draw, depth + 1) for v in doc[:4]]
        return doc

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        return mutate(draw(st.sampled_from(docs)), draw)

    return build()


def _check(session: AdapterSession, topic: str, payload: bytes) -> None:
    try:
        result = session.handle(topic, payload, ts=TS)
    except PayloadError as exc:
        assert isinstance(exc.reason, str) and exc.reason
        return
    assert_valid_result(result)


def _property(name: str, config: settings):  # type: ignore[no-untyped-def]
    topics, keys, docs = _vocabulary(name)
    values = _json_values(keys)
    payloads = (st.binary(max_size=400)
                | values.map(lambda d: json.dumps(d).encode())
                | _mutated(docs, values).map(lambda d: json.dumps(d).encode()))
    topic = st.sampled_from(topics) | st.builds(lambda t, s: f"{t}/{s}", st.sampled_from(topics), st.text(max_size=6))

    @config
    @given(topic=topic, payload=payloads)
    def run(topic: str, payload: bytes) -> None:
        _check(_primed(name), topic, payload)

    return run


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_any_payload_gives_a_result_or_a_payload_error(name: str) -> None:
    _property(name, QUICK)()


@pytest.mark.fuzz
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_any_payload_gives_a_result_or_a_payload_error_long(name: str) -> None:
    _property(name, LONG)()


_EXPOSES = [
    Expose(capability="occupancy", path="o"),
    Expose(capability="contact", path="c", invert=True),
    Expose(capability="switch", path="s", true_values=frozenset({"on"}), false_values=frozenset({"off"})),
    Expose(capability="temperature", path="t", scale=0.1, offset=-3.0),
    Expose(capability="power", path="p"),
    Expose(capability="action", path="a"),
]


@QUICK
@given(expose=st.sampled_from(_EXPOSES),
       raw=st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
       | st.sampled_from(["on", "OFF", " 1 ", "true", "open", "nan", "1e13"]) | st.lists(st.integers(), max_size=2))
def test_hot_path_converter_equals_expose_convert(expose: Expose, raw: Any) -> None:
    fast = converter(expose)
    try:
        expected = expose.convert(raw)
    except ValueError:
        with pytest.raises(ValueError):
            fast(raw)
        return
    got = fast(raw)
    assert got == expected and type(got) is type(expected)
    assert type(got) is {"bool": bool, "number": float, "text": str}[KIND[expose.capability]]
