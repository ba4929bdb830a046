"""Fast ``EventBatch`` validation into msgspec structs, derived from the wire models themselves.

``devices.wire.decode_batch`` builds a frozen pydantic model per event, which costs more
than storing it at hub rates. ``decode_wire_batch`` validates the same bytes against the
same rules with msgspec's native decoder (about a third of pydantic's cost per event here)
and yields slotted structs the pipeline reads by attribute:

* every wire model (``EventBatch``, ``BoolEvent`` …) is mirrored field by field from its
  annotations, constraints (``Field`` metadata), aliases, defaults and config
  (``extra="forbid"``), so the rules are the wire models' by construction, not a copy to keep
  in step; metadata this module cannot translate stops the import (``TypeError``) rather
  than being skipped;
* the event union, discriminated by ``capability``, becomes one tagged struct per capability
  value; ``event.capability`` still reads the tag (a class attribute).

A test holds the two equivalent on generated payloads.

The fast decoder only ever *accepts* what the models accept. Whatever it rejects, and every
payload it cannot vouch for, is judged by ``decode_batch`` itself, so errors (and their
``reason``: ``json``/``schema``/``identity``) are exactly the contract's. It does not vouch for:

* payloads with a backslash or a DEL byte. Names must hold no control character (the pattern
  of ``devices.wire.Name``); JSON can write a control character only as an escape (raw ones
  are invalid JSON) and DEL only as itself or as an escape, so in a payload with neither no
  name can break that rule, and the decoder leaves that regex out. The usual payload has
  neither; the others go the model's way.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, ClassVar, Literal, Union

import annotated_types as at
import msgspec
from pydantic import BaseModel, Strict
from pydantic.fields import FieldInfo

from devices.wire import BoolEvent, EventBatch, NumberEvent, TextEvent, decode_batch

__all__ = ["WireBatch", "WireEvent", "decode_wire_batch", "event_dict", "wire_event"]

CONTROL_FREE = r"^[^\x00-\x1f\x7f]+$"  # the names' pattern, as devices.wire.Name states it
_INT64_MAX = 2**63 - 1
# annotated-types bounds and the msgspec.Meta argument (and attribute) of the same name
_BOUNDS = {at.Ge: "ge", at.Gt: "gt", at.Le: "le", at.Lt: "lt", at.MinLen: "min_length", at.MaxLen: "max_length"}


class WireEvent(msgspec.Struct, frozen=True, gc=False, forbid_unknown_fields=True, tag_field="capability"):
    """Base of the per-capability event structs (``seq``, ``ts``, ``device``, ``value``, ``room``).

    ``capability`` is the tag: a class attribute of each concrete struct.
    """

    capability: ClassVar[str]


def _meta(metadata: typing.Iterable[Any], *, number: type | None) -> list[Any]:
    """pydantic/annotated-types constraints as ``msgspec.Meta`` (the names' regex left out)."""
    kw: dict[str, Any] = {}
    flat = [x for m in metadata for x in (m.metadata if isinstance(m, FieldInfo) else [m])]
    for m in flat:
        if (key := _BOUNDS.get(type(m))) is not None:
            kw[key] = getattr(m, key)
        elif getattr(m, "__dict__", None) == {"pattern": CONTROL_FREE}:
            continue  # vouched for by the payload having no backslash and no DEL (module docstring)
        elif hasattr(m, "pattern") and isinstance(m.pattern, str) and m.pattern.endswith("$"):
            # Python's ``$`` also matches before a final newline, which Rust's does not: ``\Z``
            # is the same anchor as pydantic's. (No newline can reach here anyway: see above.)
            kw["pattern"] = m.pattern[:-1] + r"\Z"
        elif getattr(m, "allow_inf_nan", None) is False:
            continue  # JSON has no inf/nan literal msgspec accepts, and it refuses overflow
        elif isinstance(m, Strict) and m.strict:
            continue  # msgspec is as strict (an int is a float there too, as in pydantic's strict JSON)
        else:
            raise TypeError(f"hub.validation cannot mirror the constraint {m!r}")
    if number is int and kw.get("lt") == 2**63:  # msgspec bounds must fit an int64
        del kw["lt"]
        kw["le"] = _INT64_MAX
    return [msgspec.Meta(**kw)] if kw else []


def _spec(tp: Any) -> Any:
    """A wire annotation as the msgspec type with the same rules."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        inner, *metadata = typing.get_args(tp)
        base = _spec(inner)
        number = inner if inner in (int, float) else None
        meta = _meta(metadata, number=number)
        return Annotated[base, *meta] if meta else base
    if origin is Union or origin is types.UnionType:
        return Union[tuple(_spec(a) for a in typing.get_args(tp))]  # noqa: UP007
    if origin is list:
        return list[_spec(typing.get_args(tp)[0])]  # type: ignore[misc]
    if origin is Literal or tp in (int, float, str, bool, type(None)):
        return tp
    raise TypeError(f"hub.validation cannot mirror the type {tp!r}")


def _fields(model: type[BaseModel], *, skip: frozenset[str] = frozenset()) -> list[tuple[Any, ...]]:
    """msgspec struct fields (wire name, type[, default]) in the model's order, defaults last."""
    required, optional = [], []
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        tp = _spec(Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation)
        wire = info.alias or name
        if info.is_required():
            required.append((wire, tp))
        else:
            optional.append((wire, tp, info.get_default(call_default_factory=True)))
    return required + optional


def _event_structs() -> dict[str, type[WireEvent]]:
    """One tagged struct per capability value, named after it."""
    structs: dict[str, type[WireEvent]] = {}
    for model in (BoolEvent, NumberEvent, TextEvent):
        fields = _fields(model, skip=frozenset({"capability"}))
        for cap in typing.get_args(model.model_fields["capability"].annotation):
            structs[cap] = msgspec.defstruct(
                f"{model.__name__}_{cap}", fields, bases=(WireEvent,), tag=cap, namespace={"capability": cap},
                frozen=True, gc=False, forbid_unknown_fields=True,
            )
    return structs


EVENT_TYPES: dict[str, type[WireEvent]] = _event_structs()


def _batch_fields() -> list[tuple[Any, ...]]:
    events = EventBatch.model_fields["events"]
    events_type = Annotated[list[Union[tuple(EVENT_TYPES.values())]], *_meta(events.metadata, number=None)]  # noqa: UP007
    out = []
    for f in _fields(EventBatch, skip=frozenset({"events"})):
        out.append(f)
        if f[0] == "sent_at":  # keep the wire order: events right after sent_at
            out.append(("events", events_type))
    return out


WireBatch: type[msgspec.Struct] = msgspec.defstruct(
    "WireBatch", _batch_fields(), frozen=True, gc=False, forbid_unknown_fields=True
)
_DECODER = msgspec.json.Decoder(WireBatch)


def wire_event(seq: int, ts: float, device: str, capability: str, value: bool | float | str,
               room: str | None = None) -> WireEvent:
    """An event struct from its values (no validation: for values already validated)."""
    return EVENT_TYPES[capability](seq=seq, ts=ts, device=device, value=value, room=room)


def event_dict(event: WireEvent) -> dict[str, Any]:
    """The event as the wire models dump it (``capability`` included)."""
    return {"seq": event.seq, "ts": event.ts, "device": event.device, "room": event.room,  # type: ignore[attr-defined]
            "capability": event.capability, "value": event.value}  # type: ignore[attr-defined]


def decode_wire_batch(payload: bytes, *, customer_id: str, edge_id: str) -> Any:
    """Validate like ``decode_batch`` (same rules, same errors) and return a ``WireBatch``.

    Raises ``devices.errors.ValidationFailed`` with ``reason`` ``json``, ``schema`` or ``identity``.
    """
    batch = None
    if b"\\" not in payload and b"\x7f" not in payload:
        try:
            batch = _DECODER.decode(payload)
        except ValueError:  # msgspec's DecodeError/ValidationError, or invalid UTF-8
            batch = None
    if batch is None or batch.customer_id != customer_id or batch.edge_id != edge_id:
        # The contract's own decoder judges and words the error.
        return _from_model(decode_batch(payload, customer_id=customer_id, edge_id=edge_id))
    return batch


def _from_model(model: EventBatch) -> Any:
    return WireBatch(
        customer_id=model.customer_id, edge_id=model.edge_id, sent_at=model.sent_at,
        events=[wire_event(e.seq, e.ts, e.device, e.capability, e.value, e.room) for e in model.events],
        schema=model.schema_, signature=model.signature,
    )
