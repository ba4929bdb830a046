"""Pure parts of the operator API: alarm rules, gap history, histogram, Prometheus text, settings."""

from __future__ import annotations

import math

import pytest

from devices.errors import ConfigError
from hub.http.alarms import GapTracker, evaluate_alarms
from hub.http.fleet import EdgeRow
from hub.http.metrics import Histogram, IngestMetrics
from hub.http.settings import AlarmSettings, parse_listen
from hub.pipeline import CommitSummary
from hub.settings import HubSettings
from hub.validation import wire_event

NOW = 1_800_000_000.0
RULES = AlarmSettings(offline_after_s=300, gap_grace_s=30, dead_letter_burst=20, dead_letter_window_s=60,
                      backlog_events=1000, stall_s=30)


def edge(edge_id: str = "e1", *, online: bool | None = True, last_seen: float = NOW, gaps: int = 0,
         backlog: int | None = 0) -> EdgeRow:
    return EdgeRow(edge_id=edge_id, customer_id="c1", role="home", online=online, last_seen=last_seen, backlog=backlog,
                   version="1", events=100, duplicates=0, high_seq=100, contiguous=100 - 10 * gaps, gaps=gaps,
                   missing=5 * gaps, overflow_dropped=0, overflow_policy=None, devices=3)


def kinds(**kw: object) -> list[tuple[str, str]]:
    return [(a.kind, a.subject) for a in evaluate_alarms(now=NOW, settings=RULES, **kw)]  # type: ignore[arg-type]


def test_an_edge_is_an_offline_alarm_only_when_not_online_and_quiet_past_the_threshold() -> None:
    assert kinds(edges=[edge(online=False, last_seen=NOW - 299)]) == []
    assert kinds(edges=[edge(online=False, last_seen=NOW - 301)]) == [("edge_offline", "e1")]
    assert kinds(edges=[edge(online=None, last_seen=NOW - 3600)]) == [("edge_offline", "e1")]  # never reported
    assert kinds(edges=[edge(online=True, last_seen=NOW - 3600)]) == []  # online: the last will would say otherwise


def test_a_gap_is_an_alarm_after_its_grace_or_at_once_without_history() -> None:
    tracker = GapTracker()
    rows = [edge(gaps=1)]
    assert kinds(edges=rows, gap_since=tracker.update(rows, now=NOW - 10)) == []
    assert kinds(edges=rows, gap_since=tracker.update(rows, now=NOW)) == []  # open for 10 s
    later = NOW + 25
    alarms = evaluate_alarms(rows, now=later, settings=RULES, gap_since=tracker.update(rows, now=later))
    assert [(a.kind, a.since) for a in alarms] == [("gap", NOW - 10)]
    assert tracker.update([edge(gaps=0)], now=later) == {}  # closed: history forgotten
    assert kinds(edges=rows) == [("gap", "e1")]  # genius hub status: no history


def test_dead_letter_burst_backlog_and_stall_are_alarms() -> None:
    assert kinds(edges=[], dead_letters_in_window=19) == []
    assert kinds(edges=[], dead_letters_in_window=20) == [("dead_letter_burst", "hub")]
    assert kinds(edges=[edge(backlog=1000)]) == [("ingest_lag", "e1")]
    assert kinds(edges=[], stalled_s=29) == []
    assert kinds(edges=[], stalled_s=31) == [("ingest_lag", "hub")]


def test_histogram_buckets_are_cumulative_with_inf_sum_and_count() -> None:
    h = Histogram((0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 5.0, -1.0):
        h.observe(v)
    assert h.cumulative() == [("0.1", 3), ("1.0", 4), ("+Inf", 5)]  # -1 counts as 0; le is inclusive
    assert h.count == 5 and math.isclose(h.sum, 5.65)


def test_ingest_metrics_count_batches_and_observe_latency_from_the_newest_event() -> None:
    metrics = IngestMetrics(clock=lambda: NOW)
    events = tuple(wire_event(i, NOW - 3 + i, "d", "power", 1.0) for i in range(3))
    summary = CommitSummary(frozenset({"c"}), (("c", "e", events), ("c", "e2", events[:1])), 4, 0, 0)
    metrics(summary)  # type: ignore[arg-type]
    assert metrics.batches == 2
    assert metrics.latency.count == 2 and math.isclose(metrics.latency.sum, 1.0 + 3.0)


def test_http_settings_take_listen_from_env_and_refuse_a_bad_one(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_listen("[::1]:0") == ("::1", 0)
    monkeypatch.setenv("GENIUS_HUB_HTTP__LISTEN", "127.0.0.1:9000")
    monkeypatch.setenv("GENIUS_HUB_HTTP__ALARMS__OFFLINE_AFTER_S", "60")
    settings = HubSettings.load()
    assert settings.http.listen == "127.0.0.1:9000" and settings.http.alarms.offline_after_s == 60
    for bad in ("8080", "host:", "127.0.0.1:70000"):
        with pytest.raises(ConfigError):
            HubSettings.load(http={"listen": bad})
    with pytest.raises(ConfigError):
        HubSettings.load(http={"listn": "127.0.0.1:1"})
