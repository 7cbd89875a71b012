"""``report.json``, section by section.

The report holds counts, timings, traffic and metrics — never ids, feature values or
key material (only the public key's fingerprint).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from riskfed import __version__
from riskfed.data.schema import PartyTable
from riskfed.models.estimator import VerticalLogisticRegression

MODEL_NAMES = {"federated": "Federated (bank + fintech)", "bank_only": "Bank only", "centralized": "Centralised reference"}


@dataclass
class JobFacts:
    """What the report is made from."""

    estimator: VerticalLogisticRegression
    bank_table: PartyTable
    fintech_tables: list[PartyTable]
    remote: bool
    centralized: bool
    metrics: dict[str, dict]
    baseline_seconds: float
    total_seconds: float


def data_section(facts: JobFacts) -> dict:
    """Each party's table summary (over the network, only each fintech's row count)."""
    if not facts.remote:
        fintechs = [t.summary() for t in facts.fintech_tables]
    else:
        counts = facts.estimator.outcome_.aligned.counts()
        # Over the network the bank knows only each fintech's row count.
        fintechs = [{"party": n, "rows": r, "remote": True} for n, r in zip(counts["fintechs"], counts["fintech_rows"])]
    return {"bank": facts.bank_table.summary(), "fintechs": fintechs}


def alignment_section(facts: JobFacts) -> dict:
    outcome = facts.estimator.outcome_
    counts = outcome.aligned.counts()
    return {
        "method": outcome.aligned.method,
        "id_normalization": facts.estimator.model_.normalization.describe(),
        "bank_rows": counts["bank_rows"],
        "fintech_rows": counts["fintech_rows"],
        "intersection": counts["intersection"],
        "match_rate": counts["match_rate"],
        "seconds": round(outcome.timings.get("alignment", 0.0) + outcome.timings.get("key_setup", 0.0), 3),
    }


def training_section(facts: JobFacts) -> dict:
    outcome = facts.estimator.outcome_
    traffic = outcome.traffic
    return {
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
    }


def comparison_section(metrics: dict[str, dict]) -> dict:
    """AUC lift over the bank alone and, where fitted, the gap to the centralised model."""
    fed_auc = metrics["federated"]["auc"]
    comparison = {"auc_lift_over_bank_only": fed_auc - metrics["bank_only"]["auc"]}
    if "centralized" in metrics:
        comparison["auc_gap_to_centralized"] = metrics["centralized"]["auc"] - fed_auc
    return comparison


def timings_section(facts: JobFacts) -> dict:
    timings = facts.estimator.outcome_.timings
    return {
        "key_setup": round(timings.get("key_setup", 0.0), 3),
        "alignment": round(timings.get("alignment", 0.0), 3),
        "training": round(timings["training"], 3),
        "evaluation": round(timings.get("evaluation", 0.0), 3),
        "baselines": round(facts.baseline_seconds, 3),
        "total": round(facts.total_seconds, 3),
    }


def notes_section(facts: JobFacts) -> dict:
    if facts.centralized:
        centralized = "Pilot-only reference: a model on the joined data, which a real deployment never builds."
    elif facts.remote:
        centralized = "Not available: the parties ran on separate hosts and no one holds the joined data."
    else:
        centralized = "Not computed (the parties' data cannot be joined outside a pilot)."
    keyed_hash = None
    if facts.estimator.outcome_.aligned.method == "keyed-hash":
        keyed_hash = "Keyed-hash alignment lets a key holder test guesses of the other party's ids; use ecdh for guessable ids."
    return {"centralized": centralized, "keyed_hash": keyed_hash}


def build_report(facts: JobFacts, extra: dict | None = None) -> dict:
    """The whole report: version, date, then one section per step of the job."""
    report = {
        "riskfed_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "data": data_section(facts),
        "alignment": alignment_section(facts),
        "training": training_section(facts),
        "metrics": facts.metrics,
        "comparison": comparison_section(facts.metrics),
        "timings": timings_section(facts),
        "notes": notes_section(facts),
    }
    if extra:
        report.update(extra)
    return report
