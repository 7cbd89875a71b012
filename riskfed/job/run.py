"""The end-to-end job behind ``riskfed run`` and ``riskfed pilot``.

validate every table → align (PSI) → encrypted training → bank-only baseline and
centralised reference on the *same* split → holdout metrics (AUC, KS, Gini, Brier) →
``report.json`` (:mod:`riskfed.job.report`) and the per-party model parts, written
all-or-nothing into ``--out``. Each arrow is one function below, in that order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from riskfed.data.io import atomic_output_dir, write_json
from riskfed.data.schema import PartyTable, validate_table
from riskfed.errors import ConfigurationError
from riskfed.evaluation import evaluate
from riskfed.job.report import JobFacts, build_report
from riskfed.models.baselines import fit_predict_bank_only, fit_predict_centralized
from riskfed.models.estimator import VerticalLogisticRegression
from riskfed.protocol.messages import BANK, fintech_name
from riskfed.session.progress import ProgressCallback


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
    t_base = time.perf_counter()
    predictions = holdout_predictions(est, bank_table, centralized=centralized)
    baseline_seconds = time.perf_counter() - t_base
    metrics = {name: evaluate(est.outcome_.holdout_labels, p) for name, p in predictions.items()}
    facts = JobFacts(
        est, bank_table, fintech_tables, remote, centralized, metrics, baseline_seconds, time.perf_counter() - t0
    )
    result = PipelineResult(
        report=build_report(facts, extra_report),
        metrics=pd.DataFrame(metrics).T[["auc", "ks", "gini", "brier", "n", "default_rate"]],
        estimator=est,
        out_dir=None,
        holdout=pd.DataFrame({"y": est.outcome_.holdout_labels} | predictions),
    )
    if out_dir is not None:
        with atomic_output_dir(out_dir) as stage:
            write_outputs(result, stage)
        result.out_dir = Path(out_dir)
    return result


def holdout_predictions(est: VerticalLogisticRegression, bank_table: PartyTable, *, centralized: bool) -> dict:
    """Each model's PD on the shared holdout: federated, bank-only and (on request) the
    centralised reference, all trained on the same split."""
    outcome = est.outcome_
    aligned = outcome.aligned
    bank_train = aligned.bank_rows[outcome.train_rows]
    bank_hold = aligned.bank_rows[outcome.holdout_rows]
    predictions = {"federated": outcome.holdout_scores}
    predictions["bank_only"] = fit_predict_bank_only(bank_table, bank_train, bank_hold)
    if centralized:
        partners = {name: (est.fintech_tables_[name], est.fintech_aligned_rows_[name]) for name in est.fintech_tables_}
        predictions["centralized"] = fit_predict_centralized(
            bank_table, aligned.bank_rows, partners, outcome.train_rows, outcome.holdout_rows
        )
    return predictions


def write_outputs(result: PipelineResult, directory: Path) -> None:
    """Write ``report.json`` and ``model/`` (one sub-directory per party) into ``directory``."""
    result.estimator.save(directory / "model")
    write_json(result.report, directory / "report.json")
