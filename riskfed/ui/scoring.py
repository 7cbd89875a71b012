"""The Score page: the one-applicant form, decisions at a cut-off, readable factors.

Scoring itself is :func:`riskfed.scoring.score.score_applicants`; this module only
builds its input from the form and presents its output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskfed.data.preprocess import MISSING_LEVEL
from riskfed.data.schema import PartyTable
from riskfed.models.artifact import FederatedModel
from riskfed.scoring.score import FALLBACK, FEDERATED, score_applicants
from riskfed.scoring.scorecard import Scorecard
from riskfed.ui import format as fmt

APPROVE, DECLINE = "Approve", "Decline"
MISSING_CHOICE = "(missing)"
MODEL_DESCRIPTIONS = {
    FEDERATED: "Federated model (bank + fintech data)",
    FALLBACK: "Bank-only fallback (a fintech does not know this customer)",
}
# Default cut-off: the points of a 10% probability of default on the model's scale.
DEFAULT_CUTOFF_PD = 0.10


@dataclass(frozen=True)
class FieldSpec:
    """One input of the applicant form.

    ``kind`` is ``"number"`` (``step`` 1 for whole-number columns) or ``"choice"``.
    """

    name: str
    label: str
    kind: str
    default: float | str
    options: tuple[str, ...] = ()
    step: float = 1.0
    integer: bool = False


def applicant_fields(model: FederatedModel, bank_frame: pd.DataFrame | None = None) -> list[FieldSpec]:
    """The bank fields the model uses, with training medians / first levels as defaults.

    Parameters
    ----------
    model:
        The trained model (its bank part lists the numeric and categorical inputs).
    bank_frame:
        The bank's raw table, to tell whole-number columns (age, counts) from decimals.
    """
    pre = model.bank["preprocessing"]
    fields = []
    for col in pre["numeric"]:
        integer = False
        if bank_frame is not None and col in bank_frame.columns:
            values = pd.to_numeric(bank_frame[col], errors="coerce").dropna()
            integer = bool(len(values)) and bool(np.all(np.mod(values.to_numpy(dtype=float), 1) == 0))
        median = float(pre["medians"].get(col, 0.0))
        fields.append(
            FieldSpec(
                name=col,
                label=fmt.column_label(col),
                kind="number",
                default=float(round(median)) if integer else median,
                step=1.0 if integer else _step_for(median),
                integer=integer,
            )
        )
    for col in pre["categorical"]:
        levels = tuple(lvl for lvl in pre["levels"].get(col, []) if lvl != MISSING_LEVEL)
        default = levels[0] if levels else MISSING_CHOICE
        if bank_frame is not None and col in bank_frame.columns and bank_frame[col].notna().any():
            default = str(bank_frame[col].dropna().astype(str).mode().iloc[0])
        fields.append(
            FieldSpec(name=col, label=fmt.column_label(col), kind="choice", default=default, options=levels + (MISSING_CHOICE,))
        )
    return fields


def _step_for(value: float) -> float:
    """A sensible increment for a decimal input (0.01 for ratios, 100 for incomes…)."""
    magnitude = abs(value)
    if magnitude < 1.5:
        return 0.01
    if magnitude < 100:
        return 1.0
    return float(10 ** max(0, int(np.floor(np.log10(magnitude))) - 1))


def prefill(fields: Sequence[FieldSpec], row: Mapping | None) -> dict[str, float | str]:
    """Form values from an existing applicant row (missing → the field's default)."""
    values: dict[str, float | str] = {}
    for f in fields:
        value = None if row is None else row.get(f.name)
        if value is None or (isinstance(value, float) and np.isnan(value)) or (value is pd.NA):
            values[f.name] = f.default
        elif f.kind == "number":
            values[f.name] = float(value)
        else:
            values[f.name] = str(value) if str(value) in f.options else f.default
    return values


def applicant_frame(id_column: str, customer_id: str, values: Mapping[str, float | str], fields: Sequence[FieldSpec]) -> pd.DataFrame:
    """One applicant as the bank's table row that :func:`score_applicants` expects."""
    row: dict[str, object] = {id_column: str(customer_id).strip()}
    for f in fields:
        value = values.get(f.name, f.default)
        if f.kind == "choice":
            row[f.name] = None if value == MISSING_CHOICE else str(value)
        else:
            row[f.name] = float(value) if value is not None else np.nan
    frame = pd.DataFrame([row])
    for f in fields:
        if f.kind == "choice":
            frame[f.name] = frame[f.name].astype(object)
    return frame


def score(model: FederatedModel, applicants: pd.DataFrame, fintechs: Mapping[str, PartyTable], *, id_column: str) -> pd.DataFrame:
    """Score applicants in this session (each fintech answers from its own table)."""
    return score_applicants(model, applicants, dict(fintechs), id_column=id_column)


def default_cutoff(card: Scorecard) -> float:
    """Points at a 10% probability of default, rounded to 5 points."""
    return float(5 * round(float(card.points(DEFAULT_CUTOFF_PD)) / 5))


def decide(scored: pd.DataFrame, cutoff: float) -> pd.Series:
    """Approve at or above ``cutoff`` points, decline below."""
    return pd.Series(np.where(scored["score_points"].to_numpy() >= cutoff, APPROVE, DECLINE), index=scored.index, name="decision")


def factor_label(reason: str | None) -> str | None:
    """``"bank:debt_to_income"`` → ``"Debt to income (bank)"``; a fintech's whole
    contribution → ``"Fintech 1 data (combined)"`` (the bank never sees its features)."""
    if reason is None or (isinstance(reason, float) and np.isnan(reason)):
        return None
    owner, _, feature = str(reason).partition(":")
    if not feature:
        return fmt.column_label(owner)
    if owner.startswith("fintech") and feature == "data":
        return f"{fmt.party(owner)} data (combined)"
    return f"{fmt.column_label(feature)} ({fmt.party(owner).lower() if owner == 'bank' else fmt.party(owner)})"


def top_factors(row: Mapping, top: int = 3) -> pd.DataFrame:
    """The factors that cost this applicant the most points vs. the average applicant."""
    rows = []
    for k in range(1, top + 1):
        label = factor_label(row.get(f"reason_{k}"))
        if label is None:
            continue
        rows.append({"Factor": label, "Points lost vs. average applicant": f"{float(row.get(f'points_{k}', 0.0)):.1f} pts"})
    return pd.DataFrame(rows, columns=["Factor", "Points lost vs. average applicant"])


def batch_display(scored: pd.DataFrame, cutoff: float, *, id_column: str) -> pd.DataFrame:
    """The scored table with a decision column and readable factor names."""
    out = pd.DataFrame(
        {
            id_column: scored[id_column].astype(str),
            "probability_of_default": scored["probability_of_default"].astype(float),
            "score_points": scored["score_points"].astype(float),
            "decision": decide(scored, cutoff),
            "model": scored["model"].map(lambda m: "federated" if m == FEDERATED else "bank-only fallback"),
        }
    )
    for k in range(1, 4):
        if f"reason_{k}" in scored.columns:
            out[f"factor_{k}"] = scored[f"reason_{k}"].map(lambda r: factor_label(r) or "")
    return out


def batch_summary(scored: pd.DataFrame, cutoff: float) -> dict[str, float]:
    """Counts and rates for the batch: scored, by which model, mean PD, approval rate."""
    n = len(scored)
    approved = int((scored["score_points"] >= cutoff).sum())
    federated = int((scored["model"] == FEDERATED).sum())
    return {
        "applicants": n,
        "federated": federated,
        "fallback": n - federated,
        "mean_pd": float(scored["probability_of_default"].mean()) if n else float("nan"),
        "approved": approved,
        "approval_rate": approved / n if n else float("nan"),
    }


def outcome_check(scored: pd.DataFrame, outcomes: pd.DataFrame | None, cutoff: float, *, id_column: str) -> dict | None:
    """Pilot only: realised default rate of approved vs declined applicants.

    ``outcomes`` are the simulated outcomes a generated pilot ships with; real
    applicants have none, and then this returns ``None``.
    """
    if outcomes is None or id_column not in outcomes.columns or "default" not in outcomes.columns:
        return None
    joined = scored[[id_column, "score_points"]].astype({id_column: str}).merge(
        outcomes[[id_column, "default"]].astype({id_column: str}), on=id_column, how="inner"
    )
    if joined.empty:
        return None
    approved = joined["score_points"] >= cutoff

    def rate(mask: pd.Series) -> float:
        return float(joined.loc[mask, "default"].mean()) if mask.any() else float("nan")

    return {"matched": len(joined), "approved_default_rate": rate(approved), "declined_default_rate": rate(~approved)}
