"""Manual PUBACKs for the local broker: a device message is acknowledged once it is safe.

paho (under aiomqtt) acknowledges a QoS 1 message as it arrives, so whatever an edge had
received but not committed when it died was gone: the broker had been told it was
delivered. The local subscriber therefore switches its paho client to manual acks, as
``hub.ingest`` does, and ``LocalAcks`` sends each ``PUBACK`` only when the message's
outcome is on disk: its events committed to the outbox, its dead letter committed, its
copy held for discovery committed, or nothing to keep (a discovery document, a device
kept local). A message "handled" while the outbox's ``epoch`` was E is safe once the
outbox's ``durable_epoch`` reaches E.

Rules it keeps:

* PUBACKs go out in the order the PUBLISHes arrived (MQTT 3.1.1 §4.6), and only on the
  connection the message came in on (``connected`` starts a new generation): what was
  owed on a lost connection is redelivered by the broker instead.
* Redelivery is recognised. Mosquitto sends a message it has not had a PUBACK for again
  on the next connection, with the DUP flag. Every QoS 1 message's key (a 48-bit digest of
  topic and payload with the 16-bit packet id) is written by the outbox in the same
  transaction as its outcome (the last ``keep`` keys survive restarts), so a DUP message
  whose key is known is acknowledged without being handled again. A device repeating a
  payload gets a new packet id and no DUP flag, so it is never mistaken for a copy.
* Few messages wait: past ``commit_after`` unacknowledged messages the outbox is asked to
  commit now (the broker sends only ``max_inflight_messages`` before it waits for
  PUBACKs), and past ``max_unacked`` the subscriber stops reading until acks catch up.

A coarse privacy window's readings are in memory until the window closes: a message that
fed one is acknowledged like any other, so a crash loses an open window (as it always has).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from .outbox import Outbox

__all__ = ["AckCounters", "LocalAcks", "message_key"]

log = logging.getLogger(__name__)


class _Acker(Protocol):  # paho.mqtt.client.Client, with manual acks on
    def ack(self, mid: int, qos: int) -> object: ...


def message_key(mid: int, topic: str, payload: bytes) -> int:
    """A signed 64-bit key for one delivery: 48 bits of digest of topic and payload, then the packet id."""
    digest = hashlib.blake2b(payload, digest_size=6, key=topic.encode()[:64], person=b"genius-local").digest()
    return int.from_bytes(digest + (mid & 0xFFFF).to_bytes(2, "big"), "big", signed=True)


@dataclass(slots=True)
class AckCounters:
    acked: int = 0  # PUBACKs sent
    redelivered: int = 0  # DUP messages already handled: acknowledged, not handled again
    dropped: int = 0  # owed on a connection that is gone (the broker redelivers them)


class LocalAcks:
    """Owes PUBACKs in arrival order and pays them as the outbox makes messages durable."""

    def __init__(self, outbox: Outbox, *, commit_after: int = 10, max_unacked: int = 2000, keep: int = 10_000) -> None:
        self.outbox = outbox
        self.commit_after = commit_after
        self.max_unacked = max_unacked
        self.keep = keep
        self.counters = AckCounters()
        self._owed: deque[tuple[int, int, int, int]] = deque()  # (generation, epoch, mid, qos)
        self._acker: _Acker | None = None
        self._generation = 0
        self._since_commit = 0
        self._room = asyncio.Event()
        self._room.set()
        keys = outbox.received_loaded[-keep:]
        self._known: set[int] = set(keys)
        self._order: deque[int] = deque(keys)
        outbox.on_durable.append(self.on_durable)

    @property
    def unacked(self) -> int:
        return len(self._owed)

    def connected(self, acker: _Acker) -> None:
        """A new connection: acks owed on the old one are dropped (the broker sends those again)."""
        self._generation += 1
        self._acker = acker
        self._drop_owed()

    def disconnected(self) -> None:
        self._acker = None
        self._drop_owed()

    def _drop_owed(self) -> None:
        self.counters.dropped += len(self._owed)
        self._owed.clear()
        self._since_commit = 0
        self._room.set()

    def seen(self, mid: int, topic: str, payload: bytes, *, dup: bool) -> bool:
        """Whether to skip this QoS 1 message as a redelivery; otherwise remember its key.

        A skipped message still gets its PUBACK (``owe``), in order.
        """
        key = message_key(mid, topic, payload)
        if dup and key in self._known:
            self.counters.redelivered += 1
            return True
        self._known.add(key)
        self._order.append(key)
        if len(self._order) > self.keep:
            self._known.discard(self._order.popleft())
        self.outbox.note_received(key)
        return False

    def owe(self, mid: int, qos: int) -> None:
        """The message just handled gets its PUBACK once what it left in the outbox is committed."""
        if qos == 0:
            return
        outbox = self.outbox
        self._owed.append((self._generation, outbox.epoch, mid, qos))
        self._since_commit += 1
        if self._since_commit >= self.commit_after:
            self._since_commit = 0
            outbox.commit_soon()
        elif len(self._owed) == 1:
            outbox.kick()  # within commit_interval_s, even if the message left nothing to commit
        if len(self._owed) >= self.max_unacked:
            self._room.clear()
            outbox.commit_soon()

    async def wait_room(self) -> None:
        """Until fewer than ``max_unacked`` messages wait for their PUBACK."""
        await self._room.wait()

    async def settle(self) -> None:
        """Until every message owed on this connection is acknowledged (commits asked for)."""
        while self._owed:
            self.outbox.commit_soon()
            self._room.clear()
            await self._room.wait()

    def on_durable(self) -> None:
        """The outbox finished a flush: pay, in order, every PUBACK it made safe."""
        owed = self._owed
        durable = self.outbox.durable_epoch
        acker, generation = self._acker, self._generation
        paid = 0
        while owed and owed[0][1] <= durable:
            gen, _, mid, qos = owed.popleft()
            if acker is not None and gen == generation:
                acker.ack(mid, qos)
                paid += 1
            else:
                self.counters.dropped += 1
        self.counters.acked += paid
        if len(owed) < self.max_unacked:
            self._room.set()
        if owed:
            self.outbox.kick()  # handled after this flush began: the next one makes them safe
