"""The one labelled-dataset format of Genius, and its one loader (``docs/datasets.md``).

A dataset is a directory of three files::

    meta.json    format, source, seed, licence note and every vocabulary (customers, edges,
                 devices, rooms, capabilities, text values, jobs, markets, residents)
    events.npz   columns customer, edge, ts, device, room, capability, value
    labels.npz   columns customer, resident, job, market, begin, end

Strings are dictionary-encoded: each column holds integer indices into a vocabulary in
``meta.json``. ``value`` is float64: booleans are 0/1, numbers are themselves, and text
(``action``, ``media``, ``checkin``) is an index into ``text_values``. ``room`` is -1 when
unknown. Events are sorted by (customer, ts), labels by (customer, begin), so one
customer's rows are one contiguous slice and loading millions of events is one
decompression, not a parse.

Simulated and real datasets (Ordóñez, ARAS) use this format; ``models`` reads it without
importing ``simulations``. Pure data I/O: numpy and ``devices`` only.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from devices.capabilities import KIND
from devices.errors import StorageError

__all__ = [
    "CAPABILITIES",
    "FORMAT",
    "CustomerData",
    "Dataset",
    "DatasetBuilder",
    "EventColumns",
    "LabelColumns",
    "Vocabulary",
    "load",
    "save",
]

FORMAT = "genius.dataset/1"
# Capability codes are the same in every dataset, so models trained on one can read another.
CAPABILITIES: tuple[str, ...] = tuple(KIND)

_EVENT_DTYPES: dict[str, Any] = {
    "customer": np.int32,
    "edge": np.int32,
    "ts": np.float64,
    "device": np.int32,
    "room": np.int32,
    "capability": np.int16,
    "value": np.float64,
}
_LABEL_DTYPES: dict[str, Any] = {
    "customer": np.int32,
    "resident": np.int32,
    "job": np.int32,
    "market": np.int32,
    "begin": np.float64,
    "end": np.float64,
}
_VOCABS = ("customers", "edges", "devices", "rooms", "capabilities", "text_values", "jobs", "markets", "residents")


class EventColumns(NamedTuple):
    """Events as parallel arrays (one row per canonical event)."""

    customer: np.ndarray
    edge: np.ndarray
    ts: np.ndarray
    device: np.ndarray
    room: np.ndarray
    capability: np.ndarray
    value: np.ndarray

    def take(self, index: slice | np.ndarray) -> EventColumns:
        return EventColumns(*(col[index] for col in self))

    @property
    def size(self) -> int:
        """Number of events (``len()`` is the tuple's, the number of columns)."""
        return int(self.ts.shape[0])


class LabelColumns(NamedTuple):
    """Ground-truth job intervals as parallel arrays; ``resident`` indexes ``Dataset.residents``."""

    customer: np.ndarray
    resident: np.ndarray
    job: np.ndarray
    market: np.ndarray
    begin: np.ndarray
    end: np.ndarray

    def take(self, index: slice | np.ndarray) -> LabelColumns:
        return LabelColumns(*(col[index] for col in self))

    @property
    def size(self) -> int:
        """Number of labels (``len()`` is the tuple's, the number of columns)."""
        return int(self.begin.shape[0])


class Vocabulary:
    """A growing string → index dictionary (first come, first numbered)."""

    __slots__ = ("_index", "_names")

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._names: list[str] = []
        self._index: dict[str, int] = {}
        for name in names:
            self.index(name)

    def index(self, name: str) -> int:
        found = self._index.get(name)
        if found is None:
            found = self._index[name] = len(self._names)
            self._names.append(name)
        return found

    def get(self, name: str) -> int | None:
        return self._index.get(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._index


@dataclass(frozen=True, slots=True)
class CustomerData:
    """One customer's slice of a dataset (views, not copies)."""

    customer_id: str
    index: int
    events: EventColumns
    labels: LabelColumns


@dataclass(frozen=True)
class Dataset:
    """A loaded dataset: vocabularies, all events, all labels. See the module docstring."""

    meta: dict[str, Any]
    events: EventColumns
    labels: LabelColumns
    _event_bounds: np.ndarray = field(repr=False)
    _label_bounds: np.ndarray = field(repr=False)

    @classmethod
    def from_columns(cls, meta: dict[str, Any], events: EventColumns, labels: LabelColumns) -> Dataset:
        """Check types and order, compute per-customer slices. ``StorageError`` if inconsistent."""
        events = EventColumns(**{k: np.ascontiguousarray(getattr(events, k), dtype=t) for k, t in _EVENT_DTYPES.items()})
        labels = LabelColumns(**{k: np.ascontiguousarray(getattr(labels, k), dtype=t) for k, t in _LABEL_DTYPES.items()})
        if len({c.shape for c in events}) != 1 or len({c.shape for c in labels}) != 1:
            raise StorageError("dataset columns have different lengths")
        for name in _VOCABS:
            if name not in meta:
                raise StorageError(f"dataset meta has no {name!r} vocabulary")
        n_customers = len(meta["customers"])
        _check_sorted(events.customer, events.ts, "events")
        _check_sorted(labels.customer, labels.begin, "labels")
        _check_range(events.customer, n_customers, "events.customer")
        _check_range(labels.customer, n_customers, "labels.customer")
        _check_range(events.edge, len(meta["edges"]), "events.edge")
        _check_range(events.device, len(meta["devices"]), "events.device")
        _check_range(events.room, len(meta["rooms"]), "events.room", allow_missing=True)
        _check_range(events.capability, len(meta["capabilities"]), "events.capability")
        _check_range(labels.job, len(meta["jobs"]), "labels.job")
        _check_range(labels.market, len(meta["markets"]), "labels.market")
        _check_range(labels.resident, len(meta["residents"]), "labels.resident")
        wanted = np.arange(n_customers + 1)
        event_bounds = np.searchsorted(events.customer, wanted, side="left")
        label_bounds = np.searchsorted(labels.customer, wanted, side="left")
        return cls(meta, events, labels, event_bounds, label_bounds)

    # vocabularies -------------------------------------------------------------------------
    @property
    def customers(self) -> tuple[str, ...]:
        return tuple(self.meta["customers"])

    @property
    def edges(self) -> tuple[str, ...]:
        return tuple(self.meta["edges"])

    @property
    def devices(self) -> tuple[str, ...]:
        return tuple(self.meta["devices"])

    @property
    def rooms(self) -> tuple[str, ...]:
        return tuple(self.meta["rooms"])

    @property
    def capabilities(self) -> tuple[str, ...]:
        return tuple(self.meta["capabilities"])

    @property
    def text_values(self) -> tuple[str, ...]:
        return tuple(self.meta["text_values"])

    @property
    def jobs(self) -> tuple[str, ...]:
        return tuple(self.meta["jobs"])

    @property
    def markets(self) -> tuple[str, ...]:
        return tuple(self.meta["markets"])

    @property
    def residents(self) -> tuple[str, ...]:
        return tuple(self.meta["residents"])

    @property
    def source(self) -> str:
        return str(self.meta.get("source", ""))

    # access ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.meta["customers"])

    def __iter__(self) -> Iterator[CustomerData]:
        for i in range(len(self)):
            yield self.customer(i)

    def customer(self, key: str | int) -> CustomerData:
        """One customer's events and labels, by id or index; ``KeyError`` if unknown."""
        if isinstance(key, str):
            try:
                index = self.meta["customers"].index(key)
            except ValueError:
                raise KeyError(key) from None
        else:
            index = int(key)
            if not 0 <= index < len(self):
                raise KeyError(key)
        ev = slice(int(self._event_bounds[index]), int(self._event_bounds[index + 1]))
        lb = slice(int(self._label_bounds[index]), int(self._label_bounds[index + 1]))
        return CustomerData(self.meta["customers"][index], index, self.events.take(ev), self.labels.take(lb))

    def value_text(self, capability: int, value: float) -> bool | float | str:
        """Decode one stored value back into its wire form (bool, number or text)."""
        kind = KIND[self.meta["capabilities"][capability]]
        if kind == "bool":
            return bool(value)
        if kind == "text":
            return str(self.meta["text_values"][int(value)])
        return float(value)


class DatasetBuilder:
    """Collects events and labels as index arrays, then sorts them into a ``Dataset``.

    Callers turn names into indices with the vocabularies (``builder.devices.index(name)``)
    once per device, not once per event, and add whole arrays at a time.
    """

    def __init__(
        self,
        *,
        source: str,
        jobs: Sequence[str] = (),
        markets: Sequence[str] = (),
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        self.source = source
        self.meta: dict[str, Any] = dict(meta or {})
        self.customers = Vocabulary()
        self.edges = Vocabulary()
        self.devices = Vocabulary()
        self.rooms = Vocabulary()
        self.capabilities = Vocabulary(CAPABILITIES)
        self.text_values = Vocabulary()
        self.jobs = Vocabulary(jobs)
        self.markets = Vocabulary(markets)
        self.residents = Vocabulary()
        self._events: dict[int, list[EventColumns]] = {}  # by customer: sorting per customer beats one lexsort
        self._labels: list[LabelColumns] = []

    def add_events(
        self,
        customer: str,
        *,
        edge: np.ndarray | int,
        ts: np.ndarray,
        device: np.ndarray | int,
        room: np.ndarray | int,
        capability: np.ndarray | int,
        value: np.ndarray,
    ) -> None:
        """Add rows for one customer; scalars broadcast. Indices come from this builder's vocabularies."""
        c = self.customers.index(customer)
        ts = np.asarray(ts, dtype=np.float64)
        n = ts.shape[0]

        def col(x: np.ndarray | int, dtype: Any) -> np.ndarray:
            arr = np.asarray(x, dtype=dtype)
            return np.full(n, arr, dtype=dtype) if arr.ndim == 0 else arr

        self._events.setdefault(c, []).append(
            EventColumns(
                np.full(n, c, np.int32), col(edge, np.int32), ts, col(device, np.int32), col(room, np.int32),
                col(capability, np.int16), np.asarray(value, dtype=np.float64),
            )
        )

    def add_labels(
        self,
        customer: str,
        *,
        job: np.ndarray,
        market: np.ndarray,
        begin: np.ndarray,
        end: np.ndarray,
        resident: np.ndarray | int = 0,
    ) -> None:
        c = self.customers.index(customer)
        begin = np.asarray(begin, dtype=np.float64)
        n = begin.shape[0]
        res = np.asarray(resident, dtype=np.int32)
        self._labels.append(
            LabelColumns(
                np.full(n, c, np.int32), np.full(n, res, np.int32) if res.ndim == 0 else res,
                np.asarray(job, np.int32), np.asarray(market, np.int32), begin, np.asarray(end, np.float64),
            )
        )

    def build(self, **meta: Any) -> Dataset:
        """Sort by (customer, time) and freeze. Extra keyword arguments go into ``meta``."""
        parts = []
        for c in sorted(self._events):
            chunk = _concat(self._events[c], EventColumns, _EVENT_DTYPES)
            parts.append(chunk.take(np.argsort(chunk.ts, kind="stable")))
        events = _concat(parts, EventColumns, _EVENT_DTYPES)
        labels = _concat(self._labels, LabelColumns, _LABEL_DTYPES)
        order = np.lexsort((labels.end, labels.begin, labels.customer))
        labels = labels.take(order)
        if not len(self.residents):
            self.residents.index("resident")
        full = {
            "format": FORMAT,
            "source": self.source,
            **self.meta,
            **meta,
            "customers": list(self.customers.names),
            "edges": list(self.edges.names),
            "devices": list(self.devices.names),
            "rooms": list(self.rooms.names),
            "capabilities": list(self.capabilities.names),
            "text_values": list(self.text_values.names),
            "jobs": list(self.jobs.names),
            "markets": list(self.markets.names),
            "residents": list(self.residents.names),
            "counts": {"events": events.size, "labels": labels.size, "customers": len(self.customers)},
        }
        return Dataset.from_columns(full, events, labels)


def save(dataset: Dataset, path: str | os.PathLike[str], *, compress: bool = True) -> Path:
    """Write ``dataset`` to the directory ``path`` (created; files replaced atomically)."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        level = 1 if compress else 0
        _atomic(out / "events.npz", lambda f: _write_npz(f, dataset.events._asdict(), level))
        _atomic(out / "labels.npz", lambda f: _write_npz(f, dataset.labels._asdict(), level))
        text = json.dumps(dataset.meta, indent=1, ensure_ascii=False, sort_keys=False)
        _atomic(out / "meta.json", lambda f: f.write(text.encode()))
    except OSError as exc:
        raise StorageError(f"cannot write dataset to {out}: {exc}") from exc
    return out


def load(path: str | os.PathLike[str]) -> Dataset:
    """Load a dataset directory written by ``save``; ``StorageError`` if it is missing or malformed."""
    src = Path(path)
    try:
        meta = json.loads((src / "meta.json").read_text(encoding="utf-8"))
        with np.load(src / "events.npz", allow_pickle=False) as ev, np.load(src / "labels.npz", allow_pickle=False) as lb:
            events = EventColumns(**{k: ev[k] for k in _EVENT_DTYPES})
            labels = LabelColumns(**{k: lb[k] for k in _LABEL_DTYPES})
    except (OSError, KeyError, ValueError) as exc:
        raise StorageError(f"cannot read dataset at {src}: {exc}") from exc
    if meta.get("format") != FORMAT:
        raise StorageError(f"{src}: format {meta.get('format')!r} is not {FORMAT!r}")
    return Dataset.from_columns(meta, events, labels)


def _write_npz(f: Any, arrays: dict[str, np.ndarray], level: int) -> None:
    """``np.savez_compressed`` at zlib level 1: a third of the write time of its default for ~5 % more bytes."""
    compression = zipfile.ZIP_DEFLATED if level else zipfile.ZIP_STORED
    with zipfile.ZipFile(f, "w", compression=compression, compresslevel=level or None) as zf:
        for name, arr in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(arr), allow_pickle=False)


def _concat(chunks: list[Any], kind: Any, dtypes: dict[str, Any]) -> Any:
    if not chunks:
        return kind(**{k: np.empty(0, dtype=t) for k, t in dtypes.items()})
    return kind(*(np.concatenate([getattr(c, k) for c in chunks]).astype(t, copy=False) for k, t in dtypes.items()))


def _check_sorted(customer: np.ndarray, ts: np.ndarray, what: str) -> None:
    if customer.shape[0] < 2:
        return
    dc = np.diff(customer)
    if np.any(dc < 0) or np.any((dc == 0) & (np.diff(ts) < 0)):
        raise StorageError(f"{what} are not sorted by (customer, time)")


def _check_range(col: np.ndarray, size: int, what: str, *, allow_missing: bool = False) -> None:
    if col.shape[0] == 0:
        return
    low = -1 if allow_missing else 0
    if int(col.min()) < low or int(col.max()) >= size:
        raise StorageError(f"{what} has indices outside its vocabulary of {size}")


def _atomic(target: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
