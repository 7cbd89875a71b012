"""Score page helpers: the applicant form, decisions, factors, batch summaries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskfed.errors import MissingColumnError
from riskfed.scoring.scorecard import Scorecard
from riskfed.ui import scoring as uiscoring


def test_applicant_fields_follow_the_model(ui_bundle, ui_run):
    model = ui_run[1].estimator.model_
    fields = {f.name: f for f in uiscoring.applicant_fields(model, ui_bundle.bank_frame)}
    pre = model.bank["preprocessing"]
    assert set(fields) == set(pre["numeric"]) | set(pre["categorical"])
    assert fields["age"].integer and fields["age"].step == 1.0
    assert not fields["debt_to_income"].integer and fields["debt_to_income"].step == 0.01
    assert fields["region"].kind == "choice" and uiscoring.MISSING_CHOICE in fields["region"].options
    assert fields["region"].default in fields["region"].options


def test_prefill_and_applicant_frame(ui_bundle, ui_run):
    model = ui_run[1].estimator.model_
    fields = uiscoring.applicant_fields(model, ui_bundle.bank_frame)
    row = ui_bundle.applicants.iloc[0].to_dict()
    values = uiscoring.prefill(fields, row)
    assert values["age"] == float(row["age"])
    blank = uiscoring.prefill(fields, None)
    assert blank == {f.name: f.default for f in fields}
    values["region"] = uiscoring.MISSING_CHOICE
    frame = uiscoring.applicant_frame("customer_id", " C1 ", values, fields)
    assert frame.loc[0, "customer_id"] == "C1"
    assert frame.loc[0, "region"] is None


def test_score_one_and_many(ui_bundle, ui_run):
    model = ui_run[1].estimator.model_
    fields = uiscoring.applicant_fields(model, ui_bundle.bank_frame)
    known = ui_bundle.fintech_frames[0]["customer_id"].iloc[0]  # the fintech knows this id
    one = uiscoring.score(
        model, uiscoring.applicant_frame("customer_id", known, uiscoring.prefill(fields, None), fields),
        ui_bundle.fintech_tables, id_column="customer_id",
    )
    assert one.loc[0, "model"] == "federated"
    unknown = uiscoring.score(
        model, uiscoring.applicant_frame("customer_id", "NOBODY-1", uiscoring.prefill(fields, None), fields),
        ui_bundle.fintech_tables, id_column="customer_id",
    )
    assert unknown.loc[0, "model"] == "bank_only_fallback"

    scored = uiscoring.score(model, ui_bundle.applicants, ui_bundle.fintech_tables, id_column="customer_id")
    assert len(scored) == len(ui_bundle.applicants)
    display = uiscoring.batch_display(scored, 550, id_column="customer_id")
    assert set(display["decision"]) <= {"Approve", "Decline"}
    assert set(display["model"]) <= {"federated", "bank-only fallback"}
    assert not display["factor_1"].isna().any()
    summary = uiscoring.batch_summary(scored, 550)
    assert summary["applicants"] == len(scored) == summary["federated"] + summary["fallback"]
    assert summary["approval_rate"] == pytest.approx((scored["score_points"] >= 550).mean())
    check = uiscoring.outcome_check(scored, ui_bundle.applicant_outcomes, 550, id_column="customer_id")
    assert check["matched"] == len(scored)
    assert uiscoring.outcome_check(scored, None, 550, id_column="customer_id") is None


def test_applicants_missing_a_bank_column(ui_bundle, ui_run):
    model = ui_run[1].estimator.model_
    bad = ui_bundle.applicants.drop(columns=["debt_to_income"])
    with pytest.raises(MissingColumnError, match="debt_to_income"):
        uiscoring.score(model, bad, ui_bundle.fintech_tables, id_column="customer_id")


def test_decisions_and_cutoff():
    card = Scorecard()
    assert uiscoring.default_cutoff(card) % 5 == 0
    assert card.probability(uiscoring.default_cutoff(card)) == pytest.approx(0.10, abs=0.01)
    scored = pd.DataFrame({"score_points": [549.9, 550.0, 600.0]})
    assert uiscoring.decide(scored, 550).tolist() == ["Decline", "Approve", "Approve"]


def test_factor_labels_and_top_factors():
    assert uiscoring.factor_label("bank:debt_to_income") == "Debt to income (bank)"
    assert uiscoring.factor_label("fintech_1:data") == "Fintech 1 data (combined)"
    assert uiscoring.factor_label(None) is None and uiscoring.factor_label(np.nan) is None
    row = {"reason_1": "bank:age", "points_1": 7.7, "reason_2": "fintech_1:data", "points_2": 2.0, "reason_3": None}
    table = uiscoring.top_factors(row)
    assert table["Factor"].tolist() == ["Age (bank)", "Fintech 1 data (combined)"]
    assert table["Points lost vs. average applicant"].tolist() == ["7.7 pts", "2.0 pts"]
