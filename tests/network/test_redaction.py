"""A party's data problems stay in its own log: the peer learns the kind and the column."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from riskfed.data.schema import validate_table
from riskfed.deploy.service import start_coordinator, start_fintech
from riskfed.errors import SchemaError
from riskfed.roles.bank import Bank
from riskfed.transport.base import exchange as _deliver
from riskfed.transport.network import NetworkLimits, NetworkTransport

from .conftest import LOOPBACK, TEST_TIMEOUT


def test_fintech_id_problems_do_not_reveal_its_ids_to_the_bank(identity, pilot, request, caplog):
    # The fintech writes one customer twice ("c-00099999" and "C00099999" normalise alike).
    secret_ids = ["c-00099999", "C00099999"]
    fintech = pd.DataFrame({"customer_id": secret_ids + [f"X{i}" for i in range(200)], "spend": range(202)})
    table = validate_table(fintech, party="fintech_1", id_column="customer_id")
    limits = NetworkLimits(timeout=TEST_TIMEOUT)
    coordinator = start_coordinator(identity("coordinator"), LOOPBACK, limits=limits, allow_insecure_key=True)
    request.addfinalizer(lambda: coordinator.stop(grace=0))
    service = start_fintech(
        identity("fintech_1"), LOOPBACK, table, coordinator_at=coordinator.address, limits=limits, allow_insecure_key=True
    )
    request.addfinalizer(lambda: service.stop(grace=0))
    transport = NetworkTransport(
        identity("bank"), {"fintech_1": service.address, "coordinator": coordinator.address}, limits=limits
    )
    request.addfinalizer(transport.close)
    bank_table = validate_table(pilot.bank, party="bank", id_column=pilot.id_column, label_column=pilot.label_column)
    bank = Bank(bank_table, ["fintech_1"], allow_insecure_key=True)
    with caplog.at_level(logging.WARNING):
        with pytest.raises(SchemaError, match=r"fintech_1: its own data failed validation \(SchemaError in column 'customer_id'\)") as info:
            _deliver(transport, bank, bank.open_session(key_bits=512, psi_method="keyed-hash"))
    assert not any(i in str(info.value) for i in ("00099999",))
    # The fintech's own log has the details for its operator.
    assert any("00099999" in r.getMessage() for r in caplog.records if r.name.startswith("riskfed"))
