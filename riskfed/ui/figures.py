"""Plotly figures for the app: one visual language on every page.

Colours: federated blue, bank-only grey, centralised reference amber (dashed, as it is
a yardstick rather than a deployable model); defaulters red, non-defaulters green.
Every figure takes plain data (lists, frames, arrays) and returns a
``plotly.graph_objects.Figure``, so the app only places it and tests inspect it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from riskfed.evaluation import ks_curve, roc_auc, roc_curve_points
from riskfed.ui import format as fmt

MODEL_LABELS = {
    "federated": "Federated (bank + fintech)",
    "bank_only": "Bank only",
    "centralized": "Centralised reference (pilot only)",
}
MODEL_COLORS = {"federated": "#1f5fbf", "bank_only": "#7d8590", "centralized": "#c27c0e"}
MODEL_DASH = {"federated": "solid", "bank_only": "solid", "centralized": "dash"}
DEFAULTER_COLOR = "#c4314b"
NON_DEFAULTER_COLOR = "#2f8f4e"
_FONT = dict(family="Inter, Segoe UI, Helvetica, Arial, sans-serif", size=13)


def _layout(fig: go.Figure, *, title: str | None, x: str, y: str, height: int = 440) -> go.Figure:
    fig.update_layout(
        template="plotly_white",
        title=dict(text=title, x=0.0, xanchor="left") if title else None,
        xaxis_title=x,
        yaxis_title=y,
        height=height,
        margin=dict(l=60, r=20, t=50 if title else 20, b=40),
        legend=dict(orientation="h", yanchor="top", y=-0.22, xanchor="left", x=0.0),
        font=_FONT,
    )
    return fig


def model_label(name: str) -> str:
    return MODEL_LABELS.get(name, fmt.column_label(name))


def loss_figure(losses: Sequence[Mapping], *, total_steps: int | None = None) -> go.Figure:
    """Training loss per batch, one colour per epoch.

    Parameters
    ----------
    losses:
        Rows with ``step`` (batch number across epochs, 1-based), ``epoch`` and ``loss``
        (as recorded by :class:`riskfed.ui.jobs.Job` or the report's ``batch_losses``).
    total_steps:
        Fix the x axis to the planned number of batches while training runs.
    """
    frame = pd.DataFrame(list(losses), columns=["step", "epoch", "loss"])
    fig = go.Figure()
    if not frame.empty:
        fig.add_trace(
            go.Scatter(
                x=frame["step"],
                y=frame["loss"],
                mode="lines+markers",
                name="loss",
                line=dict(color=MODEL_COLORS["federated"], width=2),
                marker=dict(size=6, color=MODEL_COLORS["federated"]),
                customdata=frame["epoch"],
                hovertemplate="batch %{x}<br>epoch %{customdata}<br>loss %{y:.4f}<extra></extra>",
                showlegend=False,
            )
        )
        # Epoch boundaries help read whether the loss still falls from one pass to the next.
        ends = frame.groupby("epoch")["step"].max().tolist()[:-1]
        for end in ends:
            fig.add_vline(x=end + 0.5, line=dict(color="#d0d7de", dash="dot", width=1))
    if total_steps:
        fig.update_xaxes(range=[0.5, total_steps + 0.5])
    return _layout(fig, title=None, x="Batch", y="Training loss (log-loss)", height=300)


def roc_figure(y: np.ndarray, predictions: Mapping[str, np.ndarray]) -> go.Figure:
    """Overlaid ROC curves with the AUC in each legend entry."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="Random", line=dict(color="#d0d7de", dash="dot"), hoverinfo="skip")
    )
    for name, p in predictions.items():
        curve = roc_curve_points(y, p)
        fig.add_trace(
            go.Scatter(
                x=curve["fpr"],
                y=curve["tpr"],
                mode="lines",
                name=f"{model_label(name)} · AUC {fmt.decimal(roc_auc(y, p))}",
                line=dict(color=MODEL_COLORS.get(name), dash=MODEL_DASH.get(name, "solid"), width=2.5),
                hovertemplate="false alarms %{x:.1%}<br>defaulters caught %{y:.1%}<extra></extra>",
            )
        )
    fig.update_xaxes(tickformat=".0%", range=[0, 1])
    fig.update_yaxes(tickformat=".0%", range=[0, 1.01])
    return _layout(fig, title="ROC curve", x="Non-defaulters flagged (false-positive rate)", y="Defaulters caught (true-positive rate)")


def ks_figure(y: np.ndarray, predictions: Mapping[str, np.ndarray]) -> go.Figure:
    """Overlaid KS curves: the gap between defaulters and non-defaulters flagged, by the
    share of applicants flagged (riskiest first); each curve's peak is its KS."""
    y = np.asarray(y)
    bad_share = float(np.mean(y))
    fig = go.Figure()
    for name, p in predictions.items():
        curve = ks_curve(y, p)
        flagged = curve["cum_bad"] * bad_share + curve["cum_good"] * (1 - bad_share)
        peak = int(np.argmax(np.abs(curve["gap"].to_numpy())))
        color = MODEL_COLORS.get(name)
        fig.add_trace(
            go.Scatter(
                x=flagged,
                y=curve["gap"],
                mode="lines",
                name=f"{model_label(name)} · KS {fmt.percent(abs(curve['gap'].iloc[peak]))}",
                line=dict(color=color, dash=MODEL_DASH.get(name, "solid"), width=2.5),
                hovertemplate="applicants flagged %{x:.1%}<br>gap %{y:.1%}<extra></extra>",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=[flagged.iloc[peak]],
                y=[curve["gap"].iloc[peak]],
                mode="markers",
                marker=dict(color=color, size=9, symbol="diamond"),
                showlegend=False,
                hoverinfo="skip",
            )
        )
    fig.update_xaxes(tickformat=".0%", range=[0, 1])
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    return _layout(
        fig,
        title="KS curve",
        x="Applicants flagged, riskiest first",
        y="Defaulters caught − non-defaulters flagged",
    )


def ks_detail_figure(y: np.ndarray, p: np.ndarray, *, name: str = "federated") -> go.Figure:
    """The classic KS chart for one model: cumulative shares of each class."""
    curve = ks_curve(y, p)
    peak = int(np.argmax(np.abs(curve["gap"].to_numpy())))
    fig = go.Figure()
    for col, label, color in (
        ("cum_bad", "Defaulters", DEFAULTER_COLOR),
        ("cum_good", "Non-defaulters", NON_DEFAULTER_COLOR),
    ):
        fig.add_trace(
            go.Scatter(x=curve["threshold"], y=curve[col], mode="lines", name=label, line=dict(color=color, width=2.5))
        )
    t = curve["threshold"].iloc[peak]
    fig.add_shape(
        type="line", x0=t, x1=t, y0=curve["cum_good"].iloc[peak], y1=curve["cum_bad"].iloc[peak],
        line=dict(color="#24292f", width=2, dash="dot"),
    )
    fig.update_xaxes(tickformat=".0%", autorange="reversed")
    fig.update_yaxes(tickformat=".0%", range=[0, 1.01])
    return _layout(fig, title=f"KS chart · {model_label(name)}", x="PD threshold (customers at or above it are flagged)", y="Cumulative share flagged")


def score_distribution_figure(points: np.ndarray, y: np.ndarray, *, cutoff: float | None = None, bins: int = 40) -> go.Figure:
    """Scorecard points of defaulters vs non-defaulters (each normalised to 100%)."""
    points = np.asarray(points, dtype=float)
    y = np.asarray(y)
    lo, hi = np.nanpercentile(points, [0.5, 99.5]) if points.size else (0.0, 1.0)
    edges = np.linspace(np.floor(lo), np.ceil(hi) + 1e-9, bins + 1)
    fig = go.Figure()
    for value, label, color in ((0, "Non-defaulters", NON_DEFAULTER_COLOR), (1, "Defaulters", DEFAULTER_COLOR)):
        sel = points[y == value]
        fig.add_trace(
            go.Histogram(
                x=sel,
                name=f"{label} ({len(sel):,})",
                histnorm="percent",
                xbins=dict(start=edges[0], end=edges[-1], size=edges[1] - edges[0]),
                marker_color=color,
                opacity=0.6,
                hovertemplate="%{x} pts<br>%{y:.1f}% of group<extra></extra>",
            )
        )
    fig.update_layout(barmode="overlay")
    if cutoff is not None:
        fig.add_vline(x=cutoff, line=dict(color="#24292f", dash="dash"), annotation_text="cut-off")
    return _layout(fig, title="Score distribution on the holdout", x="Scorecard points (higher = safer)", y="Share of group (%)")


def applicant_points_figure(points: np.ndarray, *, cutoff: float, bins: int = 40) -> go.Figure:
    """Histogram of scored applicants' points, coloured by approve/decline at ``cutoff``."""
    points = np.asarray(points, dtype=float)
    lo, hi = (float(np.nanmin(points)), float(np.nanmax(points))) if points.size else (cutoff - 1, cutoff + 1)
    # Shared bins aligned on the cut-off, so no bar straddles it.
    width = max((hi - lo) / bins, 1.0)
    start = cutoff - width * np.ceil((cutoff - lo) / width)
    xbins = dict(start=start, end=hi + width, size=width)
    fig = go.Figure()
    for label, sel, color in (
        ("Approve", points >= cutoff, NON_DEFAULTER_COLOR),
        ("Decline", points < cutoff, DEFAULTER_COLOR),
    ):
        fig.add_trace(
            go.Histogram(
                x=points[sel], name=f"{label} ({int(sel.sum()):,})", marker_color=color, opacity=0.8, xbins=xbins,
                hovertemplate="%{x} pts<br>%{y} applicants<extra></extra>",
            )
        )
    fig.update_layout(barmode="overlay")
    fig.add_vline(
        x=cutoff, line=dict(color="#24292f", dash="dash"), annotation_text=f"cut-off {cutoff:.0f} pts",
        annotation_position="top right",
    )
    return _layout(fig, title=None, x="Scorecard points", y="Applicants", height=360)


def overlap_figure(bank_rows: int, fintech_rows: Mapping[str, int], pairwise: Mapping[str, int], intersection: int) -> go.Figure:
    """Horizontal bars: each party's customers, and how many are shared."""
    labels = ["Bank"] + [fmt.party(n) for n in fintech_rows]
    totals = [bank_rows] + list(fintech_rows.values())
    shared = [intersection] + [pairwise.get(n, 0) for n in fintech_rows]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(y=labels, x=totals, orientation="h", name="Customers in table", marker_color="#d0d7de",
               hovertemplate="%{y}: %{x:,} customers<extra></extra>")
    )
    fig.add_trace(
        go.Bar(y=labels, x=shared, orientation="h", name="Shared with the other side", marker_color=MODEL_COLORS["federated"],
               hovertemplate="%{y}: %{x:,} shared<extra></extra>")
    )
    fig.update_layout(barmode="overlay")
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(tickformat=",")
    return _layout(fig, title=None, x="Customers", y="", height=190 + 50 * len(labels))
