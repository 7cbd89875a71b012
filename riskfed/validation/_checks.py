"""Input and parameter checks shared by the validation modules.

The label, probability and score checks are those of :mod:`riskfed.evaluation`, reused
as they are so that every metric in riskfed rejects bad input with the same typed error
and the same wording. Only the parameter checks :mod:`riskfed.evaluation` does not need
(floats in a range, pairs of models, model names) are written here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from riskfed.errors import ConfigurationError, SchemaError
from riskfed.evaluation.checks import (
    _check_inputs,
    _check_int_param,
    _check_labels,
    _check_probabilities,
    _check_scores,
    _rows_phrase,
    _to_1d,
)


def check_pair(y_true: Any, p_a: Any, p_b: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate the labels and two models' PDs for the same applicants, in the same order."""
    y, a = _check_inputs(y_true, p_a, p_name="p_a")
    _, b = _check_inputs(y, p_b, p_name="p_b")
    return y, a, b


def check_float(
    value: Any,
    name: str,
    owner: str,
    low: float,
    high: float,
    *,
    closed: str = "neither",
) -> float:
    """A finite real number between ``low`` and ``high``; ``closed`` says which ends belong."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        x = float(value)
        above = x >= low if closed in ("left", "both") else x > low
        below = x <= high if closed in ("right", "both") else x < high
        ok = math.isfinite(x) and above and below
    if not ok:
        left = "[" if closed in ("left", "both") else "("
        right = "]" if closed in ("right", "both") else ")"
        raise ConfigurationError(
            f"The '{name}' parameter of {owner} must be a float in the range "
            f"{left}{low:g}, {high:g}{right}. Got {value!r} instead."
        )
    return float(value)


def check_level(level: Any, owner: str) -> float:
    """A confidence level strictly between 0 and 1 (0.95 for a 95 % interval)."""
    return check_float(level, "level", owner, 0.0, 1.0)


def check_names(names: Any, owner: str) -> tuple[str, str]:
    """Two distinct, non-empty display names for a pair of models."""
    ok = (
        isinstance(names, Sequence)
        and not isinstance(names, str)
        and len(names) == 2
        and all(isinstance(n, str) and n.strip() for n in names)
        and names[0] != names[1]
    )
    if not ok:
        raise ConfigurationError(
            f"The 'names' parameter of {owner} must be a pair of two different non-empty "
            f"strings, e.g. ('bank-only', 'federated'). Got {names!r} instead."
        )
    return str(names[0]), str(names[1])


def check_choice(value: Any, name: str, owner: str, choices: Sequence[str]) -> str:
    """One of a fixed set of strings."""
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ConfigurationError(
            f"The '{name}' parameter of {owner} must be a str among {{{options}}}. "
            f"Got {value!r} instead."
        )
    return value


def check_min_class_counts(y: np.ndarray, minimum: int, purpose: str) -> None:
    """Both classes at least ``minimum`` times (a variance needs two of each)."""
    defaulters = int(y.sum())
    repaid = int(y.size - defaulters)
    if min(defaulters, repaid) < minimum:
        raise SchemaError(
            f"y_true must hold at least {minimum} defaulters and {minimum} non-defaulters "
            f"for {purpose}; got {defaulters} defaulters and {repaid} non-defaulters.",
            column="y_true",
        )


__all__ = [
    "_check_inputs",
    "_check_int_param",
    "_check_labels",
    "_check_probabilities",
    "_check_scores",
    "_rows_phrase",
    "_to_1d",
    "check_choice",
    "check_float",
    "check_level",
    "check_min_class_counts",
    "check_names",
    "check_pair",
]
