"""CLI happy paths: ``riskfed pilot``, ``run``, ``score`` and ``generate`` (512-bit test key)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from riskfed.cli import main
from riskfed.data.synthetic import BANK_FEATURES, FINTECH_FEATURES

TEST_FLAGS = ["--key-bits", "512", "--insecure-test-key", "--psi", "keyed-hash", "--n-jobs", "1", "--quiet"]
METRICS = {"auc", "ks", "gini", "brier"}


@pytest.fixture(scope="module")
def pilot_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "pilot"
    code = main(["pilot", "--customers", "1500", "--seed", "3", "--out", str(out), *TEST_FLAGS])
    assert code == 0
    return out


def test_pilot_writes_report_model_parts_data_and_scores(pilot_out, capsys):
    report = json.loads((pilot_out / "report.json").read_text())
    assert {"alignment", "training", "metrics"} <= set(report)
    a = report["alignment"]
    assert a["method"] == "keyed-hash" and a["bank_rows"] == 1500 and len(a["fintech_rows"]) == 1
    assert 0 < a["intersection"] < 1500 and "seconds" in a
    t = report["training"]
    assert t["key_bits"] == 512 and t["epochs"] >= 1 and t["batch_size"] == 1024
    assert set(t["bytes_sent"]) == {"bank", "coordinator", "fintech_1"} and "seconds" in t
    for model in ("federated", "bank_only", "centralized"):
        assert METRICS <= set(report["metrics"][model])
        assert 0.5 < report["metrics"][model]["auc"] <= 1.0
    assert report["metrics"]["federated"]["auc"] > report["metrics"]["bank_only"]["auc"]

    bank = json.loads((pilot_out / "model" / "bank" / "model.json").read_text())
    fin = json.loads((pilot_out / "model" / "fintech_1" / "model.json").read_text())
    bank_text, fin_text = json.dumps(bank), json.dumps(fin)
    # The bank's part has no fintech weights or features, and vice versa.
    assert not any(f'"{name}' in bank_text for name in FINTECH_FEATURES)
    assert not any(f'"{name}' in fin_text for name in BANK_FEATURES)
    assert len(bank["weights"]) == len(bank["feature_names"]) and "intercept" in bank
    assert len(fin["weights"]) == len(fin["feature_names"]) and "intercept" not in fin
    assert "fallback" in bank and "scorecard" in bank
    assert sorted(p.name for p in (pilot_out / "model").iterdir()) == ["bank", "fintech_1"]

    for name in ("bank", "fintech", "applicants"):
        assert (pilot_out / "data" / f"{name}.csv").is_file() and (pilot_out / "data" / f"{name}.parquet").is_file()
    scores = pd.read_csv(pilot_out / "applicant_scores.csv")
    applicants = pd.read_csv(pilot_out / "data" / "applicants.csv")
    assert len(scores) == len(applicants)
    assert sorted(p.name for p in pilot_out.parent.iterdir()) == ["pilot"]  # no staging leftovers


def test_score_one_row_per_applicant_chunked_and_parquet(pilot_out, tmp_path, capsys):
    data = pilot_out / "data"
    common = ["score", "--model", str(pilot_out / "model"), "--bank", str(data / "applicants.csv"),
              "--fintech", str(data / "fintech.csv"), "--quiet"]  # fmt: skip
    assert main([*common, "--out", str(tmp_path / "one.csv")]) == 0
    assert main([*common, "--out", str(tmp_path / "chunked.csv"), "--chunk-rows", "17"]) == 0
    assert main([*common, "--out", str(tmp_path / "scores.parquet"), "--chunk-rows", "50"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps at the terminal width
    assert "Scored 200 applicants" in out and "600 at odds 50:1, 20 points to double the odds" in out

    one = pd.read_csv(tmp_path / "one.csv", dtype={"customer_id": str})
    applicants = pd.read_csv(data / "applicants.csv", dtype={"customer_id": str})
    assert one["customer_id"].tolist() == applicants["customer_id"].tolist()
    assert {"probability_of_default", "score_points", "model"} <= set(one.columns)
    assert set(one["model"]) <= {"federated", "bank_only_fallback"} and (one["model"] == "federated").any()
    chunked = pd.read_csv(tmp_path / "chunked.csv", dtype={"customer_id": str})
    pd.testing.assert_frame_equal(one, chunked)
    parquet = pd.read_parquet(tmp_path / "scores.parquet")
    pd.testing.assert_frame_equal(one, parquet, check_dtype=False)
    # The pilot's own applicant scores used the same model.
    pilot_scores = pd.read_csv(pilot_out / "applicant_scores.csv", dtype={"customer_id": str})
    np.testing.assert_allclose(one["probability_of_default"], pilot_scores["probability_of_default"], rtol=1e-9)


def test_score_with_explicit_scorecard(pilot_out, tmp_path):
    data = pilot_out / "data"
    code = main(
        ["score", "--model", str(pilot_out / "model"), "--bank", str(data / "applicants.parquet"),
         "--fintech", str(data / "fintech.parquet"), "--out", str(tmp_path / "s.csv"), "--quiet",
         "--base-points", "500", "--base-odds", "20", "--pdo", "40"]
    )  # fmt: skip
    assert code == 0
    s = pd.read_csv(tmp_path / "s.csv")
    p = s["probability_of_default"].to_numpy()
    factor = 40 / np.log(2)
    expected = 500 - factor * np.log(20) + factor * np.log((1 - p) / p)
    np.testing.assert_allclose(s["score_points"], np.round(expected, 1), atol=0.051)


def test_run_on_default_credit_subset(tmp_path, default_credit_dir, capsys):
    guest = pd.read_csv(default_credit_dir / "default_credit_hetero_guest.csv").head(3000)
    host = pd.read_csv(default_credit_dir / "default_credit_hetero_host.csv").iloc[500:4000]
    bank_path = tmp_path / "bank.csv"
    fin_path = tmp_path / "fintech.parquet"
    guest.to_csv(bank_path, index=False)
    host.to_parquet(fin_path, index=False)
    out = tmp_path / "out"
    code = main(
        ["run", "--bank", str(bank_path), "--fintech", str(fin_path), "--id-column", "id",
         "--label-column", "y", "--out", str(out), *TEST_FLAGS]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "Holdout performance" in printed and "Federated" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["alignment"]["bank_rows"] == 3000
    assert report["alignment"]["fintech_rows"] == [3500]
    assert report["alignment"]["intersection"] == 2500
    for model in ("federated", "bank_only", "centralized"):
        assert METRICS <= set(report["metrics"][model])
    assert report["metrics"]["federated"]["n"] == 750
    assert report["metrics"]["federated"]["auc"] > report["metrics"]["bank_only"]["auc"]
    # Both parties call their features x0...: each part keeps only its own.
    bank = json.loads((out / "model" / "bank" / "model.json").read_text())
    fin = json.loads((out / "model" / "fintech_1" / "model.json").read_text())
    assert len(bank["weights"]) == 13 and len(fin["weights"]) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bank.csv", "fintech.parquet", "out"]


def test_generate_writes_sample_data(tmp_path, capsys):
    assert main(["generate", "--customers", "300", "--out", str(tmp_path / "sample"), "--formats", "csv"]) == 0
    names = sorted(p.name for p in (tmp_path / "sample").iterdir())
    assert names == ["applicant_outcomes.csv", "applicants.csv", "bank.csv", "fintech.csv", "truth.json"]
    assert len(pd.read_csv(tmp_path / "sample" / "bank.csv")) == 300


def test_version_and_usage_errors(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and "riskfed" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        main(["pilot", "--customers", "zero"])
    assert info.value.code == 2
    assert "expected a whole number" in capsys.readouterr().err


def test_an_output_path_that_is_a_file_fails_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "out"
    blocker.write_text("not a directory")
    code = main(["pilot", "--customers", "500", "--key-bits", "512", "--insecure-test-key", "--out", str(blocker), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "exists and is not a directory" in err and "Traceback" not in err
    assert blocker.read_text() == "not a directory"


def test_seed_defaults_a_fresh_secret_for_run_and_zero_for_the_pilot(capsys):
    from riskfed.cli import build_parser

    parser = build_parser()
    run = parser.parse_args(["run", "--bank", "b.csv", "--fintech", "f.csv", "--id-column", "id", "--label-column", "y"])
    assert run.seed is None  # the bank draws a fresh 256-bit secret per session
    assert parser.parse_args(["pilot"]).seed == 0  # synthetic data: reproducible figures
    assert parser.parse_args(["run", "--bank", "b", "--id-column", "i", "--label-column", "y", "--seed", "5"]).seed == 5
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["run", "--bank", "b", "--id-column", "i", "--label-column", "y", "--seed", "-1"])
    assert info.value.code == 2 and "expected a number in [0, 4294967295], got -1" in capsys.readouterr().err
    assert "anyone who knows a fixed seed" in parser._subparsers._group_actions[0].choices["run"].format_help()


def test_serve_takes_a_fintech_minimum_batch_size_from_flags_or_config(tmp_path):
    from riskfed.cli import build_parser
    from riskfed.deploy.config import apply_config

    parser = build_parser()
    assert parser.parse_args(["serve", "--min-batch-size", "512"]).min_batch_size == 512
    config = tmp_path / "fintech.toml"
    config.write_text('[serve]\nrole = "fintech"\nmin_batch_size = 400\n')
    args = apply_config(parser.parse_args(["serve"]), config)
    assert args.min_batch_size == 400
