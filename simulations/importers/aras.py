"""ARAS (Activity Recognition with Ambient Sensing) → dataset.

Each ``DAY_<n>.txt(.gz)`` has 86,400 lines (one per second, no timestamp) of 20 binary sensor
states and two activity ids (resident 1, resident 2). How it becomes the one format:

* **Dates**: ARAS gives none. Day ``n`` is ``2000-01-01 + (n - 1)`` days, UTC; the second of
  the day is the line number. The market (``home:weekday``/``home:weekend``) follows that
  made-up date, so it carries no real information.
* **Each day on its own**: House A's files do not join at midnight (README quirk 2), so
  events are state changes between consecutive seconds *within* a day, plus, at second 0 of
  every day, one event for each sensor that is on then (its state is otherwise unknown).
* **Residents**: each resident is a customer (``aras-a-r1``, ``aras-a-r2``) with the home's
  events (shared, one edge per house) and his or her own labels.
* **Labels**: maximal runs of one activity id within a day, named from the README table
  (``Going Out``, ``Sleeping`` …; "Other" is a real label). Every second is labelled.
* **Capabilities**: force, distance and sonar sensors → ``occupancy``; photocells (light
  seen when a wardrobe, fridge or drawer opens) and door contacts → ``contact`` (true =
  closed, so inverted); the IR receiver (TV remote) and the kitchen temperature switch →
  ``switch``.

No licence is stated for ARAS; treat it as research data that must be cited.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from devices.errors import ConfigError
from models.dataset import Dataset, DatasetBuilder

__all__ = ["ACTIVITIES", "SENSORS", "DayStates", "import_aras", "parse_day", "read_day"]

ACTIVITIES: tuple[str, ...] = (
    "Other", "Going Out", "Preparing Breakfast", "Having Breakfast", "Preparing Lunch", "Having Lunch",
    "Preparing Dinner", "Having Dinner", "Washing Dishes", "Having Snack", "Sleeping", "Watching TV", "Studying",
    "Having Shower", "Toileting", "Napping", "Using Internet", "Reading Book", "Laundry", "Shaving",
    "Brushing Teeth", "Talking on the Phone", "Listening to Music", "Cleaning", "Having Conversation",
    "Having Guest", "Changing Clothes",
)  # ids 1..27
# (sensor id, place, room or None when the README does not say)
SENSORS: dict[str, tuple[tuple[str, str, str | None], ...]] = {
    "A": (
        ("Ph1", "wardrobe", "bedroom"), ("Ph2", "convertible_couch", "living"), ("Ir1", "tv_receiver", "living"),
        ("Fo1", "couch", "living"), ("Fo2", "couch", "living"), ("Di3", "chair", None), ("Di4", "chair", None),
        ("Ph3", "fridge", "kitchen"), ("Ph4", "kitchen_drawer", "kitchen"), ("Ph5", "wardrobe", "bedroom"),
        ("Ph6", "bathroom_cabinet", "bathroom"), ("Co1", "house_door", "entrance"),
        ("Co2", "bathroom_door", "bathroom"), ("Co3", "shower_cabinet_door", "bathroom"), ("So1", "hall", "hall"),
        ("So2", "kitchen", "kitchen"), ("Di1", "tap", None), ("Di2", "water_closet", "bathroom"),
        ("Te1", "kitchen", "kitchen"), ("Fo3", "bed", "bedroom"),
    ),
    "B": (
        ("co1", "kitchen_cupboard", "kitchen"), ("co2", "kitchen_cupboard", "kitchen"),
        ("co3", "house_door", "entrance"), ("co4", "wardrobe_door", "bedroom"), ("co5", "wardrobe_door", "bedroom"),
        ("co6", "shower_cabinet_door", "bathroom"), ("di2", "tap", None), ("fo1", "chair", None),
        ("fo2", "chair", None), ("fo3", "chair", None), ("ph1", "fridge", "kitchen"),
        ("ph2", "kitchen_drawer", "kitchen"), ("pr1", "couch", "living"), ("pr2", "couch", "living"),
        ("pr3", "bed", "bedroom"), ("pr4", "bed", "bedroom"), ("pr5", "armchair", "living"),
        ("so1", "bathroom_door", "bathroom"), ("so2", "kitchen", "kitchen"), ("so3", "closet", None),
    ),
}
# sensor type (id prefix) -> (capability, inverted)
_TYPES = {"ph": ("contact", True), "co": ("contact", True), "ir": ("switch", False), "te": ("switch", False),
          "fo": ("occupancy", False), "di": ("occupancy", False), "so": ("occupancy", False),
          "pr": ("occupancy", False)}
EPOCH_DAY0 = datetime(2000, 1, 1, tzinfo=UTC).timestamp()
SECONDS = 86400
_DAY_FILE = re.compile(r"^DAY_(\d+)\.txt(\.gz)?$")


@dataclass(frozen=True, slots=True)
class DayStates:
    day: int  # 1-based, from the file name
    sensors: np.ndarray  # (86400, 20) int8
    labels: np.ndarray  # (86400, 2) int16, ids 1..27


def parse_day(raw: bytes, *, name: str = "day", lines: int = SECONDS) -> np.ndarray:
    """One day file's bytes → (``lines``, 22) int16. Whitespace-separated 1–2 digit integers only.

    Vectorised tokeniser (a ``loadtxt`` of 30 days takes seconds; this takes milliseconds).
    """
    buf = np.frombuffer(raw, dtype=np.uint8)
    digit = (buf >= 48) & (buf <= 57)
    space = (buf == 32) | (buf == 10) | (buf == 13) | (buf == 9)
    if not np.all(digit | space):
        raise ConfigError(f"{name}: unexpected characters (not an ARAS day file)")
    edge = np.diff(np.concatenate([[0], digit.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edge == 1), np.flatnonzero(edge == -1)
    length = ends - starts
    if length.size == 0 or length.max() > 2:
        raise ConfigError(f"{name}: numbers of more than two digits (not an ARAS day file)")
    d0 = buf[starts].astype(np.int16) - 48
    d1 = buf[np.minimum(starts + 1, buf.size - 1)].astype(np.int16) - 48
    values = np.where(length == 2, d0 * 10 + d1, d0)
    if values.size != lines * 22:
        raise ConfigError(f"{name}: {values.size} numbers, expected {lines} lines of 22")
    return values.reshape(lines, 22)


def read_day(path: Path) -> DayStates:
    m = _DAY_FILE.match(path.name)
    if m is None:
        raise ConfigError(f"not an ARAS day file name: {path.name}")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        table = parse_day(f.read(), name=path.name)
    sensors, labels = table[:, :20], table[:, 20:]
    if sensors.min() < 0 or sensors.max() > 1 or labels.min() < 1 or labels.max() > len(ACTIVITIES):
        raise ConfigError(f"{path.name}: sensor states must be 0/1 and activity ids 1..27")
    return DayStates(int(m.group(1)), sensors.astype(np.int8), labels.astype(np.int16))


def _day_files(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if _DAY_FILE.match(p.name)]
    return sorted(files, key=lambda p: int(_DAY_FILE.match(p.name).group(1)))  # type: ignore[union-attr]


def _runs(col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start indices and lengths of maximal runs of equal values."""
    change = np.flatnonzero(np.diff(col)) + 1
    starts = np.concatenate([[0], change])
    return starts, np.diff(np.concatenate([starts, [col.size]]))


def import_aras(source: str | Path, *, house: str) -> Dataset:
    """House ``"A"`` or ``"B"`` of the ARAS folder ``source`` (holding ``House<X>/DAY_n.txt[.gz]``)."""
    house = house.upper()
    if house not in SENSORS:
        raise ConfigError(f"ARAS house must be A or B, not {house!r}")
    folder = Path(source) / f"House{house}"
    if not folder.is_dir():
        raise ConfigError(f"ARAS folder missing: {folder}")
    files = _day_files(folder)
    if not files:
        raise ConfigError(f"no DAY_<n>.txt[.gz] files in {folder}")
    builder = DatasetBuilder(source=f"aras:{house}", jobs=ACTIVITIES, markets=("home:weekday", "home:weekend"))
    edge = builder.edges.index(f"aras-{house.lower()}-home")
    meta = SENSORS[house]
    devices = np.array([builder.devices.index(f"{sid.lower()}_{place}") for sid, place, _ in meta], dtype=np.int32)
    rooms = np.array([builder.rooms.index(room) if room else -1 for _, _, room in meta], dtype=np.int32)
    caps, inverted = zip(*(_TYPES[sid[:2].lower()] for sid, _, _ in meta))
    cap_idx = np.array([builder.capabilities.index(c) for c in caps], dtype=np.int16)
    invert = np.array(inverted, dtype=bool)
    customers = [f"aras-{house.lower()}-r1", f"aras-{house.lower()}-r2"]
    for c in customers:
        builder.residents.index(c)
    changes = initial = rising = changed_rows = 0
    ev_parts: list[tuple[np.ndarray, ...]] = []
    lb_parts: list[list[tuple[np.ndarray, ...]]] = [[], []]
    for path in files:
        day = read_day(path)
        t0 = EPOCH_DAY0 + (day.day - 1) * float(SECONDS)
        s = day.sensors
        # second 0: sensors already on; then every change within the day
        first = np.flatnonzero(s[0] == 1)
        rows, cols = np.nonzero(np.diff(s, axis=0))
        rows = rows + 1
        changes += rows.size
        initial += first.size
        rising += int(s[rows, cols].sum())
        changed_rows += int(np.unique(rows).size)
        ts = np.concatenate([np.full(first.size, t0), t0 + rows.astype(np.float64)])
        col = np.concatenate([first, cols])
        state = np.concatenate([np.ones(first.size, np.int8), s[rows, cols]]).astype(bool)
        value = np.where(invert[col], ~state, state).astype(np.float64)
        order = np.argsort(ts, kind="stable")
        ev_parts.append((ts[order], col[order], value[order]))
        day_market = "home:weekend" if datetime.fromtimestamp(t0, UTC).weekday() >= 5 else "home:weekday"
        for r in range(2):
            starts, lengths = _runs(day.labels[:, r])
            lb_parts[r].append((t0 + starts, t0 + starts + lengths, day.labels[starts, r] - 1,
                                np.full(starts.size, builder.markets.index(day_market))))
    ts = np.concatenate([p[0] for p in ev_parts])
    col = np.concatenate([p[1] for p in ev_parts])
    value = np.concatenate([p[2] for p in ev_parts])
    counts: dict[str, int] = {}
    for r, customer in enumerate(customers):
        builder.add_events(customer, edge=edge, ts=ts, device=devices[col], room=rooms[col], capability=cap_idx[col],
                           value=value)
        begin, end, job, market = (np.concatenate([p[k] for p in lb_parts[r]]) for k in range(4))
        builder.add_labels(customer, job=job, market=market, begin=begin, end=end, resident=r)
        counts[customer] = int(begin.size)
    return builder.build(
        licence="No licence stated; research data that must be cited (Alemdar et al., PervasiveHealth 2013).",
        citation="H. Alemdar, H. Ertan, O. D. Incel, C. Ersoy. ARAS Human Activity Datasets in Multiple Homes "
                 "with Multiple Residents. PervasiveHealth 2013, pp. 232-235.",
        time_note="ARAS has no dates: day n is 2000-01-01 + (n-1) days (UTC); markets follow that made-up date",
        days=len(files),
        derivation={
            "state_changes_within_days": changes,
            "rising_changes": rising,
            "seconds_with_a_change": changed_rows,
            "initial_on_states": initial,
            "events_per_customer": int(ts.size),
            "label_episodes": counts,
            "each_day_on_its_own": True,
        },
    )
