"""Every protocol over real gRPC on loopback gives exactly the in-memory results.

The coordinator and fintech_1 run as services (threads of this process, real servers
on 127.0.0.1 with mutual TLS); the bank drives them through a NetworkTransport.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from riskfed.data.schema import validate_table
from riskfed.deploy.service import ScoringLimits, start_fintech
from riskfed.errors import ProtocolError, TransportError
from riskfed.job import run_pipeline
from riskfed.models.estimator import VerticalLogisticRegression
from riskfed.scoring.score import ApplicantScorer, score_applicants

from .conftest import PARAMS


def estimator(**overrides):
    return VerticalLogisticRegression(**(PARAMS | overrides))


@pytest.fixture(scope="module")
def in_memory(pilot):
    """The reference: the same session with every party in this process."""
    return run_pipeline(
        pilot.bank,
        list(pilot.fintechs),
        id_column=pilot.id_column,
        label_column=pilot.label_column,
        estimator=estimator(),
        centralized=False,
    )


@pytest.fixture
def networked(services, pilot):
    """The same session over loopback gRPC; returns (pipeline result, federation)."""
    fed = services()
    result = run_pipeline(
        pilot.bank,
        ["fintech_1"],
        id_column=pilot.id_column,
        label_column=pilot.label_column,
        estimator=estimator(),
        transport=fed.bank_transport(),
    )
    return result, fed


def test_training_over_the_network_equals_in_memory(networked, in_memory):
    result, fed = networked
    mem, net = in_memory.estimator, result.estimator
    # Weights, intercept and holdout predictions are bit-for-bit the same.
    np.testing.assert_array_equal(net.coef_["bank"], mem.coef_["bank"])
    assert net.intercept_ == mem.intercept_
    fintech_part = fed.fintech.service.model_part
    np.testing.assert_array_equal(np.asarray(fintech_part["weights"]), mem.coef_["fintech_1"])
    np.testing.assert_array_equal(net.outcome_.holdout_scores, mem.outcome_.holdout_scores)
    np.testing.assert_array_equal(net.outcome_.holdout_rows, mem.outcome_.holdout_rows)
    assert result.report["metrics"] == in_memory.report["metrics"]
    strip = lambda history: [{k: v for k, v in h.items() if k != "seconds"} for h in history]  # noqa: E731
    assert strip(net.history_) == strip(mem.history_)
    assert net.outcome_.batch_losses == mem.outcome_.batch_losses
    # The fintech's part on its own disk is the in-memory part.
    saved = json.loads((fed.model_dir / "fintech_1" / "model.json").read_text())
    assert saved == mem.model_.fintechs["fintech_1"]
    # The coordinator dropped the session, and with it the private key, at TrainingStop.
    assert fed.coordinator.service.session is None and fed.coordinator.service.sessions_finished == 1


def test_bytes_per_party_and_step_match_in_memory(networked, in_memory):
    result, fed = networked
    mem_steps = {(m["sender"], m["recipient"], m["step"]): m for m in in_memory.report["training"]["messages"]}
    net_steps = {(m["sender"], m["recipient"], m["step"]): m for m in result.report["training"]["messages"]}
    # Every link, including those the bank is not on (fintech <-> coordinator, as the
    # services reported them at TrainingStop), has the in-memory counts and bytes; the
    # only extra rows are those reports themselves.
    extra = {key for key in net_steps if key not in mem_steps}
    assert extra == {("fintech_1", "bank", "traffic_report"), ("coordinator", "bank", "traffic_report")}
    assert all(net_steps[key] == row for key, row in mem_steps.items())
    for key in [("fintech_1", "coordinator", "masked_gradient"), ("coordinator", "fintech_1", "decrypted_masked")]:
        assert net_steps[key] == mem_steps[key]
    training = result.report["training"]
    reports = sum(net_steps[key]["bytes"] for key in extra)
    assert sum(training["bytes_sent"].values()) == sum(in_memory.report["training"]["bytes_sent"].values()) + reports
    assert training["bytes_sent"]["fintech_1"] == in_memory.report["training"]["bytes_sent"]["fintech_1"] + net_steps[("fintech_1", "bank", "traffic_report")]["bytes"]
    # Ciphertexts travel as fixed-width bytes: 1 batch = rows × 128 bytes (512-bit key, n² has 1024 bits), twice.
    scores = net_steps[("fintech_1", "bank", "encrypted_scores")]
    train_rows = len(result.estimator.outcome_.train_rows)
    assert scores["bytes"] > 2 * 128 * train_rows * 3  # three epochs of [[u]] and [[u²]]
    assert scores["bytes"] < 2 * 128 * train_rows * 3 * 1.01


def test_report_says_the_centralised_reference_is_not_available(networked):
    result, _ = networked
    report = result.report
    assert "centralized" not in report["metrics"]
    assert report["notes"]["centralized"].startswith("Not available")
    assert report["data"]["fintechs"] == [{"party": "fintech_1", "rows": 1505, "remote": True}]
    assert set(result.estimator.model_.fintechs) == set()


def test_scoring_over_the_network_equals_in_memory(networked, in_memory, pilot):
    result, fed = networked
    expected = score_applicants(in_memory.estimator.model_, pilot.applicants, list(pilot.fintechs))
    session = ApplicantScorer(result.estimator.model_, None, id_column=pilot.id_column, transport=fed.bank_transport())
    got = session.score_frame(pilot.applicants)
    np.testing.assert_array_equal(got["probability_of_default"].to_numpy(), expected["probability_of_default"].to_numpy())
    assert got["model"].tolist() == expected["model"].tolist()
    # ECDH matching over the network gives the same scores.
    ecdh = ApplicantScorer(result.estimator.model_, None, id_column=pilot.id_column, psi="ecdh", transport=fed.bank_transport())
    np.testing.assert_array_equal(
        ecdh.score_frame(pilot.applicants)["probability_of_default"].to_numpy(), expected["probability_of_default"].to_numpy()
    )


def test_a_restarted_fintech_scores_with_its_saved_part(networked, identity, fintech_table, pilot, request):
    result, fed = networked
    again = start_fintech(
        identity("fintech_1"),
        "127.0.0.1:0",
        fintech_table,
        coordinator_at=fed.coordinator.address,
        model_dir=fed.model_dir,
        allow_insecure_key=True,
    )
    request.addfinalizer(lambda: again.stop(grace=0))
    from riskfed.transport.network import NetworkTransport

    transport = NetworkTransport(identity("bank"), {"fintech_1": again.address})
    request.addfinalizer(transport.close)
    scored = ApplicantScorer(result.estimator.model_, None, id_column=pilot.id_column, transport=transport).score_frame(pilot.applicants)
    assert (scored["model"] == "federated").sum() > 0


def test_fintech_scores_only_after_training(services, pilot, in_memory):
    fed = services()
    with pytest.raises(ProtocolError, match="fintech_1 has no trained model part yet"):
        ApplicantScorer(in_memory.estimator.model_, None, id_column=pilot.id_column, transport=fed.bank_transport())


def test_scoring_request_size_and_rate_are_limited(services, pilot, in_memory, tmp_path):
    # A service that already has a model part (copied into its model directory).
    model_dir = tmp_path / "model"
    in_memory.estimator.model_.save(model_dir)
    fed = services(scoring=ScoringLimits(max_rows=150, rate=0.001, burst=3), model_dir=model_dir)
    session = ApplicantScorer(in_memory.estimator.model_, None, id_column=pilot.id_column, transport=fed.bank_transport())
    with pytest.raises(ProtocolError, match="refuses a scoring request for 200 applicants; the limit is 150 per request"):
        session.score_frame(pilot.applicants)
    # The refusal did not end the session: a smaller chunk is scored ...
    small = session.score_frame(pilot.applicants.iloc[:100])
    assert len(small) == 100
    # ... until the rate limit (burst of 3: the session, the refused and the scored chunk) says no.
    with pytest.raises(TransportError, match="fintech_1 is rate-limiting scoring requests"):
        session.score_frame(pilot.applicants.iloc[100:150])


def test_every_party_can_be_reached_only_with_the_right_certificate(services, identity, pilot):
    fed = services()
    from riskfed.roles.bank import Bank
    from riskfed.transport.network import NetworkTransport

    # A fintech certificate cannot open a session at another fintech's service.
    impostor = NetworkTransport(identity("fintech_2"), {"fintech_1": fed.fintech.address})
    try:
        bank_table = validate_table(pilot.bank, party="bank", id_column=pilot.id_column, label_column=pilot.label_column)
        bank = Bank(bank_table, ["fintech_1"], allow_insecure_key=True)
        opening = bank.open_session(key_bits=512, psi_method="keyed-hash")[1]
        with pytest.raises(ProtocolError, match="cannot send a 'session_open' message as 'bank'"):
            impostor.request(opening)
        with pytest.raises(ProtocolError, match="does not accept connections from a certificate for 'fintech_2'"):
            impostor.request(replace(opening, sender="fintech_2"))
    finally:
        impostor.close()
    assert fed.fintech.service.session is None


def test_two_fintechs_with_ecdh_alignment_over_the_network(request, identity, services, certs_dir):
    """Several --fintech-at services and ECDH PSI: still the in-memory model, bit for bit."""
    from riskfed.data.synthetic import generate_pilot
    from riskfed.deploy.bank import bank_transport

    pilot2 = generate_pilot(1200, fintechs=2, seed=5)
    params = dict(psi="ecdh", max_epochs=2)
    mem = estimator(**params).fit(pilot2.bank, list(pilot2.fintechs), id_column=pilot2.id_column, label_column=pilot2.label_column)
    fed = services()  # the coordinator (its fintech_1 serves other data and is not used)
    running = []
    for k, frame in enumerate(pilot2.fintechs, start=1):
        name = f"fintech_{k}"
        table = validate_table(frame, party=name, id_column=pilot2.id_column)
        svc = start_fintech(identity(name), "127.0.0.1:0", table, coordinator_at=fed.coordinator.address, allow_insecure_key=True)
        request.addfinalizer(lambda s=svc: s.stop(grace=0))
        running.append(svc)
    transport = bank_transport(
        identity("bank"), {s.name: s.address for s in running}, coordinator_at=fed.coordinator.address, limits=fed.limits
    )
    request.addfinalizer(transport.close)
    net = estimator(**params).fit_remote(
        pilot2.bank, ["fintech_1", "fintech_2"], transport, id_column=pilot2.id_column, label_column=pilot2.label_column
    )
    assert net.outcome_.aligned.method == "ecdh"
    np.testing.assert_array_equal(net.outcome_.aligned.bank_rows, mem.outcome_.aligned.bank_rows)
    np.testing.assert_array_equal(net.coef_["bank"], mem.coef_["bank"])
    for svc in running:
        np.testing.assert_array_equal(np.asarray(svc.service.model_part["weights"]), mem.coef_[svc.name])
    np.testing.assert_array_equal(net.outcome_.holdout_scores, mem.outcome_.holdout_scores)
