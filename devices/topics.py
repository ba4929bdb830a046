"""Hub topic names (DESIGN.md, "Hub topics") built and parsed in one place."""

from __future__ import annotations

import re
from typing import Literal, NamedTuple

from .errors import PayloadError

__all__ = [
    "EDGE_KINDS",
    "HubTopic",
    "ID_RE",
    "PREFIX",
    "ack_topic",
    "control_topic",
    "anticipations_topic",
    "devices_topic",
    "events_topic",
    "feedback_topic",
    "parse_hub_topic",
    "status_topic",
    "validate_id",
]

PREFIX = "genius/v1"
ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
EdgeKind = Literal["events", "status", "devices", "ack", "control"]
EDGE_KINDS: tuple[str, ...] = ("events", "status", "devices", "ack", "control")


class HubTopic(NamedTuple):
    customer_id: str
    edge_id: str | None  # None for customer-wide topics
    kind: str  # events/status/devices/ack/control, or anticipations/feedback


def validate_id(value: str, *, what: str = "identifier") -> str:
    if not isinstance(value, str) or not ID_RE.fullmatch(value):
        raise ValueError(f"{what} {value!r} must match [a-z0-9][a-z0-9_-]{{0,62}}")
    return value


def events_topic(customer: str, edge: str) -> str:
    return f"{PREFIX}/{customer}/{edge}/events"


def status_topic(customer: str, edge: str) -> str:
    return f"{PREFIX}/{customer}/{edge}/status"


def devices_topic(customer: str, edge: str) -> str:
    return f"{PREFIX}/{customer}/{edge}/devices"


def ack_topic(customer: str, edge: str) -> str:
    return f"{PREFIX}/{customer}/{edge}/ack"


def control_topic(customer: str, edge: str) -> str:
    """Hub → edge commands (e.g. purge after a customer asked to be forgotten)."""
    return f"{PREFIX}/{customer}/{edge}/control"


def anticipations_topic(customer: str) -> str:
    return f"{PREFIX}/{customer}/anticipations"


def feedback_topic(customer: str) -> str:
    return f"{PREFIX}/{customer}/feedback"


def parse_hub_topic(topic: str) -> HubTopic:
    """Split a hub topic into its identities; ``PayloadError(reason="topic")`` if it is not one."""
    parts = topic.split("/")
    if len(parts) < 4 or f"{parts[0]}/{parts[1]}" != PREFIX or not ID_RE.fullmatch(parts[2]):
        raise PayloadError(f"not a genius hub topic: {topic!r}", reason="topic", topic=topic)
    if len(parts) == 4 and parts[3] in ("anticipations", "feedback"):
        return HubTopic(parts[2], None, parts[3])
    if len(parts) == 5 and ID_RE.fullmatch(parts[3]) and parts[4] in EDGE_KINDS:
        return HubTopic(parts[2], parts[3], parts[4])
    raise PayloadError(f"not a genius hub topic: {topic!r}", reason="topic", topic=topic)
