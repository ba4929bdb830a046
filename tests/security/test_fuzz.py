"""Hostile-input fuzzing: nothing a device, an edge or an operator sends may crash or hang us.

Targets (each a hypothesis property run twice: ``quick`` in the default suite, ``long`` with
100,000 cases behind ``-m fuzz``, i.e. ``make fuzz``):

* every registered adapter's parser (``AdapterSession.handle``), primed with its fixtures so
  discovery-driven state is live: an ``AdapterResult`` or a ``PayloadError``, nothing else;
* the hub's batch parser (``decode_wire_batch``) and the whole hub pipeline with the
  security guard: ``ValidationFailed`` only, and never an ``internal`` dead letter (a bug);
* the signature check (``verify_payload`` and the guard): ``ValidationFailed`` only, and a
  signed document verifies only while nothing in it changed;
* the settings loaders (``EdgeSettings``/``HubSettings`` from TOML files and env vars):
  settings or a ``ConfigError``, nothing else.

Each property counts its calls and asserts the budget ran. ``timeout`` (pytest-timeout)
turns a hang into a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import string
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices import AdapterResult, PayloadError, load_registry
from devices.errors import ConfigError, ValidationFailed
from devices.signing import canonical_bytes, sign_document, verify_payload
from devices.topics import events_topic
from edge.settings import EdgeSettings
from hub.context import ContextFuser
from hub.deadletters import DeadLetters
from hub.pipeline import Incoming, Pipeline
from hub.catalog import Catalog
from hub.security import BatchGuard, EdgeKeys, KeyRing, LimitsSettings, SecuritySettings
from hub.settings import HubSettings
from hub.validation import decode_wire_batch

QUICK, LONG = 200, 100_000
BUDGETS = [pytest.param(QUICK, id="quick"), pytest.param(LONG, id="long", marks=[pytest.mark.fuzz, pytest.mark.timeout(7200)])]
FIXTURES = Path(__file__).resolve().parents[1] / "devices" / "fixtures"
NOW = 1_800_000_000.0
KEY = bytes(range(32))


def run(
    budget: int, strategy: st.SearchStrategy[Any], check: Callable[[Any], None],
    *, mutate: Callable[[Any, random.Random], Any] | None = None,
) -> int:
    """Run ``check`` on ``budget`` cases; how many ran (asserted to be at least ``budget``).

    Hypothesis draws the structured cases. Drawing one costs ~20 ms here, far more than a
    check, so for the long runs each drawn case also yields ``FAN - 1`` cheap mutants
    (``mutate``: byte flips, splices of JSON tokens, truncations …) seeded from the case, and
    every mutant is one more case checked (5 per drawn case in the quick runs).
    """
    fan = 1 if mutate is None else FAN if budget >= LONG else QUICK_FAN
    examples = -(-budget // fan)
    calls = 0

    @settings(max_examples=examples, deadline=None, database=None, derandomize=budget == QUICK,
              suppress_health_check=list(HealthCheck))
    @given(strategy, st.integers(0, 2**32 - 1))
    def prop(value: Any, seed: int) -> None:
        nonlocal calls
        calls += 1
        check(value)
        if fan > 1:
            assert mutate is not None
            rnd = random.Random(seed)
            for _ in range(fan - 1):
                calls += 1
                check(mutate(value, rnd))

    prop()
    assert calls >= budget, f"only {calls} cases ran"
    return calls


FAN, QUICK_FAN = 50, 5
TOKENS = (b"null", b"true", b"1e999", b"-0", b"NaN", b'"\\u0000"', b"[", b"]", b"{", b"}", b",", b":", b'"',
          b"\xff\xfe", b"9" * 30, b'"' + b"x" * 300 + b'"', b"[" * 200, b'{"a":' * 50)


def mutate_bytes(data: bytes, rnd: random.Random) -> bytes:
    """One cheap mutation of ``data`` (what a flaky radio, a bad firmware or an attacker sends)."""
    buf = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        op = rnd.randrange(6)
        i = rnd.randrange(len(buf) + 1)
        if op == 0 and buf and i < len(buf):
            buf[i] = rnd.randrange(256)
        elif op == 1:
            buf[i:i] = rnd.choice(TOKENS)
        elif op == 2 and buf:
            del buf[i : i + rnd.randint(1, 16)]
        elif op == 3:
            del buf[i:]
        elif op == 4 and buf:
            j = rnd.randrange(len(buf))
            buf[i:i] = buf[j : j + rnd.randint(1, 32)]
        else:
            buf[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 8)))
    return bytes(buf)


def mutate_pair(case: tuple[str, bytes], rnd: random.Random) -> tuple[str, bytes]:
    topic, payload = case
    if rnd.random() < 0.1:
        topic = mutate_bytes(topic.encode(), rnd).decode("utf-8", "replace")
    return topic, mutate_bytes(payload, rnd)


# -- shared strategies ----------------------------------------------------------------------
JSON_LEAVES = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True)
               | st.text(max_size=20) | st.sampled_from(["ON", "OFF", "online", "true", "", "°C", "\x00", "\ud7ff"]))


def json_values(keys: list[str]) -> st.SearchStrategy[Any]:
    key = st.sampled_from(keys) | st.text(max_size=10) if keys else st.text(max_size=10)
    return st.recursive(JSON_LEAVES, lambda kids: st.lists(kids, max_size=5) | st.dictionaries(key, kids, max_size=8),
                        max_leaves=20)


def payloads(keys: list[str], docs: list[Any]) -> st.SearchStrategy[bytes]:
    as_json = json_values(keys).map(lambda v: json.dumps(v).encode())
    mutated = st.sampled_from(docs).flatmap(lambda d: _mutate(d, json_values(keys))) if docs else as_json
    return st.one_of(st.binary(max_size=300), as_json, mutated,
                     st.text(max_size=100).map(lambda s: s.encode("utf-8", "surrogatepass")))


def _mutate(doc: Any, values: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        def walk(node: Any, depth: int) -> Any:
            if isinstance(node, dict):
                out = {}
                for k, v in node.items():
                    roll = draw(st.integers(0, 9))
                    if roll == 0:
                        continue
                    out[k] = draw(values) if roll == 1 else walk(v, depth + 1)
                if draw(st.integers(0, 9)) == 0:
                    out[draw(st.text(max_size=6))] = draw(values)
                return out
            if isinstance(node, list) and depth < 6:
                return [walk(v, depth + 1) for v in node]
            return draw(values) if draw(st.integers(0, 7)) == 0 else node
        return json.dumps(walk(doc, 0)).encode()
    return build()


# -- adapters -------------------------------------------------------------------------------
REGISTRY = load_registry(strict=True)
ADAPTERS = {a.name: a for a in REGISTRY.all_adapters()}


def _fixture_messages(name: str) -> list[tuple[str, bytes, Any]]:
    out = []
    for path in sorted((FIXTURES / name).glob("*.json")) if (FIXTURES / name).is_dir() else []:
        for m in json.loads(path.read_text())["messages"]:
            if "json" in m:
                out.append((m["topic"], json.dumps(m["json"], separators=(",", ":")).encode(), m["json"]))
            else:
                out.append((m["topic"], m.get("text", "").encode(), None))
    return out


def _keys(doc: Any, out: set[str]) -> set[str]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.add(k)
            _keys(v, out)
    elif isinstance(doc, list):
        for v in doc:
            _keys(v, out)
    return out


def _topic_from_filter(f: str) -> st.SearchStrategy[str]:
    segment = st.text(alphabet=string.ascii_letters + string.digits + "_-.:", min_size=0, max_size=12)
    parts: list[st.SearchStrategy[str]] = []
    for p in f.split("/"):
        if p == "+":
            parts.append(segment)
        elif p == "#":
            parts.append(st.lists(segment, max_size=3).map("/".join))
        else:
            parts.append(st.just(p))
    return st.tuples(*parts).map(lambda ps: "/".join(ps).rstrip("/"))


def _adapter_cases(name: str) -> st.SearchStrategy[tuple[str, bytes]]:
    messages = _fixture_messages(name)
    docs = [d for _, _, d in messages if d is not None]
    keys = sorted(set().union(*(_keys(d, set()) for d in docs))) if docs else []
    session = ADAPTERS[name].new_session()
    topics = [st.sampled_from(sorted({t for t, _, _ in messages}))] if messages else []
    topics += [_topic_from_filter(f) for f in session.subscriptions()]
    topics.append(st.text(max_size=60))
    return st.tuples(st.one_of(*topics), payloads(keys, docs))


def _primed(name: str) -> Any:
    session = ADAPTERS[name].new_session()
    for topic, payload, _ in _fixture_messages(name):
        with contextlib.suppress(PayloadError):
            session.handle(topic, payload, ts=NOW)
    return session


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
def test_fuzz_adapter_parser_returns_a_result_or_a_payload_error(adapter: str, budget: int) -> None:
    session = _primed(adapter)

    def check(case: tuple[str, bytes]) -> None:
        topic, payload = case
        try:
            result = session.handle(topic, payload, ts=NOW)
        except PayloadError as exc:
            assert isinstance(exc.reason, str) and exc.reason
            return
        assert isinstance(result, AdapterResult)

    run(budget, _adapter_cases(adapter), check, mutate=mutate_pair)


# -- hub batch parser and pipeline ----------------------------------------------------------
def _event() -> st.SearchStrategy[dict[str, Any]]:
    caps = st.sampled_from(["occupancy", "temperature", "action", "contact", "power", "media", "bogus"])
    return st.fixed_dictionaries(
        {"seq": st.integers(-5, 2**64) | JSON_LEAVES, "ts": st.floats(allow_nan=True) | JSON_LEAVES,
         "device": st.text(max_size=140) | JSON_LEAVES, "capability": caps | JSON_LEAVES,
         "value": JSON_LEAVES},
        optional={"room": st.text(max_size=140) | JSON_LEAVES, "extra": JSON_LEAVES},
    )


def _batch_docs() -> st.SearchStrategy[dict[str, Any]]:
    ident = st.sampled_from(["alice", "a1", "bob", "A", "", "x" * 64]) | st.text(max_size=10)
    return st.fixed_dictionaries(
        {"customer_id": ident, "edge_id": ident, "sent_at": st.floats(allow_nan=True) | JSON_LEAVES,
         "events": st.lists(_event(), max_size=4) | JSON_LEAVES},
        optional={"schema": st.sampled_from(["genius.events/1", "genius.events/2"]) | JSON_LEAVES,
                  "signature": st.sampled_from(["v1:a1.k:" + "0" * 64, "v1::", "garbage"]) | JSON_LEAVES},
    )


BATCH_PAYLOADS = st.one_of(
    _batch_docs().map(lambda d: json.dumps(d).encode()),
    _batch_docs().map(lambda d: json.dumps(sign_document(d, key_id="a1.k", key=KEY)).encode()),
    st.binary(max_size=200),
    json_values(["customer_id", "edge_id", "sent_at", "events", "seq", "ts"]).map(lambda v: json.dumps(v).encode()),
)


@pytest.mark.parametrize("budget", BUDGETS)
def test_fuzz_hub_batch_parser_raises_only_validation_failed(budget: int) -> None:
    def check(payload: bytes) -> None:
        try:
            batch = decode_wire_batch(payload, customer_id="alice", edge_id="a1")
        except ValidationFailed as exc:
            assert exc.reason in {"json", "schema", "identity"}
            return
        assert batch.customer_id == "alice" and batch.edge_id == "a1"

    run(budget, BATCH_PAYLOADS, check, mutate=mutate_bytes)


def _guard(**limits: Any) -> BatchGuard:
    ring = KeyRing(lambda: {"a1": EdgeKeys("alice", {"a1.k": (KEY, None)})}, reload_s=1e9)
    return BatchGuard(SecuritySettings(max_skew_s=1e12), LimitsSettings(**limits), keys=ring)


@pytest.mark.parametrize("budget", BUDGETS)
def test_fuzz_hub_pipeline_with_guard_never_fails_internally(budget: int) -> None:
    dead = DeadLetters(clock=lambda: NOW)
    pipeline = Pipeline(Catalog(), {}, ContextFuser(clock=lambda: NOW), dead, clock=lambda: NOW,
                        guard=_guard(max_payload_bytes=2048, events_per_s=1e9))
    topics = st.sampled_from([events_topic("alice", "a1"), events_topic("bob", "a1"), "genius/v1/alice/a1/status",
                              "genius/v1/alice/a1/devices", "genius/v1/alice/feedback"]) | st.text(max_size=40)

    def check(case: tuple[str, bytes]) -> None:
        pipeline.process(Incoming(*case))
        if len(pipeline._group.events) > 10_000:  # noqa: SLF001 - keep memory flat over 100k cases
            pipeline.seal()
        dead.drain()
        assert dead.counts["internal"] == 0

    run(budget, st.tuples(topics, BATCH_PAYLOADS), check, mutate=mutate_pair)


# -- signatures ------------------------------------------------------------------------------
def _signed_mutant(case: Any, rnd: random.Random) -> tuple[str, bytes, bytes | None]:
    """A byte-level mutation of the case's signed document, with the canonical bytes it had."""
    doc = case[0]
    try:
        signed = sign_document(doc, key_id="a1.k", key=KEY)
    except ValueError:
        return ("raw", mutate_bytes(json.dumps(doc).encode(), rnd), None)
    return ("raw", mutate_bytes(json.dumps(signed).encode(), rnd), canonical_bytes(signed))


@pytest.mark.parametrize("budget", BUDGETS)
def test_fuzz_signature_check_accepts_only_the_unchanged_signed_document(budget: int) -> None:
    keys = {"a1.k": KEY}

    def check(case: Any) -> None:
        if case[0] == "raw":  # a mutant: it verifies only if its content is what was signed
            _, raw, original = case
            try:
                verify_payload(raw, keys=keys)
            except ValidationFailed as exc:
                assert exc.reason in {"json", "unsigned", "signature", "unknown_key"}
                return
            assert original is not None and canonical_bytes(json.loads(raw)) == original
            return
        doc, change, raw = case
        try:
            verify_payload(raw, keys=keys)  # arbitrary bytes: a reasoned refusal at most
        except ValidationFailed as exc:
            assert exc.reason in {"json", "unsigned", "signature", "unknown_key"}
        try:
            signed = sign_document(doc, key_id="a1.k", key=KEY)
        except ValueError:  # e.g. a float key is fine for json but not sortable: nothing to sign
            return
        assert verify_payload(json.dumps(signed).encode(), keys=keys) == "a1.k"
        tampered = {**signed, "customer_id": change}
        same = canonical_bytes(tampered) == canonical_bytes(signed)
        try:
            verify_payload(json.dumps(tampered).encode(), keys=keys)
            assert same, "a changed document verified"
        except ValidationFailed as exc:
            assert not same and exc.reason == "signature"

    run(budget, st.tuples(_batch_docs(), JSON_LEAVES, st.binary(max_size=200) | BATCH_PAYLOADS), check,
        mutate=_signed_mutant)


# -- settings loaders -----------------------------------------------------------------------
def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v) if v == v and abs(v) != float("inf") else "nan"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    return '""'


EDGE_KEYS = ["customer", "edge", "role", "local_broker", "hub_broker", "adapters", "outbox", "uplink", "local",
             "privacy", "devices", "dead_letter_window_s", "path", "max_events", "overflow", "signing", "key_id", "key",
             "url", "username", "password", "default", "batch_max_events", "max_payload_bytes", "room"]
HUB_KEYS = ["broker", "store", "ingest", "context", "security", "limits", "log_level", "url", "client_id", "path",
            "queue_messages", "signing", "max_skew_s", "events_per_s", "max_payload_bytes", "password"]
SETTINGS_LEAVES = (st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats()
                   | st.text(max_size=20) | st.sampled_from(["mqtt://127.0.0.1:1883", "alice", "home", "share", "off"]))


def _settings_cases(keys: list[str], prefix: str) -> st.SearchStrategy[tuple[str, dict[str, str]]]:
    key = st.sampled_from(keys) | st.text(max_size=8)
    tree = st.recursive(SETTINGS_LEAVES.filter(lambda v: v is not None),
                        lambda kids: st.lists(kids, max_size=3) | st.dictionaries(key, kids, max_size=4), max_leaves=10)
    toml_doc = st.dictionaries(key, tree, max_size=6).map(
        lambda d: "\n".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in d.items()))
    toml_text = st.one_of(toml_doc, st.text(max_size=200))
    env_key = st.sampled_from(keys).map(lambda k: prefix + k.upper()) | st.sampled_from(keys).flatmap(
        lambda k: st.sampled_from(keys).map(lambda j: f"{prefix}{k.upper()}__{j.upper()}"))
    env = st.dictionaries(env_key, st.text(alphabet=st.characters(blacklist_characters="\x00",
                                                                   blacklist_categories=["Cs"]), max_size=30), max_size=3)
    return st.tuples(toml_text, env)


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("which", ["edge", "hub"])
def test_fuzz_settings_loaders_give_settings_or_a_config_error(which: str, budget: int) -> None:
    loader: Callable[[Path], Any] = EdgeSettings.load if which == "edge" else HubSettings.load
    prefix = "GENIUS_EDGE_" if which == "edge" else "GENIUS_HUB_"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "settings.toml"

        def check(case: tuple[str, dict[str, str]]) -> None:
            text, env = case
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
            with _environ(env):
                try:
                    loaded = loader(path)
                except ConfigError:
                    return
            assert isinstance(loaded, EdgeSettings if which == "edge" else HubSettings)

        def mutant(case: tuple[str, dict[str, str]], rnd: random.Random) -> tuple[str, dict[str, str]]:
            return mutate_bytes(case[0].encode("utf-8", "surrogatepass"), rnd).decode("utf-8", "replace"), case[1]

        run(budget, _settings_cases(EDGE_KEYS if which == "edge" else HUB_KEYS, prefix), check, mutate=mutant)
