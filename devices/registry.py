"""Plugin registry: adapters and device definitions from the ``genius.devices`` entry points.

An entry point may name an ``Adapter``, a ``DeviceDefinition`` or a sequence of either.
A plugin that fails to import or has the wrong type is logged and skipped, or raises
``RegistryError`` under ``strict`` (CI runs strict). Two plugins with one name are always an
error: which one wins would otherwise depend on install order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from .adapter import Adapter, AdapterSession, DefinitionsAdapter
from .definitions import DeviceDefinition
from .errors import RegistryError

__all__ = ["ENTRY_POINT_GROUP", "Registry", "load_registry"]

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "genius.devices"


@dataclass
class Registry:
    adapters: dict[str, Adapter] = field(default_factory=dict)
    definitions: dict[str, DeviceDefinition] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # plugin -> why

    def add(self, obj: Any, *, plugin: str) -> None:
        items = obj if isinstance(obj, (list, tuple)) else [obj]
        for item in items:
            if isinstance(item, Adapter):
                if item.name in self.adapters or item.name == "definitions":
                    raise RegistryError(f"adapter {item.name!r} registered twice (plugin {plugin})", plugin=plugin)
                self.adapters[item.name] = item
            elif isinstance(item, DeviceDefinition):
                if item.name in self.definitions:
                    raise RegistryError(f"device {item.name!r} registered twice (plugin {plugin})", plugin=plugin)
                self.definitions[item.name] = item
            else:
                raise RegistryError(
                    f"plugin {plugin} gave {type(item).__name__}, not an Adapter or DeviceDefinition",
                    plugin=plugin,
                )

    def all_adapters(self) -> list[Adapter]:
        """Registered adapters, with one serving every plain device definition before ``homeassistant``."""
        out = list(self.adapters.values())
        if self.definitions:
            # Before Home Assistant discovery, like any plugin: a device that also announces
            # itself to HA is read by its own definition, once.
            at = next((i for i, a in enumerate(out) if a.name == "homeassistant"), len(out))
            out.insert(at, DefinitionsAdapter.of(self.definitions.values()))
        return out

    def sessions(self, enabled: Iterable[str] | None = None) -> list[AdapterSession]:
        """Fresh sessions for the enabled adapters (all when ``None``), in registry order."""
        wanted = None if enabled is None else set(enabled)
        adapters = self.all_adapters()
        if wanted is not None:
            unknown = wanted - {a.name for a in adapters}
            if unknown:
                raise RegistryError(f"unknown adapters enabled: {sorted(unknown)}")
        return [a.new_session() for a in adapters if wanted is None or a.name in wanted]


def load_registry(
    *, strict: bool = False, source: Callable[[], Iterable[EntryPoint]] | None = None
) -> Registry:
    """Load every plugin of the ``genius.devices`` group (``source`` is a seam for tests)."""
    eps = list(source() if source is not None else entry_points(group=ENTRY_POINT_GROUP))
    registry = Registry()
    for ep in sorted(eps, key=_order):
        try:
            obj = ep.load()
            registry.add(obj, plugin=ep.name)
        except RegistryError as exc:
            if strict or "registered twice" in str(exc):
                raise
            log.warning("skipping device plugin %s: %s", ep.name, exc)
            registry.skipped[ep.name] = str(exc)
        except Exception as exc:  # a third-party import can raise anything
            if strict:
                raise RegistryError(f"plugin {ep.name} failed to load: {exc}", plugin=ep.name) from exc
            log.warning("skipping device plugin %s: %s", ep.name, exc)
            registry.skipped[ep.name] = f"{type(exc).__name__}: {exc}"
    return registry


_BUILTIN_ORDER = ("zigbee2mqtt", "tasmota", "shelly", "ordonez", "homeassistant")


def _order(ep: EntryPoint) -> tuple[float, str]:
    # Home Assistant discovery comes last: when zigbee2mqtt also announces its devices to HA,
    # the zigbee2mqtt adapter owns those state topics and nothing is read twice.
    try:
        return (_BUILTIN_ORDER.index(ep.name), ep.name)
    except ValueError:
        return (len(_BUILTIN_ORDER) - 1.5, ep.name)  # plugins before homeassistant
