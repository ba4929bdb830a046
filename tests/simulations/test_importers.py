"""Real datasets (read in place from ../shared/datasets, never copied) import with the README's counts."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.errors import ConfigError
from genius.cli import main
from models.dataset import Dataset, load
from simulations.importers import import_aras, import_ordonez
from simulations.importers.aras import parse_day

pytestmark = pytest.mark.dataset
# ../shared/datasets beside the repository (as tests/conftest.py's dataset_or_skip; importing it
# by module name is ambiguous once several test folders have a conftest.py)
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


def dataset_or_skip(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real dataset not present at {path} (../shared/datasets is not part of this checkout)")
    return path


@pytest.fixture(scope="module")
def aras_a() -> Dataset:
    return import_aras(dataset_or_skip("aras"), house="A")


def _no_overlaps(ds: Dataset, customer: str) -> None:
    lb = ds.customer(customer).labels
    assert np.all(lb.end > lb.begin)
    assert np.all(lb.begin[1:] >= lb.end[:-1])


def test_ordonez_a_counts_match_the_readme() -> None:
    ds = import_ordonez(dataset_or_skip("ordonez_adl"), home="A")
    quirks = ds.meta["quirks"]
    assert quirks["sensor_intervals"] == 409
    assert quirks["label_rows"] == 248
    assert quirks["labels_dropped_end_before_start"] == 3  # the three rows whose end precedes their start
    assert quirks["labels_cut_by_later_overlap"] == 2
    assert ds.labels.size == 245
    assert ds.events.size == 2 * 409 - 45  # ON and OFF per interval; the 45 flushes only ON
    assert ds.customers == ("ordonez-a",) and len(ds.devices) == 12
    assert "Dinner" not in ds.jobs  # listed in the description, never occurs in home A
    _no_overlaps(ds, "ordonez-a")
    assert "commercial use is prohibited" in ds.meta["licence"]


def test_ordonez_b_later_label_wins_an_overlap() -> None:
    ds = import_ordonez(dataset_or_skip("ordonez_adl"), home="B")
    quirks = ds.meta["quirks"]
    assert quirks["sensor_intervals"] == 2334 and quirks["label_rows"] == 493
    assert quirks["labels_cut_by_later_overlap"] == 23
    assert ds.labels.size == 493 - quirks["labels_dropped_by_overlap"]
    assert ds.events.size == 2 * 2334 - 93  # 93 toilet flushes
    _no_overlaps(ds, "ordonez-b")
    assert np.all(np.diff(ds.events.ts) >= 0)  # the four out-of-order sensor rows are sorted


def test_aras_house_a_state_changes_and_episodes_match_the_readme(aras_a: Dataset) -> None:
    d = aras_a.meta["derivation"]
    assert d["state_changes_within_days"] == 103_945
    assert d["rising_changes"] == 51_976  # 0 -> 1
    assert d["seconds_with_a_change"] == 99_963
    assert d["initial_on_states"] == 31  # sensors already on at 00:00:00 of a day
    assert d["label_episodes"] == {"aras-a-r1": 1312, "aras-a-r2": 816}  # runs restart at each file
    r1, r2 = aras_a.customer("aras-a-r1"), aras_a.customer("aras-a-r2")
    assert r1.events.size == r2.events.size == 103_945 + 31  # the residents share the home's events
    assert np.array_equal(r1.events.ts, r2.events.ts)
    for c in (r1, r2):
        assert float(np.sum(c.labels.end - c.labels.begin)) == 30 * 86400  # every second labelled
    going_out = aras_a.jobs.index("Going Out")
    seconds = r1.labels.end - r1.labels.begin
    assert float(seconds[r1.labels.job == going_out].sum()) == 345_009
    assert aras_a.meta["edges"] == ["aras-a-home"]
    assert "2000-01-01" in aras_a.meta["time_note"]


def test_aras_days_start_at_2000_01_01_and_markets_follow_the_weekday(aras_a: Dataset) -> None:
    r1 = aras_a.customer("aras-a-r1")
    day0 = 946684800.0  # 2000-01-01, a Saturday
    assert r1.labels.begin[0] == day0
    assert aras_a.markets[int(r1.labels.market[0])] == "home:weekend"
    monday = r1.labels.begin >= day0 + 2 * 86400
    assert aras_a.markets[int(r1.labels.market[monday][0])] == "home:weekday"


def test_cli_imports_write_loadable_datasets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = dataset_or_skip("ordonez_adl")
    assert main(["dataset", "import", "ordonez", "--home", "a", "--source", str(source),
                 "--out", str(tmp_path / "a"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["labels"] == 245
    assert load(tmp_path / "a").events.size == 773
    assert main(["dataset", "import", "ordonez", "--home", "A", "--source", str(tmp_path / "nowhere"),
                 "--out", str(tmp_path / "b")]) == 2


def _day_text(sensors: np.ndarray, labels: np.ndarray, newline: str) -> bytes:
    rows = np.concatenate([sensors, labels], axis=1)
    return "".join(" ".join(str(v) for v in row) + newline for row in rows).encode()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), crlf=st.booleans(), lines=st.integers(1, 40))
def test_aras_day_parser_reads_what_was_written(seed: int, crlf: bool, lines: int) -> None:
    rng = np.random.default_rng(seed)
    sensors = rng.integers(0, 2, size=(lines, 20))
    labels = rng.integers(1, 28, size=(lines, 2))
    raw = _day_text(sensors, labels, "\r\n" if crlf else "\n")
    table = parse_day(raw, lines=lines)
    assert np.array_equal(table[:, :20], sensors) and np.array_equal(table[:, 20:], labels)


@pytest.mark.parametrize("raw", [b"1 0 x\n", b"1 0 100\n", b"1 0\n", b""])
def test_aras_day_parser_rejects_what_is_not_a_day(raw: bytes) -> None:
    with pytest.raises(ConfigError):
        parse_day(raw, lines=1)


def test_aras_import_refuses_a_missing_house(tmp_path: Path) -> None:
    (tmp_path / "HouseA").mkdir()
    with pytest.raises(ConfigError, match="no DAY_"):
        import_aras(tmp_path, house="A")
    with pytest.raises(ConfigError, match="missing"):
        import_aras(tmp_path, house="B")
    with gzip.open(tmp_path / "HouseA" / "DAY_1.txt.gz", "wb") as f:
        f.write(b"0 " * 21 + b"1\n")
    with pytest.raises(ConfigError):
        import_aras(tmp_path, house="A")
