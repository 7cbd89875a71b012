"""Synthetic pilot data: one bank, its fintech partner(s) and new applicants.

``riskfed pilot`` needs data that behaves like the real thing without being anyone's
customers. This module draws it from an explicit generative story, so the ground truth
is known and a pilot can show *why* federation pays off.

Generative story
----------------
1. **One latent population.** Every person carries two latent traits: *financial
   stress* ``s`` (what a lender sees through income, indebtedness, utilisation and
   arrears) and *behavioural risk* ``b = rho * s + sqrt(1 - rho**2) * e`` (what a
   payments or spending app sees: late bills, lending-app inquiries, erratic spending),
   with ``rho = 0.35``. The bank observes ``s`` only through its own features and the
   fintech observes ``b`` only through its own, so most of ``b`` is invisible to the
   bank.
2. **Features.** Each feature is a noisy, realistically shaped function of the traits
   (log-normal income and spending, bounded ratios for debt-to-income and utilisation,
   Poisson counts for delinquencies, late payments and inquiries, tenures bounded by
   age). Units are in the column names where natural.
3. **Ground truth.** The log-odds of default are linear in the observed features (some
   transformed, e.g. ``log(annual_income)``, and one-hot categories) of *both* sides,
   with monotone, sensible signs. The intercept is calibrated by bisection so that the
   bank's expected default rate is 10 %; labels are Bernoulli draws. A linear logistic
   regression on the joined features is therefore near-optimal, while the bank alone
   misses the behavioural part of the risk.
4. **Who knows whom.** The population is cut into the bank's customers, new applicants
   (not bank customers) and each fintech's own non-bank customers. Every fintech knows
   the same share ``overlap`` of the bank's customers and of the applicants; with
   ``fintechs >= 2`` the partner features are dealt round-robin between them.
5. **Surface forms of ids.** The bank writes ids as ``"C0012345"``; each fintech writes
   a noticeable share of the same people's ids differently (``"c-001-2345"``,
   ``" C0012345 "``, ``"C.001.2345"`` ...), so ids must be normalised (trim, case-fold,
   drop the separators ``" -_./"``) before they match. Normalised ids are unique within
   every table.
6. **Missing values.** A few numeric and categorical columns lose 1-4 % of their values
   completely at random, after the labels were drawn (the truth uses the complete
   values, as the world does).

Every table's rows are in an independent random order. All randomness comes from one
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
from riskfed.errors import ConfigurationError

__all__ = [
    "BANK_FEATURES",
    "FINTECH_FEATURES",
    "PilotData",
    "generate_pilot",
    "write_pilot",
]

BANK_FEATURES: tuple[str, ...] = (
    "age",
    "annual_income",
    "debt_to_income",
    "credit_utilisation",
    "num_delinquencies_2y",
    "months_on_book",
    "home_ownership",
    "region",
)
"""The bank's feature columns, in table order (after ``customer_id`` and ``default``)."""

FINTECH_FEATURES: tuple[str, ...] = (
    "monthly_spend",
    "spend_volatility",
    "late_bill_payments_12m",
    "num_merchants_90d",
    "device_changes_90d",
    "lending_app_inquiries_30d",
    "account_age_months",
)
"""All partner feature columns; with several fintechs they are dealt round-robin."""
# Each pilot fintech gets at least one of them (the declared upper bound of ``fintechs``).
assert settings.param("fintechs").constraints[0].right == len(FINTECH_FEATURES)

HOME_OWNERSHIP = ("RENT", "OWN", "MORTGAGE", "OTHER")
REGIONS = ("North", "South", "East", "West", "Central")
_REGION_SHARES = np.array([0.22, 0.24, 0.18, 0.20, 0.16])

# Correlation between the bank-visible and the fintech-visible latent traits. Low enough
# that the bank cannot reconstruct the behavioural risk from its own features, which is
# what makes the partnership worth a pilot.
_LATENT_CORRELATION = 0.35
_TARGET_PREVALENCE = 0.10

# Ground-truth log-odds per unit of each term (categorical baselines: OWN, North).
# Magnitudes are chosen so that bank-only and joined models land near AUC 0.72 and 0.82.
_COEFFICIENTS: dict[str, float] = {
    "age": -0.008,
    "log(annual_income)": -0.47,
    "debt_to_income": 1.9,
    "credit_utilisation": 1.1,
    "num_delinquencies_2y": 0.30,
    "months_on_book": -0.0025,
    "home_ownership[RENT]": 0.21,
    "home_ownership[MORTGAGE]": -0.085,
    "home_ownership[OTHER]": 0.30,
    "region[South]": 0.085,
    "region[East]": -0.04,
    "region[West]": 0.0,
    "region[Central]": 0.07,
    "log(monthly_spend)": 0.36,
    "spend_volatility": 1.9,
    "late_bill_payments_12m": 0.38,
    "num_merchants_90d": -0.012,
    "device_changes_90d": 0.36,
    "lending_app_inquiries_30d": 0.42,
    "account_age_months": -0.0072,
}

# Shares of values removed completely at random (after the labels are drawn). Columns
# listed here are always float (or str) so their dtype does not depend on the draw.
_MISSING_RATES: dict[str, float] = {
    "annual_income": 0.03,
    "debt_to_income": 0.02,
    "months_on_book": 0.01,
    "home_ownership": 0.01,
    "monthly_spend": 0.02,
    "spend_volatility": 0.04,
    "account_age_months": 0.015,
}

# Surface forms a fintech uses for a bank id "C0012345"; "D" stands for the next digit
# and the digits split 3 + rest where a separator appears. Weights sum to one; the
# canonical form keeps a bit over half of the rows.
_ID_STYLES: tuple[tuple[str, float], ...] = (
    ("C{all}", 0.55),
    ("c{all}", 0.10),
    ("c-{head}-{tail}", 0.15),
    ("C {head} {tail}", 0.05),
    (" C{all} ", 0.05),
    ("C.{head}.{tail}", 0.05),
    ("c_{all}", 0.05),
)
_ID_MIN_DIGITS = 7


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


# ------------------------------------------------------------------------ the population


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _draw_population(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Draw the latent traits and every feature (bank and fintech) for ``n`` people."""
    stress = rng.standard_normal(n)
    behaviour = _LATENT_CORRELATION * stress + math.sqrt(1 - _LATENT_CORRELATION**2) * rng.standard_normal(n)

    def noise() -> np.ndarray:
        return rng.standard_normal(n)

    # Adult ages on (18, 85) with median ~42 and a thin tail past 75; younger people
    # are a little more stretched.
    age_score = -0.25 * stress + math.sqrt(1 - 0.25**2) * noise()
    age = np.rint(18 + 67 * _expit(-0.6 + 1.05 * age_score))
    age_c = age - 42.0

    # Income rises then flattens with age and falls with stress; median ~47k.
    log_income = 10.75 + 0.012 * age_c - 0.0003 * age_c**2 - 0.20 * stress + 0.45 * noise()
    annual_income = np.maximum(np.round(np.exp(log_income), -2), 6_000.0)

    debt_to_income = np.round(1.1 * _expit(-1.25 + 0.45 * stress + 0.55 * noise()), 4)
    # A little over-limit usage (values above 1) is realistic for stressed borrowers.
    credit_utilisation = np.round(1.15 * _expit(-0.9 + 0.75 * stress + 1.0 * noise()), 4)
    num_delinquencies_2y = rng.poisson(np.exp(-1.9 + 0.65 * stress + 0.3 * noise()))

    # Tenure cannot exceed adult life; stressed customers tend to be newer to the bank.
    max_tenure = np.minimum((age - 18) * 12 + 6, 360)
    months_on_book = np.maximum(np.rint(max_tenure * _expit(0.2 - 0.3 * stress + 0.9 * noise())), 1)

    # Home ownership: renters skew young and stressed, mortgages follow income and age.
    scores = np.stack(
        [
            0.45 * stress - 0.03 * age_c,  # RENT
            0.05 * age_c - 0.3,  # OWN
            0.9 * (log_income - 10.75) + 0.01 * age_c + 0.2,  # MORTGAGE
            np.full(n, -2.2),  # OTHER
        ],
        axis=1,
    )
    probs = np.exp(scores - scores.max(axis=1, keepdims=True))
    home_idx = _categorical_draw(rng, probs / probs.sum(axis=1, keepdims=True))
    region_idx = _categorical_draw(rng, np.broadcast_to(_REGION_SHARES, (n, len(REGIONS))))

    # Spending tracks income, plus a behavioural tilt towards over-spending.
    log_spend = np.log(annual_income / 12) - 0.9 + 0.25 * behaviour + 0.35 * noise()
    monthly_spend = np.round(np.exp(log_spend), 2)
    spend_volatility = np.round(np.exp(-1.0 + 0.32 * behaviour + 0.3 * noise()), 4)
    late_bill_payments_12m = rng.poisson(np.exp(-0.8 + 0.75 * behaviour + 0.3 * noise()))
    num_merchants_90d = rng.poisson(np.exp(3.0 + 0.05 * behaviour + 0.4 * noise()))
    device_changes_90d = rng.poisson(np.exp(-1.6 + 0.45 * behaviour + 0.3 * noise()))
    lending_app_inquiries_30d = rng.poisson(np.exp(-1.3 + 0.85 * behaviour + 0.4 * noise()))
    # Fintech accounts are young (at most 10 years) and no older than the adult.
    max_account = np.minimum((age - 18) * 12 + 1, 120)
    account_age_months = np.maximum(np.rint(max_account * _expit(-0.3 - 0.25 * behaviour + 1.0 * noise())), 1)

    return {
        "age": age.astype(np.int64),
        "annual_income": annual_income,
        "debt_to_income": debt_to_income,
        "credit_utilisation": credit_utilisation,
        "num_delinquencies_2y": num_delinquencies_2y.astype(np.int64),
        "months_on_book": months_on_book.astype(np.int64),
        "home_ownership": np.asarray(HOME_OWNERSHIP, dtype=object)[home_idx],
        "region": np.asarray(REGIONS, dtype=object)[region_idx],
        "monthly_spend": monthly_spend,
        "spend_volatility": spend_volatility,
        "late_bill_payments_12m": late_bill_payments_12m.astype(np.int64),
        "num_merchants_90d": num_merchants_90d.astype(np.int64),
        "device_changes_90d": device_changes_90d.astype(np.int64),
        "lending_app_inquiries_30d": lending_app_inquiries_30d.astype(np.int64),
        "account_age_months": account_age_months.astype(np.int64),
    }


def _categorical_draw(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One category index per row of a (n, k) probability matrix, by inverse CDF."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random(probs.shape[0])[:, None]
    # Guard the last bucket against cumulative rounding just below 1.
    return np.minimum((u > cdf).sum(axis=1), probs.shape[1] - 1)


def _linear_predictor(features: Mapping[str, np.ndarray]) -> np.ndarray:
    """The ground-truth log-odds without intercept, from complete feature values."""
    eta = np.zeros(len(features["age"]))
    for term, coef in _COEFFICIENTS.items():
        if term.startswith("log("):
            values = np.log(features[term[4:-1]])
        elif "[" in term:
            column, level = term[:-1].split("[")
            values = features[column] == level
        else:
            values = features[term]
        eta += coef * values
    return eta


def _calibrate_intercept(eta: np.ndarray, target: float) -> float:
    """Intercept b with mean(expit(eta + b)) == target, by bisection (monotone in b)."""
    lo, hi = -30.0, 30.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if _expit(eta + mid).mean() < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


# --------------------------------------------------------------------------------- ids


def _id_width(population: int) -> int:
    # Keep the id space at least ten times the population so the numbers look sparse.
    return max(_ID_MIN_DIGITS, len(str(10 * population)))


def _format_ids(numbers_: np.ndarray, width: int, template: str) -> np.ndarray:
    """Render id numbers through a template such as ``"c-{head}-{tail}"``, vectorised.

    Builds the UTF-32 code points of every string in one integer matrix and views it as
    a fixed-width unicode array, so no Python code runs per row.
    """
    head_len = 3
    spec = template.format(all="D" * width, head="D" * head_len, tail="D" * (width - head_len))
    codes = np.empty((len(numbers_), len(spec)), dtype=np.uint32)
    digit = 0
    for pos, char in enumerate(spec):
        if char == "D":
            codes[:, pos] = 48 + (numbers_ // 10 ** (width - 1 - digit)) % 10
            digit += 1
        else:
            codes[:, pos] = ord(char)
    return codes.view(f"<U{len(spec)}").ravel()


def _surface_ids(rng: np.random.Generator, numbers_: np.ndarray, width: int) -> np.ndarray:
    """A fintech's ids: each row gets one of the surface styles in :data:`_ID_STYLES`."""
    weights = np.array([w for _, w in _ID_STYLES])
    style = _categorical_draw(rng, np.broadcast_to(weights / weights.sum(), (len(numbers_), len(weights))))
    longest = max(len(t.format(all="D" * width, head="DDD", tail="D" * (width - 3))) for t, _ in _ID_STYLES)
    out = np.empty(len(numbers_), dtype=f"<U{longest}")
    for k, (template, _) in enumerate(_ID_STYLES):
        rows = style == k
        out[rows] = _format_ids(numbers_[rows], width, template)
    return out


# ------------------------------------------------------------------------------ tables


def _take(
    features: Mapping[str, np.ndarray], columns: Sequence[str], rows: np.ndarray
) -> dict[str, np.ndarray]:
    return {c: features[c][rows] for c in columns}


def _with_missing(rng: np.random.Generator, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Knock out values completely at random in the columns listed in _MISSING_RATES."""
    out = {}
    for name, values in columns.items():
        rate = _MISSING_RATES.get(name)
        if rate is not None:
            values = values.astype(object if values.dtype == object else np.float64)
            values[rng.random(len(values)) < rate] = np.nan
        out[name] = values
    return out


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

    rng = np.random.default_rng(seed)
    n_known = int(round(overlap * customers))
    n_known_applicants = int(round(overlap * n_applicants))
    n_only = int(round(fintech_only_share * n_known))

    # Population blocks: [bank | applicants | fintech 1 own | ... | fintech K own].
    population = customers + n_applicants + fintechs * n_only
    bank_rows = np.arange(customers)
    applicant_rows = np.arange(customers, customers + n_applicants)
    own_start = customers + n_applicants

    features = _draw_population(rng, population)
    eta = _linear_predictor(features)
    intercept = _calibrate_intercept(eta[bank_rows], _TARGET_PREVALENCE)
    default = (rng.random(population) < _expit(eta + intercept)).astype(np.int64)

    width = _id_width(population)
    id_numbers = rng.choice(10**width, size=population, replace=False)
    canonical_ids = _format_ids(id_numbers, width, "C{all}")

    bank_cols = [c for c in BANK_FEATURES]
    bank = _frame(
        canonical_ids[bank_rows],
        _with_missing(rng, _take(features, bank_cols, bank_rows)),
        rng.permutation(customers),
        label=default[bank_rows],
    )
    applicant_order = rng.permutation(n_applicants)
    applicants_df = _frame(
        canonical_ids[applicant_rows],
        _with_missing(rng, _take(features, bank_cols, applicant_rows)),
        applicant_order,
    )
    # Same order as the applicants table so the two line up by eye as well as by id.
    outcomes = _frame(canonical_ids[applicant_rows], {}, applicant_order, label=default[applicant_rows])

    # The same known people for every fintech; only their own customers differ.
    known = np.concatenate(
        [
            np.sort(rng.choice(bank_rows, size=n_known, replace=False)),
            np.sort(rng.choice(applicant_rows, size=n_known_applicants, replace=False)),
        ]
    )
    partner_columns = [list(FINTECH_FEATURES[k::fintechs]) for k in range(fintechs)]
    fintech_tables = []
    for k, cols in enumerate(partner_columns):
        rows = np.concatenate([known, np.arange(own_start + k * n_only, own_start + (k + 1) * n_only)])
        ids = _surface_ids(rng, id_numbers[rows], width)
        fintech_tables.append(
            _frame(ids, _with_missing(rng, _take(features, cols, rows)), rng.permutation(len(rows)))
        )

    truth = {
        "model": "logistic: P(default) = 1 / (1 + exp(-(intercept + sum(coefficient * term))))",
        "intercept": float(intercept),
        "coefficients": dict(_COEFFICIENTS),
        "baselines": {"home_ownership": "OWN", "region": "North"},
        "target_prevalence": _TARGET_PREVALENCE,
        "prevalence": float(default[bank_rows].mean()),
        "applicant_prevalence": float(default[applicant_rows].mean()) if n_applicants else None,
        "latent_correlation": _LATENT_CORRELATION,
        "missing_rates": dict(_MISSING_RATES),
        "bank_features": list(BANK_FEATURES),
        "fintech_features": partner_columns,
        "counts": {
            "bank": customers,
            "bank_known_to_fintechs": n_known,
            "applicants": n_applicants,
            "applicants_known_to_fintechs": n_known_applicants,
            "fintech_own_customers": n_only,
            "fintech_rows": [len(t) for t in fintech_tables],
        },
        "seed": seed,
        "parameters": {
            "customers": customers,
            "overlap": overlap,
            "fintechs": fintechs,
            "applicants": n_applicants,
            "fintech_only_share": fintech_only_share,
            "seed": seed,
        },
    }
    return PilotData(
        bank=bank,
        fintechs=tuple(fintech_tables),
        applicants=applicants_df,
        applicant_outcomes=outcomes,
        truth=truth,
    )


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
