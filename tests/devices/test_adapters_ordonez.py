"""Ordóñez ADL replay: the real dataset's counts and quirks, and the MQTT row adapter."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import dataset_or_skip

from devices import PayloadError
from devices.adapters import parse_sensor_row, read_sensor_rows, replay_readings, row_readings
from devices.adapters.ordonez import ADAPTER, sensors_file

pytestmark = pytest.mark.dataset

HEADER = "Start time          \tEnd time            \tLocation\tType\t\tPlace\n" \
         "--------------------\t--------------------\t--------\t--------\t-----\n"


def _write(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "OrdonezZ_Sensors.txt"
    path.write_text(HEADER + "\n".join(rows), encoding="ascii")
    return path


# -- the real dataset (skips when ../shared/datasets is absent) ----------------------------------


@pytest.mark.parametrize(("home", "rows", "flushes"), [("A", 409, 45), ("B", 2334, 93)])
def test_real_homes_replay_every_row_in_time_order(home: str, rows: int, flushes: int) -> None:
    root = dataset_or_skip("ordonez_adl")
    assert len(read_sensor_rows(sensors_file(root, home))) == rows
    readings = list(replay_readings(root, home=home))
    assert len(readings) == 2 * rows - flushes  # a flush has no OFF
    assert all(a.ts <= b.ts for a, b in zip(readings, readings[1:]))
    assert Counter(r.capability for r in readings)["action"] == flushes


def test_real_home_a_device_names_rooms_and_span() -> None:
    root = dataset_or_skip("ordonez_adl")
    per_device = Counter(row.device for row in read_sensor_rows(sensors_file(root, "A")))
    assert (per_device["living_seat"], per_device["kitchen_fridge"], per_device["bathroom_toilet"]) == (81, 56, 45)
    assert len(per_device) == 12
    readings = list(replay_readings(root, home="A"))
    assert {r.room for r in readings} == {"bathroom", "bedroom", "entrance", "kitchen", "living"}
    first = datetime.fromtimestamp(readings[0].ts, UTC)
    assert (first.isoformat(), readings[0].device) == ("2011-11-28T02:27:59+00:00", "bedroom_bed")


def test_real_home_b_out_of_order_rows_are_sorted() -> None:
    path = sensors_file(dataset_or_skip("ordonez_adl"), "B")
    lines = [line for line in path.read_text(encoding="ascii").splitlines() if line[:1].isdigit()]
    raw_starts = [parse_sensor_row(line).start for line in lines]
    assert sum(b < a for a, b in zip(raw_starts, raw_starts[1:])) == 4  # the README's quirk is really there
    starts = [row.start for row in read_sensor_rows(path)]
    assert starts == sorted(starts)


def test_every_real_row_read_over_mqtt_gives_the_replay_readings() -> None:
    path = sensors_file(dataset_or_skip("ordonez_adl"), "A")
    session = ADAPTER.new_session()
    for row in read_sensor_rows(path):
        result = session.handle("ordonez/a/sensor", row.raw.encode("ascii"), ts=0.0)
        assert result.readings == row_readings(row)
    assert len(session.profiles()) == 12


# -- quirks on small files --------------------------------------------------------------------


def test_mixed_space_and_tab_separators_parse(tmp_path: Path) -> None:
    rows = read_sensor_rows(_write(tmp_path, "2011-11-29 12:22:38 \t2011-11-29 13:25:15\t\tSeat\t\tPressure\tLiving"))
    assert [(r.location, r.type, r.place, r.end - r.start) for r in rows] == [("Seat", "Pressure", "Living", 3757.0)]


def test_timestamps_are_wall_clock_read_as_utc(tmp_path: Path) -> None:
    line = "2011-11-28 02:27:59\t\t2011-11-28 10:18:11\t\tBed\t\t\tPressure\tBedroom"
    (row,) = read_sensor_rows(_write(tmp_path, line))
    assert row.start == datetime(2011, 11, 28, 2, 27, 59, tzinfo=UTC).timestamp()


def test_magnetic_activation_means_opened(tmp_path: Path) -> None:
    line = "2011-11-28 10:34:41\t\t2011-11-28 10:34:50\t\tFridge\t\tMagnetic\tKitchen"
    (row,) = read_sensor_rows(_write(tmp_path, line))
    assert [(r.device, r.capability, r.value, r.room) for r in row_readings(row)] == [
        ("kitchen_fridge", "contact", False, "kitchen"), ("kitchen_fridge", "contact", True, "kitchen")]


def test_zero_length_interval_keeps_on_before_off(tmp_path: Path) -> None:
    path = _write(tmp_path,
                  "2011-11-28 10:00:00\t\t2011-11-28 10:00:00\t\tBasin\t\tPIR\t\t\tBathroom",
                  "2011-11-28 09:59:00\t\t2011-11-28 10:00:00\t\tShower\t\tPIR\t\t\tBathroom")
    values = [(r.device, r.value) for r in replay_readings(path, home="Z")]
    assert values == [("bathroom_shower", True), ("bathroom_shower", False), ("bathroom_basin", True),
                      ("bathroom_basin", False)]


def test_back_to_back_intervals_of_one_sensor_end_on(tmp_path: Path) -> None:
    path = _write(tmp_path,
                  "2011-11-28 10:00:00\t\t2011-11-28 10:05:00\t\tSeat\t\tPressure\tLiving",
                  "2011-11-28 10:05:00\t\t2011-11-28 10:09:00\t\tSeat\t\tPressure\tLiving")
    five = datetime(2011, 11, 28, 10, 5, tzinfo=UTC).timestamp()
    at_five = [r.value for r in replay_readings(path, home="Z") if r.ts == five]
    assert at_five == [False, True]


def test_interval_ending_before_it_starts_is_dropped(tmp_path: Path) -> None:
    path = _write(tmp_path, "2011-12-02 12:20:41\t\t2011-12-01 10:20:59\t\tBasin\t\tPIR\t\t\tBathroom",
                  "2011-12-02 12:30:00\t\t2011-12-02 12:31:00\t\tBasin\t\tPIR\t\t\tBathroom")
    assert len(read_sensor_rows(path)) == 1


def test_malformed_data_line_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "2011-11-28 10:00:00\t\t2011-11-28 10:05:00\t\tSeat")
    with pytest.raises(PayloadError, match=r":3:") as info:
        read_sensor_rows(path)
    assert info.value.reason == "schema"


def test_mqtt_topic_must_be_the_replay_topic() -> None:
    with pytest.raises(PayloadError) as info:
        ADAPTER.new_session().handle("ordonez/a/other", b"x", ts=0.0)
    assert info.value.reason == "unknown_device"
