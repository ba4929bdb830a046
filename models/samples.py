"""Feature matrices at anticipation points: a dataset, a schema and a split in, arrays out.

Everything is indexed by the *schema's* vocabularies (a model trained on one dataset can be
evaluated on another: names the schema lacks become ``-1``, unknown). Splits are
chronological per customer (:func:`chronological_cut`): the first ``fraction`` of that
customer's days train, the rest test; no shuffling, and training points whose next job
begins after the cut are dropped so no test label leaks into training.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray

from models.dataset import CustomerData, Dataset
from models.features import EventWindow, compute_features
from models.schema import FeatureSchema
from models.targets import IDLE, Targets, anticipation_targets, recognised_context

__all__ = [
    "DAY",
    "Part",
    "Recogniser",
    "Samples",
    "TargetRules",
    "build_samples",
    "chronological_cut",
    "customer_days",
    "customer_window",
    "iter_customer_samples",
    "schema_for",
]

DAY = 86400.0

Part = Literal["train", "test", "all"]
Recogniser = Callable[[int, NDArray[np.float64], NDArray[np.float32]], NDArray[np.int32]]
"""``(customer index, tick times, full feature rows with job inputs unset)`` → recognised job
index per row in schema indices, ``IDLE`` for none. Given the customer and the times so that
training can cross-fit (a recogniser that never saw those days)."""


class TargetRules(NamedTuple):
    """How anticipation points are chosen (``models.targets``); part of an artifact's meta."""

    grid_s: float = 900.0
    max_wait_s: float = 86400.0
    merge_gap_s: float = 60.0
    tick_s: float = 120.0  # recognition timer when the context comes from the recognition head


class Samples(NamedTuple):
    """Anticipation points of many customers: targets in schema indices, features ``(m, F)``."""

    customer: NDArray[np.int32]  # dataset customer index
    targets: Targets
    features: NDArray[np.float32]

    @property
    def size(self) -> int:
        """Number of points (``len()`` of a NamedTuple is its field count)."""
        return int(self.customer.shape[0])

    def take(self, index: NDArray[np.bool_] | NDArray[np.intp]) -> Samples:
        return Samples(self.customer[index], self.targets.take(index), self.features[index])

    @classmethod
    def concat(cls, parts: list[Samples], n_features: int) -> Samples:
        if not parts:
            return cls(np.empty(0, np.int32), Targets.concat([]), np.empty((0, n_features), np.float32))
        return cls(
            np.concatenate([p.customer for p in parts]),
            Targets.concat([p.targets for p in parts]),
            np.concatenate([p.features for p in parts]),
        )


def schema_for(dataset: Dataset, **params: object) -> FeatureSchema:
    """A schema over ``dataset``'s vocabularies (devices, rooms, markets, jobs); ``params`` override."""
    return FeatureSchema(
        devices=dataset.devices, rooms=dataset.rooms, markets=dataset.markets, jobs=dataset.jobs,
        **params,  # type: ignore[arg-type]
    )


def customer_window(schema: FeatureSchema, dataset: Dataset, customer: CustomerData) -> EventWindow:
    """The customer's events with device, room and capability indices in ``schema``'s vocabularies."""
    ev = customer.events
    dev_map = schema.index_of("devices", dataset.devices)
    room_map = np.append(schema.index_of("rooms", dataset.rooms), np.int32(-1))  # room -1 stays -1
    cap_map = schema.index_of("capabilities", dataset.capabilities)
    return EventWindow.from_arrays(ev.ts, dev_map[ev.device], room_map[ev.room], cap_map[ev.capability], ev.value)


def customer_days(customer: CustomerData) -> tuple[float, int]:
    """(midnight UTC before the customer's first event or label, number of days of data)."""
    starts = [float(a.min()) for a in (customer.events.ts, customer.labels.begin) if a.size]
    ends = [float(a.max()) for a in (customer.events.ts, customer.labels.end) if a.size]
    if not starts:
        return 0.0, 0
    day0 = math.floor(min(starts) / DAY) * DAY
    return day0, max(1, math.ceil((max(ends) - day0) / DAY))


def chronological_cut(customer: CustomerData, fraction: float) -> float:
    """The time before which the first ``fraction`` of the customer's days lie (a midnight)."""
    day0, days = customer_days(customer)
    return day0 + max(1, round(fraction * days)) * DAY


def iter_customer_samples(
    schema: FeatureSchema,
    dataset: Dataset,
    *,
    part: Part = "all",
    fraction: float = 0.7,
    rules: TargetRules = TargetRules(),
    recognise: Recogniser | None = None,
    customers: list[int] | None = None,
    features: bool = True,
) -> Iterator[Samples]:
    """One :class:`Samples` per customer (see :func:`build_samples`)."""
    job_map = np.append(schema.index_of("jobs", dataset.jobs), np.int32(-1))  # -1 (none/idle) stays -1
    market_map = np.append(schema.index_of("markets", dataset.markets), np.int32(-1))
    for index in customers if customers is not None else range(len(dataset)):
        customer = dataset.customer(index)
        since, until, target_until = -math.inf, math.inf, math.inf
        if part != "all":
            cut = chronological_cut(customer, fraction)
            if part == "train":
                until = target_until = cut
            else:
                since = cut
        targets = anticipation_targets(
            customer.labels, grid_s=rules.grid_s, max_wait_s=rules.max_wait_s, merge_gap_s=rules.merge_gap_s,
            since=since, until=until, target_until=target_until,
        )
        targets = targets._replace(
            next_job=job_map[targets.next_job],
            current_job=job_map[targets.current_job],
            context_job=job_map[targets.context_job],
            market=market_map[targets.market],
        )
        window = customer_window(schema, dataset, customer)
        if recognise is not None and targets.size:
            job, since_s = _recognised(schema, window, targets, lambda t, x: recognise(index, t, x), rules.tick_s)
            targets = targets._replace(context_job=job, context_since_s=since_s)
        rows = (
            compute_features(
                schema, window, targets.times,
                markets=targets.market, jobs=targets.context_job, job_since_s=targets.context_since_s,
            )
            if features
            else np.empty((targets.size, 0), np.float32)
        )
        yield Samples(np.full(targets.size, index, np.int32), targets, rows)


def build_samples(
    schema: FeatureSchema,
    dataset: Dataset,
    *,
    part: Part = "all",
    fraction: float = 0.7,
    rules: TargetRules = TargetRules(),
    recognise: Recogniser | None = None,
    customers: list[int] | None = None,
    features: bool = True,
    progress: Callable[[int], None] | None = None,
) -> Samples:
    """Anticipation points of every customer in ``part`` of the chronological split.

    The job inputs (context) are ground truth unless ``recognise`` is given: then they come
    from running it every ``rules.tick_s`` seconds over the preceding day, as a hub would.
    ``features=False`` skips the feature matrix (``(m, 0)``; targets only).
    ``progress`` is called with the number of customers done.
    """
    parts: list[Samples] = []
    for k, samples in enumerate(
        iter_customer_samples(
            schema, dataset, part=part, fraction=fraction, rules=rules, recognise=recognise, customers=customers,
            features=features,
        ),
        start=1,
    ):
        parts.append(samples)
        if progress is not None:
            progress(k)
    return Samples.concat(parts, schema.n_features if features else 0)


def _recognised(
    schema: FeatureSchema,
    window: EventWindow,
    targets: Targets,
    recognise: Callable[[NDArray[np.float64], NDArray[np.float32]], NDArray[np.int32]],
    tick_s: float,
) -> tuple[NDArray[np.int32], NDArray[np.float64]]:
    first = float(targets.times[0]) - DAY
    if window.ts.size:
        first = max(first, float(window.ts[0]))
    ticks = np.arange(math.ceil(first / tick_s) * tick_s, float(targets.times[-1]) + tick_s, tick_s)
    # The market at a tick is the one of the latest anticipation point (the hub knows it
    # from the calendar and the edge's role); recognition never sees the job block.
    at = np.clip(np.searchsorted(targets.times, ticks, side="right") - 1, 0, targets.size - 1)
    features = compute_features(schema, window, ticks, markets=targets.market[at])
    recognised = np.asarray(recognise(ticks, features), dtype=np.int32).copy()
    recognised[recognised < 0] = IDLE
    return recognised_context(ticks, recognised, targets.times)
