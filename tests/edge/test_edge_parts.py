"""Small parts: jittered capped backoff, rate-limited dead-letter warnings."""

from __future__ import annotations

import logging

import pytest

from edge import Backoff, DeadLetters


def test_backoff_doubles_with_jitter_up_to_the_cap_and_resets() -> None:
    lows = Backoff(initial=0.5, cap=30.0, rng=lambda: 0.0)
    highs = Backoff(initial=0.5, cap=30.0, rng=lambda: 1.0)
    assert [highs.next() for _ in range(8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert [lows.next() for _ in range(3)] == [0.25, 0.5, 1.0]  # jitter: between half and all of it
    highs.reset()
    assert highs.next() == 0.5


def test_dead_letters_warn_once_per_source_and_reason_per_window(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    dl = DeadLetters(window_s=60.0, monotonic=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="edge.deadletters"):
        for _ in range(5):
            dl.record(source="local", reason="json", topic="a/b", payload=b"{", detail="bad")
        dl.record(source="local", reason="schema", topic="a/b", payload=b"[]", detail="bad")
        now[0] = 61.0
        dl.record(source="local", reason="json", topic="a/b", payload=b"{", detail="bad")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3
    assert "+4 more" in messages[2]
    assert dl.total == 7 and dl.by_reason[("local", "json")] == 6 and dl.pending == 7


def test_dead_letters_buffer_is_bounded_but_every_one_is_counted() -> None:
    dl = DeadLetters(max_buffered=3)
    for i in range(10):
        dl.record(source="local", reason="json", payload=bytes([i]))
    assert dl.pending == 3 and dl.total == 10
