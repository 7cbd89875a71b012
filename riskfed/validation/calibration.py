"""Calibration: do the predicted PDs match the default rates actually observed?

:func:`calibration_table`
    Applicants grouped in bands of predicted PD (equal-population bands such as deciles,
    or fixed PD band edges such as a rating master scale): count, mean predicted PD,
    observed default rate with its exact (Clopper-Pearson) interval, an exact binomial
    test per band and a traffic-light flag.
:func:`hosmer_lemeshow_test`
    One chi-squared test over equal-population groups of predicted PD.
:func:`expected_observed`
    Calibration in the large: expected defaults (sum of PDs) over observed defaults.

Calibration is judged on applicants the model was not fitted on (a holdout). PDs are
checked as in :mod:`riskfed.evaluation`; a higher PD must mean higher risk. Band 1 always
holds the *lowest* PDs, as on a calibration chart (the gains table of
:func:`riskfed.evaluation.decile_table` lists the riskiest first instead).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binomtest, chi2

from riskfed.errors import ConfigurationError, SchemaError
from riskfed.validation._checks import (
    _check_inputs,
    _check_int_param,
    _rows_phrase,
    _to_1d,
    check_choice,
    check_float,
    check_level,
)

ALTERNATIVES = ("two-sided", "greater", "less")


# -------------------------------------------------------------------------------- bands


def _check_edges(bands: Any, owner: str) -> np.ndarray:
    """Band edges: at least two finite, strictly increasing PDs within [0, 1]."""
    try:
        edges = np.asarray(bands, dtype=float)
    except (TypeError, ValueError):
        edges = np.array([np.nan])
    ok = (
        edges.ndim == 1
        and edges.size >= 2
        and bool(np.all(np.isfinite(edges)))
        and bool(np.all(np.diff(edges) > 0))
        and edges[0] >= 0.0
        and edges[-1] <= 1.0
    )
    if not ok:
        raise ConfigurationError(
            f"The 'bands' parameter of {owner} must be an int >= 1 (equal-population "
            "bands) or at least two strictly increasing PD band edges in [0, 1]. "
            f"Got {bands!r} instead."
        )
    return edges


def _assign_bands(
    p: Any, probs: np.ndarray, bands: Any, owner: str, name: str = "bands"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Band of every applicant (0 = lowest PDs) and each band's lower and upper PD."""
    if isinstance(bands, (int, np.integer)) and not isinstance(bands, bool):
        count = _check_int_param(bands, name, owner, 1)
        if count > probs.size:
            raise ConfigurationError(
                f"The '{name}' parameter of {owner} must be an int in the range "
                f"[1, {probs.size}] (the number of applicants). Got {count} instead."
            )
        # Equal-population bands by a stable sort, as decile_table does: ties may fall
        # into neighbouring bands, but every band keeps its size.
        index = np.empty(probs.size, dtype=np.int64)
        for k, rows in enumerate(np.array_split(np.argsort(probs, kind="stable"), count)):
            index[rows] = k
        low = np.array([probs[index == k].min() for k in range(count)])
        high = np.array([probs[index == k].max() for k in range(count)])
        return index, low, high
    edges = _check_edges(bands, owner)
    outside = (probs < edges[0]) | (probs > edges[-1])
    if outside.any():
        labels = _to_1d(p, "p")[1]
        rows = labels[outside]
        raise SchemaError(
            f"p must lie within the band edges [{edges[0]:g}, {edges[-1]:g}]; "
            f"{_rows_phrase(rows, int(outside.sum()))} PDs outside them.",
            column="p",
            rows=rows.tolist(),
        )
    # Right-closed bands (low, high], the first also closed on the left.
    return np.searchsorted(edges[1:-1], probs, side="left"), edges[:-1], edges[1:]


def _band_sums(y: np.ndarray, probs: np.ndarray, index: np.ndarray, count: int) -> pd.DataFrame:
    """Applicants, defaults, expected defaults, mean PD and default rate per band."""
    n = np.bincount(index, minlength=count)
    defaults = np.bincount(index, weights=y, minlength=count).round().astype(np.int64)
    expected = np.bincount(index, weights=probs, minlength=count)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame(
            {
                "band": np.arange(1, count + 1),
                "n": n,
                "defaults": defaults,
                "expected_defaults": expected,
                "mean_pd": expected / n,
                "default_rate": defaults / n,
            }
        )


# -------------------------------------------------------------------- calibration table


def _binomial_columns(
    table: pd.DataFrame, alternative: str, level: float
) -> tuple[list[float], list[float], list[float]]:
    """Clopper-Pearson interval of the default rate and binomial p-value of every band."""
    lower, upper, p_values = [], [], []
    for n, k, pd_mean in table[["n", "defaults", "mean_pd"]].itertuples(index=False):
        if n == 0:
            ci_low = ci_high = p_value = np.nan
        else:
            ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=level)
            ci_low, ci_high = ci.low, ci.high
            p_value = binomtest(int(k), int(n), float(pd_mean), alternative=alternative).pvalue
        lower.append(float(ci_low))
        upper.append(float(ci_high))
        p_values.append(float(p_value))
    return lower, upper, p_values


def _flag(p_value: float, amber: float, red: float) -> str:
    if np.isnan(p_value):
        return "empty"
    return "red" if p_value < red else "amber" if p_value < amber else "green"


def calibration_table(
    y_true: Any,
    p: Any,
    *,
    bands: Any = 10,
    alternative: str = "two-sided",
    amber: float = 0.05,
    red: float = 0.001,
    level: float = 0.95,
) -> pd.DataFrame:
    """Predicted PD against observed default rate per band, with a binomial test each.

    In each band the number of defaults is tested against ``Binomial(n, mean_pd)``
    (:func:`scipy.stats.binomtest`, exact). The flag follows the traffic-light approach
    used for PD back-testing: green when the p-value is at least ``amber``, amber below
    it, red below ``red``.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        1 if the applicant defaulted, 0 otherwise; both classes must be present.
    p : array-like of shape (n,)
        Predicted probability of default, finite and in [0, 1].
    bands : int or sequence of float, default 10
        An int ``k`` gives ``k`` equal-population bands of predicted PD (10 = deciles).
        A sequence gives fixed PD band edges, e.g. ``[0, 0.02, 0.05, 0.1, 0.2, 1]``;
        bands are right-closed and every PD must lie within the outer edges. Empty
        fixed bands are kept, with NaN statistics and the flag ``"empty"``.
    alternative : {"two-sided", "greater", "less"}, default "two-sided"
        ``"greater"`` flags only bands whose default rate exceeds the PD (PDs too low,
        the direction a supervisor cares about); ``"less"`` the reverse.
    amber, red : float, default 0.05 and 0.001
        p-value thresholds of the flags, with ``0 < red < amber < 1``.
    level : float, default 0.95
        Coverage of the default rate's Clopper-Pearson interval.

    Returns
    -------
    pandas.DataFrame
        One row per band, lowest PDs first: ``band``, ``pd_from``, ``pd_to`` (the
        band's smallest and largest PD, or its edges), ``n``, ``defaults``,
        ``expected_defaults`` (sum of PDs), ``mean_pd``, ``default_rate``,
        ``rate_lower``, ``rate_upper``, ``direction`` ("PD too low" when more default
        than predicted, "PD too high", or "exact"), ``p_value`` and ``flag``.

    Raises
    ------
    SchemaError
        On invalid labels or PDs, or PDs outside the fixed band edges.
    ConfigurationError
        On an invalid ``bands``, ``alternative``, ``amber``, ``red`` or ``level``.

    Examples
    --------
    >>> y = [0, 0, 0, 1, 0, 1, 1, 0]
    >>> p = [.05, .1, .1, .2, .3, .6, .7, .4]
    >>> calibration_table(y, p, bands=[0, .25, 1])["defaults"].tolist()
    [1, 2]
    """
    owner = "calibration_table"
    alternative = check_choice(alternative, "alternative", owner, ALTERNATIVES)
    red = check_float(red, "red", owner, 0.0, 1.0)
    amber = check_float(amber, "amber", owner, red, 1.0)
    level = check_level(level, owner)
    y, probs = _check_inputs(y_true, p)
    index, low, high = _assign_bands(p, probs, bands, owner)
    table = _band_sums(y, probs, index, low.size)
    table.insert(1, "pd_from", low)
    table.insert(2, "pd_to", high)
    lower, upper, p_values = _binomial_columns(table, alternative, level)
    table["rate_lower"] = lower
    table["rate_upper"] = upper
    gap = table["default_rate"] - table["mean_pd"]
    table["direction"] = np.select(
        [table["n"] == 0, gap > 0, gap < 0], ["empty", "PD too low", "PD too high"], "exact"
    )
    table["p_value"] = p_values
    table["flag"] = [_flag(v, amber, red) for v in p_values]
    return table


# --------------------------------------------------------------------- Hosmer-Lemeshow


@dataclass(frozen=True)
class HosmerLemeshowResult:
    """The Hosmer-Lemeshow test.

    Attributes
    ----------
    statistic : float
        ``sum_g (O_g - E_g)^2 / (E_g (1 - E_g / n_g))``.
    dof : int
        Degrees of freedom of the chi-squared reference.
    p_value : float
        Probability of a statistic at least this large if the PDs were right.
    n_groups : int
        Number of equal-population groups.
    table : pandas.DataFrame
        Per group: ``group``, ``pd_from``, ``pd_to``, ``n``, ``defaults``,
        ``expected_defaults``, ``mean_pd``, ``default_rate``, ``contribution``.
    """

    statistic: float
    dof: int
    p_value: float
    n_groups: int
    table: pd.DataFrame

    def passed(self, alpha: float = 0.05) -> bool:
        """True if the test does not reject calibration at significance ``alpha``."""
        return bool(self.p_value >= alpha)

    def to_dict(self) -> dict[str, Any]:
        """Statistic, dof, p-value and groups as plain Python values."""
        return {
            "statistic": self.statistic,
            "dof": self.dof,
            "p_value": self.p_value,
            "n_groups": self.n_groups,
            "table": self.table.to_dict(orient="records"),
        }


def hosmer_lemeshow_test(
    y_true: Any, p: Any, *, n_groups: int = 10, ddof: int = 0
) -> HosmerLemeshowResult:
    """Hosmer-Lemeshow goodness-of-fit test over equal-population groups of PD.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        1 if the applicant defaulted, 0 otherwise; both classes must be present.
    p : array-like of shape (n,)
        Predicted probability of default, finite and in [0, 1].
    n_groups : int, default 10
        Number of equal-population groups (at least 2, at most ``n``).
    ddof : int, default 0
        Degrees of freedom removed from ``n_groups``. 0 for PDs scored on applicants
        the model was not fitted on (a holdout: Hosmer & Lemeshow's external
        validation); 2 for the original in-sample test of a fitted logistic model.

    Returns
    -------
    HosmerLemeshowResult
        A group whose mean PD is exactly 0 or 1 contributes 0 if its defaults match
        and makes the statistic infinite (p-value 0) otherwise.

    Raises
    ------
    SchemaError
        On invalid labels or PDs.
    ConfigurationError
        If ``n_groups`` or ``ddof`` is out of range.

    Examples
    --------
    >>> r = hosmer_lemeshow_test([0, 1] * 10, [0.5] * 20, n_groups=2)
    >>> r.statistic, r.dof, r.p_value
    (0.0, 2, 1.0)
    """
    owner = "hosmer_lemeshow_test"
    n_groups = _check_int_param(n_groups, "n_groups", owner, 2)
    ddof = _check_int_param(ddof, "ddof", owner, 0)
    if ddof >= n_groups:
        raise ConfigurationError(
            f"The 'ddof' parameter of {owner} must be an int in the range "
            f"[0, {n_groups - 1}] (n_groups - 1). Got {ddof} instead."
        )
    y, probs = _check_inputs(y_true, p)
    index, low, high = _assign_bands(p, probs, n_groups, owner, "n_groups")
    table = _band_sums(y, probs, index, n_groups).rename(columns={"band": "group"})
    table.insert(1, "pd_from", low)
    table.insert(2, "pd_to", high)
    observed = table["defaults"].to_numpy(dtype=float)
    expected = table["expected_defaults"].to_numpy()
    variance = expected * (1.0 - table["mean_pd"].to_numpy())
    with np.errstate(divide="ignore", invalid="ignore"):
        contribution = np.where(
            variance > 0,
            (observed - expected) ** 2 / variance,
            np.where(np.isclose(observed, expected), 0.0, np.inf),
        )
    table["contribution"] = contribution
    statistic = float(contribution.sum())
    dof = n_groups - ddof
    return HosmerLemeshowResult(statistic, dof, float(chi2.sf(statistic, dof)), n_groups, table)


# -------------------------------------------------------------- calibration in the large


@dataclass(frozen=True)
class ExpectedObserved:
    """Calibration in the large.

    Attributes
    ----------
    n : int
        Applicants.
    expected_defaults : float
        Sum of the predicted PDs.
    observed_defaults : int
        Defaults that happened.
    ratio : float
        ``expected_defaults / observed_defaults``: above 1 the model predicts more
        defaults than happen (conservative), below 1 fewer.
    mean_pd, default_rate : float
        The same comparison as rates.
    p_value : float
        Two-sided exact binomial test of the observed defaults against
        ``Binomial(n, mean_pd)``.
    """

    n: int
    expected_defaults: float
    observed_defaults: int
    ratio: float
    mean_pd: float
    default_rate: float
    p_value: float

    def to_dict(self) -> dict[str, float | int]:
        """Plain Python values, ready for JSON."""
        return dataclasses.asdict(self)


def expected_observed(y_true: Any, p: Any) -> ExpectedObserved:
    """Expected over observed defaults on the whole sample, with a binomial test.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        1 if the applicant defaulted, 0 otherwise; both classes must be present.
    p : array-like of shape (n,)
        Predicted probability of default, finite and in [0, 1].

    Returns
    -------
    ExpectedObserved

    Raises
    ------
    SchemaError
        On invalid labels or PDs.

    Examples
    --------
    >>> expected_observed([0, 0, 0, 1], [0.5, 0.5, 0.5, 0.5]).ratio
    2.0
    """
    y, probs = _check_inputs(y_true, p)
    observed = int(y.sum())
    expected = float(probs.sum())
    mean_pd = float(probs.mean())
    return ExpectedObserved(
        n=int(y.size),
        expected_defaults=expected,
        observed_defaults=observed,
        ratio=expected / observed,
        mean_pd=mean_pd,
        default_rate=float(y.mean()),
        p_value=float(binomtest(observed, int(y.size), mean_pd).pvalue),
    )


__all__ = [
    "ALTERNATIVES",
    "ExpectedObserved",
    "HosmerLemeshowResult",
    "calibration_table",
    "expected_observed",
    "hosmer_lemeshow_test",
]
