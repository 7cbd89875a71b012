"""Synthetic pilot data: one bank, its fintech partner(s) and new applicants.

``riskfed pilot`` needs data that behaves like the real thing without being anyone's
customers. :mod:`riskfed.data.population` draws it from an explicit generative story, so
the ground truth is known and a pilot can show *why* federation pays off; this module
cuts the population into the parties' tables:

* **Who knows whom.** The population is cut into the bank's customers, new applicants
  (not bank customers) and each fintech's own non-bank customers. Every fintech knows
  the same share ``overlap`` of the bank's customers and of the applicants; with
  ``fintechs >= 2`` the partner features are dealt round-robin between them.
* Normalised ids are unique within every table, and every table's rows are in an
  independent random order. All randomness comes from one
  ``numpy.random.default_rng(seed)``, so a seed reproduces the pilot exactly.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from riskfed import settings
from riskfed.data.io import atomic_output_dir
from riskfed.data.population import (
    BANK_FEATURES,
    COEFFICIENTS,
    FINTECH_FEATURES,
    LATENT_CORRELATION,
    MISSING_RATES,
    TARGET_PREVALENCE,
    calibrate_intercept,
    draw_population,
    expit,
    format_ids,
    id_width,
    linear_predictor,
    surface_ids,
    with_missing,
)
from riskfed.errors import ConfigurationError

__all__ = [
    "BANK_FEATURES",
    "FINTECH_FEATURES",
    "PilotData",
    "generate_pilot",
    "write_pilot",
]

# Each pilot fintech gets at least one partner feature (the declared upper bound of ``fintechs``).
assert settings.param("fintechs").constraints[0].right == len(FINTECH_FEATURES)


@dataclass(frozen=True)
class PilotData:
    """A generated pilot: the bank's table, each fintech's table and new applicants.

    Attributes
    ----------
    bank : pandas.DataFrame
        ``customer_id`` (str), ``default`` (int 0/1) and the bank features
        (:data:`BANK_FEATURES`).
    fintechs : tuple of pandas.DataFrame
        One table per fintech: ``customer_id`` (str, in the fintech's own surface form)
        and that fintech's share of :data:`FINTECH_FEATURES`.
    applicants : pandas.DataFrame
        New applicants to score: ``customer_id`` and the bank features, no label.
    applicant_outcomes : pandas.DataFrame
        ``customer_id`` and ``default`` for the applicants, drawn from the same truth.
        For demonstrations only; never give it to a model.
    truth : dict
        The ground-truth model and provenance, JSON-serialisable: ``intercept``,
        ``coefficients`` by term, realised ``prevalence``, ``seed``, ``parameters``,
        per-fintech feature lists and row counts.
    id_column, label_column : str
        Names of the id and label columns.
    """

    bank: pd.DataFrame
    fintechs: tuple[pd.DataFrame, ...]
    applicants: pd.DataFrame
    applicant_outcomes: pd.DataFrame
    truth: dict
    id_column: str = "customer_id"
    label_column: str = "default"


# --------------------------------------------------------------------------- validation


def _is_int(value: object) -> bool:
    # bool is an int subclass, but "customers=True" is a bug, not a request for one.
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _bad_parameter(
    name: str, expected: str, value: object, owner: str = "generate_pilot"
) -> ConfigurationError:
    return ConfigurationError(
        f"The {name!r} parameter of {owner} must be {expected}. Got {value!r} instead."
    )


def _validate(customers, overlap, fintechs, applicants, fintech_only_share, seed) -> None:
    settings.validate({"customers": customers, "overlap": overlap, "fintechs": fintechs}, "generate_pilot")
    if applicants is not None and not (_is_int(applicants) and applicants >= 0):
        raise _bad_parameter("applicants", "an int in the range [0, inf) or None", applicants)
    if not (_is_real(fintech_only_share) and fintech_only_share >= 0.0):
        raise _bad_parameter("fintech_only_share", "a float in the range [0.0, inf)", fintech_only_share)
    if not (_is_int(seed) and seed >= 0):
        raise _bad_parameter("seed", "an int in the range [0, inf)", seed)


# ------------------------------------------------------------------------------ tables


def _take(
    features: Mapping[str, np.ndarray], columns: Sequence[str], rows: np.ndarray
) -> dict[str, np.ndarray]:
    return {c: features[c][rows] for c in columns}


def _frame(
    ids: np.ndarray,
    columns: Mapping[str, np.ndarray],
    order: np.ndarray,
    label: np.ndarray | None = None,
) -> pd.DataFrame:
    # Unicode and object arrays become pandas' default string dtype ("str" from pandas 3,
    # object before), with NaN for missing categories.
    data: dict[str, np.ndarray] = {"customer_id": ids[order]}
    if label is not None:
        data["default"] = label[order].astype(np.int64)
    data.update((name, values[order]) for name, values in columns.items())
    return pd.DataFrame(data)


def generate_pilot(
    customers: int = settings.default("customers"),
    *,
    overlap: float = settings.default("overlap"),
    fintechs: int = settings.default("fintechs"),
    applicants: int | None = None,
    fintech_only_share: float = 0.3,
    seed: int = 0,
) -> PilotData:
    """Generate a synthetic bank, its fintech partner(s) and new applicants.

    See the module docstring for the generative story.

    Parameters
    ----------
    customers : int, default 20000
        Number of bank customers (rows of ``bank``); at least 100.
    overlap : float, default 0.7
        Share of the bank's customers (and of the applicants) that the fintech(s) know,
        in (0, 1]. Every fintech knows the same people.
    fintechs : int, default 1
        Number of fintech partners, from 1 to ``len(FINTECH_FEATURES)``. With two or more,
        the partner features are dealt round-robin so each fintech holds a disjoint,
        non-empty subset.
    applicants : int or None, default None
        Number of new applicants (not bank customers) to score; ``None`` means
        ``max(200, customers // 10)``.
    fintech_only_share : float, default 0.3
        Each fintech's own non-bank customers, as a multiple of the number of bank
        customers it knows; at least 0.
    seed : int, default 0
        Seed of the single ``numpy.random.default_rng`` behind every draw.

    Returns
    -------
    PilotData
        The bank table (with labels), one table per fintech, the applicants, their
        outcomes and the ground truth.

    Raises
    ------
    ConfigurationError
        If a parameter is outside its documented range.

    Examples
    --------
    >>> pilot = generate_pilot(2_000, overlap=0.7, seed=1)
    >>> pilot.bank.shape[0], len(pilot.fintechs)
    (2000, 1)
    >>> 0.05 <= pilot.truth["prevalence"] <= 0.15
    True
    """
    _validate(customers, overlap, fintechs, applicants, fintech_only_share, seed)
    customers, fintechs, seed = int(customers), int(fintechs), int(seed)
    overlap, fintech_only_share = float(overlap), float(fintech_only_share)
    n_applicants = max(200, customers // 10) if applicants is None else int(applicants)
    n_known = int(round(overlap * customers))
    plan = _Blocks(customers, n_applicants, n_known, int(round(overlap * n_applicants)), int(round(fintech_only_share * n_known)), fintechs)

    rng = np.random.default_rng(seed)
    features = draw_population(rng, plan.population)
    eta = linear_predictor(features)
    intercept = calibrate_intercept(eta[plan.bank_rows], TARGET_PREVALENCE)
    default = (rng.random(plan.population) < expit(eta + intercept)).astype(np.int64)
    width = id_width(plan.population)
    id_numbers = rng.choice(10**width, size=plan.population, replace=False)

    bank, applicants_df, outcomes = _bank_tables(rng, plan, features, default, format_ids(id_numbers, width, "C{all}"))
    partner_columns = [list(FINTECH_FEATURES[k::fintechs]) for k in range(fintechs)]
    fintech_tables = _fintech_tables(rng, plan, features, partner_columns, id_numbers, width)
    truth = _truth(plan, intercept, default, partner_columns, fintech_tables, seed=seed, overlap=overlap, own_share=fintech_only_share)
    return PilotData(
        bank=bank,
        fintechs=tuple(fintech_tables),
        applicants=applicants_df,
        applicant_outcomes=outcomes,
        truth=truth,
    )


@dataclass(frozen=True)
class _Blocks:
    """The population's blocks: [bank | applicants | fintech 1 own | ... | fintech K own]."""

    customers: int
    applicants: int
    known: int  # bank customers every fintech knows
    known_applicants: int  # applicants every fintech knows
    own: int  # each fintech's own non-bank customers
    fintechs: int

    @property
    def population(self) -> int:
        return self.customers + self.applicants + self.fintechs * self.own

    @property
    def bank_rows(self) -> np.ndarray:
        return np.arange(self.customers)

    @property
    def applicant_rows(self) -> np.ndarray:
        return np.arange(self.customers, self.customers + self.applicants)

    def own_rows(self, k: int) -> np.ndarray:
        start = self.customers + self.applicants + k * self.own
        return np.arange(start, start + self.own)


def _bank_tables(rng, plan: _Blocks, features, default, canonical_ids) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The bank's customers (with labels), the new applicants and their outcomes."""
    bank_cols = list(BANK_FEATURES)
    bank_rows, applicant_rows = plan.bank_rows, plan.applicant_rows
    bank = _frame(
        canonical_ids[bank_rows],
        with_missing(rng, _take(features, bank_cols, bank_rows)),
        rng.permutation(plan.customers),
        label=default[bank_rows],
    )
    applicant_order = rng.permutation(plan.applicants)
    applicants_df = _frame(
        canonical_ids[applicant_rows],
        with_missing(rng, _take(features, bank_cols, applicant_rows)),
        applicant_order,
    )
    # Same order as the applicants table so the two line up by eye as well as by id.
    outcomes = _frame(canonical_ids[applicant_rows], {}, applicant_order, label=default[applicant_rows])
    return bank, applicants_df, outcomes


def _fintech_tables(rng, plan: _Blocks, features, partner_columns, id_numbers, width: int) -> list[pd.DataFrame]:
    """Each fintech's table: the same known people for every fintech, plus its own."""
    known = np.concatenate(
        [
            np.sort(rng.choice(plan.bank_rows, size=plan.known, replace=False)),
            np.sort(rng.choice(plan.applicant_rows, size=plan.known_applicants, replace=False)),
        ]
    )
    tables = []
    for k, cols in enumerate(partner_columns):
        rows = np.concatenate([known, plan.own_rows(k)])
        ids = surface_ids(rng, id_numbers[rows], width)
        tables.append(_frame(ids, with_missing(rng, _take(features, cols, rows)), rng.permutation(len(rows))))
    return tables


def _truth(plan: _Blocks, intercept, default, partner_columns, fintech_tables, *, seed: int, overlap: float, own_share: float) -> dict:
    """The ground truth and the counts, as written to ``truth.json``."""
    return {
        "model": "logistic: P(default) = 1 / (1 + exp(-(intercept + sum(coefficient * term))))",
        "intercept": float(intercept),
        "coefficients": dict(COEFFICIENTS),
        "baselines": {"home_ownership": "OWN", "region": "North"},
        "target_prevalence": TARGET_PREVALENCE,
        "prevalence": float(default[plan.bank_rows].mean()),
        "applicant_prevalence": float(default[plan.applicant_rows].mean()) if plan.applicants else None,
        "latent_correlation": LATENT_CORRELATION,
        "missing_rates": dict(MISSING_RATES),
        "bank_features": list(BANK_FEATURES),
        "fintech_features": partner_columns,
        "counts": {
            "bank": plan.customers,
            "bank_known_to_fintechs": plan.known,
            "applicants": plan.applicants,
            "applicants_known_to_fintechs": plan.known_applicants,
            "fintech_own_customers": plan.own,
            "fintech_rows": [len(t) for t in fintech_tables],
        },
        "seed": seed,
        "parameters": {
            "customers": plan.customers,
            "overlap": overlap,
            "fintechs": plan.fintechs,
            "applicants": plan.applicants,
            "fintech_only_share": own_share,
            "seed": seed,
        },
    }


# ----------------------------------------------------------------------------- writing

_WRITERS: dict[str, Callable[[pd.DataFrame, Path], None]] = {
    "parquet": lambda df, path: df.to_parquet(path, index=False),
    "csv": lambda df, path: df.to_csv(path, index=False),
}


def write_pilot(
    data: PilotData,
    out_dir: str | Path,
    *,
    formats: Sequence[str] = ("parquet", "csv"),
) -> dict[str, list[Path]]:
    """Write a pilot to ``out_dir``, all or nothing.

    Writes ``bank.<fmt>``, ``fintech.<fmt>`` (one fintech) or ``fintech_1.<fmt>`` ...
    ``fintech_K.<fmt>`` (several), ``applicants.<fmt>``, ``applicant_outcomes.<fmt>``
    for every format, and ``truth.json``.

    Written through :func:`riskfed.data.io.atomic_output_dir`: if anything fails, no
    half-written pilot is left behind. Files of an earlier pilot with the same names
    are replaced; other files are left alone.

    Parameters
    ----------
    data : PilotData
        The pilot to write, from :func:`generate_pilot`.
    out_dir : str or pathlib.Path
        Target directory; created (with parents) if missing.
    formats : sequence of {"parquet", "csv"}, default ("parquet", "csv")
        Table formats to write; at least one.

    Returns
    -------
    dict of str to list of pathlib.Path
        Final paths by kind: ``"bank"``, ``"fintech"``, ``"applicants"``,
        ``"applicant_outcomes"`` and ``"truth"``.

    Raises
    ------
    ConfigurationError
        If ``formats`` is empty or names an unknown format.
    """
    formats = [formats] if isinstance(formats, str) else list(formats)
    if not formats or any(f not in _WRITERS for f in formats) or len(set(formats)) != len(formats):
        raise _bad_parameter(
            "formats",
            f"a non-empty sequence of distinct values from {sorted(_WRITERS)}",
            formats,
            "write_pilot",
        )
    out_dir = Path(out_dir)
    fintech_names = (
        ["fintech"] if len(data.fintechs) == 1 else [f"fintech_{k + 1}" for k in range(len(data.fintechs))]
    )
    tables: list[tuple[str, str, pd.DataFrame]] = [("bank", "bank", data.bank)]
    tables += [("fintech", name, df) for name, df in zip(fintech_names, data.fintechs)]
    tables += [("applicants", "applicants", data.applicants)]
    tables += [("applicant_outcomes", "applicant_outcomes", data.applicant_outcomes)]

    written: dict[str, list[str]] = {}
    with atomic_output_dir(out_dir) as staging:
        for fmt in formats:
            for kind, name, df in tables:
                filename = f"{name}.{fmt}"
                _WRITERS[fmt](df, staging / filename)
                written.setdefault(kind, []).append(filename)
        (staging / "truth.json").write_text(json.dumps(data.truth, indent=2) + "\n")
        written["truth"] = ["truth.json"]
    return {kind: [out_dir / f for f in files] for kind, files in written.items()}
