"""The synthetic population behind ``riskfed pilot``: features, ground truth and ids.

The generative story:

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
   with monotone, sensible signs; the intercept is calibrated so that the bank's
   expected default rate is 10 %. A linear logistic regression on the joined features
   is therefore near-optimal, while the bank alone misses the behavioural part.
4. **Surface forms of ids.** The bank writes ids as ``"C0012345"``; a fintech writes a
   noticeable share of the same people's ids differently (``"c-001-2345"``,
   ``" C0012345 "``, ``"C.001.2345"`` ...), so ids must be normalised (trim, case-fold,
   drop ``" -_./"``) before they match.
5. **Missing values.** A few columns lose 1-4 % of their values completely at random,
   after the labels were drawn (the truth uses the complete values, as the world does).

:mod:`riskfed.data.synthetic` cuts the population into the parties' tables.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

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

HOME_OWNERSHIP = ("RENT", "OWN", "MORTGAGE", "OTHER")
REGIONS = ("North", "South", "East", "West", "Central")
_REGION_SHARES = np.array([0.22, 0.24, 0.18, 0.20, 0.16])

# Correlation between the bank-visible and the fintech-visible latent traits. Low enough
# that the bank cannot reconstruct the behavioural risk from its own features, which is
# what makes the partnership worth a pilot.
LATENT_CORRELATION = 0.35
TARGET_PREVALENCE = 0.10

# Ground-truth log-odds per unit of each term (categorical baselines: OWN, North).
# Magnitudes are chosen so that bank-only and joined models land near AUC 0.72 and 0.82.
COEFFICIENTS: dict[str, float] = {
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
MISSING_RATES: dict[str, float] = {
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


def expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def draw_population(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Draw the latent traits and every feature (bank and fintech) for ``n`` people."""
    stress = rng.standard_normal(n)
    behaviour = LATENT_CORRELATION * stress + math.sqrt(1 - LATENT_CORRELATION**2) * rng.standard_normal(n)
    bank = _bank_features(rng, stress)
    return bank | _fintech_features(rng, behaviour, bank["age"].astype(np.float64), bank["annual_income"])


def _bank_features(rng: np.random.Generator, stress: np.ndarray) -> dict[str, np.ndarray]:
    """What a lender sees: features driven by financial stress (and age)."""
    n = len(stress)

    def noise() -> np.ndarray:
        return rng.standard_normal(n)

    # Adult ages on (18, 85) with median ~42 and a thin tail past 75; younger people
    # are a little more stretched.
    age_score = -0.25 * stress + math.sqrt(1 - 0.25**2) * noise()
    age = np.rint(18 + 67 * expit(-0.6 + 1.05 * age_score))
    age_c = age - 42.0

    # Income rises then flattens with age and falls with stress; median ~47k.
    log_income = 10.75 + 0.012 * age_c - 0.0003 * age_c**2 - 0.20 * stress + 0.45 * noise()
    annual_income = np.maximum(np.round(np.exp(log_income), -2), 6_000.0)

    debt_to_income = np.round(1.1 * expit(-1.25 + 0.45 * stress + 0.55 * noise()), 4)
    # A little over-limit usage (values above 1) is realistic for stressed borrowers.
    credit_utilisation = np.round(1.15 * expit(-0.9 + 0.75 * stress + 1.0 * noise()), 4)
    num_delinquencies_2y = rng.poisson(np.exp(-1.9 + 0.65 * stress + 0.3 * noise()))

    # Tenure cannot exceed adult life; stressed customers tend to be newer to the bank.
    max_tenure = np.minimum((age - 18) * 12 + 6, 360)
    months_on_book = np.maximum(np.rint(max_tenure * expit(0.2 - 0.3 * stress + 0.9 * noise())), 1)

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
    return {
        "age": age.astype(np.int64),
        "annual_income": annual_income,
        "debt_to_income": debt_to_income,
        "credit_utilisation": credit_utilisation,
        "num_delinquencies_2y": num_delinquencies_2y.astype(np.int64),
        "months_on_book": months_on_book.astype(np.int64),
        "home_ownership": np.asarray(HOME_OWNERSHIP, dtype=object)[home_idx],
        "region": np.asarray(REGIONS, dtype=object)[region_idx],
    }


def _fintech_features(
    rng: np.random.Generator, behaviour: np.ndarray, age: np.ndarray, annual_income: np.ndarray
) -> dict[str, np.ndarray]:
    """What a payments or spending app sees: features driven by behavioural risk."""
    n = len(behaviour)

    def noise() -> np.ndarray:
        return rng.standard_normal(n)

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
    account_age_months = np.maximum(np.rint(max_account * expit(-0.3 - 0.25 * behaviour + 1.0 * noise())), 1)

    return {
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


def linear_predictor(features: Mapping[str, np.ndarray]) -> np.ndarray:
    """The ground-truth log-odds without intercept, from complete feature values."""
    eta = np.zeros(len(features["age"]))
    for term, coef in COEFFICIENTS.items():
        if term.startswith("log("):
            values = np.log(features[term[4:-1]])
        elif "[" in term:
            column, level = term[:-1].split("[")
            values = features[column] == level
        else:
            values = features[term]
        eta += coef * values
    return eta


def calibrate_intercept(eta: np.ndarray, target: float) -> float:
    """Intercept b with mean(expit(eta + b)) == target, by bisection (monotone in b)."""
    lo, hi = -30.0, 30.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if expit(eta + mid).mean() < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


# --------------------------------------------------------------------------------- ids


def id_width(population: int) -> int:
    # Keep the id space at least ten times the population so the numbers look sparse.
    return max(_ID_MIN_DIGITS, len(str(10 * population)))


def format_ids(numbers_: np.ndarray, width: int, template: str) -> np.ndarray:
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


def surface_ids(rng: np.random.Generator, numbers_: np.ndarray, width: int) -> np.ndarray:
    """A fintech's ids: each row gets one of the surface styles in :data:`_ID_STYLES`."""
    weights = np.array([w for _, w in _ID_STYLES])
    style = _categorical_draw(rng, np.broadcast_to(weights / weights.sum(), (len(numbers_), len(weights))))
    longest = max(len(t.format(all="D" * width, head="DDD", tail="D" * (width - 3))) for t, _ in _ID_STYLES)
    out = np.empty(len(numbers_), dtype=f"<U{longest}")
    for k, (template, _) in enumerate(_ID_STYLES):
        rows = style == k
        out[rows] = format_ids(numbers_[rows], width, template)
    return out


def with_missing(rng: np.random.Generator, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Knock out values completely at random in the columns listed in MISSING_RATES."""
    out = {}
    for name, values in columns.items():
        rate = MISSING_RATES.get(name)
        if rate is not None:
            values = values.astype(object if values.dtype == object else np.float64)
            values[rng.random(len(values)) < rate] = np.nan
        out[name] = values
    return out
