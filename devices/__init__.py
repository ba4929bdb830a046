"""The contract every smart product speaks: canonical readings, definitions, adapters.

Depends on nothing else in Genius; everything else depends on it.
"""

from .adapter import Adapter, AdapterSession, DefinitionsAdapter, decode_json, first_session, topic_matches
from .capabilities import KIND, UNITS, Capability, capability_kind
from .definitions import (
    DeviceDefinition,
    Expose,
    Topic,
    action,
    battery,
    checkin,
    contact,
    define,
    energy,
    humidity,
    illuminance,
    lock,
    media,
    occupancy,
    power,
    presence,
    switch,
    temperature,
    to_bool,
    to_number,
)
from .errors import (
    ConfigError,
    DefinitionError,
    GeniusError,
    ModelError,
    PayloadError,
    RegistryError,
    SchemaMismatch,
    StorageError,
    TransportError,
    ValidationFailed,
)
from .readings import AdapterResult, Availability, Reading
from .registry import ENTRY_POINT_GROUP, Registry, load_registry
from .wire import (
    Ack,
    Anticipation,
    DeviceProfile,
    EdgeStatus,
    Event,
    EventBatch,
    Feedback,
    JobForecast,
    decode,
    decode_batch,
    event_from_values,
)

__all__ = [
    "ENTRY_POINT_GROUP", "KIND", "UNITS", "Ack", "Adapter", "AdapterResult", "AdapterSession",
    "Anticipation", "Availability", "Capability", "ConfigError", "DefinitionError",
    "DefinitionsAdapter", "DeviceDefinition", "DeviceProfile", "EdgeStatus", "Event", "EventBatch",
    "Expose", "Feedback", "GeniusError", "JobForecast", "ModelError", "PayloadError", "Reading",
    "Registry", "RegistryError", "SchemaMismatch", "StorageError", "Topic", "TransportError",
    "ValidationFailed", "action", "battery", "capability_kind", "checkin", "contact", "decode",
    "decode_batch", "decode_json", "define", "energy", "event_from_values", "first_session",
    "humidity", "illuminance", "load_registry", "lock", "media", "occupancy", "power", "presence",
    "switch", "temperature", "to_bool", "to_number", "topic_matches",
]
