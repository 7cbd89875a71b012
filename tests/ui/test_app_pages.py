"""Every page of app.py, headless (streamlit.testing.v1.AppTest).

Pages that need a trained model get one injected into the session (the shared
``ui_run``), so only the click-through tests train through the app itself.
"""

from __future__ import annotations

import copy
import io

import numpy as np
import pandas as pd

from riskfed.ui.state import STATE_KEY, Workspace


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def _bank(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "client_id": [f"K{k:05d}" for k in range(n)],
            "y": (rng.random(n) < 0.2).astype(int),
            "income": rng.normal(50_000, 10_000, n).round(0),
            "utilisation": rng.random(n).round(3),
        }
    )


def _fintech(n: int = 300, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"client_id": [f"K{k:05d}" for k in range(n)], "spend": rng.normal(size=n).round(3)})


def _upload(at, bank: bytes | None, fintech: bytes | None, bank_name="bank.csv", fintech_name="fintech.csv"):
    at.session_state["data_source"] = "upload"
    at.run()
    if bank is not None:
        at.file_uploader(key="upload_bank").upload(bank_name, bank, "text/csv")
    if fintech is not None:
        at.file_uploader(key="upload_fintechs").upload(fintech_name, fintech, "text/csv")
    return at.run()


# ---------------------------------------------------------------------------- Data page


def test_data_page_first_visit(new_app, assert_no_exception):
    at = new_app().run()
    assert_no_exception(at)
    assert at.title[0].value == "1. Data"
    assert at.number_input(key="pilot_customers").value == 5000  # trains quickly by default
    assert not any(b.key == "next_align" for b in at.button)  # the next step waits for data


def test_generate_pilot(new_app, assert_no_exception, page_text):
    at = new_app(pilot_customers=1000).run()
    at.button(key="FormSubmitter:pilot_form-Generate pilot data").click().run()
    assert_no_exception(at)
    text = page_text(at)
    ws = at.session_state[STATE_KEY]
    assert "Bank customers: 1,000" in text and f"Fintech 1 customers: {ws.data.fintechs[0].n_rows:,}" in text
    assert "Generated pilot: 1,000 bank customers" in text
    assert ws.data.bank.n_rows == 1000 and at.session_state["centralized"] is True
    assert len(at.dataframe) >= 3  # overview, column summary, preview


def test_sample_data(new_app, assert_no_exception, page_text):
    at = new_app(data_source="sample").run()
    at.button(key="load_sample").click().run()
    assert_no_exception(at)
    assert "Sample data shipped with riskfed: 2,000 bank customers" in page_text(at)


def test_valid_upload_with_guessed_columns(new_app, assert_no_exception, page_text):
    at = _upload(new_app(), _csv(_bank()), _csv(_fintech()))
    id_box = next(s for s in at.selectbox if s.label == "Customer id column")
    label_box = next(s for s in at.selectbox if s.label.startswith("Default flag column"))
    assert id_box.value == "client_id" and label_box.value == "y"
    at.button(key="use_uploads").click().run()
    assert_no_exception(at)
    assert "Files checked: every table is usable." in page_text(at)
    ws = at.session_state[STATE_KEY]
    assert ws.data.source == "upload" and ws.data.fintech_labels == ("Fintech 1 · fintech.csv",)
    assert at.session_state["centralized"] is False  # real files: the joined reference is opt-in


def test_upload_duplicate_ids(new_app, assert_no_exception):
    bank = _bank()
    bank.loc[7, "client_id"] = "K00003"
    at = _upload(new_app(), _csv(bank), _csv(_fintech()))
    at.button(key="use_uploads").click().run()
    assert_no_exception(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("bank.csv: 1 id(s) in column 'client_id' occur more than once")
    assert at.session_state[STATE_KEY].data is None


def test_upload_label_not_zero_one(new_app, assert_no_exception):
    bank = _bank()
    bank.loc[[4, 9], "y"] = 2
    at = _upload(new_app(), _csv(bank), _csv(_fintech()))
    at.button(key="use_uploads").click().run()
    assert_no_exception(at)
    (error,) = [e.value for e in at.error]
    assert error.startswith("bank.csv: column 'y' must hold 0 (no default) or 1 (default)") and "K00004" in error


def test_upload_wrong_columns(new_app, assert_no_exception):
    # The bank file has no default-flag-like column and the fintech file no features.
    bank = _bank().rename(columns={"y": "outcome"})
    fintech = _fintech()[["client_id"]]
    at = _upload(new_app(), _csv(bank), _csv(fintech))
    at.button(key="use_uploads").click().run()
    assert_no_exception(at)
    assert [e.value for e in at.error] == ["Choose the bank's default flag column."]

    label_box = next(s for s in at.selectbox if s.label.startswith("Default flag column"))
    label_box.select("outcome").run()
    at.button(key="use_uploads").click().run()
    assert_no_exception(at)
    (error,) = [e.value for e in at.error]
    assert error == "fintech.csv: the table has no feature columns besides id and label."


def test_upload_fintech_without_matching_id_column(new_app, assert_no_exception):
    fintech = _fintech().rename(columns={"client_id": "ref"})
    at = _upload(new_app(), _csv(_bank()), _csv(fintech))
    at.button(key="use_uploads").click().run()
    assert_no_exception(at)
    assert [e.value for e in at.error] == ["Choose the customer id column of fintech.csv."]


def test_upload_unreadable_file(new_app, assert_no_exception):
    at = new_app(data_source="upload").run()
    at.file_uploader(key="upload_bank").upload("bank.parquet", b"PAR1 garbage", "application/octet-stream")
    at.file_uploader(key="upload_fintechs").upload("fintech.csv", _csv(_fintech()), "text/csv")
    at.run()
    assert_no_exception(at)
    (error,) = [e.value for e in at.error]
    assert error.startswith("bank.parquet: cannot read 'bank.parquet'")


# --------------------------------------------------------------------------- Align page


def test_align_page_needs_data(new_app, assert_no_exception):
    at = new_app(page="align").run()
    assert_no_exception(at)
    assert at.info[0].value.startswith("Load data first")


def test_align_page_runs_the_overlap_check(new_app, ui_bundle, wait_for_job, assert_no_exception, page_text):
    ws = Workspace()
    ws.set_data(ui_bundle)
    at = new_app(ws, page="align").run()
    assert at.radio(key="psi_method").value == "ecdh"
    assert not at.main.warning  # no keyed-hash warning by default
    at.button(key="run_align").click().run()
    wait_for_job(at, "align_job")
    assert_no_exception(at)
    text = page_text(at)
    assert "Shared customers: 1,400" in text and "Match rate: 70.0%" in text
    assert ws.overlap.method == "ecdh"

    at.radio(key="psi_method").set_value("keyed-hash").run()
    assert any("guess" in w.value for w in at.main.warning)
    assert "Shared customers: 1,400" not in page_text(at)  # results belong to the other method


# --------------------------------------------------------------------------- Train page


def test_train_page_trains_once_and_only_when_settings_change(new_app, ui_bundle, wait_for_job, assert_no_exception, page_text):
    ws = Workspace()
    ws.set_data(ui_bundle)
    at = new_app(ws, page="train", batch_size=256, epochs=2).run()
    assert at.selectbox(key="key_bits").value == 512  # test mode offers the small test key
    at.button(key="run_train").click().run()
    assert ws.trainings_started == 1
    wait_for_job(at, "train_job")
    assert_no_exception(at)
    text = page_text(at)
    assert "Key size: 512 bits" in text and "Training customers: 980" in text
    assert any(s.value.startswith("Run finished in") for s in at.success)
    first = ws.training

    for _ in range(3):  # reruns (any interaction) never retrain
        at.run()
    assert ws.trainings_started == 1 and ws.training is first
    assert at.button(key="run_train").disabled and at.button(key="run_train").label == "Model is up to date"

    at.number_input(key="epochs").set_value(3).run()
    assert not at.button(key="run_train").disabled
    assert at.button(key="run_train").label == "Train again with these settings"
    assert any("earlier settings" in i.value for i in at.info)
    assert ws.trainings_started == 1


def test_cancel_training(new_app, ui_bundle, assert_no_exception):
    ws = Workspace()
    ws.set_data(ui_bundle)
    at = new_app(ws, page="train", batch_size=256, epochs=50).run()
    at.button(key="run_train").click().run()
    job = ws.train_job
    assert job is not None and job.running
    at.button(key="cancel_train").click().run()
    assert job.join(120)
    at.run()
    assert_no_exception(at)
    assert job.status == "cancelled"
    assert ws.training is None
    assert any("Training cancelled" in w.value for w in at.warning)


def test_small_keys_only_in_insecure_test_mode(new_app, ui_bundle, monkeypatch, assert_no_exception):
    monkeypatch.delenv("RISKFED_APP_TEST_MODE")
    ws = Workspace()
    ws.set_data(ui_bundle)
    at = new_app(ws, page="train").run()
    assert_no_exception(at)
    assert at.selectbox(key="key_bits").value == 2048
    assert list(at.selectbox(key="key_bits").options) == ["2048 bits", "3072 bits"]
    at.checkbox(key="insecure_test_mode").check().run()
    assert "512 bits (test only)" in at.selectbox(key="key_bits").options
    at.selectbox(key="key_bits").set_value(512).run()
    assert any("can be broken" in w.value for w in at.warning)
    at.checkbox(key="insecure_test_mode").uncheck().run()
    assert at.selectbox(key="key_bits").value == 2048


# ------------------------------------------------------------------ Compare / Score / Privacy


def test_pages_without_a_model_point_to_train(new_app, ui_bundle, assert_no_exception):
    ws = Workspace()
    ws.set_data(ui_bundle)
    for page in ("compare", "score"):
        at = new_app(ws, page=page).run()
        assert_no_exception(at)
        assert at.info[0].value.startswith("Train a model first")
    at = new_app(ws, page="privacy").run()
    assert_no_exception(at)
    assert "What the coordinator must not do" in "".join(m.value for m in at.markdown)


def test_compare_page(new_app, trained_workspace, ui_run, assert_no_exception, page_text):
    at = new_app(trained_workspace, page="compare").run()
    assert_no_exception(at)
    metrics = ui_run[1].report["metrics"]
    text = page_text(at)
    assert f"Federated AUC: {metrics['federated']['auc']:.3f}" in text
    lift = metrics["federated"]["auc"] - metrics["bank_only"]["auc"]
    assert f"AUC lift from the fintech's data: +{lift:.3f}" in text
    table = at.dataframe[0].value
    assert table["Model"].tolist()[-1] == "Centralised reference (pilot only)"
    assert len(at.dataframe[1].value) == 10  # decile table
    assert {b.label for b in at.get("download_button")} == {"Download report (JSON)", "Download report (HTML)"}
    at.selectbox(key="compare_model").set_value("bank_only").run()
    assert_no_exception(at)


def test_compare_page_without_centralised_reference(new_app, trained_workspace, assert_no_exception, page_text):
    ws = trained_workspace
    result = copy.copy(ws.training.result)
    result.report = {**result.report, "metrics": {k: v for k, v in result.report["metrics"].items() if k != "centralized"}}
    result.report["comparison"] = {"auc_lift_over_bank_only": result.report["comparison"]["auc_lift_over_bank_only"]}
    result.holdout = result.holdout.drop(columns=["centralized"])
    ws.training.result = result
    at = new_app(ws, page="compare").run()
    assert_no_exception(at)
    assert "Centralised" not in " ".join(at.dataframe[0].value["Model"])
    assert "No centralised reference" in page_text(at)


def test_score_one_applicant(new_app, trained_workspace, ui_bundle, assert_no_exception, page_text):
    at = new_app(trained_workspace, page="score").run()
    assert_no_exception(at)
    assert at.slider(key="cutoff").value == 550
    first = ui_bundle.applicants["customer_id"].iloc[0]
    at.selectbox(key="one_prefill").set_value(first).run()
    assert at.text_input[0].value == first
    next(b for b in at.button if b.label == "Score applicant").click().run()
    assert_no_exception(at)
    text = page_text(at)
    assert f"Applicant {first}" in text
    assert "Probability of default: " in text and " pts" in text
    assert "Decision: Approve" in text or "Decision: Decline" in text
    assert "Scored by: " in text

    at.slider(key="cutoff").set_value(750).run()  # a stricter cut-off declines, without rescoring
    assert "Decision: Decline" in page_text(at)


def test_score_one_applicant_needs_an_id(new_app, trained_workspace, assert_no_exception):
    at = new_app(trained_workspace, page="score").run()
    next(b for b in at.button if b.label == "Score applicant").click().run()
    assert_no_exception(at)
    assert at.error[0].value.startswith("Enter the applicant's customer id")


def test_score_many_pilot_applicants(new_app, trained_workspace, ui_bundle, assert_no_exception, page_text):
    at = new_app(trained_workspace, page="score").run()
    at.button(key="run_batch").click().run()
    assert_no_exception(at)
    text = page_text(at)
    assert f"Applicants: {len(ui_bundle.applicants)}" in text and "Approved: " in text
    assert "Pilot check with the simulated outcomes" in text
    assert "Download scores (CSV)" in [b.label for b in at.get("download_button")]


def test_score_many_uploaded_file_with_missing_column(new_app, trained_workspace, ui_bundle, assert_no_exception):
    at = new_app(trained_workspace, page="score", batch_source="upload").run()
    bad = ui_bundle.applicants.drop(columns=["annual_income"]).head(20)
    at.file_uploader(key="upload_applicants").upload("applicants.csv", _csv(bad), "text/csv")
    at.run()
    at.button(key="run_batch").click().run()
    assert_no_exception(at)
    (error,) = [e.value for e in at.error]
    assert error.startswith("applicants.csv: the feature column 'annual_income' is not in the table")


def test_score_many_uploaded_parquet(new_app, trained_workspace, ui_bundle, assert_no_exception, page_text):
    at = new_app(trained_workspace, page="score", batch_source="upload").run()
    buffer = io.BytesIO()
    ui_bundle.applicants.head(50).to_parquet(buffer, index=False)
    at.file_uploader(key="upload_applicants").upload("applicants.parquet", buffer.getvalue())
    at.run()
    at.button(key="run_batch").click().run()
    assert_no_exception(at)
    assert "Scored: applicants.parquet" in page_text(at) and "Applicants: 50" in page_text(at)


def test_privacy_page(new_app, trained_workspace, ui_run, assert_no_exception, page_text):
    at = new_app(trained_workspace, page="privacy").run()
    assert_no_exception(at)
    report = ui_run[1].report["training"]
    text = page_text(at)
    assert "Paillier key size: 512 bits" in text
    assert " ".join(report["key_fingerprint"][i : i + 4] for i in range(0, 16, 4)) in text
    assert any("insecure test key" in w.value for w in at.warning)
    parties = at.dataframe[0].value["Party"].tolist()
    assert parties == ["Bank", "Coordinator", "Fintech 1"]
    assert len(at.dataframe[1].value) == len(report["messages"])
