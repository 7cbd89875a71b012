"""Ranking, calibration and stability metrics: AUC, Gini, KS, Brier, the population
stability index, and their summaries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve

from riskfed.errors import ConfigurationError
from riskfed.evaluation.checks import _check_inputs, _check_int_param, _check_scores

# Share given to an empty bin in the population stability index. ln(0) is undefined, and
# 1e-4 is the guard most credit monitoring tools use: an empty bin then adds a visible
# but bounded term instead of infinity.
PSI_EPSILON = 1e-4


def roc_auc(y_true: Any, p: Any) -> float:
    """Area under the ROC curve of a probability-of-default score.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        1 if the applicant defaulted, 0 otherwise; both classes must be present.
    p : array-like of shape (n,)
        Predicted probability of default, finite and in [0, 1].

    Returns
    -------
    float
        The probability that a random defaulter gets a higher ``p`` than a random
        non-defaulter (ties count one half); 0.5 for an uninformative score.

    Raises
    ------
    SchemaError
        If the labels are not 0/1, only one class is present, the lengths differ or
        ``p`` is not a finite probability.

    Examples
    --------
    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    y, probs = _check_inputs(y_true, p)
    return float(roc_auc_score(y, probs))


def gini(y_true: Any, p: Any) -> float:
    """Gini coefficient (accuracy ratio) of a probability-of-default score: ``2 * AUC - 1``.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        1 if the applicant defaulted, 0 otherwise; both classes must be present.
    p : array-like of shape (n,)
        Predicted probability of default, finite and in [0, 1].

    Returns
    -------
    float
        In [-1, 1]: 1 for a perfect ranking, 0 for a random one.

    Raises
    ------
    SchemaError
        On invalid labels or probabilities (see :func:`roc_auc`).

    Examples
    --------
    >>> gini([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.5
    """
    return 2.0 * roc_auc(y_true, p) - 1.0


def _ks_gap(y: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative shares of defaulters (TPR) and non-defaulters (FPR) at every threshold."""
    # drop_intermediate=False keeps every distinct threshold, so the curve is exact and
    # the maximum gap is attained at one of its rows.
    fpr, tpr, thresholds = roc_curve(y, probs, drop_intermediate=False)
    return fpr, tpr, thresholds


def ks_statistic(y_true: Any, p: Any) -> float:
    """Kolmogorov-Smirnov statistic: the largest gap between the score distributions.

    Computed as ``max |TPR - FPR|`` over all thresholds, which equals the largest vertical
    distance between the empirical CDFs of ``p`` among defaulters and among
    non-defaulters (the two-sample KS statistic).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        1 if the applicant defaulted, 0 otherwise; both classes must be present.
    p : array-like of shape (n,)
        Predicted probability of default, finite and in [0, 1].

    Returns
    -------
    float
        In [0, 1]: 1 when a threshold separates the classes perfectly, near 0 for a
        random score.

    Raises
    ------
    SchemaError
        On invalid labels or probabilities (see :func:`roc_auc`).

    Examples
    --------
    >>> ks_statistic([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.5
    """
    y, probs = _check_inputs(y_true, p)
    fpr, tpr, _ = _ks_gap(y, probs)
    return float(np.max(np.abs(tpr - fpr)))


def brier_score(y_true: Any, p: Any) -> float:
    """Brier score: the mean squared error of the probability of default.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        1 if the applicant defaulted, 0 otherwise; both classes must be present.
    p : array-like of shape (n,)
        Predicted probability of default, finite and in [0, 1].

    Returns
    -------
    float
        In [0, 1]; lower is better. Predicting the default rate for everyone scores
        ``rate * (1 - rate)``.

    Raises
    ------
    SchemaError
        On invalid labels or probabilities (see :func:`roc_auc`).

    Examples
    --------
    >>> brier_score([0, 1], [0.0, 0.5])
    0.125
    """
    y, probs = _check_inputs(y_true, p)
    return float(brier_score_loss(y, probs, pos_label=1))


def evaluate(y_true: Any, p: Any) -> dict[str, float | int]:
    """All headline holdout metrics at once.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        1 if the applicant defaulted, 0 otherwise; both classes must be present.
    p : array-like of shape (n,)
        Predicted probability of default, finite and in [0, 1].

    Returns
    -------
    dict
        ``{"auc", "ks", "gini", "brier", "n", "default_rate"}`` as plain Python floats
        (``n`` an int), ready for JSON or a Streamlit table.

    Raises
    ------
    SchemaError
        On invalid labels or probabilities (see :func:`roc_auc`).

    Examples
    --------
    >>> evaluate([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])["gini"]
    0.5
    """
    y, probs = _check_inputs(y_true, p)
    auc = float(roc_auc_score(y, probs))
    fpr, tpr, _ = _ks_gap(y, probs)
    return {
        "auc": auc,
        "ks": float(np.max(np.abs(tpr - fpr))),
        "gini": 2.0 * auc - 1.0,
        "brier": float(brier_score_loss(y, probs, pos_label=1)),
        "n": int(y.size),
        "default_rate": float(y.mean()),
    }


def compare_models(y_true: Any, predictions: Mapping[str, Any]) -> pd.DataFrame:
    """Evaluate several models on the same holdout, one row per model.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        1 if the applicant defaulted, 0 otherwise; both classes must be present.
    predictions : Mapping[str, array-like of shape (n,)]
        Model name (e.g. ``"federated"``, ``"bank_only"``) to its predicted
        probabilities of default for the same applicants, in the same order.

    Returns
    -------
    pandas.DataFrame
        Indexed by model name (index name ``"model"``, in the mapping's order) with the
        columns of :func:`evaluate`.

    Raises
    ------
    ConfigurationError
        If ``predictions`` is empty.
    SchemaError
        On invalid labels, or invalid probabilities of any model (the message names it).

    Examples
    --------
    >>> y = [0, 0, 1, 1]
    >>> table = compare_models(y, {"a": [0.1, 0.4, 0.35, 0.8], "b": [0.1, 0.2, 0.3, 0.4]})
    >>> table["auc"].tolist()
    [0.75, 1.0]
    """
    if not isinstance(predictions, Mapping) or len(predictions) == 0:
        raise ConfigurationError(
            "The 'predictions' parameter of compare_models must be a non-empty mapping of "
            f"model name to probabilities of default. Got {type(predictions).__name__} "
            f"of length {len(predictions) if hasattr(predictions, '__len__') else '?'} instead."
        )
    rows = {}
    for name, p in predictions.items():
        y, probs = _check_inputs(y_true, p, p_name=f"predictions[{name!r}]")
        rows[name] = evaluate(y, probs)
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    return table


# ----------------------------------------------------------------------- plot-ready data


def population_stability_index(expected: Any, actual: Any, n_bins: int = 10) -> float:
    """Population stability index of ``actual`` scores against ``expected`` ones.

    ``PSI = sum_i (a_i - e_i) * ln(a_i / e_i)``, where ``e_i`` and ``a_i`` are the shares
    of the expected and actual populations in bin ``i``. Bins are cut at the quantiles of
    ``expected`` (so each holds about ``1 / n_bins`` of it), with open outer bins that
    catch actual scores beyond the expected range.

    Parameters
    ----------
    expected : array-like of shape (n,)
        Scores (PDs or points) of the reference population, usually the development
        sample.
    actual : array-like of shape (m,)
        Scores of the population to monitor, e.g. this month's applicants.
    n_bins : int, default 10
        Number of quantile bins (at least 2). Tied quantiles are merged, so heavily
        discrete scores may use fewer bins.

    Returns
    -------
    float
        0 for identical distributions. Rule of thumb: below 0.1 stable, 0.1-0.25
        worth a look, above 0.25 a significant shift.

    Notes
    -----
    An empty bin would make ``ln`` infinite; its share is raised to ``PSI_EPSILON``
    (1e-4) instead, so the index stays finite and still grows with the shift.

    Raises
    ------
    SchemaError
        If either input is empty, non-numeric or holds NaN or infinite values.
    ConfigurationError
        If ``n_bins`` is not an int >= 2.

    Examples
    --------
    >>> population_stability_index([1, 2, 3, 4], [1, 2, 3, 4], n_bins=2)
    0.0
    """
    n_bins = _check_int_param(n_bins, "n_bins", "population_stability_index", 2)
    exp = _check_scores(expected, "expected")
    act = _check_scores(actual, "actual")
    # Interior cut points only: the outer bins are open so no actual score falls outside.
    edges = np.unique(np.quantile(exp, np.linspace(0.0, 1.0, n_bins + 1)[1:-1]))
    # side="left" makes bins right-closed, (edge_{i-1}, edge_i], as pandas.qcut does.
    exp_share = np.bincount(np.searchsorted(edges, exp, side="left"), minlength=edges.size + 1)
    act_share = np.bincount(np.searchsorted(edges, act, side="left"), minlength=edges.size + 1)
    e = np.maximum(exp_share / exp.size, PSI_EPSILON)
    a = np.maximum(act_share / act.size, PSI_EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))
