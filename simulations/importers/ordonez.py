"""Ordóñez ADL (UCI "Activities of Daily Living Recognition Using Binary Sensors") → dataset.

One home is one customer (``ordonez-a`` / ``ordonez-b``) with one edge. Events come from
``devices.adapters.ordonez.replay_readings`` (ON at an interval's start, OFF at its end; the
flush only at its start). Labels come from ``Ordonez<home>_ADLs.txt`` with the README's quirks:

* rows whose end is before their start (3 in home A, typos in the date) are **dropped**: their
  true end cannot be recovered, and guessing would invent data;
* a label that starts before the previous one ends wins: the previous label is cut at the
  later one's start (and dropped if nothing is left);
* times are local wall-clock without a timezone, read as UTC (as the adapter reads them);
* the market is ``home:weekday`` or ``home:weekend`` by the label's start date.

The licence forbids commercial use: research and benchmarks only.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from devices.adapters.ordonez import read_sensor_rows, replay_readings, sensors_file
from devices.capabilities import KIND
from devices.errors import ConfigError
from models.dataset import Dataset, DatasetBuilder

__all__ = ["LabelRow", "OrdonezLabels", "import_ordonez", "read_labels"]

log = logging.getLogger(__name__)

_STAMP = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)"
_ROW = re.compile(rf"^{_STAMP}\s+{_STAMP}\s+(\S+)\s*$")
LICENCE = ("Ordóñez, de Toledo, Sanchis, Sensors 2013, 13, 5460-5477. Distributed AS-IS; "
           "any commercial use is prohibited (README_original.txt). Research and benchmarks only.")


@dataclass(frozen=True, slots=True)
class LabelRow:
    begin: float
    end: float
    activity: str


@dataclass(frozen=True, slots=True)
class OrdonezLabels:
    """Labels after the quirks were handled, and how many rows each rule touched."""

    rows: tuple[LabelRow, ...]
    read: int  # data rows in the file
    dropped_reversed: int  # end before start
    cut_overlaps: int  # previous label cut at the next one's start
    dropped_overlapped: int  # previous label left with nothing


def _epoch(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()


def read_labels(path: Path) -> OrdonezLabels:
    raw: list[LabelRow] = []
    reversed_ = 0
    with open(path, encoding="ascii") as f:
        for number, line in enumerate(f, start=1):
            if not line[:1].isdigit():
                continue  # header and rule
            m = _ROW.match(line.strip())
            if m is None:
                raise ConfigError(f"{path}:{number}: not an Ordonez label row: {line[:80]!r}")
            begin, end = _epoch(m.group(1)), _epoch(m.group(2))
            if end < begin:
                log.warning("%s:%d: label %s ends before it starts; dropped", path, number, m.group(3))
                reversed_ += 1
                continue
            raw.append(LabelRow(begin, end, m.group(3)))
    read = len(raw) + reversed_
    raw.sort(key=lambda r: r.begin)
    out: list[LabelRow] = []
    cut = gone = 0
    for row in raw:
        if out and row.begin < out[-1].end:
            prev = out.pop()
            cut += 1
            if row.begin > prev.begin:
                out.append(LabelRow(prev.begin, row.begin, prev.activity))
            else:
                gone += 1
        out.append(row)
    return OrdonezLabels(tuple(out), read, reversed_, cut, gone)


def import_ordonez(source: str | Path, *, home: str) -> Dataset:
    """Home ``"A"`` or ``"B"`` of the dataset folder ``source`` as a one-customer ``Dataset``."""
    home = home.upper()
    if home not in ("A", "B"):
        raise ConfigError(f"Ordonez home must be A or B, not {home!r}")
    root = Path(source)
    sensors = sensors_file(root, home)
    adls = root / f"Ordonez{home}_ADLs.txt"
    for needed in (sensors, adls):
        if not needed.is_file():
            raise ConfigError(f"Ordonez dataset file missing: {needed}")
    customer = f"ordonez-{home.lower()}"
    labels = read_labels(adls)
    jobs = sorted({r.activity for r in labels.rows})
    builder = DatasetBuilder(source=f"ordonez:{home}", jobs=jobs, markets=("home:weekday", "home:weekend"))
    edge = builder.edges.index(f"{customer}-home")
    readings = list(replay_readings(sensors, home=home))
    cap = np.array([builder.capabilities.index(r.capability) for r in readings], dtype=np.int16)
    value = np.array([
        builder.text_values.index(r.value) if KIND[r.capability] == "text" else float(r.value)  # type: ignore[arg-type]
        for r in readings
    ], dtype=np.float64)
    builder.add_events(
        customer, edge=edge, ts=np.array([r.ts for r in readings]),
        device=np.array([builder.devices.index(r.device) for r in readings], dtype=np.int32),
        room=np.array([builder.rooms.index(r.room) if r.room else -1 for r in readings], dtype=np.int32),
        capability=cap, value=value,
    )
    builder.residents.index(f"{customer}-resident")
    builder.add_labels(
        customer,
        job=np.array([builder.jobs.index(r.activity) for r in labels.rows], dtype=np.int32),
        market=np.array([builder.markets.index(_market(r.begin)) for r in labels.rows], dtype=np.int32),
        begin=np.array([r.begin for r in labels.rows]),
        end=np.array([r.end for r in labels.rows]),
    )
    sensor_rows = len(read_sensor_rows(sensors))
    return builder.build(
        licence=LICENCE,
        citation="Ordóñez, F.J.; de Toledo, P.; Sanchis, A. Sensors 2013, 13, 5460-5477",
        time_note="dataset wall-clock (no timezone) read as UTC",
        quirks={
            "label_rows": labels.read,
            "labels_dropped_end_before_start": labels.dropped_reversed,
            "labels_cut_by_later_overlap": labels.cut_overlaps,
            "labels_dropped_by_overlap": labels.dropped_overlapped,
            "sensor_intervals": sensor_rows,
        },
        unlabelled_note="time not covered by a label has no class (no 'Other' in this dataset)",
    )


def _market(ts: float) -> str:
    return "home:weekend" if datetime.fromtimestamp(ts, UTC).weekday() >= 5 else "home:weekday"
