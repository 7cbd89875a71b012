"""The Train page's settings and the run behind it.

:class:`TrainingSettings` is what the analyst chose; together with the data version it
forms the fingerprint that decides whether a finished model is still current (a page
rerun never retrains unless the fingerprint changed). :func:`train` is the one call the
background job makes: :func:`riskfed.pipeline.run_pipeline` with a configured
:class:`~riskfed.models.federated.VerticalLogisticRegression`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass

from riskfed.crypto.keys import DEFAULT_KEY_BITS
from riskfed.session import ProgressEvent
from riskfed.models.estimator import VerticalLogisticRegression
from riskfed.job import PipelineResult, run_pipeline
from riskfed.ui.data import DataBundle

# Offered key sizes. 2048 bits is the floor (≈112-bit security); 3072 bits gives
# ≈128-bit security at roughly 3× the encryption cost.
SECURE_KEY_SIZES = (2048, 3072)
# Test-only sizes, offered only in the explicitly labelled insecure test mode.
INSECURE_KEY_SIZES = (512, 1024)
BATCH_SIZES = (256, 512, 1024, 2048, 4096)

# Set to 1 to start the app in insecure test mode (small keys): for automated tests.
TEST_MODE_ENV = "RISKFED_APP_TEST_MODE"


def insecure_mode_requested() -> bool:
    """Whether the environment asks for insecure test mode (``RISKFED_APP_TEST_MODE=1``)."""
    return os.environ.get(TEST_MODE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class TrainingSettings:
    """Everything that changes the trained model.

    ``psi`` comes from the Align page; the rest from the Train page.
    """

    key_bits: int = DEFAULT_KEY_BITS
    insecure_test_mode: bool = False
    psi: str = "ecdh"
    max_epochs: int = 3
    batch_size: int = 1024
    learning_rate: float = 1.0
    l2: float = 1e-4
    test_size: float = 0.3
    # None: a fresh secret per session (a fixed seed reveals the split; tests and pilots only).
    random_state: int | None = None
    centralized: bool = True

    def estimator(self, *, n_jobs: int = -1) -> VerticalLogisticRegression:
        """The configured estimator (validates the key size against the test-mode flag)."""
        return VerticalLogisticRegression(
            key_bits=int(self.key_bits),
            allow_insecure_key=bool(self.insecure_test_mode),
            psi=self.psi,
            learning_rate=float(self.learning_rate),
            l2=float(self.l2),
            batch_size=int(self.batch_size),
            max_epochs=int(self.max_epochs),
            test_size=float(self.test_size),
            random_state=None if self.random_state is None else int(self.random_state),
            n_jobs=n_jobs,
        )

    def describe(self) -> dict:
        return asdict(self)


@dataclass
class TrainingRun:
    """A finished training run kept in the session (holds the private key: never share)."""

    fingerprint: tuple
    settings: TrainingSettings
    result: PipelineResult
    data_description: str

    @property
    def report(self) -> dict:
        return self.result.report

    @property
    def estimator(self) -> VerticalLogisticRegression:
        return self.result.estimator

    @property
    def model(self):
        return self.result.estimator.model_


def fingerprint(data_version: int, settings: TrainingSettings) -> tuple:
    """What a finished model depends on: the data loaded and every setting."""
    return (data_version, tuple(sorted(settings.describe().items())))


def train(
    bundle: DataBundle,
    settings: TrainingSettings,
    *,
    progress: Callable[[ProgressEvent], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    n_jobs: int = -1,
) -> PipelineResult:
    """Align, train under encryption and compare with the baselines (one pipeline run)."""
    estimator = settings.estimator(n_jobs=n_jobs)
    return run_pipeline(
        bundle.bank,
        list(bundle.fintechs),
        id_column=bundle.id_column,
        label_column=bundle.label_column,
        centralized=settings.centralized,
        estimator=estimator,
        progress=progress,
        cancel=cancel,
        extra_report={"app": {"data": bundle.description, "source": bundle.source}},
    )
