"""Ordóñez ADL dataset replay: real binary-sensor intervals from two homes, as readings.

The dataset (``OrdonezA_Sensors.txt``, ``OrdonezB_Sensors.txt``; see its README) has one ON
interval per line: ``<start> <end> <Location> <Type> <Place>``, separated by tabs and, in a
few rows, a space and a tab. This module turns each interval into an ON reading at its start
and an OFF reading at its end:

==========  ==============  ====================================================
Type        capability      start / end
==========  ==============  ====================================================
PIR         occupancy       True / False
Pressure    occupancy       True / False (someone on the seat or bed)
Magnetic    contact         False / True (reed active = door or fridge opened)
Electric    switch          True / False (appliance on)
Flush       action          "flush" at start only
==========  ==============  ====================================================

The device is ``<place>_<location>`` (``kitchen_fridge``), the room is the place slug.
Timestamps are the dataset's local wall-clock with no timezone; they are read as **UTC**, so
the hour of day stays what the residents lived. Rows are sorted by start (home B has 4 out
of order); header lines are skipped; a row whose end is before its start is dropped with a
warning (none in the sensor files today).

``OrdonezAdapter`` reads the same rows from MQTT (``ordonez/<home>/sensor``, payload one raw
dataset line) so a replayer can drive the edge through a real broker. The dataset licence
forbids commercial use: it is for research and benchmarks only and never ships in the repo.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from ..adapter import Adapter, AdapterSession
from ..errors import PayloadError
from ..readings import AdapterResult, Reading
from ..wire import DeviceProfile
from ._common import ProfileBook, slug, text_payload

__all__ = ["ADAPTER", "SENSOR_TYPES", "OrdonezAdapter", "SensorRow", "parse_sensor_row", "read_sensor_rows",
           "replay_readings", "row_readings", "sensors_file"]

log = logging.getLogger(__name__)

# Type → (capability, value at start, value at end or None for none).
SENSOR_TYPES: dict[str, tuple[str, bool | str, bool | None]] = {
    "PIR": ("occupancy", True, False),
    "Pressure": ("occupancy", True, False),
    "Magnetic": ("contact", False, True),
    "Electric": ("switch", True, False),
    "Flush": ("action", "flush", None),
}
_STAMP = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)"
_YEAR_3000 = 32503680000.0  # the wire contract's upper bound on timestamps
_ROW = re.compile(rf"^{_STAMP}\s+{_STAMP}\s+(\S+)\s+(\S+)\s+(\S+)\s*$")


class SensorRow(NamedTuple):
    """One dataset interval; ``start``/``end`` are epoch seconds (wall-clock read as UTC)."""

    start: float
    end: float
    location: str
    type: str
    place: str
    raw: str  # the line as in the file, for replayers that publish it

    @property
    def device(self) -> str:
        return f"{slug(self.place)}_{slug(self.location)}"

    @property
    def room(self) -> str:
        return slug(self.place)


def parse_sensor_row(line: str) -> SensorRow:
    """One data line; ``PayloadError`` (``schema`` for the wrong shape, ``value`` for bad content)."""
    m = _ROW.match(line)
    if m is None:
        raise PayloadError(f"not an Ordonez sensor row: {line[:80]!r}", reason="schema")
    start_s, end_s, location, kind, place = m.groups()
    if kind not in SENSOR_TYPES:
        raise PayloadError(f"unknown sensor type {kind!r}", reason="value")
    if not slug(location) or not slug(place) or len(location) + len(place) > 120:
        raise PayloadError(f"bad location/place {location!r}/{place!r}", reason="value")
    try:
        start, end = _epoch(start_s), _epoch(end_s)
    except ValueError as exc:
        raise PayloadError(f"bad timestamp: {exc}", reason="value") from exc
    if not (0.0 <= start < _YEAR_3000 and 0.0 <= end < _YEAR_3000):
        raise PayloadError("timestamp outside 1970..2999", reason="value")
    return SensorRow(start, end, location, kind, place, line.rstrip("\r\n"))


def read_sensor_rows(path: str | Path) -> list[SensorRow]:
    """Every interval of one ``Ordonez?_Sensors.txt``, sorted by start; header lines skipped."""
    rows: list[SensorRow] = []
    with open(path, encoding="ascii") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip() or not line[:1].isdigit():
                continue  # the column-name line and the "----" rule
            try:
                row = parse_sensor_row(line)
            except PayloadError as exc:
                raise PayloadError(f"{path}:{number}: {exc}", reason=exc.reason) from exc
            if row.end < row.start:
                log.warning("dropping %s:%d: interval ends before it starts", path, number)
                continue
            rows.append(row)
    rows.sort(key=lambda r: r.start)  # stable: equal starts keep file order
    return rows


def row_readings(row: SensorRow) -> list[Reading]:
    """The ON reading at ``row.start`` and (except for flushes) the OFF reading at ``row.end``."""
    capability, on, off = SENSOR_TYPES[row.type]
    device, room = row.device, row.room
    out = [Reading(row.start, device, capability, on, room)]
    if off is not None:
        out.append(Reading(row.end, device, capability, off, room))
    return out


def sensors_file(root: str | Path, home: str) -> Path:
    """``<root>/Ordonez<home>_Sensors.txt`` for home ``"A"`` or ``"B"``."""
    return Path(root) / f"Ordonez{home.upper()}_Sensors.txt"


def replay_readings(path: str | Path, *, home: str) -> Iterator[Reading]:
    """Readings of one home in time order. ``path`` is the dataset folder (or the sensors file).

    Ties keep causality: at one instant an interval's OFF comes before a later row's ON, and a
    zero-length interval's ON before its own OFF.
    """
    file = Path(path)
    if file.is_dir():
        file = sensors_file(file, home)
    keyed = []
    for index, row in enumerate(read_sensor_rows(file)):
        for phase, reading in enumerate(row_readings(row)):
            keyed.append((reading.ts, index, phase, reading))
    keyed.sort(key=lambda k: (k[0], k[1], k[2]))
    for *_, reading in keyed:
        yield reading


def _epoch(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()


@dataclass(frozen=True, slots=True)
class OrdonezAdapter(Adapter):
    """Raw dataset rows published on ``<prefix>/<home>/sensor``."""

    name: str = "ordonez"
    topics: tuple[str, ...] = ()
    description: str = "Ordonez ADL dataset rows replayed over MQTT (research use only)"
    prefix: str = "ordonez"

    def __post_init__(self) -> None:
        if not self.topics:
            object.__setattr__(self, "topics", (f"{self.prefix}/+/sensor",))

    def new_session(self) -> OrdonezSession:
        return OrdonezSession(self)


class OrdonezSession(AdapterSession):
    adapter: OrdonezAdapter

    def __init__(self, adapter: OrdonezAdapter) -> None:
        self.adapter = adapter
        self._parts = adapter.prefix.split("/")
        self._book = ProfileBook(adapter.name)

    def profiles(self) -> list[DeviceProfile]:
        return self._book.profiles()

    def handle(self, topic: str, payload: bytes, *, ts: float) -> AdapterResult:
        """Readings of one raw row, stamped with the dataset's times (not ``ts``, the arrival)."""
        parts = topic.split("/")
        n = len(self._parts)
        if parts[:n] != self._parts or len(parts) != n + 2 or parts[-1] != "sensor":
            raise PayloadError("not an Ordonez replay topic", reason="unknown_device", topic=topic)
        line = text_payload(payload, topic=topic, limit=512)
        try:
            row = parse_sensor_row(line)
        except PayloadError as exc:
            raise PayloadError(str(exc), reason=exc.reason, topic=topic) from exc
        if row.end < row.start:
            raise PayloadError("interval ends before it starts", reason="value", topic=topic)
        meta = {"vendor": "Ordonez ADL dataset", "model": row.type, "description": f"{row.location} ({row.type})"}
        return self._book.observe_all(AdapterResult(readings=row_readings(row)), topic=topic, first_seen=meta)


ADAPTER = OrdonezAdapter()
