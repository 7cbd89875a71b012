"""Shared fixtures for the riskfed test suite.

* a session-scoped small Paillier key, made through the explicit test-only flag;
* tiny bank / fintech frames (fresh copies per test, so tests may mutate them);
* one session-scoped federation fitted on a small pilot with the transcript kept, shared
  by the equivalence, privacy-audit and scoring tests to keep the suite fast;
* :func:`rebuild_quantised`, which rebuilds the quantised matrices each role trained on,
  exactly as :class:`~riskfed.roles.bank.Bank` and :class:`~riskfed.roles.fintech.Fintech`
  do, so a federated fit can be compared with :func:`~riskfed.learning.linear.reference.fit_reference`.

Small keys are for tests only and always go through ``allow_insecure_key=True``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, settings

from riskfed.crypto.keys import generate_keypair
from riskfed.data.preprocess import Preprocessor
from riskfed.data.synthetic import generate_pilot
from riskfed.learning.linear.fixed_point import quantize_features
from riskfed.learning.linear.hyperparameters import Hyperparameters
from riskfed.models.estimator import VerticalLogisticRegression

# Crypto properties do modular arithmetic on 1024-bit numbers: no per-example deadline.
settings.register_profile("riskfed", deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
settings.load_profile("riskfed")

TEST_KEY_BITS = 512  # test-only: needs allow_insecure_key=True everywhere
# The public credit data sit next to the repository (../shared/data); tests that need
# them are skipped, saying so, where they are missing.
DEFAULT_CREDIT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "default_credit"

# The federation shared by several test modules: small pilot, 512-bit test key,
# keyed-hash alignment, one process per party, transcript kept for the audit.
FED_PARAMS = dict(
    key_bits=TEST_KEY_BITS,
    allow_insecure_key=True,
    psi="keyed-hash",
    n_jobs=1,
    batch_size=256,
    random_state=13,
)


def small_estimator(**overrides) -> VerticalLogisticRegression:
    """A fast estimator for tests (512-bit test key, keyed-hash, one process)."""
    return VerticalLogisticRegression(**(FED_PARAMS | overrides))


@pytest.fixture(scope="session")
def keypair():
    """A 512-bit Paillier key pair (test-only flag)."""
    return generate_keypair(TEST_KEY_BITS, allow_insecure_key=True)


@pytest.fixture(scope="session")
def public_key(keypair):
    return keypair[0]


@pytest.fixture(scope="session")
def private_key(keypair):
    return keypair[1]


def _tiny_frames(n_bank: int = 400, n_only_fintech: int = 60, seed: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = [f"C{i:05d}" for i in range(n_bank)]
    x1 = rng.normal(size=n_bank)
    x2 = rng.normal(size=n_bank)
    f1 = rng.normal(size=n_bank)
    logit = -1.0 + 0.8 * x1 - 0.5 * x2 + 1.2 * f1
    y = (rng.random(n_bank) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    bank = pd.DataFrame(
        {
            "id": ids,
            "y": y,
            "income": np.round(np.exp(10 + 0.3 * x1), 2),
            "utilisation": np.round(1.0 / (1.0 + np.exp(-x2)), 4),
            "region": rng.choice(["north", "south", "east"], size=n_bank),
        }
    )
    # The fintech knows 75 % of the bank's customers plus some of its own.
    known = rng.permutation(n_bank)[: int(0.75 * n_bank)]
    fin = pd.DataFrame(
        {
            "id": [ids[i] for i in known] + [f"F{i:05d}" for i in range(n_only_fintech)],
            "spend_volatility": np.concatenate([f1[known], rng.normal(size=n_only_fintech)]),
            "late_bills": np.concatenate(
                [rng.poisson(np.exp(0.3 * f1[known])), rng.poisson(1.0, size=n_only_fintech)]
            ).astype(float),
        }
    )
    return bank, fin.sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.fixture
def tiny_bank() -> pd.DataFrame:
    """400 bank customers: id, y (0/1), two numeric features and a categorical one."""
    return _tiny_frames()[0]


@pytest.fixture
def tiny_fintech() -> pd.DataFrame:
    """A fintech that knows 300 of the bank's customers and 60 of its own."""
    return _tiny_frames()[1]


@pytest.fixture(scope="session")
def small_pilot():
    """A 1,500-customer synthetic pilot (one fintech)."""
    return generate_pilot(1500, seed=3)


@pytest.fixture(scope="session")
def fitted_federation(small_pilot) -> VerticalLogisticRegression:
    """One federated fit on the small pilot, transcript kept (shared, do not mutate)."""
    model = small_estimator()
    return model.fit(
        small_pilot.bank,
        list(small_pilot.fintechs),
        id_column=small_pilot.id_column,
        label_column=small_pilot.label_column,
        keep_transcript=True,
    )


@pytest.fixture(scope="session")
def saved_model_dir(fitted_federation, tmp_path_factory) -> Path:
    """The shared federation saved as per-party parts (``DIR/bank``, ``DIR/fintech_1``)."""
    path = tmp_path_factory.mktemp("saved") / "model"
    fitted_federation.save(path)
    return path


def _quantised(table, rows: np.ndarray, train: np.ndarray, party: str) -> np.ndarray:
    """What a role trains on: its preprocessor fitted on the aligned training rows."""
    frame = table.features.iloc[rows]
    numeric = [c for c in table.feature_names if c not in table.categorical]
    pre = Preprocessor(numeric, list(table.categorical), party=party)
    pre.fit(frame.iloc[train])
    return quantize_features(pre.transform(frame), party=party, columns=pre.feature_names_)


def rebuild_quantised(model: VerticalLogisticRegression) -> dict:
    """Rebuild the inputs of :func:`fit_reference` from a fitted estimator.

    Returns ``bank_X_q``, ``partner_X_q`` (name → matrix), ``y`` (aligned labels),
    ``train_rows`` and ``hyper`` — the same quantised matrices the roles used.
    """
    outcome = model.outcome_
    train = outcome.train_rows
    bank_rows = outcome.aligned.bank_rows
    bank_X_q = _quantised(model.bank_table_, bank_rows, train, "bank")
    partner_X_q = {
        name: _quantised(table, model.fintech_aligned_rows_[name], train, name)
        for name, table in model.fintech_tables_.items()
    }
    return {
        "bank_X_q": bank_X_q,
        "partner_X_q": partner_X_q,
        "y": model.bank_table_.labels[bank_rows],
        "train_rows": train,
        "hyper": Hyperparameters.from_dict(outcome.hyperparameters),
    }


@pytest.fixture(scope="session")
def rebuild():
    """:func:`rebuild_quantised` as a fixture (test modules cannot import conftest)."""
    return rebuild_quantised


@pytest.fixture(scope="session")
def make_estimator():
    """:func:`small_estimator` as a fixture."""
    return small_estimator


@pytest.fixture(scope="session")
def default_credit_dir() -> Path:
    if not (DEFAULT_CREDIT / "default_credit_hetero_guest.csv").is_file():
        pytest.skip(f"the public default_credit data are not at {DEFAULT_CREDIT} (../shared/data next to the repository)")
    return DEFAULT_CREDIT
