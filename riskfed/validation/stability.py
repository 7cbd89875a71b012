"""Population stability in table form, with the usual 0.1 / 0.25 reading.

:func:`riskfed.evaluation.population_stability_index` gives the single number; the
validator also wants to see *where* the population moved. :func:`population_stability_table`
returns the index with its per-band breakdown (same bands, same empty-band guard, so the
contributions add up exactly to that function's value), and :func:`stability_label` the
conventional reading. Not to be confused with private set intersection, which riskfed
also abbreviates "PSI".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from riskfed.evaluation import PSI_EPSILON
from riskfed.validation._checks import _check_int_param, _check_scores, check_float

# Conventional reading of the population stability index (e.g. Siddiqi, "Credit Risk
# Scorecards", 2006): below 0.1 no real change, 0.1 to 0.25 a change worth a look, from
# 0.25 a shift that calls the model's use on this population into question.
STABLE_BELOW = 0.1
SHIFT_FROM = 0.25


def stability_label(psi: float) -> str:
    """The conventional reading of a population stability index.

    Parameters
    ----------
    psi : float
        A population stability index, at least 0.

    Returns
    -------
    str
        ``"stable"`` below 0.1, ``"moderate shift"`` from 0.1 to below 0.25,
        ``"significant shift"`` from 0.25.

    Raises
    ------
    ConfigurationError
        If ``psi`` is not a finite number >= 0.

    Examples
    --------
    >>> stability_label(0.05), stability_label(0.1), stability_label(0.25)
    ('stable', 'moderate shift', 'significant shift')
    """
    value = check_float(psi, "psi", "stability_label", 0.0, np.inf, closed="left")
    if value < STABLE_BELOW:
        return "stable"
    return "moderate shift" if value < SHIFT_FROM else "significant shift"


_FLAGS = {"stable": "green", "moderate shift": "amber", "significant shift": "red"}


@dataclass(frozen=True)
class StabilityTable:
    """A population stability index with its per-band breakdown.

    Attributes
    ----------
    psi : float
        The index; equals :func:`riskfed.evaluation.population_stability_index` for the
        same inputs and ``n_bins``.
    label : str
        :func:`stability_label` of ``psi``.
    flag : str
        ``"green"``, ``"amber"`` or ``"red"`` for the three labels.
    table : pandas.DataFrame
        One row per band: ``band``, ``lower`` and ``upper`` (the band is
        ``(lower, upper]``; the outer bands are open, so ``-inf`` and ``inf``),
        ``expected_n``, ``actual_n``, ``expected_share``, ``actual_share`` and
        ``contribution = (a - e) * ln(a / e)`` (empty shares raised to ``PSI_EPSILON``
        first). The contributions sum to ``psi``.
    """

    psi: float
    label: str
    flag: str
    table: pd.DataFrame

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (the table as records), ready for JSON."""
        return {
            "psi": self.psi,
            "label": self.label,
            "flag": self.flag,
            "table": self.table.to_dict(orient="records"),
        }


def population_stability_table(expected: Any, actual: Any, *, n_bins: int = 10) -> StabilityTable:
    """Population stability index of ``actual`` against ``expected``, band by band.

    Parameters
    ----------
    expected : array-like of shape (n,)
        Scores (PDs or points) of the reference population, usually the development
        sample.
    actual : array-like of shape (m,)
        Scores of the population to monitor, e.g. this month's applicants.
    n_bins : int, default 10
        Number of quantile bands of ``expected`` (at least 2); tied quantiles merge.

    Returns
    -------
    StabilityTable

    Raises
    ------
    SchemaError
        If either input is empty, non-numeric or holds NaN or infinite values.
    ConfigurationError
        If ``n_bins`` is not an int >= 2.

    Examples
    --------
    >>> r = population_stability_table([1, 2, 3, 4], [1, 2, 3, 4], n_bins=2)
    >>> r.psi, r.label, r.table["expected_share"].tolist()
    (0.0, 'stable', [0.5, 0.5])
    """
    n_bins = _check_int_param(n_bins, "n_bins", "population_stability_table", 2)
    exp = _check_scores(expected, "expected")
    act = _check_scores(actual, "actual")
    # The bands of riskfed.evaluation.population_stability_index: interior quantiles of
    # the expected scores, right-closed, outer bands open.
    edges = np.unique(np.quantile(exp, np.linspace(0.0, 1.0, n_bins + 1)[1:-1]))
    exp_n = np.bincount(np.searchsorted(edges, exp, side="left"), minlength=edges.size + 1)
    act_n = np.bincount(np.searchsorted(edges, act, side="left"), minlength=edges.size + 1)
    exp_share, act_share = exp_n / exp.size, act_n / act.size
    e = np.maximum(exp_share, PSI_EPSILON)
    a = np.maximum(act_share, PSI_EPSILON)
    contribution = (a - e) * np.log(a / e)
    table = pd.DataFrame(
        {
            "band": np.arange(1, edges.size + 2),
            "lower": np.concatenate([[-np.inf], edges]),
            "upper": np.concatenate([edges, [np.inf]]),
            "expected_n": exp_n,
            "actual_n": act_n,
            "expected_share": exp_share,
            "actual_share": act_share,
            "contribution": contribution,
        }
    )
    psi = float(np.sum(contribution))
    label = stability_label(max(psi, 0.0))
    return StabilityTable(psi, label, _FLAGS[label], table)


__all__ = [
    "SHIFT_FROM",
    "STABLE_BELOW",
    "StabilityTable",
    "population_stability_table",
    "stability_label",
]
