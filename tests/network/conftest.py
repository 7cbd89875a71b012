"""Fixtures for the network tests: credentials, pilot data, live services on 127.0.0.1.

Every server listens on 127.0.0.1 with a free port chosen by the OS (``:0``) and is
stopped by a finalizer, also when the test fails. Keys are 512-bit test keys (explicit
test-only flag), alignment is keyed-hash and the data small, so the whole directory
runs in well under three minutes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from riskfed.certs import init_federation, load_identity
from riskfed.data.schema import validate_table
from riskfed.data.synthetic import generate_pilot
from riskfed.deploy.service import ScoringLimits, start_coordinator, start_fintech
from riskfed.transport.network import NetworkLimits, NetworkTransport

TEST_KEY_BITS = 512  # test-only: always with allow_insecure_key / --insecure-test-key
LOOPBACK = "127.0.0.1:0"
# Short enough that failure tests finish quickly, long enough for a 512-bit batch.
TEST_TIMEOUT = 20.0
# Estimator settings shared by the in-memory and networked runs that are compared.
PARAMS = dict(
    key_bits=512,  # test-only key, with the explicit flag
    allow_insecure_key=True,
    psi="keyed-hash",
    n_jobs=1,
    batch_size=256,
    random_state=11,
    max_epochs=3,
    tol=0.0,
)



@pytest.fixture(scope="session")
def certs_dir(tmp_path_factory) -> Path:
    """A federation CA and certificates for bank, fintech_1, fintech_2 and coordinator."""
    path = tmp_path_factory.mktemp("certs")
    init_federation(path, fintechs=2)
    return path


@pytest.fixture(scope="session")
def other_certs_dir(tmp_path_factory) -> Path:
    """A second, unrelated federation (its CA is not trusted by the first)."""
    path = tmp_path_factory.mktemp("other_certs")
    init_federation(path, fintechs=1)
    return path


@pytest.fixture(scope="session")
def identity(certs_dir):
    """``identity(role)`` → that party's TlsIdentity from ``certs_dir``."""

    def make(role: str, directory: Path | None = None):
        d = directory or certs_dir
        return load_identity(d / f"{role}.crt", d / f"{role}.key", d / "ca.crt")

    return make


@pytest.fixture(scope="session")
def pilot():
    """A 1,500-customer pilot with one fintech (the same data for every network test)."""
    return generate_pilot(1500, seed=3)


@pytest.fixture(scope="session")
def fintech_table(pilot):
    return validate_table(pilot.fintechs[0], party="fintech_1", id_column=pilot.id_column)


@pytest.fixture
def services(request, identity, fintech_table, tmp_path):
    """``services(**options)`` starts a coordinator and fintech_1 on 127.0.0.1.

    Returns an object with ``coordinator``, ``fintech`` (RunningService), ``limits`` and
    ``bank_transport()``; everything is stopped by a finalizer.
    """
    started = []

    def stop_all():
        for running in reversed(started):
            running.stop(grace=0)

    request.addfinalizer(stop_all)

    class Federation:
        pass

    def start(*, limits: NetworkLimits | None = None, scoring: ScoringLimits | None = None, model_dir=None, checkpoint_dir=None):
        limits = limits or NetworkLimits(timeout=TEST_TIMEOUT)
        fed = Federation()
        fed.limits = limits
        fed.coordinator = start_coordinator(identity("coordinator"), LOOPBACK, limits=limits, allow_insecure_key=True)
        started.append(fed.coordinator)
        fed.model_dir = Path(model_dir) if model_dir else tmp_path / "fintech_model"
        fed.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else tmp_path / "fintech_checkpoints"
        fed.fintech = start_fintech(
            identity("fintech_1"),
            LOOPBACK,
            fintech_table,
            coordinator_at=fed.coordinator.address,
            limits=limits,
            model_dir=fed.model_dir,
            checkpoint_dir=fed.checkpoint_dir,
            allow_insecure_key=True,
            scoring=scoring,
        )
        started.append(fed.fintech)

        def bank_transport(**kw):
            transport = NetworkTransport(
                identity("bank"),
                {"fintech_1": fed.fintech.address, "coordinator": fed.coordinator.address},
                limits=kw.pop("limits", limits),
            )
            request.addfinalizer(transport.close)
            return transport

        fed.bank_transport = bank_transport
        return fed

    return start
