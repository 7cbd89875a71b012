"""riskfed — privacy-preserving credit-risk modelling between a bank and its partners.

The public API (everything else is internal)::

    from riskfed import generate_pilot, VerticalLogisticRegression, run_pipeline, score_applicants

Layers, lowest first (nothing imports upwards; docs/architecture.md has the map)::

    errors, settings → data → crypto, binning, evaluation → alignment → learning
      → protocol → roles → transport → session → model artifact → scoring → estimator
      → job → deploy, cli, ui, app.py
"""

__version__ = "0.1.0"

import importlib
from typing import TYPE_CHECKING

# The public names load lazily (PEP 562): ``import riskfed.crypto.paillier`` in a
# worker process then costs numpy and gmpy2, not scikit-learn, pandas and the pipeline
# (about a second per worker process otherwise).
_EXPORTS = {
    "AlignedIndex": "riskfed.alignment.index",
    "IdNormalization": "riskfed.alignment.normalize",
    "read_table": "riskfed.data.io",
    "PartyTable": "riskfed.data.schema",
    "validate_table": "riskfed.data.schema",
    "PilotData": "riskfed.data.synthetic",
    "generate_pilot": "riskfed.data.synthetic",
    "write_pilot": "riskfed.data.synthetic",
    "AlignmentError": "riskfed.errors",
    "ConfigurationError": "riskfed.errors",
    "CryptoError": "riskfed.errors",
    "DataValidationError": "riskfed.errors",
    "EncodingOverflowError": "riskfed.errors",
    "InsecureKeyError": "riskfed.errors",
    "InvalidCiphertextError": "riskfed.errors",
    "KeyMismatchError": "riskfed.errors",
    "MissingColumnError": "riskfed.errors",
    "NotFittedError": "riskfed.errors",
    "ProtocolError": "riskfed.errors",
    "RiskfedError": "riskfed.errors",
    "SchemaError": "riskfed.errors",
    "TransportError": "riskfed.errors",
    "brier_score": "riskfed.evaluation",
    "compare_models": "riskfed.evaluation",
    "decile_table": "riskfed.evaluation",
    "evaluate": "riskfed.evaluation",
    "gini": "riskfed.evaluation",
    "ks_statistic": "riskfed.evaluation",
    "population_stability_index": "riskfed.evaluation",
    "roc_auc": "riskfed.evaluation",
    "Cancelled": "riskfed.session.progress",
    "ProgressEvent": "riskfed.session.progress",
    "FederatedModel": "riskfed.models.artifact",
    "VerticalLogisticRegression": "riskfed.models.estimator",
    "PipelineResult": "riskfed.job",
    "run_pipeline": "riskfed.job",
    "Scorecard": "riskfed.scoring.scorecard",
    "reason_codes": "riskfed.scoring.scorecard",
    "score_applicants": "riskfed.scoring.score",
    "score_file": "riskfed.scoring.score",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'riskfed' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # static analysers see the eager imports
    from riskfed.alignment.index import AlignedIndex
    from riskfed.alignment.normalize import IdNormalization
    from riskfed.data.io import read_table
    from riskfed.data.schema import PartyTable, validate_table
    from riskfed.data.synthetic import PilotData, generate_pilot, write_pilot
    from riskfed.errors import (
        AlignmentError,
        ConfigurationError,
        CryptoError,
        DataValidationError,
        EncodingOverflowError,
        InsecureKeyError,
        InvalidCiphertextError,
        KeyMismatchError,
        MissingColumnError,
        NotFittedError,
        ProtocolError,
        RiskfedError,
        SchemaError,
        TransportError,
    )
    from riskfed.evaluation import (
        brier_score,
        compare_models,
        decile_table,
        evaluate,
        gini,
        ks_statistic,
        population_stability_index,
        roc_auc,
    )
    from riskfed.models.artifact import FederatedModel
    from riskfed.models.estimator import VerticalLogisticRegression
    from riskfed.job import PipelineResult, run_pipeline
    from riskfed.scoring.score import score_applicants, score_file
    from riskfed.scoring.scorecard import Scorecard, reason_codes
    from riskfed.session.progress import Cancelled, ProgressEvent

__all__ = [
    "AlignedIndex",
    "AlignmentError",
    "Cancelled",
    "ConfigurationError",
    "CryptoError",
    "DataValidationError",
    "EncodingOverflowError",
    "FederatedModel",
    "IdNormalization",
    "InsecureKeyError",
    "InvalidCiphertextError",
    "KeyMismatchError",
    "MissingColumnError",
    "NotFittedError",
    "PartyTable",
    "PilotData",
    "PipelineResult",
    "ProgressEvent",
    "ProtocolError",
    "RiskfedError",
    "SchemaError",
    "Scorecard",
    "TransportError",
    "VerticalLogisticRegression",
    "__version__",
    "brier_score",
    "compare_models",
    "decile_table",
    "evaluate",
    "generate_pilot",
    "gini",
    "ks_statistic",
    "population_stability_index",
    "read_table",
    "reason_codes",
    "roc_auc",
    "run_pipeline",
    "score_applicants",
    "score_file",
    "validate_table",
    "write_pilot",
]
