"""The Genius edge agent: local MQTT in, normalise, privacy, SQLite outbox, store-and-forward to the hub.

The public surface::

    settings = EdgeSettings.load("edge.toml", customer="alice", edge="alice-home")
    await EdgeAgent(settings, sessions=registry.sessions(settings.adapters)).run()
"""

from .acks import LocalAcks
from .agent import EdgeAgent, serve
from .backoff import Backoff
from .batch import encode_batch
from .deadletters import DeadLetter, DeadLetters
from .home import HomeBridge
from .inventory import Inventory
from .local import LocalSubscriber
from .outbox import Outbox, Row
from .pipeline import Pipeline, reading_problem
from .privacy import Coarsener, PolicyResolver, PrivacyFilter
from .settings import (
    BrokerSettings,
    DeviceSettings,
    EdgeSettings,
    HomeSettings,
    LocalSettings,
    OutboxSettings,
    PrivacySettings,
    UplinkSettings,
)
from .uplink import Uplink

__all__ = [
    "Backoff",
    "BrokerSettings",
    "Coarsener",
    "DeadLetter",
    "DeadLetters",
    "DeviceSettings",
    "EdgeAgent",
    "EdgeSettings",
    "HomeBridge",
    "HomeSettings",
    "Inventory",
    "LocalAcks",
    "LocalSettings",
    "LocalSubscriber",
    "Outbox",
    "OutboxSettings",
    "Pipeline",
    "PolicyResolver",
    "PrivacyFilter",
    "PrivacySettings",
    "Row",
    "Uplink",
    "UplinkSettings",
    "encode_batch",
    "reading_problem",
    "serve",
]
