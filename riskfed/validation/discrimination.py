"""Discrimination with uncertainty: how sure is the AUC, and is one model really better?

:func:`delong_auc_ci`
    AUC with DeLong's asymptotic confidence interval (DeLong, DeLong & Clarke-Pearson,
    1988), computed with the fast midrank algorithm of Sun & Xu (2014) in
    ``O(n log n)``.
:func:`delong_test`
    The paired DeLong test of two models scored on the same holdout (e.g. federated vs
    bank-only): the AUC difference, its confidence interval, ``z`` and the two-sided
    p-value. Pairing matters: the two AUCs share applicants and are strongly correlated,
    so comparing two separate intervals would be far too conservative.
:func:`bootstrap_metrics`
    Percentile bootstrap intervals for AUC, KS and Gini from stratified resampling
    (defaulters and non-defaulters resampled separately, so every replicate keeps the
    holdout's default count), with a fixed seed.

All functions take the default flags ``y_true`` (1 = defaulted) and predicted PDs and
check them exactly as :mod:`riskfed.evaluation` does. A higher PD must mean higher risk.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm, rankdata

from riskfed.validation._checks import (
    _check_inputs,
    _check_int_param,
    check_level,
    check_min_class_counts,
    check_pair,
)


@dataclass(frozen=True)
class ConfidenceInterval:
    """A metric with a two-sided confidence interval.

    Attributes
    ----------
    metric : str
        ``"auc"``, ``"ks"`` or ``"gini"``.
    estimate : float
        The metric on the holdout as given.
    lower, upper : float
        The interval's ends (DeLong intervals are clipped to [0, 1]).
    level : float
        Coverage the interval aims at, e.g. 0.95.
    std_error : float
        DeLong's standard error, or the standard deviation of the bootstrap replicates.
    method : str
        ``"delong"`` or ``"bootstrap"``.
    """

    metric: str
    estimate: float
    lower: float
    upper: float
    level: float
    std_error: float
    method: str

    def to_dict(self) -> dict[str, float | str]:
        """Plain Python values, ready for JSON."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class PairedAUCTest:
    """The paired DeLong test of model A against model B on the same applicants.

    Attributes
    ----------
    auc_a, auc_b : float
        Each model's AUC.
    difference : float
        ``auc_a - auc_b``.
    lower, upper : float
        Confidence interval of the difference at ``level``.
    std_error : float
        Standard error of the difference (it accounts for the correlation).
    z : float
        ``difference / std_error``; 0 when both are 0.
    p_value : float
        Two-sided p-value of "both models have the same AUC".
    correlation : float
        Correlation of the two AUC estimates (NaN if either has zero variance).
    level : float
        Coverage of the interval, e.g. 0.95.
    n, n_defaults : int
        Applicants and defaulters in the holdout.
    """

    auc_a: float
    auc_b: float
    difference: float
    lower: float
    upper: float
    std_error: float
    z: float
    p_value: float
    correlation: float
    level: float
    n: int
    n_defaults: int

    def to_dict(self) -> dict[str, float | int]:
        """Plain Python values, ready for JSON."""
        return dataclasses.asdict(self)

    def describe(self, name_a: str = "model A", name_b: str = "model B") -> str:
        """The result in one sentence, e.g. for a validation report.

        Examples
        --------
        >>> t = delong_test([0, 0, 1, 1, 0, 1], [.1, .5, .8, .7, .3, .4], [.1, .5, .8, .2, .3, .4])
        >>> t.describe("federated", "bank-only").split(":")[0]
        'AUC federated 0.889 vs bank-only 0.667'
        """
        pct = round(100 * self.level)
        verdict = (
            "significant" if self.p_value < 1 - self.level else "not significant"
        )
        return (
            f"AUC {name_a} {self.auc_a:.3f} vs {name_b} {self.auc_b:.3f}: difference "
            f"{self.difference:+.3f} ({pct} % CI {self.lower:+.3f} to {self.upper:+.3f}), "
            f"z = {self.z:.2f}, p = {self.p_value:.3g} ({verdict} at the {100 - pct} % level; "
            f"paired DeLong test on {self.n} applicants, {self.n_defaults} defaults)."
        )


# ------------------------------------------------------------------------------- DeLong


def _delong_components(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, ...]:
    """AUCs and DeLong placement values of ``k`` models, by Sun & Xu's midrank method.

    ``scores`` has shape (k, n). Returns ``aucs`` (k,), ``v10`` (k, m) -- for each
    defaulter, the share of non-defaulters it outranks (ties count one half) -- and
    ``v01`` (k, n0) -- for each non-defaulter, the share of defaulters that outrank it.
    """
    pos = scores[:, y == 1]
    neg = scores[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    # Midranks within each class and in the pooled sample: a defaulter's pooled rank
    # minus its rank among defaulters counts the non-defaulters below it (ties = 1/2).
    tx = rankdata(pos, axis=1)
    ty = rankdata(neg, axis=1)
    tz = rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    aucs = (tz[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (m * n)
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    return aucs, v10, v01


def _delong_variance(v10: np.ndarray, v01: np.ndarray) -> float:
    """DeLong variance of one AUC (or AUC difference) from its placement values."""
    m, n = v10.size, v01.size
    return float(np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n)


def delong_auc_ci(y_true: Any, p: Any, *, level: float = 0.95) -> ConfidenceInterval:
    """AUC with DeLong's confidence interval.

    ``Var(AUC) = S10 / m + S01 / n``, where ``S10`` and ``S01`` are the sample variances
    of the placement values of the ``m`` defaulters and ``n`` non-defaulters. The
    interval is ``AUC +/- z * sqrt(Var)`` on the AUC scale, clipped to [0, 1].

    Parameters
    ----------
    y_true : array-like of shape (n,)
        1 if the applicant defaulted, 0 otherwise; at least two of each.
    p : array-like of shape (n,)
        Predicted probability of default, finite and in [0, 1].
    level : float, default 0.95
        Coverage of the interval, strictly between 0 and 1.

    Returns
    -------
    ConfidenceInterval
        ``method="delong"``; ``estimate`` equals :func:`riskfed.evaluation.roc_auc`.

    Raises
    ------
    SchemaError
        On invalid labels or PDs, or fewer than two defaulters or non-defaulters.
    ConfigurationError
        If ``level`` is not strictly between 0 and 1.

    Examples
    --------
    >>> ci = delong_auc_ci([0, 0, 1, 1, 0, 1], [.1, .5, .8, .7, .3, .4])
    >>> round(ci.estimate, 4), ci.lower <= ci.estimate <= ci.upper
    (0.8889, True)
    """
    level = check_level(level, "delong_auc_ci")
    y, probs = _check_inputs(y_true, p)
    check_min_class_counts(y, 2, "a DeLong variance")
    aucs, v10, v01 = _delong_components(y, probs[np.newaxis, :])
    auc = float(aucs[0])
    se = float(np.sqrt(_delong_variance(v10[0], v01[0])))
    half = float(norm.ppf(0.5 + level / 2.0)) * se
    return ConfidenceInterval(
        "auc", auc, max(0.0, auc - half), min(1.0, auc + half), level, se, "delong"
    )


def delong_test(y_true: Any, p_a: Any, p_b: Any, *, level: float = 0.95) -> PairedAUCTest:
    """Paired DeLong test: do two models scored on the same applicants differ in AUC?

    The difference's variance is ``Var(AUC_a) + Var(AUC_b) - 2 Cov(AUC_a, AUC_b)``, all
    from the same placement values; it is computed directly from the differences of the
    placement values, so swapping the models flips the signs of ``difference`` and ``z``
    and leaves ``p_value`` exactly unchanged.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        1 if the applicant defaulted, 0 otherwise; at least two of each.
    p_a, p_b : array-like of shape (n,)
        The two models' PDs for the same applicants in the same order (e.g. federated
        and bank-only).
    level : float, default 0.95
        Coverage of the interval of the difference.

    Returns
    -------
    PairedAUCTest
        When the difference has zero variance (e.g. two models that rank everyone
        alike), ``z`` is 0 and ``p_value`` 1 if the AUCs are equal.

    Raises
    ------
    SchemaError
        On invalid labels or PDs (naming ``p_a`` or ``p_b``), different lengths, or
        fewer than two defaulters or non-defaulters.
    ConfigurationError
        If ``level`` is not strictly between 0 and 1.

    Examples
    --------
    >>> y = [0, 0, 1, 1, 0, 1]
    >>> t = delong_test(y, [.1, .5, .8, .7, .3, .4], [.1, .5, .8, .2, .3, .4])
    >>> round(t.difference, 4), 0 <= t.p_value <= 1
    (0.2222, True)
    """
    level = check_level(level, "delong_test")
    y, a, b = check_pair(y_true, p_a, p_b)
    check_min_class_counts(y, 2, "a DeLong variance")
    aucs, v10, v01 = _delong_components(y, np.vstack([a, b]))
    diff = float(aucs[0] - aucs[1])
    variance = max(_delong_variance(v10[0] - v10[1], v01[0] - v01[1]), 0.0)
    se = float(np.sqrt(variance))
    if se > 0.0:
        z = diff / se
        p_value = float(2.0 * norm.sf(abs(z)))
    else:
        # No sampling variability in the difference: equal AUCs are no evidence of a
        # difference; unequal ones are certain (only possible in degenerate holdouts).
        z = 0.0 if diff == 0.0 else float(np.copysign(np.inf, diff))
        p_value = 1.0 if diff == 0.0 else 0.0
    var_a = _delong_variance(v10[0], v01[0])
    var_b = _delong_variance(v10[1], v01[1])
    cov = (var_a + var_b - variance) / 2.0
    corr = cov / np.sqrt(var_a * var_b) if var_a > 0 and var_b > 0 else float("nan")
    half = float(norm.ppf(0.5 + level / 2.0)) * se
    return PairedAUCTest(
        auc_a=float(aucs[0]),
        auc_b=float(aucs[1]),
        difference=diff,
        lower=diff - half,
        upper=diff + half,
        std_error=se,
        z=float(z),
        p_value=p_value,
        correlation=float(corr),
        level=level,
        n=int(y.size),
        n_defaults=int(y.sum()),
    )


# ---------------------------------------------------------------------------- bootstrap


@dataclass(frozen=True)
class BootstrapResult:
    """Bootstrap confidence intervals of AUC, KS and Gini.

    Attributes
    ----------
    auc, ks, gini : ConfidenceInterval
        Percentile intervals (``method="bootstrap"``); ``estimate`` is the metric on the
        holdout itself, ``std_error`` the standard deviation of the replicates.
    replicates : pandas.DataFrame
        One row per bootstrap replicate, columns ``auc``, ``ks``, ``gini`` (for a
        histogram or a check of the interval).
    n_boot : int
        Number of replicates.
    random_state : int
        Seed of the resampling; the same seed gives the same intervals.
    """

    auc: ConfidenceInterval
    ks: ConfidenceInterval
    gini: ConfidenceInterval
    replicates: pd.DataFrame
    n_boot: int
    random_state: int

    def to_dict(self) -> dict[str, Any]:
        """The intervals and settings as plain Python values (replicates left out)."""
        return {
            "auc": self.auc.to_dict(),
            "ks": self.ks.to_dict(),
            "gini": self.gini.to_dict(),
            "n_boot": self.n_boot,
            "random_state": self.random_state,
        }


def _auc_ks_from_counts(bad: np.ndarray, good: np.ndarray) -> tuple[float, float]:
    """AUC and KS from the defaulter and non-defaulter counts at each distinct PD (ascending)."""
    m, n = float(bad.sum()), float(good.sum())
    goods_below = np.cumsum(good) - good
    auc = float(bad @ (goods_below + 0.5 * good)) / (m * n)
    # Shares at or above each threshold, from the riskiest PD down: the KS chart.
    cum_bad = np.cumsum(bad[::-1]) / m
    cum_good = np.cumsum(good[::-1]) / n
    return auc, float(np.max(np.abs(cum_bad - cum_good)))


def bootstrap_metrics(
    y_true: Any,
    p: Any,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    random_state: int = 0,
) -> BootstrapResult:
    """Stratified percentile bootstrap of AUC, KS and Gini.

    Each replicate draws the defaulters with replacement from the defaulters and the
    non-defaulters from the non-defaulters, so the default count stays that of the
    holdout (the same conditioning as DeLong's variance). The interval is the central
    ``level`` share of the replicates. Replicates are computed from counts at each
    distinct PD, so ties are handled exactly as in :mod:`riskfed.evaluation`.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        1 if the applicant defaulted, 0 otherwise; both classes must be present.
    p : array-like of shape (n,)
        Predicted probability of default, finite and in [0, 1].
    n_boot : int, default 1000
        Number of replicates, at least 10. 1000-2000 give percentile ends stable to
        about a tenth of the interval's width.
    level : float, default 0.95
        Coverage of the intervals.
    random_state : int, default 0
        Seed (non-negative); fixed by default so a report can be reproduced.

    Returns
    -------
    BootstrapResult

    Raises
    ------
    SchemaError
        On invalid labels or PDs.
    ConfigurationError
        If ``n_boot``, ``level`` or ``random_state`` is out of range.

    Examples
    --------
    >>> r = bootstrap_metrics([0, 0, 1, 1, 0, 1], [.1, .5, .8, .7, .3, .4], n_boot=200)
    >>> r.auc.lower <= r.auc.estimate <= r.auc.upper
    True
    """
    n_boot = _check_int_param(n_boot, "n_boot", "bootstrap_metrics", 10)
    level = check_level(level, "bootstrap_metrics")
    random_state = _check_int_param(random_state, "random_state", "bootstrap_metrics", 0)
    y, probs = _check_inputs(y_true, p)
    _, position = np.unique(probs, return_inverse=True)
    n_distinct = int(position.max()) + 1
    bad_pos, good_pos = position[y == 1], position[y == 0]
    rng = np.random.default_rng(random_state)
    out = np.empty((n_boot, 2))
    for i in range(n_boot):
        bad = bad_pos[rng.integers(0, bad_pos.size, bad_pos.size)]
        good = good_pos[rng.integers(0, good_pos.size, good_pos.size)]
        out[i] = _auc_ks_from_counts(
            np.bincount(bad, minlength=n_distinct), np.bincount(good, minlength=n_distinct)
        )
    replicates = pd.DataFrame({"auc": out[:, 0], "ks": out[:, 1], "gini": 2.0 * out[:, 0] - 1.0})
    auc, ks = _auc_ks_from_counts(
        np.bincount(bad_pos, minlength=n_distinct), np.bincount(good_pos, minlength=n_distinct)
    )
    estimates = {"auc": auc, "ks": ks, "gini": 2.0 * auc - 1.0}
    tails = [(1.0 - level) / 2.0, (1.0 + level) / 2.0]
    intervals = {}
    for metric, estimate in estimates.items():
        lower, upper = np.quantile(replicates[metric].to_numpy(), tails)
        std = float(replicates[metric].std(ddof=1))
        intervals[metric] = ConfidenceInterval(
            metric, estimate, float(lower), float(upper), level, std, "bootstrap"
        )
    return BootstrapResult(
        intervals["auc"], intervals["ks"], intervals["gini"], replicates, n_boot, random_state
    )


__all__ = [
    "BootstrapResult",
    "ConfidenceInterval",
    "PairedAUCTest",
    "bootstrap_metrics",
    "delong_auc_ci",
    "delong_test",
]
