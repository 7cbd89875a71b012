"""Tests for riskfed.evaluation: holdout metrics, plot data, gains table, stability."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp
from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve

from riskfed.errors import ConfigurationError, SchemaError
from riskfed.evaluation import (
    brier_score,
    compare_models,
    decile_table,
    evaluate,
    gini,
    ks_curve,
    ks_statistic,
    population_stability_index,
    roc_auc,
    roc_curve_points,
)


def _scored_holdout(n: int, seed: int, signal: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from a logistic model and a noisy but informative PD for them."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-(signal * x - 1.5)))).astype(int)
    p = 1.0 / (1.0 + np.exp(-(signal * x - 1.5 + rng.normal(scale=0.5, size=n))))
    return y, p


@pytest.fixture(scope="module")
def holdout() -> tuple[np.ndarray, np.ndarray]:
    return _scored_holdout(3_000, seed=0)


# ------------------------------------------------------------------ agreement with references


def test_auc_and_brier_agree_with_sklearn(holdout):
    y, p = holdout
    assert roc_auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert brier_score(y, p) == pytest.approx(brier_score_loss(y, p), abs=1e-12)


@pytest.mark.parametrize("decimals", [None, 2, 1])
def test_ks_agrees_with_scipy_two_sample_ks(holdout, decimals):
    y, p = holdout
    # Rounding creates heavy ties, where threshold handling usually goes wrong.
    p = p if decimals is None else np.round(p, decimals)
    expected = ks_2samp(p[y == 1], p[y == 0]).statistic
    assert ks_statistic(y, p) == pytest.approx(expected, abs=1e-12)


def test_gini_is_twice_auc_minus_one(holdout):
    y, p = holdout
    assert gini(y, p) == pytest.approx(2 * roc_auc(y, p) - 1, abs=1e-12)


def test_informative_score_beats_chance(holdout):
    y, p = holdout
    assert 0.7 < roc_auc(y, p) < 1.0
    assert ks_statistic(y, p) > 0.3


def test_perfect_predictor():
    y = np.array([0, 1, 0, 1, 1, 0, 0])
    metrics = evaluate(y, y.astype(float))
    assert metrics["auc"] == 1.0
    assert metrics["ks"] == 1.0
    assert metrics["gini"] == 1.0
    assert metrics["brier"] == 0.0


def test_perfectly_inverted_predictor():
    y = np.array([0, 1, 0, 1, 1, 0])
    p = 1.0 - y
    assert roc_auc(y, p) == 0.0
    assert gini(y, p) == -1.0
    # KS is a distance: an inverted score separates the classes just as well.
    assert ks_statistic(y, p) == 1.0


def test_random_predictor_is_near_chance():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, size=20_000)
    p = rng.random(20_000)
    assert roc_auc(y, p) == pytest.approx(0.5, abs=0.02)
    assert abs(gini(y, p)) < 0.04
    assert ks_statistic(y, p) < 0.04


def test_constant_predictor_has_no_skill():
    y = np.array([0, 1, 0, 1])
    p = np.full(4, 0.3)
    assert roc_auc(y, p) == 0.5
    assert ks_statistic(y, p) == 0.0


# ---------------------------------------------------------------------------- summaries


def test_evaluate_returns_plain_python_values(holdout):
    y, p = holdout
    metrics = evaluate(y, p)
    assert set(metrics) == {"auc", "ks", "gini", "brier", "n", "default_rate"}
    assert all(type(metrics[k]) is float for k in ("auc", "ks", "gini", "brier", "default_rate"))
    assert type(metrics["n"]) is int
    assert metrics["n"] == y.size
    assert metrics["default_rate"] == pytest.approx(y.mean())
    assert metrics["auc"] == pytest.approx(roc_auc(y, p))
    assert metrics["ks"] == pytest.approx(ks_statistic(y, p))
    assert metrics["brier"] == pytest.approx(brier_score(y, p))


def test_evaluate_accepts_pandas_and_bool_labels(holdout):
    y, p = holdout
    from_pandas = evaluate(pd.Series(y.astype(bool)), pd.Series(p))
    assert from_pandas == pytest.approx(evaluate(y, p))


def test_compare_models_one_row_per_model(holdout):
    y, p = holdout
    rng = np.random.default_rng(2)
    predictions = {"federated": p, "bank_only": rng.random(y.size)}
    table = compare_models(y, predictions)
    assert list(table.index) == ["federated", "bank_only"]
    assert table.index.name == "model"
    assert list(table.columns) == ["auc", "ks", "gini", "brier", "n", "default_rate"]
    for name, probs in predictions.items():
        assert table.loc[name].to_dict() == pytest.approx(evaluate(y, probs))
    assert table.loc["federated", "auc"] > table.loc["bank_only", "auc"]


def test_compare_models_names_the_bad_model(holdout):
    y, p = holdout
    bad = p.copy()
    bad[4] = np.nan
    with pytest.raises(SchemaError, match=r"predictions\['fallback'\] must be finite; row 4 holds"):
        compare_models(y, {"federated": p, "fallback": bad})


def test_compare_models_rejects_empty_mapping():
    with pytest.raises(ConfigurationError, match="'predictions' parameter of compare_models"):
        compare_models([0, 1], {})


# ------------------------------------------------------------------------- plot data


def test_roc_curve_points_small_input_is_exact():
    y = np.array([0, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    points = roc_curve_points(y, p)
    fpr, tpr, thresholds = roc_curve(y, p)
    assert list(points.columns) == ["fpr", "tpr", "threshold"]
    np.testing.assert_array_equal(points["fpr"], fpr)
    np.testing.assert_array_equal(points["tpr"], tpr)
    np.testing.assert_array_equal(points["threshold"], thresholds)


def test_roc_curve_points_downsampled_keeps_endpoints(holdout):
    y, p = holdout
    points = roc_curve_points(y, p, max_points=50)
    assert len(points) <= 50
    assert (points["fpr"].iloc[0], points["tpr"].iloc[0]) == (0.0, 0.0)
    assert (points["fpr"].iloc[-1], points["tpr"].iloc[-1]) == (1.0, 1.0)
    assert points["fpr"].is_monotonic_increasing
    assert points["tpr"].is_monotonic_increasing


@pytest.mark.parametrize("max_points", [3, 20, 200, 100_000])
def test_ks_curve_peak_equals_ks_statistic(holdout, max_points):
    y, p = holdout
    curve = ks_curve(y, p, max_points=max_points)
    assert list(curve.columns) == ["threshold", "cum_bad", "cum_good", "gap"]
    assert len(curve) <= max_points
    # The KS point must survive downsampling: the chart is read there.
    assert curve["gap"].abs().max() == pytest.approx(ks_statistic(y, p), abs=1e-12)
    np.testing.assert_allclose(curve["gap"], curve["cum_bad"] - curve["cum_good"])
    assert curve["threshold"].is_monotonic_decreasing
    assert curve["cum_bad"].iloc[-1] == 1.0 and curve["cum_good"].iloc[-1] == 1.0


@pytest.mark.parametrize(
    ("function", "max_points", "low"),
    [(roc_curve_points, 1, 2), (ks_curve, 2, 3), (roc_curve_points, 2.5, 2)],
)
def test_plot_data_rejects_bad_max_points(function, max_points, low):
    pattern = (
        rf"The 'max_points' parameter of {function.__name__} must be an int in the range "
        rf"\[{low}, inf\)\. Got {max_points} instead\."
    )
    with pytest.raises(ConfigurationError, match=pattern):
        function([0, 1], [0.2, 0.7], max_points=max_points)


# ------------------------------------------------------------------------- decile table


def test_decile_table_sums_and_orders(holdout):
    y, p = holdout
    table = decile_table(y, p)
    assert list(table.columns) == [
        "bin", "n", "defaults", "default_rate", "mean_pd", "cum_default_capture", "lift",
    ]
    assert table["bin"].tolist() == list(range(1, 11))
    assert table["n"].sum() == y.size
    assert table["defaults"].sum() == y.sum()
    assert table["n"].max() - table["n"].min() <= 1
    # Highest risk first.
    assert table["mean_pd"].is_monotonic_decreasing
    assert table["cum_default_capture"].is_monotonic_increasing
    assert table["cum_default_capture"].iloc[-1] == pytest.approx(1.0)
    np.testing.assert_allclose(table["default_rate"], table["defaults"] / table["n"])
    np.testing.assert_allclose(table["lift"], table["default_rate"] / y.mean())
    assert table["lift"].iloc[0] > 1.5
    assert table["lift"].iloc[-1] < 1.0


def test_decile_table_uneven_bins_and_ties():
    y = np.array([1, 0, 1, 0, 0, 1, 0])
    p = np.full(7, 0.25)
    table = decile_table(y, p, n_bins=3)
    assert table["n"].tolist() == [3, 2, 2]
    assert table["defaults"].sum() == 3
    assert table["mean_pd"].tolist() == pytest.approx([0.25, 0.25, 0.25])


def test_decile_table_rejects_more_bins_than_rows():
    with pytest.raises(ConfigurationError, match=r"'n_bins' parameter of decile_table .* \[1, 4\]"):
        decile_table([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], n_bins=5)


def test_decile_table_rejects_zero_bins():
    with pytest.raises(ConfigurationError, match=r"range \[1, inf\)\. Got 0 instead"):
        decile_table([0, 1], [0.1, 0.2], n_bins=0)


# ------------------------------------------------------------------ population stability


def test_psi_is_zero_for_identical_distributions(holdout):
    _, p = holdout
    assert population_stability_index(p, p) == 0.0
    assert population_stability_index(p, p[::-1].copy()) == pytest.approx(0.0, abs=1e-15)


def test_psi_is_small_for_two_samples_of_one_distribution():
    rng = np.random.default_rng(3)
    assert population_stability_index(rng.normal(size=20_000), rng.normal(size=20_000)) < 0.01


def test_psi_grows_with_shift():
    rng = np.random.default_rng(4)
    expected = rng.normal(size=10_000)
    actual = rng.normal(size=10_000)
    shifts = (0.0, 0.1, 0.3, 1.0)
    values = [population_stability_index(expected, actual + shift) for shift in shifts]
    assert values == sorted(values)
    assert values[1] < 0.1 < values[-1]
    assert values[-1] > 0.25


def test_psi_matches_hand_computation():
    expected = np.arange(100.0)  # deciles of 10 values each
    actual = np.concatenate([np.arange(0.0, 50.0), np.full(50, 95.0)])  # half now in the top bin
    e = np.full(10, 0.1)
    a = np.array([0.1] * 5 + [1e-4] * 4 + [0.5])  # four empty bins guarded at 1e-4
    hand = float(np.sum((a - e) * np.log(a / e)))
    assert population_stability_index(expected, actual) == pytest.approx(hand, rel=1e-12)


def test_psi_is_finite_when_actual_leaves_the_expected_range():
    expected = np.linspace(0.0, 1.0, 1_000)
    value = population_stability_index(expected, expected + 10.0)
    assert np.isfinite(value)
    assert value > 1.0


def test_psi_rejects_nan_and_bad_bins():
    with pytest.raises(SchemaError, match=r"actual must be finite; row 'b' holds NaN"):
        population_stability_index([0.1, 0.2], pd.Series([0.3, np.nan], index=["a", "b"]))
    with pytest.raises(
        ConfigurationError,
        match=r"The 'n_bins' parameter of population_stability_index must be an int in the "
        r"range \[2, inf\)\. Got 1 instead\.",
    ):
        population_stability_index([0.1, 0.2], [0.3, 0.4], n_bins=1)
    with pytest.raises(SchemaError, match="expected is empty"):
        population_stability_index([], [0.3, 0.4])


# --------------------------------------------------------------------------- bad inputs


METRICS = [roc_auc, ks_statistic, gini, brier_score, evaluate, decile_table]


@pytest.mark.parametrize("metric", METRICS)
def test_single_class_is_rejected(metric):
    pattern = r"must contain both classes \(0 and 1\); all 3 rows are 0"
    with pytest.raises(SchemaError, match=pattern):
        metric([0, 0, 0], [0.1, 0.2, 0.3])


@pytest.mark.parametrize("metric", METRICS)
def test_label_two_is_rejected_naming_rows(metric):
    with pytest.raises(
        SchemaError, match=r"y_true must hold only 0 \(repaid\) and 1 \(defaulted\); rows 1, 3 hold"
    ) as info:
        metric([0, 2, 1, 2], [0.1, 0.2, 0.3, 0.4])
    assert info.value.rows == [1, 3]
    assert info.value.column == "y_true"


@pytest.mark.parametrize("metric", METRICS)
def test_nan_probability_is_rejected(metric):
    with pytest.raises(SchemaError, match=r"p must be finite; row 2 holds NaN or infinite"):
        metric([0, 1, 0, 1], [0.1, 0.2, np.nan, 0.4])


@pytest.mark.parametrize("metric", METRICS)
def test_length_mismatch_is_rejected(metric):
    with pytest.raises(SchemaError, match=r"same length; got 4 labels and 3 probabilities"):
        metric([0, 1, 0, 1], [0.1, 0.2, 0.3])


def test_probability_outside_unit_interval_is_rejected():
    with pytest.raises(SchemaError, match=r"p must be probabilities in \[0, 1\]; rows 0, 2 hold"):
        roc_auc([0, 1, 0], [-0.1, 0.5, 1.5])


def test_at_most_five_rows_are_listed():
    y = np.array([0, 1] * 10)
    p = np.full(20, np.inf)
    with pytest.raises(SchemaError, match=r"rows 0, 1, 2, 3, 4 and 15 more hold") as info:
        roc_auc(y, p)
    assert info.value.rows == [0, 1, 2, 3, 4]


def test_rows_are_named_by_pandas_index():
    y = pd.Series([0, 1, pd.NA, 1], index=["app-1", "app-2", "app-3", "app-4"], dtype="Int64")
    with pytest.raises(SchemaError, match=r"row 'app-3' holds other values \(found: nan\)"):
        roc_auc(y, [0.1, 0.2, 0.3, 0.4])


def test_string_labels_are_not_coerced():
    with pytest.raises(SchemaError, match=r"found: '0', '1'"):
        roc_auc(np.array(["0", "1"]), [0.1, 0.9])


def test_predict_proba_matrix_gets_a_hint():
    with pytest.raises(SchemaError, match=r"predict_proba\(X\)\[:, 1\]"):
        roc_auc([0, 1], np.array([[0.9, 0.1], [0.2, 0.8]]))
