"""Optimal binning through optbinning, on rows and on per-bin counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optbinning import OptimalBinning

from riskfed.binning import BinStatistics, optimal_merge, optimal_numeric, prebin_categorical, prebin_numeric
from riskfed.errors import ConfigurationError


def _rows(seed: int, n: int, missing: float, special: float):
    rng = np.random.default_rng(seed)
    x = np.round(rng.lognormal(3, 1, size=n), 1)
    p = 1 / (1 + np.exp(-(-2.0 + 0.03 * x + rng.normal(0, 0.5, size=n))))
    y = (rng.random(n) < p).astype(int)
    x[rng.random(n) < missing] = np.nan
    x[rng.random(n) < special] = -1.0
    return pd.Series(x, name="x"), y


def _stats(char, series, y):
    codes, _ = char.assign(series)
    return BinStatistics.from_codes(char.name, [b.label for b in char.bins], codes, y)


@given(
    seed=st.integers(0, 10_000),
    n=st.integers(300, 3000),
    missing=st.sampled_from([0.0, 0.05]),
    special=st.sampled_from([0.0, 0.1]),
    max_bins=st.integers(2, 8),
    min_share=st.sampled_from([0.02, 0.05, 0.1]),
    trend=st.sampled_from(["auto", "ascending", "descending", "peak", "valley", None]),
)
@settings(max_examples=25)
def test_merge_from_counts_equals_optbinning_on_the_rows(seed, n, missing, special, max_bins, min_share, trend):
    series, y = _rows(seed, n, missing, special)
    pre = prebin_numeric(series, party="fintech_1", specials=[-1], max_bins=20, min_bin_share=0.02)
    stats = _stats(pre, series, y)
    partition = optimal_merge(pre.kinds, stats.count, stats.events, ordered=True, max_bins=max_bins,
                              min_bin_share=min_share, monotonic_trend=trend)
    merged, _ = pre.merge(partition)
    on_rows = OptimalBinning(dtype="numerical", solver="cp", max_n_bins=max_bins, min_bin_size=min_share,
                             monotonic_trend=trend, user_splits=list(pre.cuts) or None, special_codes=[-1.0])
    on_rows.fit(series.to_numpy(), y)
    assert merged.cuts == tuple(float(s) for s in on_rows.splits)


def test_merge_from_counts_respects_trend_share_and_bin_limit():
    series, y = _rows(1, 5000, 0.05, 0.05)
    pre = prebin_numeric(series, party="fintech_1", specials=[-1], max_bins=20, min_bin_share=0.02)
    stats = _stats(pre, series, y)
    partition = optimal_merge(pre.kinds, stats.count, stats.events, ordered=True, max_bins=5,
                              min_bin_share=0.1, monotonic_trend="ascending")
    merged, code_map = pre.merge(partition)
    merged_stats = _stats(merged, series, y)
    intervals = slice(0, merged.n_regular)
    assert 2 <= merged.n_regular <= 5
    assert np.all(merged_stats.count[intervals] >= 0.1 * len(series))
    assert np.all(np.diff(merged_stats.event_rate[intervals]) > 0)
    # missing and special keep their own bins and counts
    assert merged_stats.count[merged.missing_code] == stats.count[pre.missing_code]
    assert merged_stats.count[merged.special_code(0)] == stats.count[pre.special_code(0)]
    assert np.array_equal(np.bincount(code_map, weights=stats.count, minlength=merged.n_bins), merged_stats.count)


def test_categorical_merge_orders_levels_by_event_rate_and_ignores_code_order():
    rng = np.random.default_rng(4)
    levels = np.array(list("abcdefgh"))
    rates = dict(zip(levels, [0.05, 0.4, 0.1, 0.35, 0.2, 0.06, 0.38, 0.21]))
    x = rng.choice(levels, size=8000)
    y = (rng.random(8000) < np.vectorize(rates.get)(x)).astype(int)
    series = pd.Series(x, name="segment")
    pre = prebin_categorical(series, party="bank")
    stats = _stats(pre, series, y)
    part = optimal_merge(pre.kinds, stats.count, stats.events, ordered=False, max_bins=3, min_bin_share=0.05)
    merged, _ = pre.merge(part)
    groups = {frozenset(g) for g in merged.groups}
    # Groups are runs of levels in event-rate order (a f c e h d g b), at most three of them.
    by_rate = "afcehdgb"
    assert len(groups) == 3 and frozenset().union(*groups) == frozenset(by_rate)
    for g in groups:
        positions = sorted(by_rate.index(level) for level in g)
        assert positions == list(range(positions[0], positions[0] + len(g)))
    # The same counts listed in another order give the same groups.
    order = np.array([3, 1, 7, 0, 5, 2, 6, 4])
    shuffled = optimal_merge([pre.kinds[i] for i in order] + pre.kinds[8:], np.r_[stats.count[order], stats.count[8:]],
                             np.r_[stats.events[order], stats.events[8:]], ordered=False, max_bins=3, min_bin_share=0.05)
    regroup = {frozenset(levels[order][shuffled[:8] == g]) for g in np.unique(shuffled[:8])}
    assert regroup == groups


def test_optimal_numeric_keeps_missing_and_specials_and_respects_limits():
    series, y = _rows(7, 6000, 0.05, 0.05)
    char = optimal_numeric(series, y, specials=[-1], max_bins=4, min_bin_share=0.08, monotonic_trend="ascending")
    stats = _stats(char, series, y)
    assert char.n_regular <= 4 and char.specials == (-1.0,)
    assert np.all(stats.count[: char.n_regular] >= 0.08 * len(series))
    assert np.all(np.diff(stats.event_rate[: char.n_regular]) > 0)
    assert stats.count[char.missing_code] == int(series.isna().sum())
    assert all(len(repr(c)) <= 8 for c in char.cuts)  # short decimals, not CART thresholds


def test_optimal_numeric_cuts_split_the_rows_as_optbinning_does():
    series, y = _rows(3, 4000, 0.0, 0.0)
    char = optimal_numeric(series, y, max_bins=6, min_bin_share=0.05)
    ob = OptimalBinning(dtype="numerical", solver="cp", max_n_bins=6, min_bin_size=0.05, min_prebin_size=0.05)
    ob.fit(series.to_numpy(), y)
    theirs = np.digitize(series.to_numpy(), ob.splits)
    ours, _ = char.assign(series)
    assert np.array_equal(theirs, ours)


def test_bad_trend_and_mismatched_counts_are_configuration_errors():
    with pytest.raises(ConfigurationError, match="The 'monotonic_trend' parameter of optimal_merge must be one of"):
        optimal_merge(["interval"] * 2, [5, 5], [1, 2], ordered=True, monotonic_trend="up")
    with pytest.raises(ConfigurationError, match=r"needs one count and one event count per bin \(3\)"):
        optimal_merge(["interval"] * 3, [5, 5], [1, 2], ordered=True)


def test_merge_of_a_single_bin_or_one_class_is_the_identity():
    assert list(optimal_merge(["interval", "missing"], [10, 0], [3, 0], ordered=True)) == [0, 1]
    assert list(optimal_merge(["interval", "interval", "missing"], [10, 5, 0], [0, 0, 0], ordered=True)) == [0, 1, 2]


def test_solver_parameters_and_impossible_counts_are_checked_before_optbinning():
    with pytest.raises(ConfigurationError, match=r"The 'min_bin_share' parameter of optimal_merge must be a float in the range \(0.0, 0.5\]"):
        optimal_merge(["interval"] * 2, [5, 5], [1, 2], ordered=True, min_bin_share=0.9)
    with pytest.raises(ConfigurationError, match=r"The 'max_bins' parameter of optimal_numeric must be an int"):
        optimal_numeric(pd.Series([1.0, 2.0], name="x"), np.array([0, 1]), max_bins=0)
    with pytest.raises(ConfigurationError, match="0 <= events <= rows in every bin"):
        optimal_merge(["interval"] * 2, [5, 5], [6, 2], ordered=True)
