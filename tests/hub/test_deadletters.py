"""DeadLetters: every bad message counted and kept; one WARNING per (source, reason) per window."""

from __future__ import annotations

import logging

import pytest

from hub.deadletters import DeadLetters


def test_warnings_are_rate_limited_per_source_and_reason_but_every_letter_is_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [1000.0]
    letters = DeadLetters(warn_window_s=60, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="hub.deadletters"):
        for _ in range(5):
            letters.add(topic="t", reason="json", detail="bad", raw=b"x", edge_id="e1")
        letters.add(topic="t", reason="schema", detail="bad", raw=b"x", edge_id="e1")
        letters.add(topic="t", reason="json", detail="bad", raw=b"x", edge_id="e2")
        now[0] += 61
        letters.add(topic="t", reason="json", detail="bad", raw=b"x", edge_id="e1")
    assert len(caplog.records) == 4  # e1/json, e1/schema, e2/json, e1/json again after the window
    assert "4 more suppressed" in caplog.records[-1].getMessage()
    assert letters.counts == {"json": 7, "schema": 1}
    assert len(letters.drain()) == 8 and letters.drain() == []
