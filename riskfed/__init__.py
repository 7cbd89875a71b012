"""riskfed — privacy-preserving credit-risk modelling between a bank and its partners.

The public API (everything else is internal)::

    from riskfed import generate_pilot, VerticalLogisticRegression, run_pipeline, score_applicants

Layers, left to right (nothing calls backwards)::

    data → alignment → roles / protocol / transport (crypto underneath) → federation
         → models → scoring + evaluation → pipeline, cli, app.py
"""

__version__ = "0.1.0"

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
from riskfed.federation import Cancelled, ProgressEvent
from riskfed.models.federated import FederatedModel, VerticalLogisticRegression
from riskfed.pipeline import PipelineResult, run_pipeline
from riskfed.scoring.scorecard import Scorecard, reason_codes
from riskfed.scoring.score import score_applicants, score_file

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
