"""The run report as downloads: JSON (the same content as ``report.json`` from the CLI)
and a self-contained, readable HTML page for people who do not read JSON.

The report holds counts, timings, traffic and metrics — never ids, feature values or
key material (only the public key's fingerprint) — so it is safe to share.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from riskfed.ui import format as fmt
from riskfed.ui.privacy import traffic_by_party, traffic_detail
from riskfed.ui.tables import history_table, metrics_table, timings_table


def _json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def report_json(report: Mapping) -> str:
    """The report as indented JSON text."""
    return json.dumps(report, indent=2, default=_json_default)


_CSS = """
body { font-family: Inter, "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2328; max-width: 960px;
       margin: 2rem auto; padding: 0 1rem; line-height: 1.45; }
h1 { font-size: 1.7rem; margin-bottom: .2rem; } h2 { font-size: 1.2rem; margin-top: 2rem;
     border-bottom: 1px solid #d0d7de; padding-bottom: .3rem; }
.sub { color: #59636e; margin-top: 0; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; font-size: .92rem; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #eaeef2; }
th { background: #f6f8fa; font-weight: 600; }
.kpis { display: flex; gap: 1rem; flex-wrap: wrap; } .kpi { border: 1px solid #d0d7de; border-radius: 8px;
        padding: .6rem 1rem; min-width: 150px; } .kpi b { display: block; font-size: 1.4rem; }
.note { color: #59636e; font-size: .9rem; }
"""


def _table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in frame.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _kv(pairs: list[tuple[str, str]]) -> str:
    return _table(pd.DataFrame(pairs, columns=["", "Value"]))


def _kpis(metrics: Mapping, comparison: Mapping, alignment: Mapping) -> str:
    kpis = []
    if "federated" in metrics:
        kpis.append(("Federated AUC", fmt.decimal(metrics["federated"]["auc"])))
    if "bank_only" in metrics:
        kpis.append(("Bank-only AUC", fmt.decimal(metrics["bank_only"]["auc"])))
    if "auc_lift_over_bank_only" in comparison:
        kpis.append(("AUC lift from fintech data", fmt.signed(comparison["auc_lift_over_bank_only"])))
    kpis.append(("Shared customers", fmt.count(alignment.get("intersection"))))
    return "".join(f'<div class="kpi">{html.escape(k)}<b>{html.escape(v)}</b></div>' for k, v in kpis)


def _alignment_pairs(alignment: Mapping) -> list[tuple[str, str]]:
    fintech_rows = alignment.get("fintech_rows", [])
    return [
        ("Method", "ECDH private set intersection" if alignment.get("method") == "ecdh" else "Keyed hash (HMAC-SHA256)"),
        ("Id clean-up", str(alignment.get("id_normalization", "–"))),
        ("Bank customers", fmt.count(alignment.get("bank_rows"))),
        *[(f"Fintech {k + 1} customers", fmt.count(v)) for k, v in enumerate(fintech_rows)],
        ("Shared customers", fmt.count(alignment.get("intersection"))),
        ("Match rate (of bank customers)", fmt.percent(alignment.get("match_rate"))),
        ("Time", fmt.duration(alignment.get("seconds"))),
    ]


def _training_pairs(training: Mapping) -> list[tuple[str, str]]:
    hyper = training.get("hyperparameters", {})
    return [
        ("Paillier key size", f"{training.get('key_bits', '–')} bits"),
        ("Public key fingerprint", fmt.key_fingerprint(training.get("key_fingerprint"))),
        ("Epochs run", fmt.count(training.get("epochs"))),
        ("Batch size", fmt.count(training.get("batch_size"))),
        ("Learning rate", str(hyper.get("learning_rate", "–"))),
        ("L2 regularisation", str(hyper.get("l2", "–"))),
        ("Training / holdout customers", f"{fmt.count(training.get('train_rows'))} / {fmt.count(training.get('holdout_rows'))}"),
        ("Training time", fmt.duration(training.get("seconds"))),
        ("Stopped because", str(training.get("stop_reason", "–"))),
    ]


def _comparison_lines(comparison: Mapping) -> str:
    esc = html.escape
    lines = []
    if "auc_lift_over_bank_only" in comparison:
        lines.append(
            f"The fintech's data adds <b>{esc(fmt.signed(comparison['auc_lift_over_bank_only']))}</b> AUC over what the bank can do alone."
        )
    if "auc_gap_to_centralized" in comparison:
        lines.append(
            f"The federated model is {esc(fmt.decimal(abs(comparison['auc_gap_to_centralized'])))} AUC "
            f"{'below' if comparison['auc_gap_to_centralized'] >= 0 else 'above'} the centralised reference "
            "(a pilot-only yardstick: a model on joined data, which a real deployment never builds)."
        )
    return "".join(f"<p>{line}</p>" for line in lines)


def _title(report: Mapping) -> str:
    esc = html.escape
    app = report.get("app", {})
    return (
        f"<h1>riskfed run report</h1><p class='sub'>{esc(str(app.get('data', '')))}"
        f"{' · ' if app.get('data') else ''}created {esc(str(report.get('created', '')))}"
        f" · riskfed {esc(str(report.get('riskfed_version', '')))}</p>"
    )


def report_html(report: Mapping) -> str:
    """A self-contained HTML page (no scripts, no external files) summarising the run."""
    alignment = report.get("alignment", {})
    training = report.get("training", {})
    metrics = report.get("metrics", {})
    comparison = report.get("comparison", {})
    note_items = "".join(f"<li>{html.escape(str(v))}</li>" for v in report.get("notes", {}).values() if v)
    sections = [
        _title(report),
        f"<div class='kpis'>{_kpis(metrics, comparison, alignment)}</div>",
        "<h2>Holdout performance</h2>",
        _table(metrics_table(metrics)),
        _comparison_lines(comparison),
        "<h2>Alignment</h2>",
        _kv(_alignment_pairs(alignment)),
        "<h2>Encrypted training</h2>",
        _kv(_training_pairs(training)),
        _table(history_table(training.get("history", []))) if training.get("history") else "",
        "<h2>Time per phase</h2>",
        _table(timings_table(report)),
        "<h2>Traffic per party</h2>",
        _table(traffic_by_party(training)),
        "<h2>Messages exchanged</h2>",
        _table(traffic_detail(training.get("messages", []))),
        f"<h2>Notes</h2><ul>{note_items}</ul>" if note_items else "",
        (
            "<p class='note'>This report holds counts, timings, traffic and metrics only: no customer ids, "
            "no feature values and no key material beyond the public key's fingerprint.</p>"
        ),
    ]
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<title>riskfed run report</title>"
        f"<style>{_CSS}</style></head><body>{''.join(sections)}</body></html>"
    )
