"""DeLong intervals and test, and the stratified bootstrap of AUC, KS and Gini."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import expit, logit
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from riskfed.errors import ConfigurationError, SchemaError
from riskfed.evaluation import evaluate
from riskfed.validation import bootstrap_metrics, delong_auc_ci, delong_test


def _holdout(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels from a logistic model, a strong PD and a weaker, correlated one."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    w = rng.normal(size=n)
    y = (rng.random(n) < expit(1.4 * x + 0.6 * w - 1.5)).astype(int)
    strong = expit(1.4 * x + 0.6 * w - 1.5 + rng.normal(scale=0.5, size=n))
    weak = expit(1.4 * x - 1.5 + rng.normal(scale=0.7, size=n))
    return y, strong, weak


# -------------------------------------------- an independent, slow DeLong from the paper


def _slow_delong(y: np.ndarray, models: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """AUCs and their covariance matrix from DeLong et al. (1988), written out directly.

    psi(X, Y) = 1 if X > Y, 1/2 if X == Y, 0 otherwise, for a defaulter's score X and a
    non-defaulter's score Y. The structural components are V10(X_i) = mean_j psi(X_i, Y_j)
    and V01(Y_j) = mean_i psi(X_i, Y_j); S10 and S01 are their sample covariance matrices
    across models (denominators m - 1 and n - 1), and Cov(AUC) = S10 / m + S01 / n.
    O(m n) pure-Python loops: nothing shared with the midrank implementation under test.
    """
    k = len(models)
    pos = [[float(s) for s, label in zip(scores, y, strict=True) if label == 1] for scores in models]
    neg = [[float(s) for s, label in zip(scores, y, strict=True) if label == 0] for scores in models]
    m, n = len(pos[0]), len(neg[0])

    def psi(a: float, b: float) -> float:
        return 1.0 if a > b else 0.5 if a == b else 0.0

    v10 = [[sum(psi(pos[r][i], yj) for yj in neg[r]) / n for i in range(m)] for r in range(k)]
    v01 = [[sum(psi(xi, neg[r][j]) for xi in pos[r]) / m for j in range(n)] for r in range(k)]
    theta = [sum(v10[r]) / m for r in range(k)]
    cov = np.zeros((k, k))
    for r in range(k):
        for s in range(k):
            s10 = sum((v10[r][i] - theta[r]) * (v10[s][i] - theta[s]) for i in range(m)) / (m - 1)
            s01 = sum((v01[r][j] - theta[r]) * (v01[s][j] - theta[s]) for j in range(n)) / (n - 1)
            cov[r, s] = s10 / m + s01 / n
    return np.array(theta), cov


@pytest.mark.parametrize("decimals", [None, 2, 1])
def test_delong_matches_the_slow_structural_components(decimals):
    y, a, b = _holdout(240, seed=3)
    if decimals is not None:  # heavy ties, where midranks must equal the 1/2 of psi
        a, b = np.round(a, decimals), np.round(b, decimals)
    theta, cov = _slow_delong(y, [a, b])

    ci = delong_auc_ci(y, a)
    assert ci.estimate == pytest.approx(theta[0], abs=1e-12)
    assert ci.std_error**2 == pytest.approx(cov[0, 0], rel=1e-10)

    test = delong_test(y, a, b)
    var_diff = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    z = (theta[0] - theta[1]) / math.sqrt(var_diff)
    assert test.difference == pytest.approx(theta[0] - theta[1], abs=1e-12)
    assert test.std_error**2 == pytest.approx(var_diff, rel=1e-9)
    assert test.z == pytest.approx(z, rel=1e-9)
    assert test.p_value == pytest.approx(2 * norm.sf(abs(z)), rel=1e-8)
    assert test.correlation == pytest.approx(cov[0, 1] / math.sqrt(cov[0, 0] * cov[1, 1]), rel=1e-9)


def test_delong_small_case_computed_by_hand():
    # Defaulters are the first two applicants. Model A: defaulters 0.9, 0.4 against
    # non-defaulters 0.1, 0.5, 0.3 -> V10 = (1, 2/3), V01 = (1, 1/2, 1), AUC 5/6,
    # S10 = 1/18, S01 = 1/12, Var = S10/2 + S01/3 = 1/18.
    y = [1, 1, 0, 0, 0]
    a = [0.9, 0.4, 0.1, 0.5, 0.3]
    b = [0.2, 0.6, 0.1, 0.5, 0.3]
    ci = delong_auc_ci(y, a, level=0.95)
    assert ci.estimate == pytest.approx(5 / 6)
    assert ci.std_error == pytest.approx(math.sqrt(1 / 18))
    half = 1.959963984540054 * math.sqrt(1 / 18)
    assert (ci.lower, ci.upper) == pytest.approx((5 / 6 - half, 1.0))  # clipped at 1
    # Model B: V10 = (1/3, 1), V01 = (1, 1/2, 1/2), AUC 2/3. Differences of placements:
    # (2/3, -1/3) and (0, 0, 1/2), variances 1/2 and 1/12 -> Var(diff) = 1/4 + 1/36 = 5/18,
    # z = (1/6) / sqrt(5/18) = 1/sqrt(10).
    test = delong_test(y, a, b)
    assert test.difference == pytest.approx(1 / 6)
    assert test.std_error == pytest.approx(math.sqrt(5 / 18))
    assert test.z == pytest.approx(1 / math.sqrt(10))
    assert test.p_value == pytest.approx(0.751829634, abs=1e-9)


def test_delong_agrees_with_sklearn_auc_and_detects_a_real_difference():
    y, strong, weak = _holdout(4000, seed=1)
    assert delong_auc_ci(y, strong).estimate == pytest.approx(roc_auc_score(y, strong), abs=1e-12)
    test = delong_test(y, strong, weak)
    assert test.difference > 0 and test.p_value < 1e-6 and test.lower > 0
    # The paired test is far sharper than two separate intervals: the AUCs correlate.
    assert test.correlation > 0.5
    assert "significant at the 5 % level" in test.describe("federated", "bank-only")


def test_identical_models_have_no_difference():
    y, strong, _ = _holdout(500, seed=2)
    test = delong_test(y, strong, strong)
    assert (test.difference, test.std_error, test.z, test.p_value) == (0.0, 0.0, 0.0, 1.0)


# --------------------------------------------- DeLong interval vs bootstrap distribution


def _share_inside(replicates: np.ndarray, lower: float, upper: float) -> float:
    return float(np.mean((replicates >= lower) & (replicates <= upper)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_delong_interval_covers_the_bootstrap_central_95(seed):
    """Two independent routes to the AUC's sampling distribution must agree.

    Not flaky: data and resampling seeds are fixed, so the numbers are deterministic.
    Meaningful, not tuned to one seed: it holds on three data sets, and the tolerances
    come from the Monte Carlo error, not from the observed values. With B = 2000 the
    2.5 % and 97.5 % bootstrap quantiles have a standard error of about 1.5 % of the
    interval's width, so a slack of 5 % of the width is over three standard errors; the
    share of replicates inside the DeLong interval has a standard error of 0.5 point, so
    0.93-0.97 is four. The negative control shows the check has power: an interval with
    half DeLong's standard error fails both conditions by a wide margin.
    """
    y, p, _ = _holdout(3000, seed=seed)
    ci = delong_auc_ci(y, p, level=0.95)
    boot = bootstrap_metrics(y, p, n_boot=2000, level=0.95, random_state=seed)
    replicates = boot.replicates["auc"].to_numpy()
    q_low, q_high = boot.auc.lower, boot.auc.upper
    slack = 0.05 * (ci.upper - ci.lower)

    assert ci.lower <= q_low + slack and ci.upper >= q_high - slack
    assert 0.93 <= _share_inside(replicates, ci.lower, ci.upper) <= 0.97
    assert boot.auc.std_error == pytest.approx(ci.std_error, rel=0.1)

    narrow = 1.959963984540054 * ci.std_error / 2
    low, high = ci.estimate - narrow, ci.estimate + narrow
    assert not (low <= q_low + slack and high >= q_high - slack)
    assert _share_inside(replicates, low, high) < 0.8


# -------------------------------------------------------------------------- bootstrap


def test_bootstrap_estimates_equal_evaluation_and_are_reproducible():
    y, p, _ = _holdout(1500, seed=4)
    p = np.round(p, 2)  # ties: counts per distinct PD must reproduce the exact metrics
    first = bootstrap_metrics(y, p, n_boot=300, random_state=7)
    reference = evaluate(y, p)
    assert first.auc.estimate == pytest.approx(reference["auc"], abs=1e-12)
    assert first.ks.estimate == pytest.approx(reference["ks"], abs=1e-12)
    assert first.gini.estimate == pytest.approx(reference["gini"], abs=1e-12)
    again = bootstrap_metrics(y, p, n_boot=300, random_state=7)
    other = bootstrap_metrics(y, p, n_boot=300, random_state=8)
    assert first.replicates.equals(again.replicates)
    assert not first.replicates.equals(other.replicates)
    assert np.allclose(first.replicates["gini"], 2 * first.replicates["auc"] - 1)
    for interval in (first.auc, first.ks, first.gini):
        assert interval.lower < interval.estimate < interval.upper
    json.dumps(first.to_dict(), allow_nan=False)


def test_bootstrap_is_stratified_by_outcome():
    # Two defaulters among 300: unstratified resampling would draw replicates with no
    # defaulter (AUC undefined) about 0.7 % of the time, i.e. several in 2000.
    rng = np.random.default_rng(0)
    y = np.zeros(300, dtype=int)
    y[[5, 17]] = 1
    p = rng.random(300)
    boot = bootstrap_metrics(y, p, n_boot=2000)
    assert np.isfinite(boot.replicates.to_numpy()).all()


# ------------------------------------------------------------------------- properties


@st.composite
def _scored(draw, min_size=4, max_size=40):
    n = draw(st.integers(min_size, max_size))
    y = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    y[0], y[1], y[2], y[3] = 1, 1, 0, 0  # at least two of each class
    # PDs on a 1/1000 grid: ties are likely, and monotone maps keep distinct values apart.
    a = draw(st.lists(st.integers(0, 1000), min_size=n, max_size=n))
    b = draw(st.lists(st.integers(0, 1000), min_size=n, max_size=n))
    return np.array(y), np.array(a) / 1000, np.array(b) / 1000


@given(_scored(), st.floats(0.5, 0.999))
def test_property_auc_interval_contains_the_auc(data, level):
    y, a, _ = data
    ci = delong_auc_ci(y, a, level=level)
    assert 0.0 <= ci.lower <= ci.estimate <= ci.upper <= 1.0


@given(_scored())
def test_property_paired_test_is_symmetric(data):
    y, a, b = data
    ab, ba = delong_test(y, a, b), delong_test(y, b, a)
    assert ab.p_value == ba.p_value
    assert ab.difference == -ba.difference and ab.z == -ba.z
    assert ab.std_error == ba.std_error
    assert 0.0 <= ab.p_value <= 1.0


_MONOTONE = {
    "square": lambda p: p**2,
    "sqrt": np.sqrt,
    "squeeze": lambda p: 0.2 + 0.5 * p,
    "log-odds scaled": lambda p: expit(0.3 * logit(np.clip(p, 1e-4, 1 - 1e-4)) - 2.0),
}


@given(_scored(), st.sampled_from(sorted(_MONOTONE)))
def test_property_invariant_to_monotone_transforms(data, name):
    y, a, b = data
    f = _MONOTONE[name]
    ci, ci_f = delong_auc_ci(y, a), delong_auc_ci(y, f(a))
    assert ci_f.estimate == pytest.approx(ci.estimate, abs=1e-12)
    assert ci_f.std_error == pytest.approx(ci.std_error, abs=1e-12)
    t, t_f = delong_test(y, a, b), delong_test(y, f(a), f(b))
    assert t_f.p_value == pytest.approx(t.p_value, abs=1e-12)
    boot, boot_f = (bootstrap_metrics(y, v, n_boot=20, random_state=1) for v in (a, f(a)))
    assert np.allclose(boot.replicates, boot_f.replicates, atol=1e-12, rtol=0)


# ------------------------------------------------------------------------ bad input


def test_bad_input_is_a_typed_error():
    y, a, b = _holdout(200, seed=5)
    with pytest.raises(ConfigurationError, match=r"The 'level' parameter of delong_auc_ci must be a float in the range \(0, 1\)\. Got 95 instead"):
        delong_auc_ci(y, a, level=95)
    with pytest.raises(SchemaError, match=r"at least 2 defaulters and 2 non-defaulters for a DeLong variance; got 1 defaulters"):
        delong_auc_ci([1, 0, 0, 0], [0.9, 0.1, 0.2, 0.3])
    with pytest.raises(SchemaError, match=r"y_true and p_b must have the same length; got 200 labels and 199"):
        delong_test(y, a, b[:-1])
    with pytest.raises(SchemaError, match=r"p_a must be probabilities in \[0, 1\]; row 3 holds"):
        delong_test(y, np.where(np.arange(200) == 3, 1.5, a), b)
    with pytest.raises(ConfigurationError, match=r"The 'n_boot' parameter of bootstrap_metrics must be an int in the range \[10, inf\)\. Got 5 instead"):
        bootstrap_metrics(y, a, n_boot=5)
    with pytest.raises(ConfigurationError, match=r"The 'random_state' parameter of bootstrap_metrics must be an int"):
        bootstrap_metrics(y, a, random_state=None)
