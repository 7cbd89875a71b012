"""Parties as real OS processes on loopback: a party dies or is cut off mid-training.

``riskfed serve`` runs the coordinator and fintech_1 as subprocesses (finalizers stop
them, also on failure); the bank runs in the test process so that it can kill a party
at an exact point of the protocol (after the first batch of epoch 2).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from riskfed.certs import load_identity
from riskfed.cli import main
from riskfed.data.schema import validate_table
from riskfed.deploy.bank import bank_transport, checkpoint_writer, load_resume_state
from riskfed.deploy.pilot import ProcessFederation
from riskfed.errors import TransportError
from riskfed.models.estimator import VerticalLogisticRegression
from riskfed.transport.network import NetworkLimits

from .conftest import PARAMS


@pytest.fixture(scope="module")
def reference(pilot):
    """The uninterrupted in-memory run."""
    return VerticalLogisticRegression(**PARAMS).fit(
        pilot.bank, list(pilot.fintechs), id_column=pilot.id_column, label_column=pilot.label_column
    )


@pytest.fixture
def federation(request, tmp_path, certs_dir, pilot):
    """Coordinator and fintech_1 as ``riskfed serve`` processes on 127.0.0.1."""
    data = tmp_path / "fintech_1.parquet"
    pilot.fintechs[0].to_parquet(data, index=False)
    fed = ProcessFederation(
        tmp_path / "parties", certs_dir, {"fintech_1": data}, pilot.id_column, timeout=20, n_jobs=1, extra_args=["--insecure-test-key"]
    )
    request.addfinalizer(fed.stop)
    fed.start()
    return fed


@pytest.fixture
def bank_table(pilot):
    return validate_table(pilot.bank, party="bank", id_column=pilot.id_column, label_column=pilot.label_column, source="bank")


def _transport(request, certs_dir, fed, timeout=20.0):
    identity = load_identity(certs_dir / "bank.crt", certs_dir / "bank.key", certs_dir / "ca.crt", expected_role="bank")
    transport = bank_transport(
        identity,
        {"fintech_1": fed.parties["fintech_1"].address},
        coordinator_at=fed.parties["coordinator"].address,
        limits=NetworkLimits(timeout=timeout),
    )
    request.addfinalizer(transport.close)
    return transport


def _after_first_batch_of_epoch_2(action):
    """A progress callback that runs ``action`` once, after batch 1 of epoch 2."""
    fired = []

    def progress(event):
        if event.phase == "training" and event.epoch == 2 and not fired and event.message.startswith("epoch 2, batch 1/"):
            fired.append(True)
            action()

    return progress


def test_killed_fintech_fails_the_bank_and_resume_equals_an_uninterrupted_run(
    request, federation, certs_dir, bank_table, reference, tmp_path
):
    checkpoints = tmp_path / "bank_checkpoints"
    fintech = federation.parties["fintech_1"]
    progress = _after_first_batch_of_epoch_2(fintech.kill)
    est = VerticalLogisticRegression(**PARAMS)
    with pytest.raises(TransportError, match=r"fintech_1 at 127\.0\.0\.1:\d+ is unreachable at step 'batch_request'") as info:
        est.fit_remote(
            bank_table, ["fintech_1"], _transport(request, certs_dir, federation), progress=progress,
            checkpoint=checkpoint_writer(checkpoints, bank_table),
        )  # fmt: skip
    assert info.value.party == "fintech_1"
    assert not fintech.alive
    # The coordinator noticed nothing wrong and keeps serving; the fintech comes back.
    federation.restart("fintech_1")
    state = load_resume_state(checkpoints, bank_table)
    assert len(state["history"]) == 1
    resumed = VerticalLogisticRegression(**PARAMS).fit_remote(
        bank_table, ["fintech_1"], _transport(request, certs_dir, federation), resume=state,
        checkpoint=checkpoint_writer(checkpoints, bank_table),
    )  # fmt: skip
    np.testing.assert_array_equal(resumed.coef_["bank"], reference.coef_["bank"])
    assert resumed.intercept_ == reference.intercept_
    np.testing.assert_array_equal(resumed.outcome_.holdout_scores, reference.outcome_.holdout_scores)
    part = json.loads((federation.model_dir("fintech_1") / "fintech_1" / "model.json").read_text())
    np.testing.assert_array_equal(np.asarray(part["weights"]), reference.coef_["fintech_1"])
    # Same session, continued under a fresh key.
    assert resumed.outcome_.session_id == state["session_id"]
    log = (federation.work_dir / "fintech_1" / "serve.log").read_text()
    assert f"resuming session {state['session_id']} after epoch 1" in log


def test_cut_off_coordinator_fails_the_session_within_the_timeout(request, federation, certs_dir, bank_table):
    coordinator = federation.parties["coordinator"]
    progress = _after_first_batch_of_epoch_2(coordinator.pause)
    est = VerticalLogisticRegression(**PARAMS)
    # The fintech asks the silent coordinator for its batch's randomness and gives up
    # first (it uses what is left of the bank's deadline), so the error names the
    # coordinator and the step, not the fintech.
    with pytest.raises(TransportError, match=r"coordinator at 127\.0\.0\.1:\d+ did not answer the 'randomness_request' message") as info:
        est.fit_remote(bank_table, ["fintech_1"], _transport(request, certs_dir, federation, timeout=3.0), progress=progress)
    assert info.value.party == "coordinator"
    coordinator.resume()
    log = (federation.work_dir / "fintech_1" / "serve.log").read_text()
    assert "failed at step 'batch_request'" in log


def test_pilot_with_one_process_per_party(tmp_path, capsys):
    out = tmp_path / "pilot"
    argv = [
        "pilot", "--processes", "--customers", "1500", "--key-bits", "512", "--insecure-test-key", "--psi", "keyed-hash",
        "--batch-size", "256", "--epochs", "2", "--n-jobs", "1", "--timeout", "30", "--quiet", "--out", str(out),
    ]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "Parties ran as processes: coordinator (pid" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["deployment"]["mode"] == "processes"
    assert report["notes"]["centralized"].startswith("Not available")
    assert {"federated", "bank_only"} == set(report["metrics"])
    for part in ("bank", "fintech_1"):
        assert (out / "model" / part / "model.json").is_file()
    assert (out / "applicant_scores.csv").is_file()
    # Every party process is gone.
    import os

    for party in report["deployment"]["parties"].values():
        with pytest.raises(ProcessLookupError):
            os.kill(party["pid"], 0)
