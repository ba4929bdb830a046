"""The one dataset format: round trip, validation, simulated datasets written by the CLI."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from devices.errors import StorageError
from genius.cli import main
from models.dataset import CAPABILITIES, DatasetBuilder, Vocabulary, load, save
from simulations import JOBS, MARKETS, CustomerSimulation, Population, to_epoch


def _small() -> DatasetBuilder:
    b = DatasetBuilder(source="test", jobs=("cook", "sleep"), markets=("home:weekday",))
    edge = b.edges.index("e1")
    b.add_events("cust-b", edge=edge, ts=np.array([5.0, 1.0]), device=b.devices.index("kitchen/motion"),
                 room=b.rooms.index("kitchen"), capability=b.capabilities.index("occupancy"), value=np.array([1.0, 0.0]))
    b.add_events("cust-a", edge=edge, ts=np.array([3.0]), device=b.devices.index("button"), room=-1,
                 capability=b.capabilities.index("action"), value=np.array([float(b.text_values.index("single"))]))
    b.add_labels("cust-a", job=np.array([1, 0]), market=np.array([0, 0]), begin=np.array([9.0, 2.0]),
                 end=np.array([10.0, 4.0]))
    return b


def test_round_trip_keeps_every_column_and_vocabulary(tmp_path: Path) -> None:
    ds = _small().build(note="hello")
    save(ds, tmp_path / "ds")
    back = load(tmp_path / "ds")
    assert back.meta == json.loads(json.dumps(ds.meta))
    for a, b in zip(ds.events, back.events):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    for a, b in zip(ds.labels, back.labels):
        assert np.array_equal(a, b)
    assert back.capabilities == CAPABILITIES
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["events.npz", "labels.npz", "meta.json"]


def test_rows_sort_by_customer_then_time_and_slice_per_customer() -> None:
    ds = _small().build()
    b = ds.customer("cust-b")
    assert b.events.ts.tolist() == [1.0, 5.0]
    assert b.labels.size == 0
    a = ds.customer(ds.customers.index("cust-a"))
    assert a.labels.begin.tolist() == [2.0, 9.0]
    assert [ds.jobs[j] for j in a.labels.job] == ["cook", "sleep"]
    assert ds.value_text(int(a.events.capability[0]), float(a.events.value[0])) == "single"
    assert a.events.room.tolist() == [-1]
    assert [c.customer_id for c in ds] == ["cust-b", "cust-a"]
    with pytest.raises(KeyError):
        ds.customer("nobody")


def test_loader_refuses_what_is_not_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        load(tmp_path / "missing")
    ds = _small().build()
    save(ds, tmp_path / "ds")
    meta = json.loads((tmp_path / "ds" / "meta.json").read_text())
    (tmp_path / "ds" / "meta.json").write_text(json.dumps({**meta, "format": "other/9"}))
    with pytest.raises(StorageError, match="format"):
        load(tmp_path / "ds")
    bad = ds.events._replace(device=np.full(ds.events.size, 99, np.int32))
    with pytest.raises(StorageError, match="vocabulary"):
        type(ds).from_columns(ds.meta, bad, ds.labels)
    unsorted = ds.events.take(np.arange(ds.events.size)[::-1])
    with pytest.raises(StorageError, match="sorted"):
        type(ds).from_columns(ds.meta, unsorted, ds.labels)


def test_vocabulary_numbers_names_in_first_seen_order() -> None:
    v = Vocabulary(["a", "b"])
    assert (v.index("b"), v.index("c"), v.index("a")) == (1, 2, 0)
    assert v.names == ("a", "b", "c") and "c" in v and v.get("z") is None


def test_cli_simulate_writes_what_the_simulator_produces(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sim"
    code = main(["simulate", "--customers", "3", "--days", "2", "--seed", "9", "--out", str(out), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    ds = load(out)
    assert summary["events"] == ds.events.size and summary["customers"] == 3
    assert ds.jobs == JOBS and ds.markets == MARKETS and ds.source == "simulation"
    assert ds.meta["seed"] == 9 and "licence" in ds.meta
    start = to_epoch(date(2024, 1, 1))
    for spec in Population.generate(3, seed=9):
        sim = CustomerSimulation(spec)
        expected = list(sim.events(start, start + 2 * 86400))
        got = ds.customer(spec.customer_id)
        assert got.events.size == len(expected)
        assert np.allclose(np.sort(got.events.ts), [e.ts for e in expected])
        labels = sim.labels(start, start + 2 * 86400)
        assert got.labels.size == len(labels)
        assert sorted(ds.jobs[j] for j in got.labels.job) == sorted(lb.job for lb in labels)
        assert ds.meta["customer_info"][spec.customer_id]["atypical"] == spec.atypical
    assert main(["dataset", "info", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["events"] == ds.events.size
