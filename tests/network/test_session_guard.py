"""Only the bank opens a session: takeover attempts change nothing at any service.

A fintech's certificate is accepted by the coordinator (fintechs fetch the key and send
masked gradients there), so a fintech could try to open a session of its own — or the
bank's — at the coordinator and replace the running session's role and key. These tests
attack a real training session over loopback, in the middle of its first epoch, and check
that every attempt is refused and logged, that the session keeps its role, key and state,
and that it ends exactly as an unattacked in-memory run.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from riskfed.errors import InsecureKeyError, ProtocolError
from riskfed.job import run_pipeline
from riskfed.models.estimator import VerticalLogisticRegression
from riskfed.protocol.messages import KeyRequest, SessionOpen
from riskfed.transport.network import NetworkTransport

from .conftest import PARAMS


def estimator():
    return VerticalLogisticRegression(**PARAMS)


@pytest.fixture(scope="module")
def in_memory(pilot):
    return run_pipeline(
        pilot.bank, list(pilot.fintechs), id_column=pilot.id_column, label_column=pilot.label_column,
        estimator=estimator(), centralized=False,
    )


def _snapshot(service):
    """What a takeover would change: the session, the role object, its key and expectations."""
    role = service.role
    key = getattr(role, "_private_key", None)
    return (service.session, role, getattr(role, "public_key", None), key, {k: set(v) for k, v in role._expect.items()})


def _takeover_attempts(identity, fed, session_id):
    """Every SessionOpen a fintech could send at the coordinator and at the other fintech."""
    attempts = []
    for who in ("fintech_1", "fintech_2"):
        for sid in (session_id, "takeover"):
            attempts.append((who, "coordinator", fed.coordinator.address, sid))
    attempts.append(("fintech_2", "fintech_1", fed.fintech.address, session_id))
    for who, target, address, sid in attempts:
        transport = NetworkTransport(identity(who), {target: address})
        opening = SessionOpen(
            session_id=sid, sender=who, recipient=target, round=0, parties=("bank", "coordinator", who),
            key_bits=512, allow_insecure_key=True, psi_method="keyed-hash",
        )
        try:
            with pytest.raises(ProtocolError) as info:
                transport.request(opening)
        finally:
            transport.close()
        yield who, target, str(info.value)


def test_no_fintech_can_take_over_a_running_session(services, identity, pilot, in_memory, caplog):
    fed = services()
    coordinator, fintech = fed.coordinator.service, fed.fintech.service
    outcome = {}

    def attack(event):
        if event.phase != "training" or outcome:
            return
        session_id = coordinator.session.session_id
        before = {"coordinator": _snapshot(coordinator), "fintech_1": _snapshot(fintech)}
        outcome["refusals"] = list(_takeover_attempts(identity, fed, session_id))
        # An outsider asking the coordinator for the session's key is refused too, and
        # the session goes on.
        outsider = NetworkTransport(identity("fintech_2"), {"coordinator": fed.coordinator.address})
        try:
            with pytest.raises(ProtocolError, match="fintech_2 is not a party of session"):
                outsider.request(KeyRequest(session_id=session_id, sender="fintech_2", recipient="coordinator", round=0))
        finally:
            outsider.close()
        after = {"coordinator": _snapshot(coordinator), "fintech_1": _snapshot(fintech)}
        outcome["unchanged"] = all(
            all(x is y if not isinstance(x, dict) else x == y for x, y in zip(before[p], after[p])) for p in before
        )

    with caplog.at_level(logging.WARNING, logger="riskfed"):
        result = run_pipeline(
            pilot.bank, ["fintech_1"], id_column=pilot.id_column, label_column=pilot.label_column,
            estimator=estimator(), transport=fed.bank_transport(), progress=attack,
        )
    refusals = outcome["refusals"]
    assert len(refusals) == 5
    for who, target, text in refusals:
        if target == "coordinator":
            assert f"coordinator refused a 'session_open' message from {who}: only bank may open a session" in text
        else:  # a fintech service takes calls from the bank only
            assert "fintech_1 does not accept connections from a certificate for 'fintech_2'" in text
    assert outcome["unchanged"], "a refused SessionOpen changed the running session"
    # Each refusal is in the coordinator's log, with the session left as it was.
    logged = [r.getMessage() for r in caplog.records if r.name == "riskfed.service" and "only bank may open a session" in r.getMessage()]
    assert len(logged) == 4 and all("unchanged" in line for line in logged)
    # The honest session completed, and exactly as without the attack.
    net, mem = result.estimator, in_memory.estimator
    np.testing.assert_array_equal(net.coef_["bank"], mem.coef_["bank"])
    np.testing.assert_array_equal(np.asarray(fed.fintech.service.model_part["weights"]), mem.coef_["fintech_1"])
    assert coordinator.sessions_finished == 1 and coordinator.sessions_failed == 0


def test_a_refused_open_from_the_bank_leaves_the_running_session(services, identity, pilot):
    """Even the bank's own SessionOpen replaces the running session only once accepted."""
    from riskfed.data.schema import validate_table
    from riskfed.roles.bank import Bank
    from riskfed.transport.base import exchange as _deliver

    fed = services()
    table = validate_table(pilot.bank, party="bank", id_column=pilot.id_column, label_column=pilot.label_column)
    bank = Bank(table, ["fintech_1"], allow_insecure_key=True, seed=11)
    transport = fed.bank_transport()
    _deliver(transport, bank, bank.open_session(key_bits=512, psi_method="keyed-hash"))
    coordinator = fed.coordinator.service
    before = _snapshot(coordinator)
    scoring = SessionOpen(session_id="next", sender="bank", recipient="coordinator", round=0, purpose="scoring")
    with pytest.raises(ProtocolError, match="takes part in training sessions only"):
        transport.request(scoring)
    weak = SessionOpen(  # a well-formed opening without the test-key flag
        session_id="next", sender="bank", recipient="coordinator", round=0, key_bits=512,
        parties=("bank", "coordinator", "fintech_1"), psi_method="keyed-hash",
    )
    with pytest.raises(InsecureKeyError, match="A 512-bit Paillier key is below the 2048-bit floor"):
        transport.request(weak)
    after = _snapshot(coordinator)
    assert all(x is y if not isinstance(x, dict) else x == y for x, y in zip(before, after))
    # The running session goes on: alignment and the plan still work.
    _deliver(transport, bank, bank.psi_requests())
    assert "fintech_1" in bank.pairwise_matches
