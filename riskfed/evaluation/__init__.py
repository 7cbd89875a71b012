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

from riskfed.evaluation.curves import decile_table, ks_curve, roc_curve_points
from riskfed.evaluation.metrics import (
    PSI_EPSILON,
    brier_score,
    compare_models,
    evaluate,
    gini,
    ks_statistic,
    population_stability_index,
    roc_auc,
)

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
