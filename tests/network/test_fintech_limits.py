"""A fintech service's own minimum batch size holds over the network, whatever the plan."""

from __future__ import annotations

import pytest

from riskfed.data.schema import validate_table
from riskfed.deploy.service import start_coordinator, start_fintech
from riskfed.errors import ProtocolError
from riskfed.learning.linear.hyperparameters import Hyperparameters
from riskfed.roles.bank import Bank
from riskfed.session.training import run_training_session
from riskfed.transport.network import NetworkLimits, NetworkTransport

LOOPBACK = "127.0.0.1:0"


def test_a_fintech_service_refuses_plans_below_its_own_minimum_batch_size(identity, fintech_table, pilot, request):
    limits = NetworkLimits(timeout=20.0)
    coordinator = start_coordinator(identity("coordinator"), LOOPBACK, limits=limits, allow_insecure_key=True)
    request.addfinalizer(lambda: coordinator.stop(grace=0))
    fintech = start_fintech(
        identity("fintech_1"), LOOPBACK, fintech_table, coordinator_at=coordinator.address, limits=limits,
        allow_insecure_key=True, min_batch_size=512,
    )
    request.addfinalizer(lambda: fintech.stop(grace=0))
    transport = NetworkTransport(
        identity("bank"), {"fintech_1": fintech.address, "coordinator": coordinator.address}, limits=limits
    )
    request.addfinalizer(transport.close)
    table = validate_table(pilot.bank, party="bank", id_column=pilot.id_column, label_column=pilot.label_column)
    bank = Bank(table, ["fintech_1"], allow_insecure_key=True)
    # The bank's plan allows 256-row batches; this fintech serves 512 at least.
    with pytest.raises(ProtocolError, match="fintech_1 refuses the training plan: it allows batches of 256 row.*minimum batch size is 512"):
        run_training_session(bank, transport, hyper=Hyperparameters(batch_size=256), key_bits=512, psi_method="keyed-hash")
    assert fintech.service.min_batch_size == 512
