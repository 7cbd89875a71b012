"""Step 4 — Compare: the federated model against the bank alone (and the pilot's
centralised reference), on the holdout customers."""

from __future__ import annotations

import numpy as np
import streamlit as st

from riskfed.ui import chrome, figures, tables
from riskfed.ui import format as fmt
from riskfed.ui.report import report_html, report_json

MODELS = ("federated", "bank_only", "centralized")


def render() -> None:
    ws = chrome.workspace()
    chrome.header("compare", "How much better is the model with the fintech's data than what the bank can do alone? Holdout customers only.")
    if ws.training is None:
        chrome.need_model()
        return
    report = ws.training.result.report
    holdout = ws.training.result.holdout
    y = holdout["y"].to_numpy()
    predictions = {m: holdout[m].to_numpy() for m in MODELS if m in holdout.columns}
    headline(report)
    left, right = st.columns(2)
    left.plotly_chart(figures.roc_figure(y, predictions), key="roc")
    right.plotly_chart(figures.ks_figure(y, predictions), key="ks")
    one_model(ws.training.model.scorecard, y, predictions)
    st.subheader("Report")
    d1, d2, _ = st.columns([1, 1, 3])
    d1.download_button("Download report (JSON)", report_json(report), file_name="riskfed-report.json", mime="application/json", key="dl_json")
    d2.download_button("Download report (HTML)", report_html(report), file_name="riskfed-report.html", mime="text/html", key="dl_html")
    chrome.next_button("score")


def headline(report: dict) -> None:
    """AUCs, the lift from the fintech's data, and the metrics table."""
    metrics = report["metrics"]
    lift = report["comparison"]["auc_lift_over_bank_only"]
    bank_auc = metrics["bank_only"]["auc"]
    cols = st.columns(4)
    cols[0].metric("Federated AUC", fmt.decimal(metrics["federated"]["auc"]))
    cols[1].metric("Bank-only AUC", fmt.decimal(bank_auc))
    cols[2].metric(
        "AUC lift from the fintech's data",
        fmt.signed(lift),
        delta=f"{lift / bank_auc:+.1%} vs. bank only" if bank_auc else None,
        delta_color="normal",
    )
    if "centralized" in metrics:
        gap = report["comparison"]["auc_gap_to_centralized"]
        cols[3].metric("Gap to centralised reference", fmt.decimal(abs(gap)), help="Pilot-only yardstick: a model on joined data.")
    st.dataframe(tables.metrics_table(metrics), hide_index=True)
    if "centralized" in metrics:
        st.caption("Centralised reference = a model on the joined data, computed only in pilots: a real deployment never joins the data.")
    else:
        st.caption("No centralised reference: it needs the parties' data joined, which only a pilot may do (enable it on Train).")


def one_model(card, y: np.ndarray, predictions: dict[str, np.ndarray]) -> None:
    """Score distribution, KS chart and decile table of the model the analyst picks."""
    st.subheader("Score distribution and deciles")
    chosen = st.selectbox("Model", list(predictions), format_func=figures.model_label, key="compare_model")
    pts = np.asarray(card.points(np.clip(predictions[chosen], 0.0, 1.0)), dtype=float)
    left, right = st.columns([3, 2])
    left.plotly_chart(figures.score_distribution_figure(pts, y), key="score_dist")
    right.plotly_chart(figures.ks_detail_figure(y, predictions[chosen], name=chosen), key="ks_detail")
    st.markdown("**Default rate and lift by decile of predicted PD**")
    st.dataframe(tables.decile_display(y, predictions[chosen]), hide_index=True)


if __name__ == "__main__":
    render()
