"""``EventBatch`` JSON straight from outbox rows, without a pydantic object per event.

The output is exactly what ``devices.wire.EventBatch(...).to_json()`` would say (``room``
left out when there is none), which the tests prove by decoding it with
``devices.wire.decode_batch``. Names arrive already JSON-encoded (the outbox caches one
literal per interned name), values are encoded by their capability's kind. Values were
checked when queued (finite numbers, short text), so every literal here is valid JSON.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from devices.capabilities import KIND

from .outbox import Row

__all__ = ["encode_batch"]

SCHEMA = "genius.events/1"


def encode_batch(
    *, customer_id: str, edge_id: str, sent_at: float, rows: Sequence[Row], names_json: Sequence[str],
    names: Sequence[str],
) -> bytes:
    """One ``EventBatch`` document for ``rows`` (at most 10,000, the contract's limit)."""
    if len(rows) > 10_000:
        raise ValueError(f"a batch holds at most 10,000 events, not {len(rows)}")
    parts = []
    append = parts.append
    kinds: dict[int, str] = {}
    for seq, ts, device, capability, value, room in rows:
        kind = kinds.get(capability)
        if kind is None:
            kind = kinds[capability] = KIND[names[capability]]
        if kind == "bool":
            v = "true" if value else "false"
        elif kind == "number":
            v = repr(float(value))
        else:
            v = json.dumps(value, ensure_ascii=False)
        if room is None:
            append(
                f'{{"seq":{seq},"ts":{float(ts)!r},"device":{names_json[device]},'
                f'"capability":{names_json[capability]},"value":{v}}}'
            )
        else:
            append(
                f'{{"seq":{seq},"ts":{float(ts)!r},"device":{names_json[device]},'
                f'"capability":{names_json[capability]},"value":{v},"room":{names_json[room]}}}'
            )
    head = (
        f'{{"schema":"{SCHEMA}","customer_id":{json.dumps(customer_id)},'
        f'"edge_id":{json.dumps(edge_id)},"sent_at":{float(sent_at)!r},"events":['
    )
    return (head + ",".join(parts) + "]}").encode()
