"""What a saved model part holds, and the checks it passes before it scores anyone.

Each party keeps its own part (``MODEL_DIR/<party>/model.json``): its preprocessing
(medians, levels, means and scales), its feature names and weights; the bank's part
adds the intercept, the bank-only fallback model, the scorecard scaling and the list of
fintechs. A part is read with a bounded JSON parser and checked against
:data:`BANK_MODEL` or :data:`FINTECH_MODEL` (types; every number finite; weights below
a million in size; scales and scorecard parameters positive), then across fields: the
weights match the feature names one for one, and the feature names are exactly those
the preprocessing produces.
A damaged or edited part is a :class:`~riskfed.errors.DataValidationError` naming the
party, the file and the field — never a NaN score.

Fields this module does not know are kept and not checked (a later riskfed may add
some); every field it knows is checked.
"""

from __future__ import annotations

from pathlib import Path

from riskfed.data.stored import ID_NORMALIZATION, PLAIN_ID, check_record, invalid, parse_json, read_bounded, record
from riskfed.errors import ConfigurationError, DataValidationError

BANK_KIND = "riskfed-bank-model"
FINTECH_KIND = "riskfed-fintech-model"
MAX_PART_BYTES = 256 << 20

_NAMES = {"type": "array", "items": {"type": "string", "maxLength": 1024}}
_FINITE = {"type": "number", "finite": True}
# Weights act on standardised features: no trained model comes near a million, while a
# planted 1e300 would turn every score into 0 or 1 without any error.
_WEIGHT = {"type": "number", "finite": True, "minimum": -1e6, "maximum": 1e6}
_POSITIVE = {"type": "number", "finite": True, "exclusiveMinimum": 0}


PREPROCESSING = record(
    {
        "party": {"type": "string"},
        "numeric": _NAMES,
        "categorical": _NAMES,
        "medians": {"type": "object", "additionalProperties": _FINITE},
        "missing_indicators": _NAMES,
        "levels": {"type": "object", "additionalProperties": _NAMES},
        "mean": {"type": "array", "items": _FINITE},
        "scale": {"type": "array", "items": _POSITIVE},
        "feature_names": _NAMES,
    },
    optional=("party", "feature_names"),
)
_LINEAR = {
    "preprocessing": PREPROCESSING,
    "feature_names": _NAMES,
    "weights": {"type": "array", "items": _WEIGHT},
}
FINTECH_MODEL = record(
    {"kind": {"const": FINTECH_KIND}, "party": PLAIN_ID, "format_version": {"const": 1}, "id_normalization": ID_NORMALIZATION} | _LINEAR,
    optional=("party", "format_version", "feature_names"),
    extra=True,
)
BANK_MODEL = record(
    {
        "kind": {"const": BANK_KIND},
        "party": {"const": "bank"},
        "format_version": {"const": 1},
        "id_normalization": ID_NORMALIZATION,
        **_LINEAR,
        "intercept": _WEIGHT,
        "fintechs": {"type": "array", "items": PLAIN_ID, "maxItems": 64},
        "id_column": {"type": "string"},
        "fallback": record(_LINEAR | {"intercept": _WEIGHT}, optional=("feature_names",)),
        "scorecard": record({"base_points": _POSITIVE, "base_odds": _POSITIVE, "pdo": _POSITIVE}),
        "training": {"type": "object"},
    },
    optional=("party", "format_version", "feature_names", "id_column", "training"),
    extra=True,
)
SCHEMAS = {BANK_KIND: BANK_MODEL, FINTECH_KIND: FINTECH_MODEL}


def _feature_names(pre: dict) -> list[str]:
    """The columns a preprocessing produces (as :class:`~riskfed.data.preprocess.Preprocessor` does)."""
    names = list(pre["numeric"]) + [f"{c}__missing" for c in pre["missing_indicators"]]
    for col in pre["categorical"]:
        names += [f"{col}={level}" for level in pre["levels"].get(col, [])]
    return names


def _check_linear(part: dict, where: str, fail) -> None:
    """Preprocessing, feature names and weights agree one for one."""
    pre = part["preprocessing"]
    prefix = f"{where}." if where else ""
    if set(pre["medians"]) != set(pre["numeric"]):
        raise fail(f"{prefix}preprocessing.medians", "must have one median per numeric feature")
    if not set(pre["missing_indicators"]) <= set(pre["numeric"]):
        raise fail(f"{prefix}preprocessing.missing_indicators", "must name numeric features")
    if set(pre["levels"]) != set(pre["categorical"]):
        raise fail(f"{prefix}preprocessing.levels", "must list the levels of each categorical feature")
    names = _feature_names(pre)
    for field in ("mean", "scale"):
        if len(pre[field]) != len(names):
            raise fail(f"{prefix}preprocessing.{field}", f"must have one value per model feature ({len(names)})")
    for field, given in (("preprocessing.feature_names", pre.get("feature_names")), ("feature_names", part.get("feature_names"))):
        if given is not None and list(given) != names:
            raise fail(prefix + field, "must be the features the preprocessing produces")
    if len(part["weights"]) != len(names):
        raise fail(f"{prefix}weights", f"must have one weight per feature ({len(names)}); it has {len(part['weights'])}")


def validate_model_part(part, party: str, *, context: str = "model part") -> dict:
    """Check one party's model part; return it unchanged.

    Parameters
    ----------
    part:
        The parsed part.
    party:
        Whose part it must be (``"bank"`` or a fintech's name).
    context:
        How to name it in errors (e.g. ``"model part '/m/bank/model.json'"``).

    Raises
    ------
    DataValidationError
        Wrong kind or party, a field missing or of the wrong type, a NaN or infinite
        number, weights that do not match the feature names.
    """
    kind = BANK_KIND if party == "bank" else FINTECH_KIND
    if not isinstance(part, dict) or part.get("kind") != kind:
        raise DataValidationError(f"{party}: {context} is not a riskfed {party.split('_')[0]} model part.", party=party)
    check_record(part, SCHEMAS[kind], party=party, context=context)

    def fail(subject: str, problem: str) -> DataValidationError:
        return invalid(party, context, subject, problem)

    if part.get("party", party) != party:
        raise fail("party", f"must be {party!r}, whose part this is")
    _check_linear(part, "", fail)
    if kind == BANK_KIND:
        _check_linear(part["fallback"], "fallback", fail)
        if len(set(part["fintechs"])) != len(part["fintechs"]):
            raise fail("fintechs", "must not repeat a name")
        from riskfed.scoring.scorecard import Scorecard

        try:
            Scorecard.from_dict(part["scorecard"])
        except ConfigurationError as exc:
            raise fail("scorecard", f"is out of range ({str(exc).rstrip('.')})") from None
    return part


def read_model_part(file: str | Path, party: str) -> dict:
    """Read ``party``'s part from ``file`` (bounded JSON) and :func:`validate_model_part` it."""
    file = Path(file)
    context = f"model part {str(file)!r}"
    data = read_bounded(file, MAX_PART_BYTES, party=party, context=context)
    return validate_model_part(parse_json(data, party=party, context=f"{str(file)!r}"), party, context=context)


__all__ = ["BANK_MODEL", "FINTECH_MODEL", "PREPROCESSING", "read_model_part", "validate_model_part"]
