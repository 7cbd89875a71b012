"""Display tables: the numbers of each page, formatted the same way everywhere.

Functions return ``pandas.DataFrame`` objects of display strings (see
:mod:`riskfed.ui.format`), ready for ``st.dataframe`` and for the HTML report.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from riskfed.evaluation import decile_table
from riskfed.ui import format as fmt
from riskfed.ui.figures import model_label

METRIC_ORDER = ("federated", "bank_only", "centralized")


def metrics_table(metrics: Mapping[str, Mapping]) -> pd.DataFrame:
    """Holdout metrics per model: AUC, Gini, KS, Brier, customers, default rate.

    ``metrics`` is the report's ``metrics`` mapping; the centralised reference appears
    only when it was computed.
    """
    rows = []
    for name in [n for n in METRIC_ORDER if n in metrics] + [n for n in metrics if n not in METRIC_ORDER]:
        m = metrics[name]
        rows.append(
            {
                "Model": model_label(name),
                "AUC": fmt.decimal(m["auc"]),
                "Gini": fmt.percent(m["gini"]),
                "KS": fmt.percent(m["ks"]),
                "Brier score": fmt.decimal(m["brier"], 4),
                "Holdout customers": fmt.count(m["n"]),
                "Default rate": fmt.percent(m["default_rate"]),
            }
        )
    return pd.DataFrame(rows, columns=["Model", "AUC", "Gini", "KS", "Brier score", "Holdout customers", "Default rate"])


def decile_display(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """The gains table: default rate and lift per decile of predicted PD, riskiest first."""
    table = decile_table(y, p, n_bins=n_bins)
    return pd.DataFrame(
        {
            "Decile": [f"{b}" + (" (riskiest)" if b == 1 else " (safest)" if b == n_bins else "") for b in table["bin"]],
            "Customers": [fmt.count(v) for v in table["n"]],
            "Defaulters": [fmt.count(v) for v in table["defaults"]],
            "Default rate": [fmt.percent(v) for v in table["default_rate"]],
            "Mean predicted PD": [fmt.probability(v) for v in table["mean_pd"]],
            "Lift": [fmt.lift(v) for v in table["lift"]],
            "Defaulters caught (cumulative)": [fmt.percent(v) for v in table["cum_default_capture"]],
        }
    )


def timings_table(report: Mapping) -> pd.DataFrame:
    """Time per phase of the run."""
    labels = {
        "key_setup": "Key generation",
        "alignment": "Alignment (PSI)",
        "training": "Encrypted training",
        "evaluation": "Holdout scoring",
        "baselines": "Baselines",
        "total": "Total",
    }
    timings = report.get("timings", {})
    rows = [{"Phase": label, "Time": fmt.duration(timings[key])} for key, label in labels.items() if key in timings]
    return pd.DataFrame(rows, columns=["Phase", "Time"])


def history_table(history: list[Mapping]) -> pd.DataFrame:
    """Per-epoch mean loss and how much the model moved."""
    rows = [
        {
            "Epoch": fmt.count(h.get("epoch")),
            "Mean loss": fmt.decimal(h.get("loss"), 4),
            "Model change": fmt.percent(h.get("relative_change"), 2),
            "Converged": "yes" if h.get("converged") else "no",
        }
        for h in history
    ]
    return pd.DataFrame(rows, columns=["Epoch", "Mean loss", "Model change", "Converged"])


def column_summary_display(summary: pd.DataFrame) -> pd.DataFrame:
    """The Data page's column table (from :func:`riskfed.ui.data.column_summary`)."""
    return pd.DataFrame(
        {
            "Column": summary["column"],
            "Role": summary["role"],
            "Type": summary["type"],
            "Missing": [f"{fmt.count(m)} ({fmt.percent(s)})" for m, s in zip(summary["missing"], summary["missing_share"])],
            "Distinct values": [fmt.count(v) for v in summary["distinct"]],
        }
    )


def party_overview_display(overview: pd.DataFrame) -> pd.DataFrame:
    """The Data page's one-row-per-party table (from :func:`riskfed.ui.data.party_overview`)."""
    return pd.DataFrame(
        {
            "Party": overview["party"],
            "Rows": [fmt.count(v) for v in overview["rows"]],
            "Features": [fmt.count(v) for v in overview["features"]],
            "Missing values": [
                f"{fmt.count(m)} ({fmt.percent(s)})" for m, s in zip(overview["missing_values"], overview["missing_share"])
            ],
            "Default rate": [fmt.percent(v) if not pd.isna(v) else "–" for v in overview["default_rate"]],
        }
    )
