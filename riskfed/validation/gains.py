"""Ranking charts in table form: cumulative gains and lift, and the KS point.

:func:`gains_table`
    :func:`riskfed.evaluation.decile_table` with the cumulative columns a gains or lift
    chart is drawn from.
:func:`ks_point`
    Where the KS statistic is reached (PD threshold and cumulative shares), to mark the
    point on a KS chart drawn from :func:`riskfed.evaluation.ks_curve`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from riskfed.evaluation.curves import decile_table
from riskfed.evaluation.metrics import _ks_gap
from riskfed.validation._checks import _check_inputs


def gains_table(y_true: Any, p: Any, *, n_bins: int = 10) -> pd.DataFrame:
    """Cumulative gains and lift by equal-population bins, riskiest first.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        1 if the applicant defaulted, 0 otherwise; both classes must be present.
    p : array-like of shape (n,)
        Predicted probability of default, finite and in [0, 1].
    n_bins : int, default 10
        Number of bins (10 gives deciles), between 1 and ``n``.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`riskfed.evaluation.decile_table` (``bin``, ``n``,
        ``defaults``, ``default_rate``, ``mean_pd``, ``cum_default_capture`` -- the gains
        curve --, ``lift``) and

        - ``cum_n``, ``cum_population_share``: applicants in this bin and riskier ones,
          and their share of all applicants (the gains chart's x-axis);
        - ``cum_defaults``, ``cum_default_rate``: their defaults and default rate;
        - ``cum_lift``: ``cum_default_rate`` over the overall default rate (the
          cumulative lift chart; 1 for a random ordering).

    Raises
    ------
    SchemaError
        On invalid labels or PDs.
    ConfigurationError
        If ``n_bins`` is not an int between 1 and ``n``.

    Examples
    --------
    >>> gains_table([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.4], n_bins=2)["cum_lift"].tolist()
    [2.0, 1.0]
    """
    y, probs = _check_inputs(y_true, p)
    table = decile_table(y, probs, n_bins=n_bins)
    cum_n = table["n"].cumsum()
    cum_defaults = table["defaults"].cumsum()
    overall = y.mean()
    return table.assign(
        cum_n=cum_n,
        cum_population_share=cum_n / y.size,
        cum_defaults=cum_defaults,
        cum_default_rate=cum_defaults / cum_n,
        cum_lift=cum_defaults / cum_n / overall,
    )


@dataclass(frozen=True)
class KSPoint:
    """Where the two score distributions are furthest apart.

    Attributes
    ----------
    ks : float
        The KS statistic, equal to :func:`riskfed.evaluation.ks_statistic`.
    threshold : float
        The PD at which it is reached: applicants with ``p >= threshold`` are flagged.
    cum_bad, cum_good : float
        Shares of defaulters and of non-defaulters with ``p >= threshold``; the KS
        chart's two curves at that point (``ks == abs(cum_bad - cum_good)``).
    population_share : float
        Share of all applicants with ``p >= threshold`` (the x-coordinate when the
        chart is drawn against the share of applicants).
    """

    ks: float
    threshold: float
    cum_bad: float
    cum_good: float
    population_share: float

    def to_dict(self) -> dict[str, float]:
        """Plain Python values, ready for JSON."""
        return dataclasses.asdict(self)


def ks_point(y_true: Any, p: Any) -> KSPoint:
    """The point of the KS chart where the KS statistic is reached.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        1 if the applicant defaulted, 0 otherwise; both classes must be present.
    p : array-like of shape (n,)
        Predicted probability of default, finite and in [0, 1].

    Returns
    -------
    KSPoint
        If the largest gap is reached at several thresholds, the highest PD (the first
        one met scanning from the riskiest applicants down) is reported.

    Raises
    ------
    SchemaError
        On invalid labels or PDs.

    Examples
    --------
    >>> k = ks_point([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> k.ks, k.threshold, k.cum_bad, k.cum_good
    (0.5, 0.8, 0.5, 0.0)
    """
    y, probs = _check_inputs(y_true, p)
    fpr, tpr, thresholds = _ks_gap(y, probs)
    peak = int(np.argmax(np.abs(tpr - fpr)))
    n_bad = int(y.sum())
    flagged = tpr[peak] * n_bad + fpr[peak] * (y.size - n_bad)
    return KSPoint(
        ks=float(abs(tpr[peak] - fpr[peak])),
        threshold=float(thresholds[peak]),
        cum_bad=float(tpr[peak]),
        cum_good=float(fpr[peak]),
        population_share=float(flagged / y.size),
    )


__all__ = ["KSPoint", "gains_table", "ks_point"]
