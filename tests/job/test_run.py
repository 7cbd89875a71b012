"""run_pipeline: the report, its metrics, all-or-nothing output and no secrets in it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from riskfed.evaluation import evaluate
from riskfed.job import run_pipeline
from riskfed.session.progress import Cancelled


@pytest.fixture(scope="module")
def result(small_pilot, make_estimator, tmp_path_factory):
    out = tmp_path_factory.mktemp("pipeline") / "out"
    res = run_pipeline(
        small_pilot.bank,
        list(small_pilot.fintechs),
        id_column="customer_id",
        label_column="default",
        estimator=make_estimator(),
        out_dir=out,
    )
    return res, out


def test_report_has_the_documented_keys(result, small_pilot):
    res, _ = result
    r = res.report
    a = r["alignment"]
    assert a["method"] == "keyed-hash"
    assert a["bank_rows"] == len(small_pilot.bank)
    assert a["fintech_rows"] == [len(small_pilot.fintechs[0])]
    assert 0 < a["intersection"] <= len(small_pilot.bank) and a["seconds"] >= 0
    t = r["training"]
    assert t["key_bits"] == 512 and t["epochs"] >= 1 and t["batch_size"] == 256 and t["seconds"] > 0
    assert set(t["bytes_sent"]) == {"bank", "coordinator", "fintech_1"}
    assert all(v > 0 for v in t["bytes_sent"].values())
    for name in ("federated", "bank_only", "centralized"):
        assert set(r["metrics"][name]) >= {"auc", "ks", "gini", "brier"}
    json.dumps(r)  # JSON-ready as is


def test_metrics_are_those_of_the_shared_holdout(result):
    res, _ = result
    holdout = res.holdout
    est = res.estimator
    assert len(holdout) == len(est.outcome_.holdout_rows)
    assert np.array_equal(holdout["y"], est.outcome_.holdout_labels)
    for name, m in res.report["metrics"].items():
        again = evaluate(holdout["y"], holdout[name])
        assert again["auc"] == pytest.approx(m["auc"]) and again["brier"] == pytest.approx(m["brier"])
    c = res.report["comparison"]
    assert c["auc_lift_over_bank_only"] == pytest.approx(
        res.report["metrics"]["federated"]["auc"] - res.report["metrics"]["bank_only"]["auc"]
    )


def test_outputs_written_per_party(result):
    res, out = result
    assert json.loads((out / "report.json").read_text())["alignment"] == json.loads(json.dumps(res.report["alignment"]))
    assert (out / "model" / "bank" / "model.json").is_file()
    assert (out / "model" / "fintech_1" / "model.json").is_file()
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]


def test_report_holds_no_secrets_or_customer_data(result, small_pilot):
    res, out = result
    est = res.estimator
    text = (out / "report.json").read_text() + "".join(p.read_text() for p in (out / "model").rglob("*.json"))
    sk = est.transport_.nodes["coordinator"].role._private_key.phe
    assert str(sk.p) not in text and str(sk.q) not in text
    bank_role = est.transport_.nodes["bank"].role
    for key in getattr(bank_role, "_hash_keys", {}).values():
        assert key.hex() not in text
    ids = small_pilot.bank["customer_id"].head(50).tolist() + small_pilot.fintechs[0]["customer_id"].head(50).tolist()
    assert not any(i in text for i in ids)
    assert res.report["training"]["key_fingerprint"] in text  # the public fingerprint is fine


def test_cancelled_run_leaves_out_dir_unchanged(tmp_path, small_pilot, make_estimator):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text("previous run")
    with pytest.raises(Cancelled, match="cancelled"):
        run_pipeline(
            small_pilot.bank,
            list(small_pilot.fintechs),
            id_column="customer_id",
            label_column="default",
            estimator=make_estimator(),
            out_dir=out,
            cancel=lambda: True,
        )
    assert [p.name for p in out.iterdir()] == ["report.json"]
    assert (out / "report.json").read_text() == "previous run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_without_centralized_reference(small_pilot, make_estimator):
    res = run_pipeline(
        small_pilot.bank,
        list(small_pilot.fintechs),
        id_column="customer_id",
        label_column="default",
        estimator=make_estimator(max_epochs=1),
        centralized=False,
    )
    assert set(res.report["metrics"]) == {"federated", "bank_only"}
    assert "auc_gap_to_centralized" not in res.report["comparison"]
