"""The end-to-end job behind ``riskfed run`` and ``riskfed pilot``.

validate every table → align (PSI) → encrypted training → bank-only baseline and
centralised reference on the *same* split → holdout metrics (AUC, KS, Gini, Brier) →
``report.json`` and the per-party model parts, written all-or-nothing into ``--out``.

The report holds counts, timings, traffic and metrics — never ids, feature values or
key material (only the public key's fingerprint).
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from riskfed import __version__
from riskfed.data.io import atomic_output_dir, write_json
from riskfed.data.schema import PartyTable, validate_table
from riskfed.errors import ConfigurationError
from riskfed.evaluation import evaluate
from riskfed.models.baselines import fit_predict_bank_only, fit_predict_centralized
from riskfed.models.estimator import VerticalLogisticRegression
from riskfed.protocol.messages import BANK, fintech_name
from riskfed.session.progress import ProgressCallback

MODEL_NAMES = {"federated": "Federated (bank + fintech)", "bank_only": "Bank only", "centralized": "Centralised reference"}


@dataclass
class PipelineResult:
    """The report, a metrics table and the fitted estimator."""

    report: dict
    metrics: pd.DataFrame
    estimator: VerticalLogisticRegression
    out_dir: Path | None
    holdout: pd.DataFrame


def validate_inputs(
    bank: pd.DataFrame | PartyTable,
    fintechs: Sequence[pd.DataFrame | PartyTable],
    *,
    id_column: str,
    label_column: str,
    fintech_id_columns: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
    sources: dict | None = None,
) -> tuple[PartyTable, list[PartyTable]]:
    """Validate the bank's and every fintech's table before any protocol step."""
    sources = sources or {}
    bank_table = (
        bank
        if isinstance(bank, PartyTable)
        else validate_table(
            bank, party=BANK, id_column=id_column, label_column=label_column, categorical=categorical, source=sources.get(BANK)
        )
    )
    cols = list(fintech_id_columns) if fintech_id_columns else [id_column] * len(fintechs)
    if len(cols) != len(fintechs):
        raise ConfigurationError(f"Got {len(cols)} fintech id columns for {len(fintechs)} fintech tables.")
    tables = []
    for k, (df, col) in enumerate(zip(fintechs, cols)):
        name = fintech_name(k + 1)
        tables.append(
            df if isinstance(df, PartyTable) else validate_table(df, party=name, id_column=col, source=sources.get(name))
        )
    return bank_table, tables


def run_pipeline(
    bank: pd.DataFrame | PartyTable,
    fintechs: Sequence[pd.DataFrame | PartyTable],
    *,
    id_column: str,
    label_column: str,
    fintech_id_columns: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
    out_dir: str | Path | None = None,
    centralized: bool = True,
    estimator: VerticalLogisticRegression | None = None,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
    sources: dict | None = None,
    extra_report: dict | None = None,
    transport=None,
    checkpoint: Callable[[dict], None] | None = None,
    resume: dict | None = None,
) -> PipelineResult:
    """Run the federated job and its baselines; optionally write ``out_dir``.

    Parameters
    ----------
    bank, fintechs:
        The parties' tables.
    id_column, label_column:
        Id and default-flag columns (``fintech_id_columns`` when fintech ids differ).
    out_dir:
        Where to write ``report.json`` and ``model/`` (all-or-nothing).
    centralized:
        Also fit the centralised reference on the joined data (pilots/tests only).
    estimator:
        A configured :class:`VerticalLogisticRegression` (default settings otherwise).
    transport:
        A network transport connected to fintech and coordinator services: then
        ``fintechs`` holds the fintechs' *names*, only the bank's table is here, the
        bank's model part alone is written, and the centralised reference is not
        available (no one holds the joined data).
    checkpoint, resume:
        With ``transport``: per-epoch checkpoint callback and a bank checkpoint to
        resume from (see :func:`riskfed.session.training.run_training_session`).

    Returns
    -------
    PipelineResult
    """
    t0 = time.perf_counter()
    remote = transport is not None
    bank_table, fintech_tables = validate_inputs(
        bank,
        [] if remote else fintechs,
        id_column=id_column,
        label_column=label_column,
        fintech_id_columns=None if remote else fintech_id_columns,
        categorical=categorical,
        sources=sources,
    )
    est = estimator if estimator is not None else VerticalLogisticRegression()
    if remote:
        centralized = False
        est.fit_remote(
            bank_table, list(fintechs), transport, progress=progress, cancel=cancel, checkpoint=checkpoint, resume=resume
        )
    else:
        est.fit(bank_table, fintech_tables, progress=progress, cancel=cancel)
    outcome = est.outcome_
    aligned = outcome.aligned
    y_hold = outcome.holdout_labels
    bank_train = aligned.bank_rows[outcome.train_rows]
    bank_hold = aligned.bank_rows[outcome.holdout_rows]

    t_base = time.perf_counter()
    predictions = {"federated": outcome.holdout_scores}
    predictions["bank_only"] = fit_predict_bank_only(bank_table, bank_train, bank_hold)
    if centralized:
        partners = {name: (est.fintech_tables_[name], est.fintech_aligned_rows_[name]) for name in est.fintech_tables_}
        predictions["centralized"] = fit_predict_centralized(
            bank_table, aligned.bank_rows, partners, outcome.train_rows, outcome.holdout_rows
        )
    baseline_seconds = time.perf_counter() - t_base
    metrics = {name: evaluate(y_hold, p) for name, p in predictions.items()}
    table = pd.DataFrame(metrics).T[["auc", "ks", "gini", "brier", "n", "default_rate"]]

    counts = aligned.counts()
    traffic = outcome.traffic
    fed_auc = metrics["federated"]["auc"]
    comparison = {"auc_lift_over_bank_only": fed_auc - metrics["bank_only"]["auc"]}
    if "centralized" in metrics:
        comparison["auc_gap_to_centralized"] = metrics["centralized"]["auc"] - fed_auc
    report = {
        "riskfed_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "data": {
            "bank": bank_table.summary(),
            "fintechs": [t.summary() for t in fintech_tables]
            if not remote
            # Over the network the bank knows only each fintech's row count.
            else [{"party": n, "rows": r, "remote": True} for n, r in zip(counts["fintechs"], counts["fintech_rows"])],
        },
        "alignment": {
            "method": aligned.method,
            "id_normalization": est.model_.normalization.describe(),
            "bank_rows": counts["bank_rows"],
            "fintech_rows": counts["fintech_rows"],
            "intersection": counts["intersection"],
            "match_rate": counts["match_rate"],
            "seconds": round(outcome.timings.get("alignment", 0.0) + outcome.timings.get("key_setup", 0.0), 3),
        },
        "training": {
            "key_bits": outcome.key_bits,
            "key_fingerprint": outcome.key_fingerprint,
            "epochs": outcome.epochs,
            "batch_size": outcome.hyperparameters["batch_size"],
            # As each party declared them: they fix its decryptions per round.
            "features": dict(outcome.party_features),
            "train_rows": int(len(outcome.train_rows)),
            "holdout_rows": int(len(outcome.holdout_rows)),
            "seconds": round(outcome.timings["training"], 3),
            "stop_reason": outcome.stop_reason,
            "bytes_sent": traffic.get("bytes_sent", {}),
            "bytes_received": traffic.get("bytes_received", {}),
            "messages": traffic.get("messages", []),
            "history": outcome.history,
            "batch_losses": outcome.batch_losses,
            "hyperparameters": outcome.hyperparameters,
        },
        "metrics": metrics,
        "comparison": comparison,
        "timings": {
            "key_setup": round(outcome.timings.get("key_setup", 0.0), 3),
            "alignment": round(outcome.timings.get("alignment", 0.0), 3),
            "training": round(outcome.timings["training"], 3),
            "evaluation": round(outcome.timings.get("evaluation", 0.0), 3),
            "baselines": round(baseline_seconds, 3),
            "total": round(time.perf_counter() - t0, 3),
        },
        "notes": {
            "centralized": "Pilot-only reference: a model on the joined data, which a real deployment never builds."
            if centralized
            else "Not available: the parties ran on separate hosts and no one holds the joined data."
            if remote
            else "Not computed (the parties' data cannot be joined outside a pilot).",
            "keyed_hash": "Keyed-hash alignment lets a key holder test guesses of the other party's ids; use ecdh for guessable ids."
            if aligned.method == "keyed-hash"
            else None,
        },
    }
    if extra_report:
        report.update(extra_report)
    holdout = pd.DataFrame({"y": y_hold} | {name: p for name, p in predictions.items()})
    result = PipelineResult(report=report, metrics=table, estimator=est, out_dir=None, holdout=holdout)
    if out_dir is not None:
        with atomic_output_dir(out_dir) as stage:
            write_outputs(result, stage)
        result.out_dir = Path(out_dir)
    return result


def write_outputs(result: PipelineResult, directory: Path) -> None:
    """Write ``report.json`` and ``model/`` (one sub-directory per party) into ``directory``."""
    result.estimator.save(directory / "model")
    write_json(result.report, directory / "report.json")
