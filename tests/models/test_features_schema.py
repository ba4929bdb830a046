"""The feature schema: names in kernel order, validation, hashing and mismatch refusal."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from devices.capabilities import KIND
from devices.errors import SchemaMismatch
from models.schema import (
    DEFAULT_RULES,
    CapabilityRule,
    FeatureSchema,
    feature_code_hash,
    horizon_label,
    source_fingerprint,
)


def schema(**overrides: object) -> FeatureSchema:
    params: dict[str, object] = {
        "devices": ("kitchen_motion", "front_door"),
        "rooms": ("kitchen", "hall"),
        "markets": ("home:weekday", "home:weekend"),
        "jobs": ("cook", "leave_home", "sleep"),
    }
    params.update(overrides)
    return FeatureSchema(**params)  # type: ignore[arg-type]


def test_names_follow_the_block_layout_the_kernels_write() -> None:
    s = schema()
    lay = s.layout
    assert len(s.names) == s.n_features == lay.width == 3 * 4 + 4 + 2 + 5 + 2 + 3 + 1
    assert len(set(s.names)) == len(s.names)
    assert s.names[:4] == ("dev[kitchen_motion].act_5m", "dev[front_door].act_5m", "room[kitchen].act_5m", "room[hall].act_5m")
    assert s.names[2 * lay.n_entities] == "dev[kitchen_motion].act_2h"
    assert s.names[lay.since] == "dev[kitchen_motion].since"
    assert s.names[lay.since + 2] == "room[kitchen].since"
    assert s.names[lay.state + 1] == "dev[front_door].state"
    assert s.names[lay.time : lay.market] == ("time.tod_sin", "time.tod_cos", "time.dow_sin", "time.dow_cos", "time.weekend")
    assert s.names[lay.market + 1] == "market[home:weekend]"
    assert s.names[lay.job + 2] == "job[sleep]"
    assert s.names[-1] == "job.since"


def test_horizon_labels_use_the_largest_whole_unit() -> None:
    assert [horizon_label(h) for h in (300, 1800, 7200, 86400, 45, 90, 2.5)] == ["5m", "30m", "2h", "1d", "45s", "90s", "2.5s"]


def test_default_rules_follow_the_dataset_capability_order() -> None:
    assert tuple(r.capability for r in DEFAULT_RULES) == tuple(KIND)
    rules = {r.capability: (r.rule, r.threshold) for r in DEFAULT_RULES}
    assert rules["contact"] == ("falsy", 0.0)  # contact true = closed: opening is the activation
    assert rules["action"][0] == "event"
    assert rules["temperature"][0] == "none"
    assert rules["power"] == ("above", 5.0)


@pytest.mark.parametrize(
    "overrides",
    [
        {"devices": ("a", "a")},
        {"horizons_s": ()},
        {"horizons_s": (300.0, -1.0)},
        {"horizons_s": (300.0, 300.0)},
        {"since_cap_s": 0.0},
        {"since_cap_s": float("inf")},
        {"rules": (CapabilityRule(capability="x", rule="truthy"), CapabilityRule(capability="x", rule="event"))},
        {"unknown": 1},
    ],
)
def test_invalid_parameters_fail_when_the_schema_is_built(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        schema(**overrides)


def test_equal_parameters_give_equal_hashes_and_check_passes() -> None:
    a, b = schema(), schema()
    assert a.hash == b.hash
    assert a.code_hash == feature_code_hash()
    a.check(b)


def test_json_round_trip_keeps_the_stored_code_hash() -> None:
    stored = schema(code_hash="0123456789abcdef")
    loaded = FeatureSchema.from_json(stored.to_json())
    assert loaded.code_hash == "0123456789abcdef"
    assert loaded.hash == stored.hash
    assert loaded.names == stored.names


def test_check_refuses_an_artifact_made_by_other_feature_code() -> None:
    running, artifact = schema(), schema(code_hash="0123456789abcdef")
    with pytest.raises(SchemaMismatch, match="feature code changed") as caught:
        running.check(artifact)
    assert caught.value.expected == running.hash
    assert caught.value.found == artifact.hash


def test_check_names_the_parameters_that_differ() -> None:
    with pytest.raises(SchemaMismatch, match="parameters differ: horizons_s, jobs"):
        schema().check(schema(jobs=("cook",), horizons_s=(60.0,)))


def test_index_of_maps_another_vocabulary_and_marks_unknown_names() -> None:
    s = schema()
    mapped = s.index_of("devices", ["front_door", "garage_door", "kitchen_motion"])
    assert mapped.dtype == np.int32
    assert mapped.tolist() == [1, -1, 0]
    assert s.index_of("capabilities", ["contact"]).tolist() == [list(KIND).index("contact")]


def test_rule_arrays_encode_each_capability() -> None:
    codes, thresholds = schema().rule_arrays
    assert codes.dtype == np.int8 and thresholds.dtype == np.float64
    assert codes.shape == thresholds.shape == (len(KIND),)
    power = list(KIND).index("power")
    assert thresholds[power] == 5.0


CODE = '''"""Module docstring."""
import math


def f(x):
    """Docstring."""
    return math.log1p(x)  # a comment
'''


def test_code_fingerprint_ignores_comments_docstrings_and_blank_lines() -> None:
    reworded = CODE.replace("Docstring.", "Says more.").replace("# a comment", "# other").replace("\n\n\n", "\n\n\n\n")
    assert source_fingerprint(reworded) == source_fingerprint(CODE)


def test_code_fingerprint_changes_with_the_code() -> None:
    assert source_fingerprint(CODE.replace("log1p(x)", "log1p(x + 1)")) != source_fingerprint(CODE)
    assert source_fingerprint(CODE.replace('"""Docstring."""', 'y = "Docstring."')) != source_fingerprint(CODE)
