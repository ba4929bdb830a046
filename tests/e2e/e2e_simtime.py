"""Simulated time for a real edge: readings stamped with the simulator's clock, not arrival.

An edge stamps each reading with the time its message arrived (``ts=clock()``). A test that
replays a simulated week in seconds needs the simulator's timestamps instead, so the hub's
events can be compared with the simulator's expected events on ``(device, capability, ts,
value)``. ``StampedSession`` wraps a real adapter session (injected, as the CLI injects the
registry's) and swaps in the simulated time of each message: every parse, check, privacy
step, commit and upload stays the real edge's.

Stamps are keyed by ``(topic, payload)`` with a FIFO per key: identical messages on one
topic (a motion sensor reporting ``{"occupancy":true}`` twice) arrive in publish order,
because MQTT keeps the order of one publisher's QoS 1 messages on a topic.
"""

from __future__ import annotations

import base64
import json
from collections import deque
from collections.abc import Iterable
from pathlib import Path

from devices.adapter import AdapterSession
from devices.readings import AdapterResult
from devices.wire import DeviceProfile

__all__ = ["Stamps", "StampedSession", "load_stamps", "write_stamps"]

Stamps = dict[tuple[str, bytes], deque[float]]


def write_stamps(path: Path, messages: Iterable[tuple[str, bytes, float]]) -> Path:
    """Write ``(topic, payload, simulated ts)`` triples, in publish order, for ``load_stamps``."""
    rows = [[topic, base64.b64encode(payload).decode(), ts] for topic, payload, ts in messages]
    path.write_text(json.dumps(rows))
    return path


def load_stamps(path: Path) -> Stamps:
    stamps: Stamps = {}
    for topic, payload, ts in json.loads(path.read_text()):
        stamps.setdefault((topic, base64.b64decode(payload)), deque()).append(float(ts))
    return stamps


class StampedSession(AdapterSession):
    """``inner`` with each known message's readings stamped at its simulated time.

    Messages without a stamp (discovery, malformed input, anything not from the feed) keep
    the arrival time the edge passes in.
    """

    def __init__(self, inner: AdapterSession, stamps: Stamps) -> None:
        self.inner = inner
        self.adapter = inner.adapter
        self._stamps = stamps

    def subscriptions(self) -> list[str]:
        return self.inner.subscriptions()

    def matches(self, topic: str) -> bool:
        return self.inner.matches(topic)

    def profiles(self) -> list[DeviceProfile]:
        return self.inner.profiles()

    def handle(self, topic: str, payload: bytes, *, ts: float) -> AdapterResult:
        queue = self._stamps.get((topic, payload))
        if queue:
            ts = queue.popleft()
        return self.inner.handle(topic, payload, ts=ts)
