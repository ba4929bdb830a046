"""Exceptions for the whole of Genius.

Every package raises subclasses of one root, so a caller can catch ``GeniusError`` at a
process boundary and know it has seen everything Genius means to raise::

    GeniusError
    ├── ConfigError          bad settings, bad TOML, bad CLI arguments
    ├── DefinitionError      a device definition or adapter is wrong (fails at import)
    │   └── RegistryError    duplicate or broken plugin under --strict
    ├── PayloadError         a message could not be turned into canonical readings
    │   └── ValidationFailed a wire document failed the contract (batch, status, feedback)
    ├── StorageError         a store could not do what was asked (disk full, corrupt file)
    ├── ModelError           a model artifact is missing, mismatched or unusable
    │   └── SchemaMismatch   the artifact's feature schema differs from the running code
    └── TransportError       a broker could not be reached or refused us

Each carries its context as attributes (``topic``, ``reason``, ``path`` …) rather than only
in its message, so callers can count and route failures without parsing strings.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DefinitionError",
    "GeniusError",
    "ModelError",
    "PayloadError",
    "RegistryError",
    "SchemaMismatch",
    "StorageError",
    "TransportError",
    "ValidationFailed",
]


class GeniusError(Exception):
    """Root of every exception Genius raises on purpose."""


class ConfigError(GeniusError):
    """Settings, TOML files or CLI arguments that cannot be used."""


class DefinitionError(GeniusError):
    """A device definition or adapter that is wrong; raised when it is declared."""


class RegistryError(DefinitionError):
    """A plugin that cannot be registered: duplicate name, import failure, wrong type."""

    def __init__(self, message: str, *, plugin: str | None = None) -> None:
        super().__init__(message)
        self.plugin = plugin


class PayloadError(GeniusError):
    """A message that cannot become canonical readings.

    ``reason`` is a short, stable, low-cardinality label (``"json"``, ``"schema"``,
    ``"unknown_device"`` …) used for dead-letter counters; the message says the details.
    """

    def __init__(self, message: str, *, reason: str, topic: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.topic = topic


class ValidationFailed(PayloadError):
    """A wire document (EventBatch, status, feedback …) that breaks the contract."""


class StorageError(GeniusError):
    """A store that cannot do what was asked."""


class ModelError(GeniusError):
    """A model artifact that is missing, mismatched or unusable."""


class SchemaMismatch(ModelError):
    """The artifact's feature schema does not match the running feature code."""

    def __init__(self, message: str, *, expected: str, found: str) -> None:
        super().__init__(message)
        self.expected = expected
        self.found = found


class TransportError(GeniusError):
    """A broker that cannot be reached, or that refused a connection or a publish."""
