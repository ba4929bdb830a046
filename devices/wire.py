"""The wire contract between edges and the hub (DESIGN.md), as strict pydantic v2 models.

Validation runs in pydantic-core: an ``Event`` is a union discriminated by ``capability``,
so the value kind that belongs to each capability (bool, number, text) is checked without
a Python validator per event. ``decode_batch`` is the one way the hub reads a batch.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
)

from .errors import ValidationFailed

__all__ = [
    "ID_PATTERN",
    "Ack",
    "Anticipation",
    "BoolEvent",
    "DeviceProfile",
    "EdgeStatus",
    "Event",
    "EventBatch",
    "Feedback",
    "JobForecast",
    "NumberEvent",
    "TextEvent",
    "decode",
    "decode_batch",
    "event_from_values",
]

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
Identifier = Annotated[str, Field(pattern=ID_PATTERN)]
# Device and room names come from third-party firmware: bounded, printable, no control chars.
Name = Annotated[StrictStr, Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
Timestamp = Annotated[StrictFloat, Field(ge=0.0, lt=32503680000.0)]  # before year 3000
Seq = Annotated[StrictInt, Field(ge=1, lt=2**63)]

_FROZEN = ConfigDict(extra="forbid", frozen=True, strict=True)


class _EventBase(BaseModel):
    model_config = _FROZEN
    seq: Seq
    ts: Timestamp
    device: Name
    room: Name | None = None


class BoolEvent(_EventBase):
    capability: Literal["occupancy", "contact", "switch", "lock", "presence"]
    value: StrictBool


class NumberEvent(_EventBase):
    capability: Literal["temperature", "humidity", "illuminance", "power", "energy", "battery"]
    value: Annotated[StrictFloat, Field(allow_inf_nan=False, ge=-1e12, le=1e12)]


class TextEvent(_EventBase):
    capability: Literal["action", "media", "checkin"]
    value: Annotated[StrictStr, Field(max_length=256)]


Event = Annotated[Union[BoolEvent, NumberEvent, TextEvent], Field(discriminator="capability")]


class EventBatch(BaseModel):
    model_config = _FROZEN
    schema_: Literal["genius.events/1"] = Field("genius.events/1", alias="schema")
    customer_id: Identifier
    edge_id: Identifier
    sent_at: Timestamp
    events: list[Event] = Field(max_length=10_000)
    signature: StrictStr | None = None

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()


class DeviceProfile(BaseModel):
    """What an edge knows about one device (published retained on ``…/devices``)."""

    model_config = _FROZEN
    device: Name
    adapter: StrictStr
    vendor: StrictStr | None = None
    model: StrictStr | None = None
    description: StrictStr | None = None
    room: Name | None = None
    capabilities: tuple[StrictStr, ...] = ()
    available: StrictBool | None = None
    privacy: dict[str, Literal["share", "coarse", "local"]] = Field(default_factory=dict)


class EdgeStatus(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    state: Literal["online", "offline"]
    version: StrictStr | None = None
    backlog: StrictInt = 0
    ts: float
    overflow_policy: StrictStr | None = None
    overflow_dropped: StrictInt = 0
    dead_letters: StrictInt = 0
    # The edge's declared role (home, venue, holiday_home, office, car): markets derive from it.
    role: StrictStr | None = None
    # The lowest seq the edge can still send (its next seq when its outbox is empty). Any seq
    # below it that the hub lacks is lost for good (outbox overflow, purge): the hub may stop
    # waiting for it, or its ack's stored_through can never pass the hole.
    oldest_seq: StrictInt | None = None


class Ack(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    stored_through: StrictInt = Field(ge=0)
    ts: float
    gaps: list[tuple[int, int]] = Field(default_factory=list)


class JobForecast(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    job: StrictStr
    probability: Annotated[float, Field(ge=0.0, le=1.0)]
    expected_in_s: Annotated[float, Field(ge=0.0)]
    because: list[StrictStr] = Field(default_factory=list)


class Anticipation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: StrictStr
    customer_id: Identifier
    market: StrictStr
    ts: float
    model: StrictStr
    jobs: list[JobForecast]


class Feedback(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    anticipation_id: StrictStr
    verdict: Literal["accepted", "dismissed", "done"]
    ts: float
    job: StrictStr | None = None


_EVENT: TypeAdapter[BoolEvent | NumberEvent | TextEvent] = TypeAdapter(Event)
M = TypeVar("M", bound=BaseModel)


def decode_batch(payload: bytes, *, customer_id: str | None = None, edge_id: str | None = None) -> EventBatch:
    """Parse and validate an ``EventBatch``; the topic's identities must match the payload's.

    Raises ``ValidationFailed`` with ``reason`` one of ``json``, ``schema``, ``identity``.
    """
    try:
        batch = EventBatch.model_validate_json(payload)
    except ValidationError as exc:
        reason = "json" if any(e["type"] == "json_invalid" for e in exc.errors()) else "schema"
        raise ValidationFailed(_summarise(exc), reason=reason) from exc
    if customer_id is not None and batch.customer_id != customer_id:
        raise ValidationFailed(
            f"topic customer {customer_id!r} != payload customer {batch.customer_id!r}", reason="identity"
        )
    if edge_id is not None and batch.edge_id != edge_id:
        raise ValidationFailed(f"topic edge {edge_id!r} != payload edge {batch.edge_id!r}", reason="identity")
    return batch


def decode(model: type[M], payload: bytes) -> M:
    """Validate any wire document; ``ValidationFailed`` (reason ``json``/``schema``) if it breaks the contract."""
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        reason = "json" if any(e["type"] == "json_invalid" for e in exc.errors()) else "schema"
        raise ValidationFailed(_summarise(exc), reason=reason) from exc


def event_from_values(
    *, seq: int, ts: float, device: str, capability: str, value: bool | float | str, room: str | None
) -> BoolEvent | NumberEvent | TextEvent:
    """Build a validated event from plain values (edge side, and tests)."""
    return _EVENT.validate_python(
        {"seq": seq, "ts": float(ts), "device": device, "capability": capability, "value": value, "room": room}
    )


def _summarise(exc: ValidationError, limit: int = 3) -> str:
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(x) for x in err["loc"])
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - limit
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")
