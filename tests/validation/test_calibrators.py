"""Calibrators: what each fixes, behaviour at the extremes, JSON round trips, and the
UCI credit-card case where a mis-calibrated score fails Hosmer-Lemeshow until Platt
scaling fitted on a separate split repairs it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import train_test_split

from riskfed.errors import ConfigurationError, NotFittedError, SchemaError
from riskfed.evaluation import roc_auc
from riskfed.validation import (
    InterceptShiftCalibrator,
    IsotonicCalibrator,
    PlattCalibrator,
    calibrator_from_dict,
    expected_observed,
    hosmer_lemeshow_test,
)


def _distorted(n: int, seed: int, slope: float, shift: float):
    """True PDs, outcomes drawn from them, and a score whose log-odds are distorted."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-1.8, 1.2, size=n)
    y = (rng.random(n) < expit(z)).astype(int)
    return y, expit(z), expit(slope * z + shift)


def _round_trip(calibrator):
    text = json.dumps(calibrator.to_dict(), allow_nan=False)  # strict JSON, no pickle
    return calibrator_from_dict(json.loads(text))


# ---------------------------------------------------------------------- intercept shift


def test_intercept_shift_matches_the_target_rate_and_keeps_the_ranking():
    y, _, score = _distorted(5000, seed=0, slope=1.0, shift=0.8)
    cal = InterceptShiftCalibrator(target_rate=0.15).fit(score)
    out = cal.transform(score)
    assert out.mean() == pytest.approx(0.15, abs=1e-9)
    assert roc_auc(y, out) == pytest.approx(roc_auc(y, score), abs=1e-12)
    # Without a target, the calibration split's own default rate.
    own = InterceptShiftCalibrator().fit(score, y)
    assert own.target_rate_ == pytest.approx(y.mean())
    assert own.transform(score).mean() == pytest.approx(y.mean(), abs=1e-9)
    # A pure shift of the log-odds is undone exactly.
    assert own.shift_ == pytest.approx(-0.8, abs=0.1)


def test_intercept_shift_fixes_the_level_but_not_the_slope():
    y, _, score = _distorted(20_000, seed=1, slope=0.5, shift=0.0)
    out = InterceptShiftCalibrator().fit(score, y).transform(score)
    assert expected_observed(y, out).ratio == pytest.approx(1.0, abs=1e-9)
    assert not hosmer_lemeshow_test(y, out).passed(0.001)


def test_intercept_shift_at_the_extremes():
    cal = InterceptShiftCalibrator(target_rate=0.3).fit([0.0, 0.1, 0.2, 1.0, 0.05])
    out = cal.transform([0.0, 1.0, 0.1])
    assert out[0] == 0.0 and out[1] == 1.0 and 0 < out[2] < 1
    with pytest.raises(SchemaError, match=r"No intercept shift can bring the mean PD to 0.3: the PDs equal to 1 and 0 alone keep it within \[0.5, 1\]"):
        InterceptShiftCalibrator(target_rate=0.3).fit([1.0, 0.4])
    with pytest.raises(ConfigurationError, match=r"The 'target_rate' parameter of InterceptShiftCalibrator must be a float in the range \(0, 1\) when fit is called without y_true\. Got None instead"):
        InterceptShiftCalibrator().fit([0.1, 0.2])
    with pytest.raises(ConfigurationError, match=r"The 'target_rate' parameter of InterceptShiftCalibrator must be a float in the range \(0, 1\)\. Got 1.5 instead"):
        InterceptShiftCalibrator(target_rate=1.5).fit([0.1, 0.2])


# ------------------------------------------------------------------------------- Platt


def test_platt_recovers_a_linear_distortion_of_the_log_odds():
    y, truth, score = _distorted(50_000, seed=2, slope=0.5, shift=1.0)
    cal = PlattCalibrator().fit(score, y)
    # score's log-odds are 0.5 z + 1, so z = 2 * logit(score) - 2.
    assert cal.slope_ == pytest.approx(2.0, rel=0.05)
    assert cal.intercept_ == pytest.approx(-2.0, abs=0.1)
    assert np.max(np.abs(cal.transform(score) - truth)) < 0.03


def test_platt_at_the_extremes_stays_finite_and_ordered():
    y, _, score = _distorted(2000, seed=3, slope=1.0, shift=0.0)
    cal = PlattCalibrator().fit(score, y)
    out = cal.transform([0.0, 1e-300, 0.5, 1.0])
    assert np.all((out > 0) & (out < 1)) and np.all(np.diff(out) >= 0)
    with pytest.raises(ConfigurationError, match=r"The 'y_true' parameter of PlattCalibrator.fit must be the default flags \(0/1\) of the calibration split\. Got None instead"):
        PlattCalibrator().fit(score)
    with pytest.raises(SchemaError, match=r"p holds a single value on the calibration split; Platt scaling needs at least two distinct PDs"):
        PlattCalibrator().fit([0.2, 0.2, 0.2, 0.2], [0, 1, 0, 1])


# ---------------------------------------------------------------------------- isotonic


def test_isotonic_equals_scikit_learn_and_respects_its_floor():
    y, _, score = _distorted(3000, seed=4, slope=1.5, shift=-0.5)
    cal = IsotonicCalibrator().fit(score, y)
    reference = IsotonicRegression(y_min=0.0003, y_max=0.9997, out_of_bounds="clip")
    reference.fit(score, y)
    new = np.concatenate([np.linspace(0, 1, 501), score[:200]])
    assert np.allclose(cal.transform(new), reference.predict(new), atol=1e-12, rtol=0)
    out = cal.transform(new)
    assert out.min() >= 0.0003 and out.max() <= 0.9997
    assert np.all(np.diff(cal.transform(np.sort(new))) >= 0)
    with pytest.raises(ConfigurationError, match=r"The 'pd_cap' parameter of IsotonicCalibrator must be a float in the range \(0.1, 1\]\. Got 0.05 instead"):
        IsotonicCalibrator(pd_floor=0.1, pd_cap=0.05).fit(score, y)


# -------------------------------------------------------------------- storage as JSON


@pytest.mark.parametrize(
    "calibrator",
    [InterceptShiftCalibrator(), InterceptShiftCalibrator(target_rate=0.1), PlattCalibrator(), IsotonicCalibrator(pd_floor=0.001)],
    ids=repr,
)
def test_json_round_trip_gives_the_same_pds(calibrator):
    y, _, score = _distorted(2000, seed=5, slope=0.7, shift=0.4)
    calibrator.fit(score, y)
    restored = _round_trip(calibrator)
    assert type(restored) is type(calibrator)
    assert restored.to_dict() == calibrator.to_dict()
    grid = np.linspace(0, 1, 101)
    assert np.array_equal(restored.transform(grid), calibrator.transform(grid))


def test_unfitted_and_corrupt_calibrators_are_refused():
    with pytest.raises(NotFittedError, match=r"This PlattCalibrator is not fitted yet; call fit\(p, y_true\)"):
        PlattCalibrator().transform([0.1])
    with pytest.raises(NotFittedError, match=r"This IsotonicCalibrator is not fitted yet"):
        IsotonicCalibrator().to_dict()
    stored = PlattCalibrator().fit([0.1, 0.2, 0.3, 0.6], [0, 1, 0, 1]).to_dict()
    with pytest.raises(ConfigurationError, match=r"The 'data' parameter of calibrator_from_dict must be a dict whose 'kind' is one of \['intercept_shift', 'isotonic', 'platt'\]\. Got kind 'pickle' instead"):
        calibrator_from_dict(stored | {"kind": "pickle"})
    with pytest.raises(ConfigurationError, match=r"The 'data' parameter of PlattCalibrator.from_dict must be a dict made by PlattCalibrator.to_dict"):
        PlattCalibrator.from_dict(stored | {"fitted": {"slope_": 1.0}})
    with pytest.raises(ConfigurationError, match=r"must hold finite fitted values; 'slope_' is nan"):
        PlattCalibrator.from_dict(stored | {"fitted": {"slope_": float("nan"), "intercept_": 0.0}})
    iso = IsotonicCalibrator().fit([0.1, 0.2, 0.3, 0.6], [0, 1, 0, 1]).to_dict()
    iso["fitted"]["values_"] = iso["fitted"]["values_"][::-1]
    with pytest.raises(ConfigurationError, match=r"increasing thresholds_ and non-decreasing values_"):
        calibrator_from_dict(iso)


# ------------------------------------------------------------------ the raw UCI extract


@pytest.fixture(scope="module")
def uci_splits(default_credit_dir):
    """Raw UCI extract: a model fitted on half, calibration and test quarters (seed 0)."""
    frame = pd.read_csv(default_credit_dir.parent / "uci_credit_card" / "UCI_Credit_Card.csv")
    y = frame.pop("default.payment.next.month").to_numpy()
    X = frame.drop(columns="ID")
    X_fit, X_rest, y_fit, y_rest = train_test_split(X, y, train_size=0.5, stratify=y, random_state=0)
    X_cal, X_test, y_cal, y_test = train_test_split(
        X_rest, y_rest, train_size=0.5, stratify=y_rest, random_state=0
    )
    model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, random_state=0)
    model.fit(X_fit, y_fit)
    return model.predict_proba(X_cal)[:, 1], y_cal, model.predict_proba(X_test)[:, 1], y_test


def test_uci_miscalibrated_score_fails_hosmer_lemeshow_and_passes_after_platt(uci_splits):
    """The model itself passes on the 7,500-applicant test quarter; halving the spread of
    its log-odds and adding 1 (PDs far too high and too flat, as a model trained on another
    portfolio might give) fails badly; Platt scaling fitted on the calibration quarter --
    never on the test quarter -- brings it back to a pass.

    A scikit-learn LogisticRegression on these raw columns is not the starting point: it
    is itself mis-specified on the raw extract (Hosmer-Lemeshow p about 1e-49), which no
    monotone recalibration of a single score can fully repair.
    """
    p_cal, y_cal, p_test, y_test = uci_splits
    assert hosmer_lemeshow_test(y_test, p_test).passed(0.05)

    def distort(p):
        return expit(0.5 * logit(p) + 1.0)

    before = hosmer_lemeshow_test(y_test, distort(p_test))
    assert before.p_value < 1e-100
    assert expected_observed(y_test, distort(p_test)).ratio > 1.5

    platt = PlattCalibrator().fit(distort(p_cal), y_cal)
    repaired = _round_trip(platt).transform(distort(p_test))  # stored and restored, as deployed
    after = hosmer_lemeshow_test(y_test, repaired)
    assert after.passed(0.05), after.p_value
    assert expected_observed(y_test, repaired).ratio == pytest.approx(1.0, abs=0.05)
    assert roc_auc(y_test, repaired) == pytest.approx(roc_auc(y_test, p_test), abs=1e-12)

    # An intercept shift alone fixes the level, not the spread: still a clear fail.
    shifted = InterceptShiftCalibrator().fit(distort(p_cal), y_cal).transform(distort(p_test))
    assert not hosmer_lemeshow_test(y_test, shifted).passed(0.001)
