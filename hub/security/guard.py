"""``BatchGuard``: the hub's checks on hostile input, between decoding and storing.

``Pipeline`` asks the guard twice per message:

* ``check_size(payload)`` before anything is parsed (``payload_too_large``);
* ``check_batch(batch, payload, now=…)`` for a decoded ``EventBatch``, which returns
  ``None`` (store it) or a ``Refusal`` whose ``reason`` becomes the dead letter's. Reasons:

  ============== =====================================================================
  identity       the edge is provisioned for another customer than the topic names
  unsigned       the edge has a key (or ``signing="required"``) and the batch has none
  unregistered   ``signing="required"`` and the edge has no key
  signature      malformed signature, or a digest that does not verify
  unknown_key    a key id the edge does not have (or no longer has: grace is over)
  skew           a signed batch's ``sent_at`` is more than ``max_skew_s`` off
  replay         a signature the hub has seen within ``replay_window_s``
  too_many_events more events than ``max_events_per_batch``
  name_too_long / text_too_long   a device/room name or text value past the limit
  ts_future / ts_past             an event timestamp too far from the hub's clock
  rate_limited   the edge's token bucket is empty (the edge resends later; nothing is lost)
  ============== =====================================================================

Order matters: identity and signature come first (an unauthenticated sender must not spend
an honest edge's rate budget or poison the replay cache), the rate limit last.
``counts`` counts refusals by reason (the dead-letter counters say the same, durably).
"""

from __future__ import annotations

import logging
from collections import Counter
from operator import attrgetter
from pathlib import Path
from typing import NamedTuple

from devices.errors import ValidationFailed
from devices.signing import verify_payload

from ..validation import WireBatch
from .limits import RateLimiter
from .registry import KeyRing, load_keys
from .replay import ReplayCache
from .settings import LimitsSettings, SecuritySettings

__all__ = ["BatchGuard", "Refusal"]

log = logging.getLogger(__name__)

_TS = attrgetter("ts")


class Refusal(NamedTuple):
    reason: str
    detail: str


class BatchGuard:
    """Signature, replay and limit checks for one hub process (not thread-safe; one loop)."""

    def __init__(
        self,
        security: SecuritySettings,
        limits: LimitsSettings,
        *,
        keys: KeyRing | None = None,
    ) -> None:
        self.security = security
        self.limits = limits
        self.keys = keys
        self.replay = ReplayCache(window_s=security.replay_window_s, max_entries=security.replay_cache_entries)
        self.rates = RateLimiter(rate=limits.events_per_s, burst=limits.events_burst)
        self.counts: Counter[str] = Counter()
        self.verified = 0

    @classmethod
    def for_store(cls, security: SecuritySettings, limits: LimitsSettings, *, db: Path | str) -> BatchGuard:
        """The hub's guard: keys from the registry in the hub database ``db`` (none: no keys)."""
        keys = None
        if security.signing != "off":
            keys = KeyRing(lambda: load_keys(db), reload_s=security.key_reload_s)
        return cls(security, limits, keys=keys)

    def _refuse(self, reason: str, detail: str) -> Refusal:
        self.counts[reason] += 1
        return Refusal(reason, detail)

    def check_size(self, payload: bytes) -> Refusal | None:
        if len(payload) > self.limits.max_payload_bytes:
            return self._refuse(
                "payload_too_large", f"{len(payload)} bytes > max_payload_bytes {self.limits.max_payload_bytes}"
            )
        return None

    def check_batch(self, batch: WireBatch, payload: bytes, *, now: float) -> Refusal | None:
        """Whether a decoded batch (topic and payload identities already agree) may be stored."""
        refusal = self._authenticate(batch, payload, now=now)
        if refusal is not None:
            return refusal
        return self._limit(batch, now=now)

    # -- who sent it ---------------------------------------------------------------------
    def _authenticate(self, batch: WireBatch, payload: bytes, *, now: float) -> Refusal | None:
        mode = self.security.signing
        if mode == "off":
            return None
        edge_id = batch.edge_id
        entry = self.keys.get(edge_id) if self.keys is not None else None
        signature = batch.signature
        if entry is None and signature is not None and self.keys is not None:
            # A just-provisioned edge may sign before our periodic re-read: look once more.
            entry = self.keys.refresh_for(edge_id, _key_id(signature))
        if entry is None:
            if mode == "required":
                return self._refuse("unregistered", f"edge {edge_id!r} has no signing key and signing is required")
            return None  # "registered": edges without a key are not asked to sign
        if entry.customer_id != batch.customer_id:
            return self._refuse(
                "identity", f"edge {edge_id!r} is provisioned for another customer than {batch.customer_id!r}"
            )
        if signature is None:
            return self._refuse("unsigned", f"edge {edge_id!r} has a signing key but sent an unsigned batch")
        keys = entry.valid(now)
        if _key_id(signature) not in keys and self.keys is not None:
            refreshed = self.keys.refresh_for(edge_id, _key_id(signature))
            if refreshed is not None:
                keys = refreshed.valid(now)
        try:
            verify_payload(payload, keys=keys)  # the bytes as sent (fast path), else re-canonicalised
        except ValidationFailed as exc:
            return self._refuse(exc.reason, str(exc))
        skew = batch.sent_at - now
        if abs(skew) > self.security.max_skew_s:
            return self._refuse("skew", f"sent_at is {skew:+.0f}s from the hub's clock (max ±{self.security.max_skew_s:.0f}s)")
        if self.replay.seen(signature, now=now):
            return self._refuse("replay", f"signature seen within the last {self.security.replay_window_s:.0f}s")
        self.verified += 1
        return None

    # -- what it says --------------------------------------------------------------------
    def _limit(self, batch: WireBatch, *, now: float) -> Refusal | None:
        lim = self.limits
        events = batch.events
        n = len(events)
        if n > lim.max_events_per_batch:
            return self._refuse("too_many_events", f"{n} events > max_events_per_batch {lim.max_events_per_batch}")
        if n:
            stamps = list(map(_TS, events))  # one C-level pass, then two (hot path)
            lo, hi = min(stamps), max(stamps)
            if hi > now + lim.max_future_s:
                return self._refuse("ts_future", f"event ts {hi} is {hi - now:.0f}s ahead of the hub's clock")
            if lo < now - lim.max_past_s:
                return self._refuse("ts_past", f"event ts {lo} is {now - lo:.0f}s behind the hub's clock")
            # The wire contract already bounds names at 128 and text at 256: only a tighter
            # setting needs a pass over the strings.
            if lim.max_name_chars < 128:
                longest = max(max(len(e.device), len(e.room or "")) for e in events)
                if longest > lim.max_name_chars:
                    return self._refuse("name_too_long", f"a name of {longest} chars > max_name_chars {lim.max_name_chars}")
            if lim.max_text_chars < 256:
                longest = max((len(v) for e in events if isinstance(v := e.value, str)), default=0)
                if longest > lim.max_text_chars:
                    return self._refuse("text_too_long", f"a text of {longest} chars > max_text_chars {lim.max_text_chars}")
        if not self.rates.allow(batch.edge_id, n, now=now):
            return self._refuse("rate_limited", f"edge {batch.edge_id!r} is over {lim.events_per_s:g} events/s")
        return None


def _key_id(signature: str) -> str:
    parts = signature.split(":")
    return parts[1] if len(parts) == 3 else ""
