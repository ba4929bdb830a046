"""Small helpers shared by the edge's two MQTT clients (local broker, hub broker)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiomqtt

from .deadletters import DeadLetters

__all__ = ["NODELAY", "cancel_requests", "counting_queue", "payload_bytes", "raise_if_cancelled"]

# PUBACKs and small batches are tiny writes: without TCP_NODELAY, Nagle holds each one until
# the previous segment is acknowledged, which halved QoS 1 receive throughput on loopback.
NODELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)


def payload_bytes(payload: Any) -> bytes:
    """aiomqtt hands received payloads over as bytes; be exact if it ever does not."""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, bytearray):
        return bytes(payload)
    if payload is None:
        return b""
    return str(payload).encode()


def counting_queue(dead_letters: DeadLetters, *, source: str) -> type[asyncio.Queue[aiomqtt.Message]]:
    """A queue class for ``aiomqtt.Client(queue_type=…)`` that dead-letters what it cannot hold.

    aiomqtt acknowledges QoS 1 on arrival and, when its bounded queue is full, drops the
    message with only a log line. This queue records each one instead (topic, raw bytes,
    reason ``queue_full``) so an overload is counted, not silent.
    """

    class _CountingQueue(asyncio.Queue[aiomqtt.Message]):
        def put_nowait(self, item: aiomqtt.Message) -> None:
            if self.full():
                dead_letters.record(
                    source=source,
                    reason="queue_full",
                    topic=str(item.topic),
                    payload=payload_bytes(item.payload),
                    detail=f"incoming queue full ({self.maxsize} messages)",
                )
                return
            super().put_nowait(item)

    return _CountingQueue


def raise_if_cancelled(*, since: int = 0) -> None:
    """Re-raise a cancellation that an aiomqtt call swallowed.

    aiomqtt waits for PUBACK and SUBACK with ``asyncio.wait_for``, which on Python 3.11
    returns normally when the cancellation lands just as the reply arrives (CPython
    gh-86296, fixed in 3.12): the task is marked cancelling yet carries on, and the
    TaskGroup stopping it waits forever (an edge test hung on shutdown this way). Loops call
    this after such an await. A task that outlives a 3.11 ``TaskGroup`` whose child failed
    may keep a cancel request the group never took back: such a caller passes the count
    it had before its awaits (``cancel_requests()``) as ``since``.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling() > since:
        raise asyncio.CancelledError


def cancel_requests() -> int:
    """The current task's pending cancel requests (the baseline for ``raise_if_cancelled``)."""
    task = asyncio.current_task()
    return task.cancelling() if task is not None else 0
