"""SeqRanges/EdgeProgress: the interval set behind stored_through and gaps."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.progress import EdgeProgress, SeqRanges


def test_in_order_runs_merge_into_one_range() -> None:
    r = SeqRanges()
    assert r.add_range(1, 500) == 500
    assert r.add_range(501, 1000) == 500
    assert list(r) == [(1, 1000)]
    assert (r.contiguous, r.high, r.gaps()) == (1000, 1000, [])


def test_out_of_order_run_leaves_a_gap_until_filled() -> None:
    r = SeqRanges([(1, 10)])
    r.add_range(21, 30)
    assert (r.contiguous, r.high, r.gaps()) == (10, 30, [(11, 20)])
    assert r.add_range(11, 20) == 10
    assert (r.contiguous, r.gaps(), r.range_count) == (30, [], 1)


def test_missing_first_seq_means_nothing_contiguous() -> None:
    r = SeqRanges([(5, 9)])
    assert r.contiguous == 0
    assert r.gaps() == [(1, 4)]


def test_overlapping_add_counts_only_new_seqs() -> None:
    r = SeqRanges([(1, 10), (20, 30)])
    assert r.covered(5, 25) == 12
    assert r.add_range(5, 25) == 9
    assert list(r) == [(1, 30)]


def test_gaps_are_capped() -> None:
    r = SeqRanges((i * 10, i * 10) for i in range(1, 50))
    assert len(r.gaps(limit=5)) == 5
    assert r.gaps(limit=5)[0] == (1, 9)


def test_json_round_trip() -> None:
    r = SeqRanges([(1, 3), (7, 9)])
    assert SeqRanges.from_json(r.to_json()) == r


def test_progress_counts_duplicates_and_returns_only_new_positions() -> None:
    p = EdgeProgress(1)
    assert p.accept(list(range(1, 11))) is None  # fast path: all new
    assert p.accept(list(range(1, 11))) == []  # a replay: all duplicates
    keep = p.accept([9, 10, 11, 11, 12])
    assert keep == [2, 4]  # 11 (first time) and 12
    assert (p.events, p.duplicates, p.contiguous) == (12, 13, 12)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 300), st.integers(0, 40)), max_size=40))
def test_ranges_match_a_plain_set(adds: list[tuple[int, int]]) -> None:
    r = SeqRanges()
    model: set[int] = set()
    for lo, width in adds:
        hi = lo + width
        expected_new = len(set(range(lo, hi + 1)) - model)
        assert r.covered(lo, hi) == (width + 1) - expected_new
        assert r.add_range(lo, hi) == expected_new
        model.update(range(lo, hi + 1))
    assert len(r) == len(model)
    high = max(model, default=0)
    assert r.high == high
    contiguous = 0
    while contiguous + 1 in model:
        contiguous += 1
    assert r.contiguous == contiguous
    missing = sorted(set(range(1, high + 1)) - model)
    assert sum(b - a + 1 for a, b in r.gaps()) == len(missing)
    assert all(s in r for s in model) and not any(s in r for s in missing)
    ranges = list(r)
    assert all(ranges[i][1] + 1 < ranges[i + 1][0] for i in range(len(ranges) - 1))  # disjoint, not adjacent


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(1, 200), max_size=30), max_size=20))
def test_accept_stores_each_seq_once(batches: list[list[int]]) -> None:
    p = EdgeProgress(1)
    stored: list[int] = []
    for seqs in batches:
        keep = p.accept(seqs)
        stored.extend(seqs if keep is None else [seqs[i] for i in keep])
    assert len(stored) == len(set(stored))
    assert set(stored) == {s for b in batches for s in b}
    assert p.events + p.duplicates == sum(len(b) for b in batches)
