"""Holdout metrics a credit-risk team expects from a probability-of-default model.

Every function takes the true default flags ``y_true`` (1 = defaulted, 0 = repaid) and
the predicted probabilities of default ``p`` of the same applicants, and validates both
the same way: ``y_true`` holds only 0 and 1 with both classes present, the lengths match,
and ``p`` is finite and inside [0, 1]. A violation raises
:class:`~riskfed.errors.SchemaError` naming at most five offending rows (pandas index
labels when a ``Series`` is passed, positions otherwise).

Ranking metrics
    :func:`roc_auc`, :func:`gini` (= 2 AUC - 1) and :func:`ks_statistic` (the largest
    gap between the score distributions of defaulters and non-defaulters).
Calibration
    :func:`brier_score` and the ``mean_pd`` vs ``default_rate`` columns of
    :func:`decile_table`.
Stability
    :func:`population_stability_index` compares the score distribution of a new
    population (``actual``) with the development sample (``expected``). Not to be
    confused with private set intersection, which riskfed also calls "PSI" elsewhere.
Summaries and plots
    :func:`evaluate`, :func:`compare_models`, :func:`roc_curve_points`, :func:`ks_curve`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve

from riskfed.errors import ConfigurationError, SchemaError, format_rows

# Share given to an empty bin in the population stability index. ln(0) is undefined, and
# 1e-4 is the guard most credit monitoring tools use: an empty bin then adds a visible
# but bounded term instead of infinity.
PSI_EPSILON = 1e-4


# --------------------------------------------------------------------------- validation


def _to_1d(values: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Return ``values`` as a 1-D array together with the labels used to name its rows."""
    if isinstance(values, pd.DataFrame):
        if values.shape[1] != 1:
            raise SchemaError(
                f"{name} must be one-dimensional; got a DataFrame with "
                f"{values.shape[1]} columns."
            )
        values = values.iloc[:, 0]
    if isinstance(values, pd.Series):
        labels = values.index.to_numpy()
        if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
            # Nullable dtypes (Int64, Float64, boolean) hold pd.NA, which numpy cannot
            # compare; NaN keeps the missing rows visible to the checks below.
            array = values.to_numpy(dtype=float, na_value=np.nan)
        else:
            array = values.to_numpy(dtype=object)
    else:
        array = np.asarray(values)
        labels = np.arange(array.shape[0]) if array.ndim >= 1 else np.arange(1)
    if array.ndim != 1:
        hint = (
            " Pass the probability of default only, e.g. predict_proba(X)[:, 1]."
            if array.ndim == 2 and array.shape[1] == 2
            else ""
        )
        raise SchemaError(f"{name} must be one-dimensional; got shape {array.shape}.{hint}")
    return array, labels


def _rows_phrase(rows: np.ndarray, total: int) -> str:
    """'row 4 holds' / 'rows 1, 3 and 2 more hold': at most five labels, with the verb."""
    listed = format_rows(rows.tolist(), total=total)
    return f"row {listed} holds" if total == 1 else f"rows {listed} hold"


def _check_labels(y_true: Any, name: str = "y_true") -> tuple[np.ndarray, np.ndarray]:
    """Return ``y_true`` as an int array of 0/1 and its row labels; reject anything else."""
    array, labels = _to_1d(y_true, name)
    if array.size == 0:
        raise SchemaError(
            f"{name} is empty; at least one defaulter and one non-defaulter are needed."
        )
    if array.dtype.kind in "biuf":
        numeric = array.astype(float)
        bad = ~np.isin(numeric, (0.0, 1.0))
    else:
        # Object or string arrays: only genuine numbers 0/1 are labels. The string "1"
        # is rejected rather than coerced, so a mis-parsed column cannot pass silently.
        bad = np.array(
            [
                isinstance(v, str)
                or not isinstance(v, (bool, int, float, np.number))
                or v not in (0, 1)
                for v in array
            ],
            dtype=bool,
        )
        numeric = np.where(bad, np.nan, array.astype(object)).astype(float)
    if bad.any():
        rows = labels[bad]
        # repr for strings so that the text "1" is visibly not the number 1.
        shown = sorted({repr(str(v)) if isinstance(v, str) else str(v) for v in array[bad]})[:5]
        raise SchemaError(
            f"{name} must hold only 0 (repaid) and 1 (defaulted); "
            f"{_rows_phrase(rows, int(bad.sum()))} other values (found: {', '.join(shown)}).",
            column=name,
            rows=rows.tolist(),
        )
    y = numeric.astype(np.int64)
    if y.min() == y.max():
        present = int(y[0])
        raise SchemaError(
            f"{name} must contain both classes (0 and 1); all {y.size} rows are {present}. "
            "Ranking metrics are undefined without both defaulters and non-defaulters.",
            column=name,
        )
    return y, labels


def _check_probabilities(p: Any, name: str = "p") -> np.ndarray:
    """Return ``p`` as a float array; reject non-numeric, non-finite or out-of-[0, 1] values."""
    array, labels = _to_1d(p, name)
    try:
        values = array.astype(float)
    except (TypeError, ValueError):
        raise SchemaError(
            f"{name} must be numeric probabilities of default; got dtype {array.dtype}.",
            column=name,
        ) from None
    bad = ~np.isfinite(values)
    if bad.any():
        rows = labels[bad]
        raise SchemaError(
            f"{name} must be finite; {_rows_phrase(rows, int(bad.sum()))} NaN or infinite.",
            column=name,
            rows=rows.tolist(),
        )
    bad = (values < 0.0) | (values > 1.0)
    if bad.any():
        rows = labels[bad]
        raise SchemaError(
            f"{name} must be probabilities in [0, 1]; {_rows_phrase(rows, int(bad.sum()))} "
            f"values outside that range (min {values.min():g}, max {values.max():g}).",
            column=name,
            rows=rows.tolist(),
        )
    return values


def _check_inputs(y_true: Any, p: Any, p_name: str = "p") -> tuple[np.ndarray, np.ndarray]:
    """Validate a (labels, probabilities) pair and return them as numpy arrays."""
    y, _ = _check_labels(y_true)
    probs = _check_probabilities(p, p_name)
    if y.shape[0] != probs.shape[0]:
        raise SchemaError(
            f"y_true and {p_name} must have the same length; got {y.shape[0]} labels and "
            f"{probs.shape[0]} probabilities."
        )
    return y, probs


def _check_int_param(value: Any, name: str, owner: str, low: int) -> int:
    """Validate an integer parameter with a scikit-learn style message."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigurationError(
            f"The '{name}' parameter of {owner} must be an int in the range "
            f"[{low}, inf). Got {value!r} instead."
        )
    return int(value)


def _downsample(n: int, max_points: int, keep: tuple[int, ...] = ()) -> np.ndarray:
    """At most ``max_points`` evenly spread row indices, always with first, last and ``keep``."""
    if n <= max_points:
        return np.arange(n)
    idx = np.unique(np.linspace(0, n - 1, max_points - len(keep)).round().astype(np.int64))
    return np.unique(np.concatenate([idx, np.asarray(keep, dtype=np.int64)]))


# ------------------------------------------------------------------------------ metrics


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


def _check_scores(values: Any, name: str) -> np.ndarray:
    """Return a non-empty, finite, numeric 1-D array of scores."""
    array, labels = _to_1d(values, name)
    if array.size == 0:
        raise SchemaError(f"{name} is empty; the population stability index needs scores.")
    try:
        scores = array.astype(float)
    except (TypeError, ValueError):
        raise SchemaError(f"{name} must be numeric scores; got dtype {array.dtype}.") from None
    bad = ~np.isfinite(scores)
    if bad.any():
        rows = labels[bad]
        raise SchemaError(
            f"{name} must be finite; {_rows_phrase(rows, int(bad.sum()))} NaN or infinite.",
            column=name,
            rows=rows.tolist(),
        )
    return scores


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


__all__ = [
    "PSI_EPSILON",
    "brier_score",
    "compare_models",
    "decile_table",
    "evaluate",
    "gini",
    "ks_curve",
    "ks_statistic",
    "population_stability_index",
    "roc_auc",
    "roc_curve_points",
]
