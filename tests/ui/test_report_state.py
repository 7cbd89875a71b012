"""Report downloads and the per-session workspace."""

from __future__ import annotations

import json

from riskfed.ui.jobs import Job
from riskfed.ui.report import report_html, report_json
from riskfed.ui.state import STATE_KEY, Workspace, get_workspace
from riskfed.ui.training import TrainingSettings


def test_report_json_round_trips(ui_run):
    report = ui_run[1].report
    data = json.loads(report_json(report))
    assert data["metrics"]["federated"]["auc"] == report["metrics"]["federated"]["auc"]
    assert data["app"]["source"] == "pilot"


def test_report_html_is_readable_and_holds_no_customer_data(ui_bundle, ui_run):
    report = ui_run[1].report
    page = report_html(report)
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    assert f"{report['metrics']['federated']['auc']:.3f}" in page
    assert "AUC lift from fintech data" in page and "Centralised reference (pilot only)" in page
    assert "Paillier key size" in page and "512 bits" in page
    for customer in ui_bundle.bank_frame["customer_id"].head(50):
        assert customer not in page


def test_report_html_escapes_text(ui_run):
    report = dict(ui_run[1].report, app={"data": "<b>pilot</b> & co"})
    page = report_html(report)
    assert "&lt;b&gt;pilot&lt;/b&gt; &amp; co" in page


def test_workspace_lives_in_the_given_session_state():
    a, b = {}, {}
    ws_a, ws_b = get_workspace(a), get_workspace(b)
    assert ws_a is not ws_b and a[STATE_KEY] is ws_a and get_workspace(a) is ws_a
    assert ws_a.session_id != ws_b.session_id


def test_new_data_retires_results_and_stops_jobs(trained_workspace, ui_bundle):
    ws = trained_workspace
    job = Job("training", lambda progress, cancelled: None)  # never started: stays "running"
    ws.train_job = job
    version = ws.data_version
    ws.set_data(ui_bundle)
    assert ws.data_version == version + 1
    assert ws.training is None and ws.overlap is None and ws.train_job is None and ws.batch is None
    assert job.cancelled()


def test_fingerprint_decides_whether_the_model_is_current(trained_workspace):
    ws = trained_workspace
    settings = ws.training.settings
    assert ws.is_current(settings)
    assert not ws.is_current(TrainingSettings(**{**settings.describe(), "max_epochs": settings.max_epochs + 1}))


def test_collect_moves_finished_jobs(ui_bundle, ui_run):
    ws = Workspace()
    ws.set_data(ui_bundle)
    settings, result = ui_run
    ws.train_settings = settings
    job = Job("training", lambda progress, cancelled: result, fingerprint=ws.training_key(settings)).start()
    job.join(30)
    ws.train_job = job
    ws.collect()
    assert ws.train_job is None and ws.training.result is result and ws.is_current(settings)
    assert [n.kind for n in ws.take_notices("train")] == ["success"]
    assert ws.take_notices("train") == []
