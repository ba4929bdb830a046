"""Artifacts: ONNX heads equal to the trained pipelines, metadata, schema refusal, the shipped model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from model_testkit import FAST

from devices.errors import ModelError, SchemaMismatch
from models.artifact import DEFAULT_ARTIFACT, export, read_meta
from models.dataset import Dataset
from models.heads import expected_in_rows
from models.samples import build_samples
from models.train import TrainedModel, train


def test_each_onnx_head_computes_what_the_scikit_learn_pipeline_computes(small_model: TrainedModel, small_artifact: Path, small_dataset: Dataset) -> None:
    samples = build_samples(small_model.schema, small_dataset, part="test", fraction=0.7)
    x = samples.features
    n_jobs = len(small_model.jobs)
    for name, head in small_model.heads.items():
        session = ort.InferenceSession(str(small_artifact / f"{name}.onnx"), providers=["CPUExecutionProvider"])
        if name == "expected_in":
            # one graph row -> an estimate per job, equal to the regressor on row + one-hot(job)
            got = session.run(None, {"features": x})[0]
            want = head.pipeline.predict(expected_in_rows(x, n_jobs)).reshape(x.shape[0], n_jobs)
        else:
            inputs = np.ascontiguousarray(x[:, : head.input_width])
            got = session.run(["probabilities"], {"features": inputs})[0]
            want = head.pipeline.predict_proba(inputs)
        assert got.shape == want.shape
        assert np.allclose(got, want, atol=1e-4), name


def test_metadata_names_the_model_its_schema_jobs_markets_and_training(small_model: TrainedModel, small_artifact: Path) -> None:
    meta = read_meta(small_artifact)
    assert meta.model_id == "genius-test@0.1.0"
    assert meta.schema_hash == small_model.schema.hash
    assert tuple(meta.jobs) == small_model.jobs and tuple(meta.markets) == small_model.markets
    assert meta.heads["recognition"].labels[-1] == "idle"
    assert meta.trained_on["data"] == "simulate_dataset(3, 6, 11)" and meta.trained_on["customers"] == 3
    assert len(meta.neutral) == small_model.schema.n_features
    for name in ("recognition", "next_job", "expected_in"):
        props = {p.key: p.value for p in onnx.load(str(small_artifact / f"{name}.onnx")).metadata_props}
        assert props == {"genius.model": "genius-test@0.1.0", "genius.head": name, "genius.schema_hash": meta.schema_hash}


def _rewrite(folder: Path, change) -> None:  # type: ignore[no-untyped-def]
    meta = json.loads((folder / "meta.json").read_text())
    change(meta)
    (folder / "meta.json").write_text(json.dumps(meta))


def test_an_artifact_trained_on_other_feature_code_is_refused_with_a_clear_error(small_artifact: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(small_artifact, tmp_path / "old"))

    def older_code(meta: dict) -> None:  # type: ignore[type-arg]
        meta["schema"]["code_hash"] = "0123456789abcdef"
        from models.schema import FeatureSchema

        meta["schema_hash"] = FeatureSchema.model_validate(meta["schema"]).hash

    _rewrite(folder, older_code)
    with pytest.raises(SchemaMismatch, match="feature code changed.*retrain"):
        read_meta(folder)
    assert read_meta(folder, check_schema=False).schema_.code_hash == "0123456789abcdef"


def test_a_schema_that_does_not_hash_to_its_recorded_hash_is_refused(small_artifact: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(small_artifact, tmp_path / "edited"))
    _rewrite(folder, lambda meta: meta["schema"].update(horizons_s=[60.0]))
    with pytest.raises(SchemaMismatch, match="does not hash"):
        read_meta(folder)


def test_a_missing_or_malformed_artifact_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError):
        read_meta(tmp_path / "nothing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "meta.json").write_text("{")
    with pytest.raises(ModelError):
        read_meta(tmp_path / "bad")


def test_training_is_reproducible_by_seed(small_dataset: Dataset, small_model: TrainedModel, tmp_path: Path) -> None:
    again = train(small_dataset, config=FAST, seed=0, fraction=0.7)
    samples = build_samples(small_model.schema, small_dataset, part="test", fraction=0.7)
    for name in ("recognition", "next_job"):
        a, b = small_model.heads[name], again.heads[name]
        width = a.input_width
        assert np.array_equal(a.pipeline.predict_proba(samples.features[:, :width]), b.pipeline.predict_proba(samples.features[:, :width]))


def test_the_shipped_artifact_is_small_and_loads_with_no_training() -> None:
    meta = read_meta(DEFAULT_ARTIFACT)
    assert meta.name == "genius-sim" and meta.trained_on["source"] == "simulation"
    size = sum(p.stat().st_size for p in DEFAULT_ARTIFACT.iterdir())
    assert size < 5 * 1024 * 1024
    assert (DEFAULT_ARTIFACT.parent / f"{DEFAULT_ARTIFACT.name}.md").exists()  # its model card
    assert meta.evaluation, "the shipped model carries its evaluation figures"


def test_export_writes_a_folder_a_fresh_process_could_load(small_model: TrainedModel, tmp_path: Path) -> None:
    folder = export(small_model, tmp_path / "m", name="m", version="1", trained_on={})
    assert sorted(p.name for p in folder.iterdir()) == ["expected_in.onnx", "meta.json", "next_job.onnx", "recognition.onnx"]
