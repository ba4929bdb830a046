"""Simulated customers, homes and venues; dataset import; fleet load and fault injection.

    specs = Population.generate(100, seed=1)
    sim = CustomerSimulation(specs[0])
    sim.run(start, end)      # WireMessage(ts, edge_id, topic, payload, retain): real device formats
    sim.events(start, end)   # SimEvent: the canonical events an edge reads from those messages
    sim.labels(start, end)   # Label: ground truth (job, market, begin, end), never on the wire

Nothing outside tests, benchmarks, the CLI and the demo imports this package.
"""

from .catalogue import EDGE_ROLES, JOBS, MARKETS
from .customer import CustomerSimulation, EventBlock, Label, SimEvent, to_epoch
from .export import DEFAULT_START, simulate_dataset
from .payloads import ACCESS_READER, WireMessage, device_name
from .people import ResidentSpec
from .places import DeviceSpec, PlaceSpec
from .population import CustomerSpec, Population

__all__ = [
    "ACCESS_READER",
    "DEFAULT_START",
    "EDGE_ROLES",
    "JOBS",
    "MARKETS",
    "CustomerSimulation",
    "CustomerSpec",
    "DeviceSpec",
    "EventBlock",
    "Label",
    "PlaceSpec",
    "Population",
    "ResidentSpec",
    "SimEvent",
    "WireMessage",
    "device_name",
    "simulate_dataset",
    "to_epoch",
]
