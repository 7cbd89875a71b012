"""Points for ROC and KS charts, and the decile table."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from riskfed.errors import ConfigurationError
from riskfed.evaluation.checks import _check_inputs, _check_int_param, _downsample
from riskfed.evaluation.metrics import _ks_gap


def roc_curve_points(y_true: Any, p: Any, max_points: int = 200) -> pd.DataFrame:
    """ROC curve, downsampled to at most ``max_points`` rows for plotting.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        1 if the applicant defaulted, 0 otherwise; both classes must be present.
    p : array-like of shape (n,)
        Predicted probability of default, finite and in [0, 1].
    max_points : int, default 200
        Upper bound on the number of rows (at least 2). The first point (0, 0) and the
        last point (1, 1) are always kept.

    Returns
    -------
    pandas.DataFrame
        Columns ``fpr``, ``tpr``, ``threshold``, by increasing ``fpr``. A row means
        "flag every applicant with ``p >= threshold``"; the first threshold is ``inf``
        (flag no one), as in :func:`sklearn.metrics.roc_curve`.

    Raises
    ------
    SchemaError
        On invalid labels or probabilities (see :func:`roc_auc`).
    ConfigurationError
        If ``max_points`` is not an int >= 2.

    Examples
    --------
    >>> roc_curve_points([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]).shape[1]
    3
    """
    max_points = _check_int_param(max_points, "max_points", "roc_curve_points", 2)
    y, probs = _check_inputs(y_true, p)
    fpr, tpr, thresholds = roc_curve(y, probs)
    idx = _downsample(fpr.size, max_points)
    return pd.DataFrame({"fpr": fpr[idx], "tpr": tpr[idx], "threshold": thresholds[idx]})


def ks_curve(y_true: Any, p: Any, max_points: int = 200) -> pd.DataFrame:
    """Cumulative shares of defaulters and non-defaulters by threshold: the KS chart.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        1 if the applicant defaulted, 0 otherwise; both classes must be present.
    p : array-like of shape (n,)
        Predicted probability of default, finite and in [0, 1].
    max_points : int, default 200
        Upper bound on the number of rows (at least 3). The first and last rows and the
        row where the gap peaks (the KS point) are always kept.

    Returns
    -------
    pandas.DataFrame
        Columns ``threshold``, ``cum_bad`` (share of defaulters with ``p >= threshold``),
        ``cum_good`` (the same for non-defaulters) and ``gap = cum_bad - cum_good``, by
        decreasing threshold. ``abs(gap).max()`` equals :func:`ks_statistic`.

    Raises
    ------
    SchemaError
        On invalid labels or probabilities (see :func:`roc_auc`).
    ConfigurationError
        If ``max_points`` is not an int >= 3.

    Examples
    --------
    >>> float(ks_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])["gap"].abs().max())
    0.5
    """
    max_points = _check_int_param(max_points, "max_points", "ks_curve", 3)
    y, probs = _check_inputs(y_true, p)
    fpr, tpr, thresholds = _ks_gap(y, probs)
    gap = tpr - fpr
    # Keep the peak explicitly: downsampling must not hide the point the KS is read from.
    peak = int(np.argmax(np.abs(gap)))
    idx = _downsample(gap.size, max_points, keep=(peak,))
    return pd.DataFrame(
        {"threshold": thresholds[idx], "cum_bad": tpr[idx], "cum_good": fpr[idx], "gap": gap[idx]}
    )


def decile_table(y_true: Any, p: Any, n_bins: int = 10) -> pd.DataFrame:
    """Gains table: applicants in equal-sized bins of predicted PD, highest risk first.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        1 if the applicant defaulted, 0 otherwise; both classes must be present.
    p : array-like of shape (n,)
        Predicted probability of default, finite and in [0, 1].
    n_bins : int, default 10
        Number of bins (10 gives deciles); between 1 and ``n``.

    Returns
    -------
    pandas.DataFrame
        One row per bin with columns

        - ``bin``: 1 for the riskiest bin, ``n_bins`` for the safest;
        - ``n``, ``defaults``: applicants and defaulters in the bin;
        - ``default_rate``: ``defaults / n``;
        - ``mean_pd``: mean predicted PD in the bin (compare with ``default_rate`` to
          judge calibration);
        - ``cum_default_capture``: share of all defaulters found in this bin and the
          riskier ones;
        - ``lift``: ``default_rate`` divided by the overall default rate.

    Notes
    -----
    Bins are equal-population: applicants are sorted by decreasing ``p`` (a stable sort,
    so ties keep their input order) and split into ``n_bins`` nearly equal groups, the
    larger groups first. Applicants with the same ``p`` can therefore fall in
    neighbouring bins; quantile cuts would instead merge bins whenever many scores tie.

    Raises
    ------
    SchemaError
        On invalid labels or probabilities (see :func:`roc_auc`).
    ConfigurationError
        If ``n_bins`` is not an int between 1 and ``n``.

    Examples
    --------
    >>> decile_table([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], n_bins=2)["defaults"].tolist()
    [1, 1]
    """
    n_bins = _check_int_param(n_bins, "n_bins", "decile_table", 1)
    y, probs = _check_inputs(y_true, p)
    if n_bins > y.size:
        raise ConfigurationError(
            f"The 'n_bins' parameter of decile_table must be an int in the range "
            f"[1, {y.size}] (the number of applicants). Got {n_bins} instead."
        )
    order = np.argsort(-probs, kind="stable")
    groups = np.array_split(order, n_bins)
    n = np.array([g.size for g in groups], dtype=np.int64)
    defaults = np.array([int(y[g].sum()) for g in groups], dtype=np.int64)
    mean_pd = np.array([float(probs[g].mean()) for g in groups])
    rate = defaults / n
    overall = y.mean()
    return pd.DataFrame(
        {
            "bin": np.arange(1, n_bins + 1),
            "n": n,
            "defaults": defaults,
            "default_rate": rate,
            "mean_pd": mean_pd,
            "cum_default_capture": np.cumsum(defaults) / defaults.sum(),
            "lift": rate / overall,
        }
    )


# ----------------------------------------------------------------------------- stability
