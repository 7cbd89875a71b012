"""Calibration table, Hosmer-Lemeshow test and calibration in the large."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest, chi2, kstest

from riskfed.errors import ConfigurationError, SchemaError
from riskfed.validation import calibration_table, expected_observed, hosmer_lemeshow_test


def _calibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """PDs spread like a retail portfolio's, and outcomes drawn from exactly those PDs."""
    rng = np.random.default_rng(seed)
    p = 1.0 / (1.0 + np.exp(-rng.normal(-2.0, 1.0, size=n)))
    return (rng.random(n) < p).astype(int), p


# --------------------------------------------------------------------- calibration table


def test_fixed_bands_count_and_test_each_band():
    y = np.array([0, 0, 1, 0, 1, 1, 0, 1, 0, 0])
    p = np.array([0.01, 0.02, 0.04, 0.05, 0.08, 0.3, 0.2, 0.5, 0.12, 0.15])
    table = calibration_table(y, p, bands=[0, 0.05, 0.1, 0.2, 1.0])
    # Right-closed bands: 0.05 falls in the first, 0.2 in the third.
    assert table["n"].tolist() == [4, 1, 3, 2]
    assert table["defaults"].tolist() == [1, 1, 0, 2]
    assert table["pd_from"].tolist() == [0, 0.05, 0.1, 0.2]
    assert table["mean_pd"].iloc[0] == pytest.approx(0.03)
    assert table["expected_defaults"].iloc[3] == pytest.approx(0.8)
    for row in table.itertuples():
        assert row.p_value == pytest.approx(binomtest(row.defaults, row.n, row.mean_pd).pvalue)
        ci = binomtest(row.defaults, row.n).proportion_ci(0.95)
        assert (row.rate_lower, row.rate_upper) == pytest.approx((ci.low, ci.high))
    assert table["direction"].tolist() == ["PD too low", "PD too low", "PD too high", "PD too low"]


def test_empty_fixed_band_is_kept_and_flagged():
    table = calibration_table([0, 1, 0, 1], [0.01, 0.02, 0.6, 0.7], bands=[0, 0.1, 0.5, 1])
    empty = table.iloc[1]
    assert (empty["n"], empty["flag"], empty["direction"]) == (0, "empty", "empty")
    assert np.isnan(empty["mean_pd"]) and np.isnan(empty["p_value"])


def test_decile_bands_are_equal_population_lowest_first():
    y, p = _calibrated(1000, seed=0)
    table = calibration_table(y, p)
    assert table["n"].tolist() == [100] * 10
    assert table["mean_pd"].is_monotonic_increasing
    assert (table["pd_to"].to_numpy()[:-1] <= table["pd_from"].to_numpy()[1:]).all()
    assert table["defaults"].sum() == y.sum()


def test_traffic_lights_follow_the_p_value_thresholds():
    # One band of 1000 applicants at a 10 % PD: 100 defaults is exact, 125 is amber
    # (p about 0.01), 150 is red (p about 1e-6).
    p = np.full(1000, 0.1)
    for defaults, flag in [(100, "green"), (125, "amber"), (150, "red")]:
        y = np.zeros(1000, dtype=int)
        y[:defaults] = 1
        table = calibration_table(y, p, bands=1)
        assert table["flag"].item() == flag, defaults
    # One-sided: too few defaults is no finding when only under-prediction matters.
    y = np.zeros(1000, dtype=int)
    y[:60] = 1
    assert calibration_table(y, p, bands=1)["flag"].item() == "red"
    assert calibration_table(y, p, bands=1, alternative="greater")["flag"].item() == "green"


def test_underestimated_pds_turn_the_riskiest_bands_red():
    y, p = _calibrated(20_000, seed=1)
    table = calibration_table(y, 0.6 * p)
    assert (table["direction"] == "PD too low").all()
    assert table["flag"].iloc[-3:].eq("red").all()


def test_pds_outside_the_band_edges_are_named():
    p = pd.Series([0.1, 0.6, 0.2, 0.7], index=["a", "b", "c", "d"])
    with pytest.raises(SchemaError, match=r"p must lie within the band edges \[0, 0.5\]; rows 'b', 'd' hold PDs outside them") as info:
        calibration_table([0, 1, 0, 1], p, bands=[0, 0.25, 0.5])
    assert info.value.rows == ["b", "d"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bands": [0.5, 0.2, 1]}, r"The 'bands' parameter of calibration_table must be an int >= 1 \(equal-population bands\) or at least two strictly increasing PD band edges in \[0, 1\]\. Got \[0.5, 0.2, 1\] instead"),
        ({"bands": 0}, r"The 'bands' parameter of calibration_table must be an int in the range \[1, inf\)\. Got 0 instead"),
        ({"bands": 50}, r"The 'bands' parameter of calibration_table must be an int in the range \[1, 4\] \(the number of applicants\)\. Got 50 instead"),
        ({"alternative": "two_sided"}, r"The 'alternative' parameter of calibration_table must be a str among \{'two-sided', 'greater', 'less'\}\. Got 'two_sided' instead"),
        ({"amber": 0.0001}, r"The 'amber' parameter of calibration_table must be a float in the range \(0.001, 1\)\. Got 0.0001 instead"),
        ({"level": 1.0}, r"The 'level' parameter of calibration_table must be a float in the range \(0, 1\)\. Got 1.0 instead"),
    ],
)
def test_bad_parameters_read_like_scikit_learn(kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        calibration_table([0, 1, 0, 1], [0.1, 0.6, 0.2, 0.7], **kwargs)


# ---------------------------------------------------------------------- Hosmer-Lemeshow


def test_hosmer_lemeshow_small_case_by_hand():
    y = [0, 0, 1, 0, 1, 1]
    p = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    # Groups {0.1, 0.2, 0.3} and {0.4, 0.5, 0.6}: O = 1, 2; E = 0.6, 1.5; n = 3.
    expected = (1 - 0.6) ** 2 / (0.6 * (1 - 0.2)) + (2 - 1.5) ** 2 / (1.5 * (1 - 0.5))
    result = hosmer_lemeshow_test(y, p, n_groups=2)
    assert result.statistic == pytest.approx(expected)
    assert result.dof == 2
    assert result.p_value == pytest.approx(chi2.sf(expected, 2))
    assert hosmer_lemeshow_test(y, p, n_groups=3, ddof=2).dof == 1
    assert result.table["contribution"].sum() == pytest.approx(expected)


def test_hosmer_lemeshow_has_its_nominal_size_on_calibrated_holdouts():
    """PDs that are right: p-values uniform, about 5 % rejected at the 5 % level.

    This is what fixes ddof=0 for a holdout: with dof = groups - 2 (the in-sample rule)
    the p-values of correct PDs would be too small and rejections too frequent.
    """
    p_values = np.array(
        [hosmer_lemeshow_test(*_calibrated(2000, seed=s)).p_value for s in range(300)]
    )
    assert kstest(p_values, "uniform").pvalue > 0.01
    assert 0.02 <= np.mean(p_values < 0.05) <= 0.09
    in_sample_rule = np.array(
        [hosmer_lemeshow_test(*_calibrated(2000, seed=s), ddof=2).p_value for s in range(300)]
    )
    assert np.mean(in_sample_rule < 0.05) > np.mean(p_values < 0.05)


def test_hosmer_lemeshow_rejects_miscalibrated_pds():
    y, p = _calibrated(5000, seed=2)
    assert hosmer_lemeshow_test(y, p).passed()
    shifted = hosmer_lemeshow_test(y, np.clip(p * 1.5, 0, 1))
    assert not shifted.passed(0.001)
    json.dumps(shifted.to_dict(), allow_nan=False)


def test_hosmer_lemeshow_zero_pd_with_a_default_is_infinite():
    y = [1, 0, 0, 0, 1, 0]
    p = [0.0, 0.0, 0.0, 0.5, 0.5, 0.5]
    result = hosmer_lemeshow_test(y, p, n_groups=2)
    assert result.statistic == np.inf and result.p_value == 0.0
    assert hosmer_lemeshow_test([0, 0, 0, 0, 1, 1], p, n_groups=2).table["contribution"][0] == 0.0


def test_hosmer_lemeshow_bad_parameters():
    with pytest.raises(ConfigurationError, match=r"The 'ddof' parameter of hosmer_lemeshow_test must be an int in the range \[0, 9\] \(n_groups - 1\)\. Got 10 instead"):
        hosmer_lemeshow_test([0, 1] * 10, [0.5] * 20, ddof=10)
    with pytest.raises(ConfigurationError, match=r"The 'n_groups' parameter of hosmer_lemeshow_test must be an int in the range \[1, 4\] \(the number of applicants\)\. Got 10 instead"):
        hosmer_lemeshow_test([0, 1, 0, 1], [0.5] * 4)
    with pytest.raises(SchemaError, match=r"y_true must hold only 0 \(repaid\) and 1 \(defaulted\); row 2 holds other values \(found: 2\)"):
        hosmer_lemeshow_test([0, 1, 2, 1], [0.5] * 4, n_groups=2)


# ------------------------------------------------------------------ expected / observed


def test_expected_observed():
    y, p = _calibrated(10_000, seed=3)
    result = expected_observed(y, 0.5 * p)
    assert result.expected_defaults == pytest.approx(0.5 * p.sum())
    assert result.observed_defaults == y.sum()
    assert result.ratio == pytest.approx(0.5 * p.sum() / y.sum())
    assert result.ratio < 0.6 and result.p_value < 1e-10
    assert expected_observed(y, p).p_value > 0.01
    assert json.loads(json.dumps(result.to_dict()))["observed_defaults"] == y.sum()
