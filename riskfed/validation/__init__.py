"""The statistics a model validator asks for, as pure functions over arrays.

Nothing here reads or writes files, knows about parties, or draws: the validation pack,
the app's pages and the CLI build on these results. Every function takes the default
flags ``y_true`` (1 = defaulted, 0 = repaid) and predicted PDs checked exactly as in
:mod:`riskfed.evaluation` (typed :class:`~riskfed.errors.SchemaError` naming at most five
rows; :class:`~riskfed.errors.ConfigurationError` for a parameter out of range). Results
are frozen dataclasses with ``to_dict()`` for JSON, or pandas DataFrames. Formulas,
references, how to read each number and its limits: ``docs/validation.md``.

Discrimination with uncertainty (:mod:`~riskfed.validation.discrimination`)
    :func:`delong_auc_ci`, :func:`delong_test`, :func:`bootstrap_metrics`.
Calibration (:mod:`~riskfed.validation.calibration`, :mod:`~riskfed.validation.calibrators`)
    :func:`calibration_table`, :func:`hosmer_lemeshow_test`, :func:`expected_observed`;
    :class:`InterceptShiftCalibrator`, :class:`PlattCalibrator`,
    :class:`IsotonicCalibrator`, :func:`calibrator_from_dict`.
Business impact (:mod:`~riskfed.validation.strategy`, :mod:`~riskfed.validation.impact`,
:mod:`~riskfed.validation.gains`)
    :func:`cutoff_table`, :func:`compare_cutoff_tables`, :func:`cutoff_for_approval_rate`,
    :func:`compare_at_approval_rate`, :func:`compare_at_bad_rate`, :func:`swap_set`,
    :func:`gains_table`, :func:`ks_point`.
Stability (:mod:`~riskfed.validation.stability`)
    :func:`population_stability_table`, :func:`stability_label`.
Early stopping (:mod:`~riskfed.validation.stopping`)
    :func:`early_stopping_decision`.
"""

from riskfed.validation.calibration import (
    ExpectedObserved,
    HosmerLemeshowResult,
    calibration_table,
    expected_observed,
    hosmer_lemeshow_test,
)
from riskfed.validation.calibrators import (
    InterceptShiftCalibrator,
    IsotonicCalibrator,
    PlattCalibrator,
    calibrator_from_dict,
)
from riskfed.validation.discrimination import (
    BootstrapResult,
    ConfidenceInterval,
    PairedAUCTest,
    bootstrap_metrics,
    delong_auc_ci,
    delong_test,
)
from riskfed.validation.gains import KSPoint, gains_table, ks_point
from riskfed.validation.impact import (
    StrategyComparison,
    StrategyPoint,
    compare_at_approval_rate,
    compare_at_bad_rate,
    swap_set,
)
from riskfed.validation.stability import (
    StabilityTable,
    population_stability_table,
    stability_label,
)
from riskfed.validation.stopping import StoppingDecision, early_stopping_decision
from riskfed.validation.strategy import (
    compare_cutoff_tables,
    cutoff_for_approval_rate,
    cutoff_table,
)

__all__ = [
    "BootstrapResult",
    "ConfidenceInterval",
    "ExpectedObserved",
    "HosmerLemeshowResult",
    "InterceptShiftCalibrator",
    "IsotonicCalibrator",
    "KSPoint",
    "PairedAUCTest",
    "PlattCalibrator",
    "StabilityTable",
    "StoppingDecision",
    "StrategyComparison",
    "StrategyPoint",
    "bootstrap_metrics",
    "calibration_table",
    "calibrator_from_dict",
    "compare_at_approval_rate",
    "compare_at_bad_rate",
    "compare_cutoff_tables",
    "cutoff_for_approval_rate",
    "cutoff_table",
    "delong_auc_ci",
    "delong_test",
    "early_stopping_decision",
    "expected_observed",
    "gains_table",
    "hosmer_lemeshow_test",
    "ks_point",
    "population_stability_table",
    "stability_label",
    "swap_set",
]
