"""Simulated customers: determinism, individuality, markets, sensors, ground truth kept off the wire."""

from __future__ import annotations

import collections
import hashlib
import json
import re
from datetime import date

import numpy as np
import pytest

from simulations import JOBS, MARKETS, CustomerSimulation, Population, to_epoch
from simulations.customer import Label

START = to_epoch(date(2024, 1, 1))
DAY = 86400.0
ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@pytest.fixture(scope="module")
def month() -> list[tuple[CustomerSimulation, list[Label]]]:
    """24 customers x 28 days (planned and labelled once for the module)."""
    out = []
    for spec in Population.generate(24, seed=11):
        sim = CustomerSimulation(spec)
        out.append((sim, sim.labels(START, START + 28 * DAY)))
    return out


def _digest(sim: CustomerSimulation, days: float) -> str:
    h = hashlib.sha256()
    for msg in sim.run(START, START + days * DAY):
        h.update(f"{msg.ts!r}|{msg.edge_id}|{msg.topic}|{msg.retain}|".encode())
        h.update(msg.payload)
    return h.hexdigest()


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not() -> None:
    a = _digest(CustomerSimulation(Population.customer(3, 5)), 3)
    b = _digest(CustomerSimulation(Population.customer(3, 5)), 3)
    c = _digest(CustomerSimulation(Population.customer(3, 6)), 3)
    assert a == b
    assert a != c


def test_population_is_stable_when_it_grows_and_ids_are_valid() -> None:
    small = Population.generate(3, seed=2)
    large = Population.generate(10, seed=2)
    assert small == large[:3]
    for spec in large:
        assert ID.match(spec.customer_id)
        assert all(ID.match(edge) for edge in spec.edges)
        assert set(spec.edges.values()) == {"home", "hotel", "holiday_home", "gym"}
        assert spec.home.role == "home" and spec.hotel.edge_role == "venue"


def test_some_customers_are_flagged_atypical_and_live_differently(month) -> None:
    atypical = [(sim, labels) for sim, labels in month if sim.spec.atypical]
    typical = [(sim, labels) for sim, labels in month if not sim.spec.atypical]
    assert 1 <= len(atypical) < len(typical)

    def median_wake_hour(labels: list[Label]) -> float:
        hours = [(lb.begin % DAY) / 3600 for lb in labels if lb.job == "wake_up" and lb.resident == 0]
        return float(np.median(hours))

    typical_wake = np.median([median_wake_hour(lb) for _, lb in typical])
    # night owls wake hours later, night-shift workers in the afternoon half of the weeks,
    # day-shift weeks before dawn: every atypical customer is far from the typical median
    for sim, labels in atypical:
        wakes = np.array([(lb.begin % DAY) / 3600 for lb in labels if lb.job == "wake_up" and lb.resident == 0])
        far = np.mean(np.abs(wakes - typical_wake) > 1.5)
        assert far > 0.4, (sim.spec.archetype, far)


def test_routines_are_individual_between_customers_more_than_within(month) -> None:
    means, spreads, coffee_share = [], [], []
    for sim, labels in month:
        if sim.spec.atypical:
            continue
        wakes = [(lb.begin % DAY) / 3600 for lb in labels
                 if lb.job == "wake_up" and lb.resident == 0 and lb.market == "home:weekday"]
        means.append(np.mean(wakes))
        spreads.append(np.std(wakes))
        jobs = collections.Counter(lb.job for lb in labels if lb.resident == 0)
        coffee_share.append(jobs["make_coffee"] / max(1, jobs["make_coffee"] + jobs["make_tea"]))
    assert np.std(means) > np.mean(spreads)  # between-customer spread exceeds within
    assert min(coffee_share) == 0.0 and max(coffee_share) == 1.0  # tea drinkers and coffee drinkers


def test_a_personal_model_beats_the_population_average(month) -> None:
    """Predicting tomorrow's weekday wake time: the person's own mean beats the population's."""
    train, test = {}, {}
    for sim, labels in month:
        wakes = [(lb.begin, (lb.begin % DAY) / 3600) for lb in labels
                 if lb.job == "wake_up" and lb.resident == 0 and lb.market == "home:weekday"]
        train[sim.customer_id] = [h for t, h in wakes if t < START + 14 * DAY]
        test[sim.customer_id] = [h for t, h in wakes if t >= START + 14 * DAY]
    population = np.mean([h for hs in train.values() for h in hs])
    err_pop = np.mean([abs(h - population) for hs in test.values() for h in hs])
    err_personal = np.mean([abs(h - np.median(train[c])) for c, hs in test.items() for h in hs if train[c]])
    assert err_personal < 0.6 * err_pop


def test_every_market_occurs_for_most_customers_over_four_weeks(month) -> None:
    seen = collections.Counter()
    for _, labels in month:
        seen.update({lb.market for lb in labels})
    assert set(seen) == set(MARKETS)
    for market in MARKETS:
        assert seen[market] >= 0.75 * len(month), (market, seen[market])


def test_labels_are_valid_jobs_and_one_resident_never_does_two_jobs_at_once(month) -> None:
    for sim, labels in month:
        assert {lb.job for lb in labels} <= set(JOBS)
        by_resident: dict[int, list[Label]] = collections.defaultdict(list)
        for lb in labels:
            assert lb.end > lb.begin
            assert lb.edge_id in sim.spec.edges
            by_resident[lb.resident].append(lb)
        for runs in by_resident.values():
            runs.sort(key=lambda r: r.begin)
            assert all(a.end <= b.begin + 1e-6 for a, b in zip(runs, runs[1:]))


def test_venue_jobs_happen_at_venue_edges_with_their_market(month) -> None:
    for sim, labels in month:
        roles = sim.spec.edges
        for lb in labels:
            if lb.market == "venue:gym":
                assert roles[lb.edge_id] == "gym"
            if roles[lb.edge_id] == "hotel":
                assert lb.market == "travel:business"
            if roles[lb.edge_id] == "holiday_home":
                assert lb.market == "travel:leisure"


# ("label" is not here: zigbee2mqtt's own exposes carry a display "label" such as "Occupancy".)
_LEAK_KEYS = {"job", "jobs", "labels", "market", "markets", "activity", "resident", "truth", "ground_truth"}


def _strings(obj: object) -> list[str]:
    if isinstance(obj, dict):
        return [*obj.keys(), *(s for v in obj.values() for s in _strings(v))]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v)]
    return [obj] if isinstance(obj, str) else []


def test_ground_truth_never_appears_on_the_wire(month) -> None:
    forbidden = set(JOBS) | set(MARKETS) | _LEAK_KEYS
    distinctive = [j.encode() for j in JOBS if "_" in j]  # e.g. b"make_coffee", b"check_in"
    checked = 0
    # two customers who went everywhere: home, hotel, holiday home, gym, guests
    travelled = [sim for sim, labels in month if len({lb.market for lb in labels}) == len(MARKETS)][:2]
    assert len(travelled) == 2
    for sim in travelled:
        for msg in sim.run(START, START + 28 * DAY):
            assert not set(msg.topic.split("/")) & forbidden, msg.topic
            assert not any(d in msg.payload for d in distinctive), msg.payload[:200]
            try:
                doc = json.loads(msg.payload)
            except ValueError:
                doc = msg.payload.decode()
            assert not set(_strings(doc)) & forbidden, msg.payload[:200]
            checked += 1
    assert checked > 10_000


def test_events_are_windowed_ordered_and_typed() -> None:
    sim = CustomerSimulation(Population.customer(1, 4))
    events = list(sim.events(START + 0.5 * DAY, START + 2 * DAY))
    assert events and all(START + 0.5 * DAY <= e.ts < START + 2 * DAY for e in events)
    assert all(a.ts <= b.ts for a, b in zip(events, events[1:]))
    kinds = {e.capability: type(e.value) for e in events}
    assert kinds["occupancy"] is bool and kinds["power"] is float
    paired = [ev for _, evs in sim.run_with_events(START + 0.5 * DAY, START + 2 * DAY, discovery=False) for ev in evs]
    assert sorted(paired) == sorted(events)  # every event comes from exactly one wire message


def test_pir_goes_false_after_its_timeout_and_alternates(month) -> None:
    sim, _ = month[0]
    timeouts = {(p.edge_id, d.wire_id): d.timeout for p in sim.spec.places for d in p.devices if d.kind == "motion"}
    last: dict[tuple[str, str], tuple[float, bool]] = {}
    n = 0
    for ev in sim.events(START, START + 7 * DAY):
        if ev.capability != "occupancy":
            continue
        key = (ev.edge_id, ev.device)
        if key in last:
            ts, value = last[key]
            assert value != ev.value  # on, off, on, off …
            if not ev.value:
                assert ev.ts - ts >= timeouts[key] - 1e-6
        else:
            assert ev.value is True
        last[key] = (ev.ts, bool(ev.value))
        n += 1
    assert n > 500


def test_showers_raise_bathroom_humidity(month) -> None:
    sim, labels = month[0]
    showers = [lb for lb in labels if lb.job == "shower" and sim.spec.edges[lb.edge_id] == "home"]
    hum = [(e.ts, e.value) for e in sim.events(START, START + 28 * DAY)
           if e.device == "bathroom/climate" and e.capability == "humidity"]
    ts = np.array([t for t, _ in hum])
    values = np.array([v for _, v in hum])
    during = np.concatenate([values[(ts >= s.begin + 300) & (ts <= s.end + 300)] for s in showers])
    assert showers and during.size
    assert np.median(during) > np.median(values) + 10.0


def test_appliances_draw_power_while_their_job_runs(month) -> None:
    sim, labels = month[0]
    kettle_or_coffee = [lb for lb in labels if lb.job in ("make_coffee", "make_tea")
                        and sim.spec.edges[lb.edge_id] == "home"]
    power = [(e.ts, e.value, e.device) for e in sim.events(START, START + 28 * DAY)
             if e.capability == "power" and e.value > 800]
    hits = sum(any(lb.begin <= t <= lb.end + 60 for t, _, _ in power) for lb in kettle_or_coffee)
    assert kettle_or_coffee and hits >= 0.9 * len(kettle_or_coffee)
