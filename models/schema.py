"""The feature schema: which features a vector holds, in which order, made by which code.

A :class:`FeatureSchema` is data. It names every column of a feature matrix, carries the
parameters the kernels need (vocabularies, horizons, activation rules, caps) and a hash of
the feature code's version, so a model artifact trained on one schema refuses to run on
another (:meth:`FeatureSchema.check` raises :class:`devices.errors.SchemaMismatch`).

Column layout, in order (``D`` devices, ``R`` rooms, ``H`` horizons, ``M`` markets, ``J`` jobs)::

    for each horizon h:  dev[<d>].act_<h>  (D)   then  room[<r>].act_<h>  (R)
    dev[<d>].since (D), room[<r>].since (R)
    dev[<d>].state (D)
    time.tod_sin, time.tod_cos, time.dow_sin, time.dow_cos, time.weekend
    market[<m>] (M)
    job[<j>] (J), job.since

Blocks rather than per-entity groups because the kernels copy each block in one pass.
``FeatureLayout`` gives the offsets; kernels and names are built from the same offsets.
"""

from __future__ import annotations

import hashlib
import io
import json
import token
import tokenize
from enum import IntEnum
from functools import cached_property
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from devices.capabilities import KIND, Capability
from devices.errors import SchemaMismatch

__all__ = [
    "DEFAULT_RULES",
    "FEATURES_VERSION",
    "ActivationRule",
    "CapabilityRule",
    "FeatureLayout",
    "FeatureSchema",
    "RuleName",
    "feature_code_hash",
    "horizon_label",
    "source_fingerprint",
]

FEATURES_VERSION = "genius.features/1"

RuleName = Literal["none", "truthy", "falsy", "event", "above"]


class ActivationRule(IntEnum):
    """When an event of a capability counts as an *activation*, as the kernels encode it.

    ``NONE`` never (temperature, humidity …: they only report); ``TRUTHY`` when the value is
    non-zero (occupancy, switch on, presence); ``FALSY`` when it is zero (``contact`` false =
    open, ``lock`` false = unlocked); ``EVENT`` every event (``action``, ``media``, ``checkin``,
    whose values are category indices, so 0 is a real value); ``ABOVE`` when the value is
    greater than the rule's threshold (``power`` above a standby draw). A NaN value is never
    an activation and never changes a state.
    """

    NONE = 0
    TRUTHY = 1
    FALSY = 2
    EVENT = 3
    ABOVE = 4


_RULE_CODES: dict[str, ActivationRule] = {r.name.lower(): r for r in ActivationRule}


class CapabilityRule(BaseModel):
    """How events of one capability become activations and device state."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    capability: str
    rule: RuleName
    threshold: float = 0.0

    @property
    def code(self) -> ActivationRule:
        return _RULE_CODES[self.rule]


# Standby draw of a plug or appliance stays under 5 W; a kettle, oven or TV on is well above.
_POWER_ON_W = 5.0

_DEFAULT_RULE: dict[str, tuple[RuleName, float]] = {
    Capability.OCCUPANCY: ("truthy", 0.0),
    Capability.CONTACT: ("falsy", 0.0),
    Capability.SWITCH: ("truthy", 0.0),
    Capability.LOCK: ("falsy", 0.0),
    Capability.PRESENCE: ("truthy", 0.0),
    Capability.POWER: ("above", _POWER_ON_W),
    Capability.ACTION: ("event", 0.0),
    Capability.MEDIA: ("event", 0.0),
    Capability.CHECKIN: ("event", 0.0),
}


def _default_rule(capability: str) -> CapabilityRule:
    rule, threshold = _DEFAULT_RULE.get(capability, ("none", 0.0))
    return CapabilityRule(capability=capability, rule=rule, threshold=threshold)


# In the order of devices.capabilities.KIND, which is also the dataset format's capability
# vocabulary, so a dataset's capability column indexes these rules as it is.
DEFAULT_RULES: tuple[CapabilityRule, ...] = tuple(_default_rule(c) for c in KIND)

_TIME_NAMES = ("time.tod_sin", "time.tod_cos", "time.dow_sin", "time.dow_cos", "time.weekend")

# The modules whose code decides what a feature value is. Their fingerprint is part of
# every schema, so editing a kernel (but not a comment or a docstring) retires old models.
_FEATURE_CODE = (Path(__file__).with_name("features.py"), Path(__file__))


def source_fingerprint(source: str) -> str:
    """SHA-256 of a Python source's tokens, ignoring comments, docstrings and layout.

    Tokens rather than ``ast.dump`` because the token stream is stable across Python
    versions, so a model trained on one interpreter still loads on the next.
    """
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    skip = {token.COMMENT, token.NL, token.NEWLINE, token.INDENT, token.DEDENT, token.ENDMARKER}
    statement_start = {token.NEWLINE, token.INDENT, token.DEDENT}
    digest = hashlib.sha256()
    previous = token.NEWLINE
    for i, tok in enumerate(tokens):
        following = tokens[i + 1].type if i + 1 < len(tokens) else token.ENDMARKER
        is_docstring = (
            tok.type == token.STRING
            and previous in statement_start
            and following in (token.NEWLINE, token.ENDMARKER)
        )
        if tok.type not in (token.COMMENT, token.NL):
            previous = tok.type
        if tok.type in skip or is_docstring:
            continue
        digest.update(f"{tok.type}:{tok.string}\n".encode())
    return digest.hexdigest()


def feature_code_hash() -> str:
    """Fingerprint of the running feature code (kernels and layout), 16 hex digits."""
    digest = hashlib.sha256()
    for path in _FEATURE_CODE:
        digest.update(source_fingerprint(path.read_text(encoding="utf-8")).encode())
    return digest.hexdigest()[:16]


def horizon_label(seconds: float) -> str:
    """``300`` → ``"5m"``, ``7200`` → ``"2h"``, ``45`` → ``"45s"``, ``86400`` → ``"1d"``."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


class FeatureLayout(NamedTuple):
    """Column offsets of each block; the kernels and :attr:`FeatureSchema.names` share them."""

    n_devices: int
    n_rooms: int
    n_horizons: int
    n_markets: int
    n_jobs: int

    @property
    def n_entities(self) -> int:
        """Devices then rooms: the activation, count and since blocks index them together."""
        return self.n_devices + self.n_rooms

    @property
    def since(self) -> int:
        return self.n_horizons * self.n_entities

    @property
    def state(self) -> int:
        return self.since + self.n_entities

    @property
    def time(self) -> int:
        return self.state + self.n_devices

    @property
    def market(self) -> int:
        return self.time + len(_TIME_NAMES)

    @property
    def job(self) -> int:
        return self.market + self.n_markets

    @property
    def job_since(self) -> int:
        return self.job + self.n_jobs

    @property
    def width(self) -> int:
        return self.job_since + 1


class FeatureSchema(BaseModel):
    """Names, parameters and code version of a feature vector; JSON-serialisable.

    Build one with keyword vocabularies (``FeatureSchema(devices=..., rooms=..., markets=...,
    jobs=...)``); ``code_hash`` defaults to the running code's fingerprint and keeps the stored
    value when a schema is loaded from an artifact, which is what :meth:`check` compares.
    Vocabulary entries must be unique; an input index outside a vocabulary (or ``-1``) is
    *unknown* and contributes to no feature.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = FEATURES_VERSION
    devices: tuple[str, ...]
    rooms: tuple[str, ...]
    markets: tuple[str, ...] = ()
    jobs: tuple[str, ...] = ()
    rules: tuple[CapabilityRule, ...] = DEFAULT_RULES
    horizons_s: tuple[float, ...] = (300.0, 1800.0, 7200.0)
    since_cap_s: float = 86400.0
    code_hash: str = Field(default_factory=feature_code_hash)

    @field_validator("devices", "rooms", "markets", "jobs")
    @classmethod
    def _unique(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(names)) != len(names):
            raise ValueError("vocabulary entries must be unique")
        return names

    @field_validator("horizons_s")
    @classmethod
    def _horizons(cls, horizons: tuple[float, ...]) -> tuple[float, ...]:
        if not horizons or any(not (h > 0 and np.isfinite(h)) for h in horizons):
            raise ValueError("horizons must be one or more positive finite seconds")
        if len({horizon_label(h) for h in horizons}) != len(horizons):
            raise ValueError("horizons must be distinct")
        return horizons

    @field_validator("since_cap_s")
    @classmethod
    def _cap(cls, cap: float) -> float:
        if not (cap > 0 and np.isfinite(cap)):
            raise ValueError("since_cap_s must be positive and finite")
        return cap

    @model_validator(mode="after")
    def _rules_unique(self) -> FeatureSchema:
        names = [r.capability for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError("one rule per capability")
        return self

    @property
    def capabilities(self) -> tuple[str, ...]:
        """Capability vocabulary: event capability indices refer to this order."""
        return tuple(r.capability for r in self.rules)

    @cached_property
    def layout(self) -> FeatureLayout:
        return FeatureLayout(
            n_devices=len(self.devices),
            n_rooms=len(self.rooms),
            n_horizons=len(self.horizons_s),
            n_markets=len(self.markets),
            n_jobs=len(self.jobs),
        )

    @property
    def n_features(self) -> int:
        return self.layout.width

    @cached_property
    def names(self) -> tuple[str, ...]:
        """One name per column, in the kernels' order (see the module docstring)."""
        names: list[str] = []
        for h in self.horizons_s:
            label = horizon_label(h)
            names += [f"dev[{d}].act_{label}" for d in self.devices]
            names += [f"room[{r}].act_{label}" for r in self.rooms]
        names += [f"dev[{d}].since" for d in self.devices]
        names += [f"room[{r}].since" for r in self.rooms]
        names += [f"dev[{d}].state" for d in self.devices]
        names += _TIME_NAMES
        names += [f"market[{m}]" for m in self.markets]
        names += [f"job[{j}]" for j in self.jobs]
        names.append("job.since")
        assert len(names) == self.layout.width
        return tuple(names)

    @cached_property
    def hash(self) -> str:
        """SHA-256 over the code hash and every parameter: equal hashes, equal features."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def check(self, other: FeatureSchema) -> None:
        """Raise :class:`SchemaMismatch` unless ``other`` computes exactly these features.

        ``self`` is the expected schema (the running code's), ``other`` the one found (an
        artifact's). The message names what differs: the feature code or which parameters.
        """
        if other.hash == self.hash:
            return
        mine, theirs = self.model_dump(mode="json"), other.model_dump(mode="json")
        differing = sorted(k for k in mine if mine[k] != theirs.get(k))
        if differing == ["code_hash"]:
            reason = (
                f"feature code changed (running {self.code_hash}, artifact {other.code_hash}); "
                "retrain the model with the running code"
            )
        else:
            reason = "parameters differ: " + ", ".join(differing)
        raise SchemaMismatch(
            f"feature schema mismatch: {reason}", expected=self.hash, found=other.hash
        )

    def index_of(
        self, vocabulary: Literal["devices", "rooms", "capabilities", "markets", "jobs"], names: list[str] | tuple[str, ...]
    ) -> NDArray[np.int32]:
        """Map another vocabulary (a dataset's, a hub's) to this schema's indices.

        ``index_of("devices", dataset_devices)[dataset_device_idx]`` turns a dataset's device
        index column into this schema's; names the schema lacks map to ``-1`` (unknown).
        """
        ours = {name: i for i, name in enumerate(getattr(self, vocabulary))}
        return np.array([ours.get(name, -1) for name in names], dtype=np.int32)

    @cached_property
    def rule_arrays(self) -> tuple[NDArray[np.int8], NDArray[np.float64]]:
        """Per-capability rule codes and thresholds, as the kernels take them."""
        codes = np.array([int(r.code) for r in self.rules], dtype=np.int8)
        thresholds = np.array([r.threshold for r in self.rules], dtype=np.float64)
        return codes, thresholds

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> FeatureSchema:
        """Load a stored schema, keeping its stored ``code_hash``."""
        return cls.model_validate_json(text)
