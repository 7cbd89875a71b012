"""``riskfed run/score --fintech-at``, ``--config``, ``--resume`` and ``serve`` errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from riskfed.cli import main


@pytest.fixture
def files(tmp_path, pilot):
    bank = tmp_path / "bank.parquet"
    applicants = tmp_path / "applicants.parquet"
    pilot.bank.to_parquet(bank, index=False)
    pilot.applicants.to_parquet(applicants, index=False)
    return bank, applicants


def _tls(certs_dir, role="bank"):
    return ["--cert", str(certs_dir / f"{role}.crt"), "--key", str(certs_dir / f"{role}.key"), "--ca", str(certs_dir / "ca.crt")]


TRAIN = ["--key-bits", "512", "--insecure-test-key", "--psi", "keyed-hash", "--batch-size", "256", "--epochs", "2", "--n-jobs", "1", "--quiet"]


def test_run_and_score_over_the_network(services, certs_dir, files, tmp_path, capsys):
    fed = services()
    bank, applicants = files
    out = tmp_path / "out"
    argv = ["run", "--bank", str(bank), "--id-column", "customer_id", "--label-column", "default", "--out", str(out),
            "--fintech-at", fed.fintech.address, "--coordinator-at", fed.coordinator.address, *_tls(certs_dir), *TRAIN]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    assert "each fintech service wrote its own part" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["deployment"]["parties"]["fintech_1"] == fed.fintech.address
    assert report["notes"]["centralized"].startswith("Not available")
    assert sorted(p.name for p in (out / "model").iterdir()) == ["bank"]
    assert (fed.model_dir / "fintech_1" / "model.json").is_file()
    assert sorted(p.name for p in (tmp_path / "out.checkpoints" / "bank").iterdir())[-1] == "latest.json"

    # Scoring through a config file instead of flags.
    config = tmp_path / "bank.toml"
    config.write_text(
        f"""
[tls]
cert = "{certs_dir / 'bank.crt'}"
key = "{certs_dir / 'bank.key'}"
ca = "{certs_dir / 'ca.crt'}"

[peers]
fintech_1 = "{fed.fintech.address}"
"""
    )
    scores = tmp_path / "scores.csv"
    assert main(["score", "--model", str(out / "model"), "--bank", str(applicants), "--out", str(scores), "--config", str(config), "--quiet"]) == 0
    import pandas as pd

    scored = pd.read_csv(scores)
    assert len(scored) == 200 and set(scored["model"]) == {"federated", "bank_only_fallback"}
    assert np.isfinite(scored["probability_of_default"]).all()


def test_resume_continues_a_networked_run(services, certs_dir, files, tmp_path, capsys):
    fed = services()
    bank, _ = files
    common = ["run", "--bank", str(bank), "--id-column", "customer_id", "--label-column", "default",
              "--fintech-at", fed.fintech.address, "--coordinator-at", fed.coordinator.address, *_tls(certs_dir), *TRAIN,
              "--checkpoint-dir", str(tmp_path / "ckpt")]  # fmt: skip
    assert main([*common, "--out", str(tmp_path / "a")]) == 0
    # Resuming a finished session reuses its checkpoints: same model, no new epochs.
    assert main([*common, "--out", str(tmp_path / "b"), "--resume"]) == 0
    a = json.loads((tmp_path / "a" / "model" / "bank" / "model.json").read_text())
    b = json.loads((tmp_path / "b" / "model" / "bank" / "model.json").read_text())
    assert a["weights"] == b["weights"] and a["intercept"] == b["intercept"]
    capsys.readouterr()
    assert main([*common, "--out", str(tmp_path / "c"), "--resume", "--checkpoint-dir", str(tmp_path / "empty")]) == 2
    assert "nothing to resume: no checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--fintech-at", "127.0.0.1:1"], "needs --fintech-at HOST:PORT \\(one per fintech\\) and --coordinator-at"),
        (["--fintech-at", "nonsense", "--coordinator-at", "127.0.0.1:1"], "must look like HOST:PORT"),
        (["--fintech-at", "bank=127.0.0.1:1", "--coordinator-at", "127.0.0.1:1"], "'bank' is not a fintech name"),
    ],
)
def test_run_reports_network_mistakes_in_one_line(certs_dir, files, tmp_path, capsys, extra, message):
    bank, _ = files
    argv = ["run", "--bank", str(bank), "--id-column", "customer_id", "--label-column", "default", "--out", str(tmp_path / "o"),
            *_tls(certs_dir), *TRAIN, *extra]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    import re

    assert re.search(message, err)


def test_unreachable_coordinator_is_named(services, certs_dir, files, tmp_path, capsys):
    fed = services()
    bank, _ = files
    argv = ["run", "--bank", str(bank), "--id-column", "customer_id", "--label-column", "default", "--out", str(tmp_path / "o"),
            "--fintech-at", fed.fintech.address, "--coordinator-at", "127.0.0.1:9", *_tls(certs_dir), *TRAIN]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "coordinator at 127.0.0.1:9 is unreachable at step 'session_open'" in err
    assert not (tmp_path / "o").exists()


def test_serve_refuses_incomplete_options(certs_dir, capsys):
    assert main(["serve", "--role", "fintech", "--listen", "127.0.0.1:0", *_tls(certs_dir, "fintech_1")]) == 2
    assert "serve --role fintech needs --data, --id-column, --coordinator-at" in capsys.readouterr().err
    assert main(["serve", "--role", "coordinator", "--listen", "127.0.0.1:0", *_tls(certs_dir, "fintech_1")]) == 2
    assert "is for 'fintech_1', but this party runs as 'coordinator'" in capsys.readouterr().err
