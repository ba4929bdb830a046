"""Model artifacts: a folder with one ONNX file per head and ``meta.json``.

::

    genius-sim-1.0.0/
        recognition.onnx   features[:, :job block]  → probabilities (n, J + 1), last = idle
        next_job.onnx      features                 → probabilities (n, J)
        expected_in.onnx   features                 → log_seconds (n, J): log1p(seconds until
                                                      each job begins, should it be next)
        meta.json          :class:`ArtifactMeta`

Each ONNX file is self-contained (count transform, scaler and MLP in one graph) and carries
``genius.model`` (``name@version``), ``genius.head`` and ``genius.schema_hash`` in its
metadata. ``meta.json`` carries what DESIGN.md asks of an artifact: name and version, the
feature schema (with its hash), the job labels, the markets, what it was trained and
evaluated on and its evaluation figures, plus each head's calibration and the neutral
feature values used for explanations. :func:`read_meta` refuses an artifact whose schema
does not match the running feature code (:class:`devices.errors.SchemaMismatch`).
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from devices.errors import ModelError, SchemaMismatch
from models.heads import HEADS, IDLE_LABEL
from models.schema import FeatureSchema, feature_code_hash

__all__ = [
    "ARTIFACTS",
    "DEFAULT_ARTIFACT",
    "FORMAT",
    "ArtifactMeta",
    "HeadMeta",
    "default_artifact",
    "export",
    "read_meta",
    "running_schema",
    "update_meta",
]

FORMAT = "genius.model/1"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
DEFAULT_ARTIFACT = ARTIFACTS / "genius-sim-1.0.0"


class HeadMeta(BaseModel):
    """One head's file, input width, output labels and calibration."""

    model_config = ConfigDict(extra="forbid")

    file: str
    input_width: int
    labels: list[str]
    classes: list[int] = []  # output column k is label index classes[k] (classifiers)
    calibration: dict[str, Any] | None = None
    prior_shift: dict[str, Any] | None = None  # next job: models.prior_shift.PriorShift.to_dict()
    epochs: int
    validation: dict[str, float] = {}
    bytes: int = 0


class ArtifactMeta(BaseModel):
    """``meta.json`` of an artifact (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    format: str = FORMAT
    name: str
    version: str
    created: str
    schema_: FeatureSchema = Field(alias="schema")  # ``schema`` is a BaseModel attribute
    schema_hash: str
    jobs: list[str]
    markets: list[str]
    idle_label: str = IDLE_LABEL
    heads: dict[str, HeadMeta]
    neutral: list[float]
    rules: dict[str, float]
    config: dict[str, Any]
    seed: int
    trained_on: dict[str, Any]
    evaluated_on: dict[str, Any] = {}
    evaluation: dict[str, Any] = {}

    @property
    def model_id(self) -> str:
        return f"{self.name}@{self.version}"


def running_schema(stored: FeatureSchema) -> FeatureSchema:
    """``stored``'s parameters with the running feature code's hash: what this code computes."""
    # Not model_copy: it would carry the stored schema's cached hash along.
    return FeatureSchema.model_validate({**stored.model_dump(), "code_hash": feature_code_hash()})


def default_artifact() -> Path:
    """The artifact shipped with Genius (trained on simulated customers); loads with no training."""
    return DEFAULT_ARTIFACT


def read_meta(path: str | os.PathLike[str], *, check_schema: bool = True) -> ArtifactMeta:
    """Read and check an artifact's ``meta.json``.

    Raises :class:`ModelError` when it is missing or malformed and :class:`SchemaMismatch`
    when its feature schema is not what the running feature code computes.
    """
    folder = Path(path)
    try:
        meta = ArtifactMeta.model_validate_json((folder / "meta.json").read_bytes())
    except (OSError, ValueError, KeyError, ValidationError) as exc:
        raise ModelError(f"cannot read model artifact {folder}: {exc}") from exc
    if meta.format != FORMAT:
        raise ModelError(f"{folder}: format {meta.format!r} is not {FORMAT!r}")
    if meta.schema_.hash != meta.schema_hash:
        raise SchemaMismatch(
            f"{folder}: meta.json's schema does not hash to its schema_hash (edited or corrupt)",
            expected=meta.schema_hash, found=meta.schema_.hash,
        )
    if check_schema:
        try:
            running_schema(meta.schema_).check(meta.schema_)
        except SchemaMismatch as exc:
            raise SchemaMismatch(f"model {meta.model_id} at {folder}: {exc}", expected=exc.expected, found=exc.found) from exc
    return meta


def update_meta(path: str | os.PathLike[str], **fields: Any) -> ArtifactMeta:
    """Replace top-level fields of ``meta.json`` (e.g. ``evaluation``, ``evaluated_on``)."""
    folder = Path(path)
    meta = read_meta(folder, check_schema=False)
    meta = ArtifactMeta.model_validate({**meta.model_dump(by_alias=True), **fields})
    _write_meta(folder, meta)
    return meta


def export(
    model: Any,
    path: str | os.PathLike[str],
    *,
    name: str,
    version: str,
    trained_on: dict[str, Any],
    evaluated_on: dict[str, Any] | None = None,
    evaluation: dict[str, Any] | None = None,
) -> Path:
    """Write a :class:`models.train.TrainedModel` as an artifact folder at ``path``."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    schema: FeatureSchema = model.schema
    jobs = list(schema.jobs)
    heads: dict[str, HeadMeta] = {}
    for head_name in HEADS:
        head = model.heads[head_name]
        if head_name == "expected_in":
            onx = _expected_in_onnx(head.pipeline, schema.n_features, len(jobs))
            width = schema.n_features
        else:
            onx = _to_onnx(head.pipeline, head.input_width, classifier=head.calibration is not None)
            width = head.input_width
        for key, value in (
            ("genius.model", f"{name}@{version}"),
            ("genius.head", head_name),
            ("genius.schema_hash", schema.hash),
        ):
            prop = onx.metadata_props.add()
            prop.key, prop.value = key, value
        onx.doc_string = f"Genius {name}@{version} {head_name} head"
        blob = onx.SerializeToString()
        file = f"{head_name}.onnx"
        _atomic(folder / file, blob)
        labels = jobs + [IDLE_LABEL] if head_name == "recognition" else jobs
        heads[head_name] = HeadMeta(
            file=file, input_width=width, labels=labels, classes=list(head.classes),
            calibration=head.calibration.to_dict() if head.calibration is not None else None,
            prior_shift=head.prior_shift.to_dict() if head.prior_shift is not None else None,
            epochs=head.epochs, validation=head.validation, bytes=len(blob),
        )
    meta = ArtifactMeta(
        name=name, version=version, created=datetime.now(UTC).isoformat(timespec="seconds"),
        schema_=schema, schema_hash=schema.hash, jobs=jobs, markets=list(schema.markets),
        heads=heads, neutral=[float(v) for v in np.asarray(model.neutral)],
        rules=dict(model.config.rules._asdict()), config=model.config.model_dump(mode="json"), seed=model.seed,
        trained_on={**trained_on, **model.stats}, evaluated_on=evaluated_on or {}, evaluation=evaluation or {},
    )
    _write_meta(folder, meta)
    return folder


def _write_meta(folder: Path, meta: ArtifactMeta) -> None:
    data = meta.model_dump(mode="json", by_alias=True)
    _atomic(folder / "meta.json", json.dumps(data, indent=1, ensure_ascii=False).encode())


def _to_onnx(pipeline: Any, width: int, *, classifier: bool) -> Any:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    _register_converters()
    options = {id(pipeline.steps[-1][1]): {"zipmap": False}} if classifier else None
    return to_onnx(
        pipeline, initial_types=[("features", FloatTensorType([None, width]))], options=options, target_opset=17
    )


def _expected_in_onnx(pipeline: Any, n_features: int, n_jobs: int) -> Any:
    """The expected-time head as one graph from the feature row to one estimate per job.

    The regressor learnt on rows ``features ⧺ one-hot(job)``. Its first layer is linear, so
    ``W·[z; e_j] = W_f·z + W_j·e_j``: the feature part is computed once per row and each job
    adds its own constant vector, instead of running the network on ``J`` copies of the row.
    """
    from onnx import TensorProto, helper, numpy_helper

    counts, scaler, mlp = (step for _, step in pipeline.steps)
    mean = scaler.mean_.astype(np.float64)
    scale = scaler.scale_.astype(np.float64)
    w = [c.astype(np.float64) for c in mlp.coefs_]
    b = [c.astype(np.float64) for c in mlp.intercepts_]
    f = n_features
    onehot = (np.eye(n_jobs) - mean[f:]) / scale[f:]  # the scaled one-hot rows, one per job
    per_job = onehot @ w[0][f:] + b[0]  # (J, H): each job's constant first-layer input
    mask = np.zeros((1, f), np.bool_)
    mask[0, : counts.n_counts] = True
    consts = {
        "zero": np.array([0.0], np.float32), "one": np.array([1.0], np.float32), "mask": mask,
        "mean": mean[:f].astype(np.float32), "inv_scale": (1.0 / scale[:f]).astype(np.float32),
        "w0": w[0][:f].astype(np.float32), "per_job": per_job.astype(np.float32),
        "axis1": np.array([1], np.int64), "axis2": np.array([2], np.int64),
    }
    nodes = [
        helper.make_node("Max", ["features", "zero"], ["pos"]),
        helper.make_node("Add", ["pos", "one"], ["pos1"]),
        helper.make_node("Log", ["pos1"], ["logged"]),
        helper.make_node("Where", ["mask", "logged", "features"], ["counted"]),
        helper.make_node("Sub", ["counted", "mean"], ["centred"]),
        helper.make_node("Mul", ["centred", "inv_scale"], ["z"]),
        helper.make_node("MatMul", ["z", "w0"], ["shared"]),
        helper.make_node("Unsqueeze", ["shared", "axis1"], ["shared3"]),
        helper.make_node("Add", ["shared3", "per_job"], ["a0"]),
    ]
    act = {"relu": "Relu", "tanh": "Tanh", "logistic": "Sigmoid", "identity": "Identity"}[mlp.activation]
    previous = "a0"
    for layer in range(1, len(w)):
        nodes.append(helper.make_node(act, [previous], [f"h{layer}"]))
        consts[f"w{layer}"] = w[layer].astype(np.float32)
        consts[f"b{layer}"] = b[layer].astype(np.float32)
        nodes.append(helper.make_node("MatMul", [f"h{layer}", f"w{layer}"], [f"m{layer}"]))
        nodes.append(helper.make_node("Add", [f"m{layer}", f"b{layer}"], [f"a{layer}"]))
        previous = f"a{layer}"
    nodes.append(helper.make_node("Squeeze", [previous, "axis2"], ["log_seconds"]))
    graph = helper.make_graph(
        nodes, "expected_in",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, f])],
        [helper.make_tensor_value_info("log_seconds", TensorProto.FLOAT, [None, n_jobs])],
        initializer=[numpy_helper.from_array(v, name=k) for k, v in consts.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="genius")
    model.ir_version = 8
    return model


_registered = False


def _register_converters() -> None:
    """Teach skl2onnx the transforms of :mod:`models.transforms` (once per process)."""
    global _registered
    if _registered:
        return
    from skl2onnx import update_registered_converter
    from skl2onnx.algebra.onnx_ops import OnnxAdd, OnnxConcat, OnnxExp, OnnxLog, OnnxMatMul, OnnxMax, OnnxMul, OnnxSub, OnnxWhere
    from skl2onnx.common.data_types import FloatTensorType

    from models.transforms import ContextExpand, CountLog

    f32 = np.float32

    def same_shape(operator: Any) -> None:
        operator.outputs[0].type = FloatTensorType(operator.inputs[0].type.shape)

    def count_log(scope: Any, operator: Any, container: Any) -> None:
        op: CountLog = operator.raw_operator
        opv = container.target_opset
        x = operator.inputs[0]
        mask = np.zeros((1, op.n_features_in_), dtype=np.bool_)
        mask[0, : op.n_counts] = True
        logged = OnnxLog(OnnxAdd(OnnxMax(x, np.array([0.0], f32), op_version=opv), np.array([1.0], f32), op_version=opv), op_version=opv)
        OnnxWhere(mask, logged, x, op_version=opv, output_names=operator.outputs[:1]).add_to(scope, container)

    def expand_shape(operator: Any) -> None:
        op: ContextExpand = operator.raw_operator
        rows = operator.inputs[0].type.shape[0]
        operator.outputs[0].type = FloatTensorType([rows, op.n_features_in_ + op.k * (1 + len(op.interact))])

    def expand(scope: Any, operator: Any, container: Any) -> None:
        op: ContextExpand = operator.raw_operator
        opv = container.target_opset
        x = operator.inputs[0]
        time, pick, tile = op.matrices()
        cos_d = OnnxMatMul(x, time, op_version=opv)
        bumps = OnnxExp(OnnxMul(OnnxSub(cos_d, np.array([1.0], f32), op_version=opv), np.array([op.kappa], f32), op_version=opv), op_version=opv)
        parts: list[Any] = [x, bumps]
        if op.interact:
            parts.append(OnnxMul(OnnxMatMul(x, pick, op_version=opv), OnnxMatMul(bumps, tile, op_version=opv), op_version=opv))
        OnnxConcat(*parts, axis=1, op_version=opv, output_names=operator.outputs[:1]).add_to(scope, container)

    update_registered_converter(CountLog, "GeniusCountLog", same_shape, count_log)
    update_registered_converter(ContextExpand, "GeniusContextExpand", expand_shape, expand)
    _registered = True


def _atomic(target: Path, blob: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; an artifact is meant to be shared
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
