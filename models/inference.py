"""Inference for the hub: load an artifact once, then arrays in, arrays out.

Pure: no asyncio, no I/O after construction (the hub calls these from ``asyncio.to_thread``).
One onnxruntime ``InferenceSession`` per head, single-threaded, created by
:meth:`Anticipator.load`, which refuses an artifact whose feature schema is not what the
running feature code computes (:class:`devices.errors.SchemaMismatch`).

A hub's anticipation, step by step (or all at once with :meth:`Anticipator.anticipate`)::

    model = Anticipator.load()                          # the shipped artifact
    devices = model.schema.index_of("devices", hub_device_names)   # unknown names → -1
    x = features_at(model.schema, window, t, market=m)  # job inputs unset
    state.update(t, model.recognise(x)[0])              # which job is going on now
    x = model.with_context(x, *state.inputs(t))         # recognised job + time since
    p = model.predict(x)                                # next_job, expected_in_s, recognition
    reasons = model.explain(x[0], job)                  # what drove it …
    because(reasons, model.jobs[job])                   # … as sentences

Explanations are by occlusion: each feature group (a device's or a room's activity, the
time of day, the day of week, the market, the recognised job) is reset to its neutral value
(no activity / no information, stored in the artifact) and the drop in the job's
probability is that group's weight; every occluded row goes through the head in one call.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from devices.errors import ModelError
from models.artifact import ArtifactMeta, default_artifact, read_meta
from models.calibration import Calibration
from models.features import EventWindow, features_at
from models.prior_shift import PriorShift
from models.schema import FeatureSchema, horizon_label

__all__ = [
    "Anticipator",
    "FeatureGroup",
    "Prediction",
    "Reason",
    "RecognitionState",
    "because",
]


class Prediction(NamedTuple):
    """Outputs for ``n`` feature rows; ``J`` jobs in :attr:`Anticipator.jobs` order."""

    recognition: NDArray[np.float32]  # (n, J + 1): which job is going on now; last column idle
    next_job: NDArray[np.float32]  # (n, J): probability that each job is the next one
    expected_in_s: NDArray[np.float32]  # (n, J): seconds until each job begins, if it is next


class Reason(NamedTuple):
    """A signal that drove a prediction: ``weight`` is the probability it adds to the job.

    ``group`` is ``device:<name>``, ``room:<name>``, ``time_of_day``, ``day_of_week``,
    ``market`` or ``job``; ``detail`` what the signal was: a horizon (``5m``) or ``on`` or
    ``ago:<seconds>`` for activity, ``morning`` … for the time, ``weekday``/``weekend``, the
    market's or the recognised job's name.
    """

    group: str
    weight: float
    detail: str


@dataclass(frozen=True, slots=True)
class FeatureGroup:
    """Columns that describe one signal, reset together when explaining."""

    name: str
    columns: NDArray[np.intp]


@dataclass(slots=True)
class RecognitionState:
    """The recognised job a hub feeds back as the next-job head's job inputs.

    Mirrors training (:func:`models.targets.recognised_context`): the latest time the
    recognition head named a job, and that job; ``inputs(t)`` gives ``(job, seconds since)``.
    """

    job: int = -1
    at: float = math.nan

    def update(self, t: float, recognition: NDArray[np.floating]) -> int:
        """Record the recognition row at ``t`` (``(J + 1,)``, last idle); returns the job or -1."""
        best = int(np.argmax(recognition))
        if best == recognition.shape[0] - 1:
            return -1
        self.job, self.at = best, float(t)
        return best

    def inputs(self, t: float) -> tuple[int, float]:
        if self.job < 0:
            return -1, math.nan
        return self.job, float(t) - self.at


class Anticipator:
    """The three heads of one artifact, ready to run. Build with :meth:`load`."""

    def __init__(self, meta: ArtifactMeta, path: Path, sessions: dict[str, ort.InferenceSession]) -> None:
        self._meta = meta
        self._path = path
        self._sessions = sessions
        self._schema = meta.schema_
        self._n_jobs = len(meta.jobs)
        lay = self._schema.layout
        self._rec_width = lay.job
        self._calibration = Calibration.from_dict(meta.heads["next_job"].calibration or {})
        stored_shift = meta.heads["next_job"].prior_shift
        self._prior_shift = PriorShift.from_dict(stored_shift) if stored_shift else PriorShift.none(self._n_jobs)
        self._classes = {name: np.asarray(head.classes, np.intp) for name, head in meta.heads.items()}
        self._neutral = np.asarray(meta.neutral, np.float32)
        self._groups = _groups(self._schema)
        self._since_scale = 1.0 / math.log1p(self._schema.since_cap_s)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, *, check_schema: bool = True) -> Anticipator:
        """Load the artifact folder at ``path`` (default: the shipped one).

        Raises :class:`ModelError` if it is missing or unusable and :class:`SchemaMismatch`
        if it was trained on other features than the running code computes.
        """
        folder = Path(path) if path is not None else default_artifact()
        meta = read_meta(folder, check_schema=check_schema)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        sessions: dict[str, ort.InferenceSession] = {}
        for name in ("recognition", "next_job", "expected_in"):
            head = meta.heads.get(name)
            if head is None:
                raise ModelError(f"model {meta.model_id} at {folder} has no {name} head")
            try:
                sessions[name] = ort.InferenceSession(str(folder / head.file), options, providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime raises its own untyped errors
                raise ModelError(f"cannot load {name} head of {meta.model_id} from {folder}: {exc}") from exc
        return cls(meta, folder, sessions)

    # ----------------------------------------------------------------- what it is
    @property
    def name(self) -> str:
        return self._meta.name

    @property
    def version(self) -> str:
        return self._meta.version

    @property
    def model_id(self) -> str:
        """``name@version``, as ``Anticipation.model`` carries it."""
        return self._meta.model_id

    @property
    def schema(self) -> FeatureSchema:
        return self._schema

    @property
    def jobs(self) -> tuple[str, ...]:
        return tuple(self._meta.jobs)

    @property
    def markets(self) -> tuple[str, ...]:
        return tuple(self._meta.markets)

    @property
    def prior_shift(self) -> PriorShift:
        """How far to move the next-job head towards one customer's own mix of jobs
        (:mod:`models.prior_shift`; weight 0 for an artifact that predates it)."""
        return self._prior_shift

    @property
    def meta(self) -> ArtifactMeta:
        return self._meta

    @property
    def path(self) -> Path:
        return self._path

    @property
    def groups(self) -> tuple[FeatureGroup, ...]:
        return self._groups

    # ----------------------------------------------------------------- heads
    def recognise(self, features: NDArray[np.float32]) -> NDArray[np.float32]:
        """``(n, J + 1)`` probabilities of the job going on now (last column: idle)."""
        x = _rows(features, self._schema.n_features)
        out = self._run("recognition", np.ascontiguousarray(x[:, : self._rec_width]))
        return self._spread(out, "recognition", self._n_jobs + 1)

    def next_job(self, features: NDArray[np.float32]) -> NDArray[np.float32]:
        """``(n, J)`` calibrated probabilities that each job is the next one."""
        x = _rows(features, self._schema.n_features)
        raw = self._spread(self._run("next_job", x), "next_job", self._n_jobs)
        return self._calibration.apply(raw)

    def expected_in(self, features: NDArray[np.float32], jobs: NDArray[np.integer] | None = None) -> NDArray[np.float32]:
        """``(n, J)`` seconds until each job begins, should it be the next one; with ``jobs``
        (one index per row) ``(n,)`` for those jobs only."""
        x = _rows(features, self._schema.n_features)
        (log_s,) = self._sessions["expected_in"].run(None, {"features": x})
        seconds = np.expm1(np.maximum(log_s, 0.0)).astype(np.float32)
        return seconds[np.arange(x.shape[0]), np.asarray(jobs, np.intp)] if jobs is not None else seconds

    def predict(self, features: NDArray[np.float32]) -> Prediction:
        """All three heads for ``(n, F)`` (or one ``(F,)``) float32 feature rows."""
        x = _rows(features, self._schema.n_features)
        return Prediction(self.recognise(x), self.next_job(x), self.expected_in(x))

    def with_context(self, features: NDArray[np.float32], job: int, job_since_s: float) -> NDArray[np.float32]:
        """A copy of ``features`` with the recognised-job inputs set (as the kernels would)."""
        x = np.array(_rows(features, self._schema.n_features), dtype=np.float32, copy=True)
        lay = self._schema.layout
        x[:, lay.job : lay.job_since] = 0.0
        if 0 <= job < self._n_jobs:
            x[:, lay.job + job] = 1.0
        if math.isnan(job_since_s):
            x[:, lay.job_since] = 1.0
        else:
            s = min(max(job_since_s, 0.0), self._schema.since_cap_s)
            x[:, lay.job_since] = math.log1p(s) * self._since_scale
        return x

    def anticipate(
        self,
        window: EventWindow,
        t: float,
        *,
        market: int = -1,
        state: RecognitionState | None = None,
        tz_offset_s: float = 0.0,
    ) -> tuple[Prediction, NDArray[np.float32]]:
        """Features at ``t`` from ``window`` (schema indices), recognition fed through ``state``,
        then every head: ``(prediction for one row, the feature row used)``."""
        x = features_at(self._schema, window, t, market=market, tz_offset_s=tz_offset_s)[None, :]
        recognition = self.recognise(x)
        state = state if state is not None else RecognitionState()
        state.update(t, recognition[0])
        x = self.with_context(x, *state.inputs(t))
        return Prediction(recognition, self.next_job(x), self.expected_in(x)), x[0]

    # ----------------------------------------------------------------- explanations
    def explain(self, features: NDArray[np.float32], job_index: int, *, top: int = 3) -> list[Reason]:
        """The ``top`` feature groups whose signal most raised ``job_index``'s probability.

        Groups already at their neutral value (no activity, no market …) cannot have driven
        anything and are skipped; only groups that raised the probability are returned.
        """
        x = np.asarray(features, dtype=np.float32).reshape(-1)
        if x.shape[0] != self._schema.n_features:
            raise ValueError(f"features must have {self._schema.n_features} columns, got {x.shape[0]}")
        if not 0 <= job_index < self._n_jobs:
            raise ValueError(f"job_index {job_index} is outside the {self._n_jobs} jobs")
        active = [g for g in self._groups if not np.array_equal(x[g.columns], self._neutral[g.columns])]
        if not active:
            return []
        batch = np.repeat(x[None, :], len(active) + 1, axis=0)
        for row, group in enumerate(active, start=1):
            batch[row, group.columns] = self._neutral[group.columns]
        p = self.next_job(batch)[:, job_index]
        drops = p[0] - p[1:]
        order = np.argsort(-drops, kind="stable")
        reasons: list[Reason] = []
        for k in order[:top]:
            if drops[k] <= 0.0:
                break
            group = active[int(k)]
            reasons.append(Reason(group.name, float(drops[k]), self._detail(group, x)))
        return reasons

    def _detail(self, group: FeatureGroup, x: NDArray[np.float32]) -> str:
        schema, lay = self._schema, self._schema.layout
        kind, _, entity = group.name.partition(":")
        if kind in ("device", "room"):
            n_h = lay.n_horizons
            counts = x[group.columns[:n_h]]
            for h, count in enumerate(counts):
                if count > 0:
                    return horizon_label(schema.horizons_s[h])
            if kind == "device" and x[group.columns[-1]] >= 1.0:
                return "on"
            since = float(x[group.columns[n_h]])
            return f"ago:{round(math.expm1(since / self._since_scale))}" if since < 1.0 else "none"
        if kind == "time_of_day":
            hour = (math.degrees(math.atan2(x[lay.time], x[lay.time + 1])) % 360.0) / 15.0
            return _part_of_day(hour)
        if kind == "day_of_week":
            return "weekend" if x[lay.time + 4] >= 0.5 else "weekday"
        if kind == "market":
            hot = np.flatnonzero(x[lay.market : lay.job] > 0.5)
            return schema.markets[int(hot[0])] if hot.size else "none"
        if kind == "job":
            hot = np.flatnonzero(x[lay.job : lay.job_since] > 0.5)
            return schema.jobs[int(hot[0])] if hot.size else "none"
        return entity

    # ----------------------------------------------------------------- plumbing
    def _run(self, head: str, x: NDArray[np.float32]) -> NDArray[np.float32]:
        outputs = self._sessions[head].run(["probabilities"], {"features": x})
        return np.asarray(outputs[0], dtype=np.float32)

    def _spread(self, p: NDArray[np.float32], head: str, width: int) -> NDArray[np.float32]:
        classes = self._classes[head]
        if classes.size == width and p.shape[1] == width:
            return p
        out = np.zeros((p.shape[0], width), np.float32)
        out[:, classes] = p
        return out


def _rows(features: NDArray[np.float32], width: int) -> NDArray[np.float32]:
    x = np.asarray(features, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != width:
        raise ValueError(f"features must be (n, {width}) float32, got {x.shape}")
    return np.ascontiguousarray(x)


def _groups(schema: FeatureSchema) -> tuple[FeatureGroup, ...]:
    lay = schema.layout
    n_ent = lay.n_entities
    groups: list[FeatureGroup] = []
    for d, name in enumerate(schema.devices):
        cols = [h * n_ent + d for h in range(lay.n_horizons)] + [lay.since + d, lay.state + d]
        groups.append(FeatureGroup(f"device:{name}", np.array(cols, np.intp)))
    for r, name in enumerate(schema.rooms):
        e = lay.n_devices + r
        cols = [h * n_ent + e for h in range(lay.n_horizons)] + [lay.since + e]
        groups.append(FeatureGroup(f"room:{name}", np.array(cols, np.intp)))
    groups.append(FeatureGroup("time_of_day", np.array([lay.time, lay.time + 1], np.intp)))
    groups.append(FeatureGroup("day_of_week", np.array([lay.time + 2, lay.time + 3, lay.time + 4], np.intp)))
    if lay.n_markets:
        groups.append(FeatureGroup("market", np.arange(lay.market, lay.job, dtype=np.intp)))
    groups.append(FeatureGroup("job", np.arange(lay.job, lay.width, dtype=np.intp)))
    return tuple(groups)


def _part_of_day(hour: float) -> str:
    if 5.0 <= hour < 12.0:
        return "morning"
    if 12.0 <= hour < 17.0:
        return "afternoon"
    if 17.0 <= hour < 22.0:
        return "evening"
    return "night"


_MARKET_TEXT = {
    "home:weekday": "you are at home on a weekday",
    "home:weekend": "you are at home at the weekend",
    "travel:business": "you are travelling for work",
    "travel:leisure": "you are away on holiday",
    "venue:gym": "you are at the gym",
    "hosting": "you have guests",
}


def _words(name: str) -> str:
    """``kitchen/coffee_machine`` → ``kitchen coffee machine``."""
    return " ".join(name.replace("/", " ").replace("_", " ").replace("-", " ").split()).lower()


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{round(seconds / 3600)} h"


def _horizon_text(label: str) -> str:
    number, unit = label[:-1], label[-1]
    return f"{number} {dict(s='s', m='min', h='h', d='days' if number != '1' else 'day')[unit]}"


def because(reasons: Sequence[Reason], job: str) -> list[str]:
    """Human-readable sentences for ``reasons`` of a prediction of ``job``, strongest first.

    ``"activity in the kitchen in the last 5 min"``, ``"it is a weekday morning"``,
    ``"you usually make coffee after wake up"``. Time of day and day of week merge into one
    sentence when both drove the prediction.
    """
    details = {r.group: r.detail for r in reasons}
    sentences: list[str] = []
    for reason in reasons:
        kind, _, entity = reason.group.partition(":")
        if kind in ("device", "room"):
            sentences.append(_activity_sentence(kind, entity, reason.detail))
        elif kind == "time_of_day":
            day = details.get("day_of_week")
            sentences.append(f"it is a {day} {reason.detail}" if day else f"it is {reason.detail}")
        elif kind == "day_of_week":
            if "time_of_day" not in details:
                sentences.append("it is the weekend" if reason.detail == "weekend" else "it is a weekday")
        elif kind == "market":
            sentences.append(_MARKET_TEXT.get(reason.detail, f"you are in the {reason.detail} context"))
        elif kind == "job":
            if reason.detail == "none":
                sentences.append(f"nothing else is going on, and {_words(job)} usually comes first")
            else:
                sentences.append(f"you usually {_words(job)} after {_words(reason.detail)}")
    return sentences


def _activity_sentence(kind: str, entity: str, detail: str) -> str:
    subject = f"activity in the {_words(entity)}" if kind == "room" else f"{_words(entity)} active"
    if detail == "on":
        return f"the {_words(entity)} is on"
    if detail.startswith("ago:"):
        return f"{subject} {_duration(float(detail[4:]))} ago"
    if detail == "none":
        return f"no {subject.replace(' active', '')} activity lately" if kind == "device" else f"no activity in the {_words(entity)} lately"
    return f"{subject} in the last {_horizon_text(detail)}"
