"""Figures and display tables built from a real (small) training run."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from riskfed.evaluation import ks_statistic
from riskfed.ui import figures, privacy, tables


def _holdout(ui_run):
    holdout = ui_run[1].holdout
    y = holdout["y"].to_numpy()
    return y, {m: holdout[m].to_numpy() for m in ("federated", "bank_only", "centralized")}


def test_loss_figure_marks_epochs():
    losses = [{"step": k + 1, "epoch": 1 + k // 3, "loss": 0.7 / (k + 1)} for k in range(6)]
    fig = figures.loss_figure(losses, total_steps=9)
    assert isinstance(fig, go.Figure)
    assert list(fig.data[0].y) == [row["loss"] for row in losses]
    assert len(fig.layout.shapes) == 1  # one boundary between epochs 1 and 2
    assert tuple(fig.layout.xaxis.range) == (0.5, 9.5)
    assert len(figures.loss_figure([]).data) == 0


def test_roc_and_ks_figures_label_each_model(ui_run):
    y, predictions = _holdout(ui_run)
    roc = figures.roc_figure(y, predictions)
    names = [t.name for t in roc.data]
    assert names[0] == "Random"
    auc = ui_run[1].report["metrics"]["federated"]["auc"]
    assert any(n.startswith("Federated (bank + fintech) · AUC") and f"{auc:.3f}" in n for n in names)
    assert any(n.startswith("Centralised reference (pilot only)") for n in names)

    ks = figures.ks_figure(y, predictions)
    curves = [t for t in ks.data if t.mode == "lines"]
    assert len(curves) == 3
    peak = max(abs(v) for v in curves[0].y)
    assert peak == ks_statistic(y, predictions["federated"])
    assert f"KS {100 * peak:.1f}%" in curves[0].name
    assert figures.ks_detail_figure(y, predictions["bank_only"], name="bank_only").layout.title.text.endswith("Bank only")


def test_score_distribution_and_applicant_histogram(ui_run):
    y, _ = _holdout(ui_run)
    points = np.linspace(450, 650, y.size)
    fig = figures.score_distribution_figure(points, y, cutoff=550)
    assert [t.name.split(" (")[0] for t in fig.data] == ["Non-defaulters", "Defaulters"]
    assert sum(len(t.x) for t in fig.data) == y.size

    hist = figures.applicant_points_figure(np.array([500.0, 540.0, 560.0, 600.0]), cutoff=550)
    assert [t.name for t in hist.data] == ["Approve (2)", "Decline (2)"]
    assert hist.data[0].xbins.start <= 550 and (550 - hist.data[0].xbins.start) % hist.data[0].xbins.size == 0


def test_overlap_figure():
    fig = figures.overlap_figure(5000, {"fintech_1": 4900}, {"fintech_1": 3500}, 3500)
    assert list(fig.data[0].x) == [5000, 4900] and list(fig.data[1].x) == [3500, 3500]
    assert list(fig.data[0].y) == ["Bank", "Fintech 1"]


def test_metrics_table_formats_and_orders(ui_run):
    metrics = ui_run[1].report["metrics"]
    table = tables.metrics_table(metrics)
    assert table["Model"].tolist() == ["Federated (bank + fintech)", "Bank only", "Centralised reference (pilot only)"]
    assert table.loc[0, "AUC"] == f"{metrics['federated']['auc']:.3f}"
    assert table.loc[0, "Gini"].endswith("%") and table.loc[0, "KS"].endswith("%")
    without = tables.metrics_table({k: v for k, v in metrics.items() if k != "centralized"})
    assert len(without) == 2 and not without["Model"].str.contains("Centralised").any()


def test_decile_display(ui_run):
    y, predictions = _holdout(ui_run)
    table = tables.decile_display(y, predictions["federated"])
    assert len(table) == 10
    assert table.loc[0, "Decile"] == "1 (riskiest)" and table.loc[9, "Decile"] == "10 (safest)"
    assert table.loc[9, "Defaulters caught (cumulative)"] == "100.0%"
    assert all(v.endswith("×") for v in table["Lift"])


def test_run_tables(ui_run):
    report = ui_run[1].report
    timings = tables.timings_table(report)
    assert timings["Phase"].tolist()[-1] == "Total"
    history = tables.history_table(report["training"]["history"])
    assert len(history) == report["training"]["epochs"]


def test_traffic_tables_describe_every_step_seen(ui_run):
    training = ui_run[1].report["training"]
    steps = {m["step"] for m in training["messages"]}
    assert steps <= set(privacy.STEP_DESCRIPTIONS), steps - set(privacy.STEP_DESCRIPTIONS)
    detail = privacy.traffic_detail(training["messages"])
    assert len(detail) == len(training["messages"])
    assert detail.loc[0, "Message"] == "session open"  # protocol order, not alphabetical
    encrypted = detail[detail["Message"] == "encrypted scores"]
    assert (encrypted["Protection"] == privacy.ENCRYPTED).all()
    by_party = privacy.traffic_by_party(training)
    assert by_party["Party"].tolist() == ["Bank", "Coordinator", "Fintech 1"]
    assert all(v.endswith(("B", "kB", "MB")) for v in by_party["Sent"])


def test_role_table_markdown():
    md = privacy.role_table_markdown()
    assert md.splitlines()[0].startswith("| Party | Holds | Learns | Never learns |")
    assert "**Coordinator**" in md


def test_every_message_type_has_a_description():
    """Network-only steps (a service's traffic report) appear in reports too."""
    from riskfed.protocol.messages import MESSAGE_TYPES

    assert set(MESSAGE_TYPES) <= set(privacy.STEP_DESCRIPTIONS), set(MESSAGE_TYPES) - set(privacy.STEP_DESCRIPTIONS)
