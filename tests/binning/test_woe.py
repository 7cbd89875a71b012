"""WOE, IV and IV selection from counts; characteristic stability."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from riskfed.binning import (
    BinStatistics,
    CharacteristicStability,
    iv_strength,
    select_by_iv,
    stability_band,
    stability_index,
    woe_iv,
)
from riskfed.binning.woe import SMOOTHING
from riskfed.errors import ConfigurationError


def test_woe_and_iv_follow_the_documented_formulas():
    count = np.array([100, 300, 600])
    events = np.array([40, 60, 60])
    woe, iv = woe_iv(count, events)
    E, G = 160, 840
    for b in range(3):
        e, g = events[b] / E, (count[b] - events[b]) / G
        assert woe[b] == pytest.approx(math.log(e / g))
        assert iv[b] == pytest.approx((e - g) * math.log(e / g))
    assert woe[0] > 0 > woe[2]  # positive WOE = riskier than average


def test_a_bin_without_events_is_smoothed_and_an_empty_bin_is_neutral():
    woe, iv = woe_iv(np.array([50, 50, 0]), np.array([0, 20, 0]))
    assert woe[0] == pytest.approx(math.log((SMOOTHING / 20) / (50.5 / 80)))
    assert np.isfinite(woe).all()
    assert woe[2] == 0.0 and iv[2] == 0.0


@given(st.lists(st.tuples(st.integers(0, 500), st.integers(0, 500)), min_size=2, max_size=12))
def test_iv_is_non_negative_and_finite(pairs):
    events = np.array([e for e, _ in pairs])
    count = events + np.array([g for _, g in pairs])
    if events.sum() == 0 or events.sum() == count.sum():
        return
    woe, iv = woe_iv(count, events)
    assert np.isfinite(woe).all() and np.all(iv >= -1e-12)


def test_woe_needs_both_classes_and_valid_counts():
    with pytest.raises(ConfigurationError, match="WOE needs both events and non-events; got 0 events"):
        woe_iv(np.array([5, 5]), np.array([0, 0]))
    with pytest.raises(ConfigurationError, match="0 <= events <= rows in every bin"):
        woe_iv(np.array([5, 5]), np.array([6, 0]))


def test_statistics_from_codes_and_table():
    codes = np.array([0, 0, 1, 1, 1, 2])
    y = np.array([1, 0, 0, 0, 1, 0])
    stats = BinStatistics.from_codes("x", ["a", "b", "c"], codes, y)
    assert stats.count.tolist() == [2, 3, 1] and stats.events.tolist() == [1, 1, 0]
    table = stats.table()
    assert list(table.columns) == ["characteristic", "code", "bin", "count", "share", "events", "event_rate", "woe", "iv"]
    assert table["iv"].sum() == pytest.approx(stats.iv)
    assert BinStatistics.from_dict(stats.to_dict()).to_dict() == stats.to_dict()


def test_select_by_iv_keeps_and_explains():
    strong = BinStatistics("pay", ("a", "b"), np.array([100, 100]), np.array([60, 10]))
    useless = BinStatistics("noise", ("a", "b"), np.array([100, 100]), np.array([35, 35]))
    sel = select_by_iv({"pay": strong, "noise": useless}, min_iv=0.02)
    assert sel.kept == ("pay",)
    assert sel.dropped["noise"].startswith("IV 0.0000 below 0.02 (not predictive)")
    capped = select_by_iv({"pay": strong}, min_iv=0.02, max_iv=0.5)
    assert "suspiciously strong" in capped.dropped["pay"]
    with pytest.raises(ConfigurationError, match="The 'min_iv' parameter of select_by_iv"):
        select_by_iv({}, min_iv=0.5, max_iv=0.1)


def test_iv_strength_bands():
    assert [iv_strength(v) for v in (0.01, 0.05, 0.2, 0.4, 0.9)] == [
        "not predictive", "weak", "medium", "strong", "suspicious"]


def test_stability_index_and_bands():
    assert stability_index([10, 20, 30], [20, 40, 60]) == 0.0
    d, s = np.array([50, 50]), np.array([80, 20])
    expected = (0.8 - 0.5) * math.log(0.8 / 0.5) + (0.2 - 0.5) * math.log(0.2 / 0.5)
    assert stability_index(d, s) == pytest.approx(expected)
    assert [stability_band(v) for v in (0.05, 0.1, 0.2, 0.25, 1.0)] == [
        "stable", "minor shift", "minor shift", "major shift", "major shift"]
    # An empty bin on one side stays finite.
    assert np.isfinite(stability_index([10, 0], [5, 5]))
    table = CharacteristicStability("x", ("a", "b"), d, s).table()
    assert table["csi"].sum() == pytest.approx(expected)
    with pytest.raises(ConfigurationError, match="Stability needs the same bins in both samples"):
        stability_index([1, 2], [1, 2, 3])
