"""The federated model as a scikit-learn-style estimator.

:class:`VerticalLogisticRegression` plays every party in one process — the pilot, the
app and data scientists' notebooks — through :class:`~riskfed.transport.memory.InMemoryTransport`,
so each party still sees only its own messages. ``fit`` validates the tables, runs
alignment and encrypted training (:func:`riskfed.session.training.run_training_session`)
and keeps each party's model part separately in a
:class:`~riskfed.models.artifact.FederatedModel`. Its parameters, defaults and checks
are declared in :mod:`riskfed.settings`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from riskfed import settings
from riskfed.crypto.keys import check_key_bits
from riskfed.crypto.parallel import dask_backend
from riskfed.data.schema import PartyTable, validate_table
from riskfed.errors import ConfigurationError, NotFittedError
from riskfed.learning.linear.hyperparameters import Hyperparameters
from riskfed.models.artifact import FederatedModel
from riskfed.models.baselines import FallbackModel
from riskfed.protocol.messages import BANK, fintech_name
from riskfed.roles.bank import Bank
from riskfed.roles.coordinator import Coordinator
from riskfed.roles.fintech import Fintech
from riskfed.scoring.score import score_applicants
from riskfed.scoring.scorecard import Scorecard
from riskfed.session.progress import ProgressCallback
from riskfed.session.training import SessionOutcome, run_training_session
from riskfed.transport.memory import InMemoryTransport

# The estimator's parameters and their defaults, declared once in riskfed.settings.
_D = settings.defaults(owner="estimator")
# Those it passes on in the training plan.
_HYPER = [p.name for p in settings.params(owner="estimator") if "hyperparameters" in p.owners]


def _as_table(
    data: pd.DataFrame | PartyTable, *, party: str, id_column: str | None, label_column: str | None, categorical=()
) -> PartyTable:
    if isinstance(data, PartyTable):
        return data
    if id_column is None:
        raise ConfigurationError(f"{party}: pass id_column= (the customer id column) to use a DataFrame.")
    return validate_table(
        data, party=party, id_column=id_column, label_column=label_column, categorical=categorical
    )


class VerticalLogisticRegression:
    """Paillier-encrypted vertical logistic regression between a bank and fintechs.

    All parties run in this process over an in-memory transport that still serialises
    every message; use ``riskfed serve`` for parties on separate hosts.

    Parameters
    ----------
    key_bits:
        Paillier key size (≥ 2048 unless ``allow_insecure_key``).
    allow_insecure_key:
        Test-only flag admitting shorter keys.
    psi:
        ``"ecdh"`` (default) or ``"keyed-hash"`` id alignment.
    learning_rate, optimizer, expansion, l2, batch_size, max_epochs, tol, averaging, decay, track_loss, randomness, max_features:
        See :class:`~riskfed.learning.linear.Hyperparameters`. ``max_features`` (default
        1024) caps every party's features, hence how much it may have decrypted per
        round: set it to what your partners need.
    test_size:
        Share of the shared customers held out for evaluation (stratified).
    min_intersection:
        Refuse to train on fewer shared customers.
    random_state:
        ``None`` (default): the bank draws a fresh 256-bit secret per session for the
        secret order of the shared customers, the split and the batch order. An int
        fixes them, for reproducible tests and pilots only: it reveals — a fintech that
        knows it and the class counts can replay the split (docs/threat-model.md).
    n_jobs:
        Worker processes per party for the Paillier kernels (``-1``: all cores).
    dask_scheduler:
        Address of a Dask scheduler to run the kernels on instead of local processes.
    base_points, base_odds, pdo:
        Scorecard scaling stored with the model.

    Attributes
    ----------
    model_ : FederatedModel
        The per-party model parts.
    coef_ : dict[str, numpy.ndarray]
        Party → its weights on its standardised features.
    intercept_ : float
    n_iter_ : int
        Epochs run.
    history_ : list[dict]
        Per-epoch loss and relative model change.
    outcome_ : SessionOutcome
        Alignment, split, holdout scores, timings and traffic of the session.

    Examples
    --------
    >>> from riskfed.data.synthetic import generate_pilot
    >>> pilot = generate_pilot(2000, seed=1)
    >>> model = VerticalLogisticRegression(key_bits=512, allow_insecure_key=True, psi="keyed-hash", n_jobs=1)
    >>> model = model.fit(pilot.bank, pilot.fintechs, id_column="customer_id", label_column="default")
    >>> model.predict_proba(pilot.applicants, pilot.fintechs).shape[1]
    2
    """

    def __init__(
        self,
        *,
        key_bits: int = _D["key_bits"],
        allow_insecure_key: bool = _D["allow_insecure_key"],
        psi: str = _D["psi"],
        learning_rate: float = _D["learning_rate"],
        optimizer: str = _D["optimizer"],
        expansion: str = _D["expansion"],
        l2: float = _D["l2"],
        batch_size: int = _D["batch_size"],
        max_epochs: int = _D["max_epochs"],
        tol: float = _D["tol"],
        averaging: bool = _D["averaging"],
        decay: bool = _D["decay"],
        track_loss: bool = _D["track_loss"],
        randomness: str = _D["randomness"],
        max_features: int = _D["max_features"],
        test_size: float = _D["test_size"],
        min_intersection: int = _D["min_intersection"],
        random_state: int | None = _D["random_state"],
        n_jobs: int = _D["n_jobs"],
        dask_scheduler: str | None = _D["dask_scheduler"],
        base_points: float = _D["base_points"],
        base_odds: float = _D["base_odds"],
        pdo: float = _D["pdo"],
    ) -> None:
        self.key_bits = key_bits
        self.allow_insecure_key = allow_insecure_key
        self.psi = psi
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.expansion = expansion
        self.l2 = l2
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.tol = tol
        self.averaging = averaging
        self.decay = decay
        self.track_loss = track_loss
        self.randomness = randomness
        self.max_features = max_features
        self.test_size = test_size
        self.min_intersection = min_intersection
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.dask_scheduler = dask_scheduler
        self.base_points = base_points
        self.base_odds = base_odds
        self.pdo = pdo

    def _hyperparameters(self) -> Hyperparameters:
        return Hyperparameters(**{name: getattr(self, name) for name in _HYPER})

    def _validate_params(self) -> Hyperparameters:
        """Check every parameter against :mod:`riskfed.settings`; return the training plan."""
        settings.validate({name: getattr(self, name) for name in _D}, type(self).__name__)
        check_key_bits(self.key_bits, allow_insecure=self.allow_insecure_key)
        return self._hyperparameters()

    def fit(
        self,
        bank: pd.DataFrame | PartyTable,
        fintechs: Sequence[pd.DataFrame | PartyTable] | pd.DataFrame | PartyTable,
        *,
        id_column: str | None = None,
        label_column: str | None = None,
        fintech_id_columns: Sequence[str] | None = None,
        categorical: Sequence[str] = (),
        progress: ProgressCallback | None = None,
        cancel: Callable[[], bool] | None = None,
        keep_transcript: bool = False,
    ) -> "VerticalLogisticRegression":
        """Align, train under encryption and keep each party's model part.

        Parameters
        ----------
        bank:
            The bank's table (DataFrame with id and label columns, or a PartyTable).
        fintechs:
            One table per fintech (named ``fintech_1``, ``fintech_2``… in order).
        id_column, label_column:
            Column names when DataFrames are given.
        fintech_id_columns:
            Per-fintech id column names when they differ from ``id_column``.
        categorical:
            Bank columns to treat as categorical.
        progress, cancel:
            Progress callback and cancellation poll (see :mod:`riskfed.session.progress`).
        keep_transcript:
            Keep every decoded message in ``transport_`` (for privacy audits).

        Returns
        -------
        self
        """
        hyper = self._validate_params()
        if isinstance(fintechs, (pd.DataFrame, PartyTable)):
            fintechs = [fintechs]
        if not fintechs:
            raise ConfigurationError("VerticalLogisticRegression.fit needs at least one fintech table.")
        names = [fintech_name(k + 1) for k in range(len(fintechs))]
        if label_column is None and not isinstance(bank, PartyTable):
            raise ConfigurationError("bank: pass label_column= (the 0/1 default flag) to use a DataFrame.")
        bank_table = _as_table(bank, party=BANK, id_column=id_column, label_column=label_column, categorical=categorical)
        id_cols = list(fintech_id_columns) if fintech_id_columns else [id_column] * len(fintechs)
        fintech_tables = [
            _as_table(df, party=name, id_column=col, label_column=None) for df, name, col in zip(fintechs, names, id_cols)
        ]
        bank_role = Bank(
            bank_table, names, n_jobs=self.n_jobs, allow_insecure_key=self.allow_insecure_key, seed=self.random_state
        )
        fintech_roles = [
            Fintech(name, table, allow_insecure_key=self.allow_insecure_key, n_jobs=self.n_jobs)
            for name, table in zip(names, fintech_tables)
        ]
        transport = InMemoryTransport(keep_transcript=keep_transcript)
        transport.register(bank_role)
        transport.register(Coordinator(allow_insecure_key=self.allow_insecure_key, n_jobs=self.n_jobs))
        for role in fintech_roles:
            transport.register(role)
        outcome = self._session(bank_role, transport, hyper, progress=progress, cancel=cancel)
        self._set_fitted(bank_table, bank_role, outcome, transport, fintech_roles)
        self.fintech_tables_ = dict(zip(names, fintech_tables))
        return self

    def _session(self, bank_role: Bank, transport, hyper: Hyperparameters, **kwargs) -> SessionOutcome:
        with dask_backend(self.dask_scheduler):
            return run_training_session(
                bank_role,
                transport,
                hyper=hyper,
                key_bits=self.key_bits,
                psi_method=self.psi,
                test_size=self.test_size,
                min_intersection=self.min_intersection,
                **kwargs,
            )

    def _set_fitted(self, bank_table: PartyTable, bank_role: Bank, outcome: SessionOutcome, transport, fintech_roles) -> None:
        """Learned attributes from a finished session (fintech parts only where held here)."""
        bank_part = self._bank_part(bank_table, bank_role, outcome)
        self.model_ = FederatedModel(bank_part, {r.name: r.export_model() for r in fintech_roles})
        self.outcome_ = outcome
        self.coef_ = {BANK: np.asarray(bank_part["weights"])} | {
            name: np.asarray(part["weights"]) for name, part in self.model_.fintechs.items()
        }
        self.intercept_ = float(bank_part["intercept"])
        self.n_iter_ = outcome.epochs
        self.history_ = outcome.history
        self.feature_names_ = {BANK: bank_part["feature_names"]} | {
            name: part["feature_names"] for name, part in self.model_.fintechs.items()
        }
        self.bank_table_ = bank_table
        self.fintech_tables_ = {}
        self.fintech_aligned_rows_ = {r.name: r.aligned_rows for r in fintech_roles}
        self.transport_ = transport
        # Every party's role object held here (in memory: all of them): for audits,
        # benchmarks and the plaintext-twin tests, never for production use.
        self.roles_ = {bank_role.name: bank_role, **{r.name: r for r in fintech_roles}}

    def _bank_part(self, bank_table: PartyTable, bank_role: Bank, outcome: SessionOutcome) -> dict:
        """The bank's model part: its weights plus fallback, scorecard and training facts."""
        # The fallback scores applicants no fintech knows: train it on every bank row
        # except the shared holdout, so the holdout stays unseen by every model.
        holdout_bank_rows = outcome.aligned.bank_rows[outcome.holdout_rows]
        keep = np.ones(bank_table.n_rows, dtype=bool)
        keep[holdout_bank_rows] = False
        fallback = FallbackModel.fit(bank_table, np.flatnonzero(keep))
        bank_part = bank_role.export_model()
        bank_part["fallback"] = fallback.to_dict()
        bank_part["scorecard"] = Scorecard(base_points=self.base_points, base_odds=self.base_odds, pdo=self.pdo).to_dict()
        bank_part["training"] = {
            "key_bits": outcome.key_bits,
            "epochs": outcome.epochs,
            "hyperparameters": outcome.hyperparameters,
            "psi": self.psi,
            "session_id": outcome.session_id,
        }
        return bank_part

    def fit_remote(
        self,
        bank: pd.DataFrame | PartyTable,
        fintechs: Sequence[str],
        transport,
        *,
        id_column: str | None = None,
        label_column: str | None = None,
        categorical: Sequence[str] = (),
        progress: ProgressCallback | None = None,
        cancel: Callable[[], bool] | None = None,
        checkpoint: Callable[[dict], None] | None = None,
        resume: dict | None = None,
    ) -> "VerticalLogisticRegression":
        """Train as the bank with fintechs and a coordinator on other hosts.

        The same session as :meth:`fit`, driven over ``transport`` (a
        :class:`~riskfed.transport.network.NetworkTransport` connected to the parties'
        services). Only the bank's model part is kept here (``model_.fintechs`` is
        empty): each fintech service writes its own part.

        Parameters
        ----------
        bank:
            The bank's table.
        fintechs:
            The fintechs' names (``fintech_1`` …), in model order.
        transport:
            Connected to every fintech and the coordinator.
        checkpoint, resume:
            Per-epoch checkpoint callback and a bank checkpoint to resume from (see
            :func:`riskfed.session.training.run_training_session`).

        Returns
        -------
        self
        """
        hyper = self._validate_params()
        names = list(fintechs)
        if not names or not all(isinstance(n, str) for n in names):
            raise ConfigurationError("VerticalLogisticRegression.fit_remote needs the fintechs' names, e.g. ['fintech_1'].")
        if label_column is None and not isinstance(bank, PartyTable):
            raise ConfigurationError("bank: pass label_column= (the 0/1 default flag) to use a DataFrame.")
        bank_table = _as_table(bank, party=BANK, id_column=id_column, label_column=label_column, categorical=categorical)
        bank_role = Bank(
            bank_table, names, n_jobs=self.n_jobs, allow_insecure_key=self.allow_insecure_key, seed=self.random_state
        )
        outcome = self._session(
            bank_role, transport, hyper, progress=progress, cancel=cancel, checkpoint=checkpoint, resume=resume
        )
        self._set_fitted(bank_table, bank_role, outcome, transport, [])
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError("This VerticalLogisticRegression is not fitted yet; call fit first.")

    def score(self, applicants: pd.DataFrame, fintechs, **kwargs) -> pd.DataFrame:
        """Score applicants: probability of default, points, reasons and which model scored them.

        See :func:`riskfed.scoring.score.score_applicants` for the keyword arguments.
        """
        self._check_fitted()
        kwargs.setdefault("id_column", self.bank_table_.id_column)
        return score_applicants(self.model_, applicants, fintechs, **kwargs)

    def predict_proba(self, applicants: pd.DataFrame, fintechs, **kwargs) -> np.ndarray:
        """``(n_samples, 2)`` array: P(no default), P(default) per applicant, in input order."""
        p = self.score(applicants, fintechs, **kwargs)["probability_of_default"].to_numpy()
        return np.column_stack([1.0 - p, p])

    def save(self, path: str | Path) -> Path:
        """Write the per-party model parts under ``path``."""
        self._check_fitted()
        return self.model_.save(path)
