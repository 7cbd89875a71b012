"""Reading back what riskfed stored: bounded JSON, bounded ``.npz``, typed records.

Checkpoints and model parts live on a party's own disk, but a file can be damaged,
edited or planted. Whatever it holds, loading it ends either in a value that satisfies
an explicit schema or in a :class:`~riskfed.errors.DataValidationError` naming the party
and the file — never a ``KeyError``, a ``RecursionError`` or a terabyte allocation:

* JSON nesting is measured before parsing (CPython's parser recurses once per level);
* every ``.npz`` member is checked from its header (numeric dtype; shape × item size
  equal to the bytes actually stored, under a sane limit) before numpy allocates it,
  and nothing is unpickled;
* records are checked against a JSON Schema (the ``jsonschema`` library), extended with
  numpy arrays and finiteness::

      {"type": "ndarray", "dtype": "float", "ndim": 1, "finite": True}
      {"type": "ndarray", "dtype": "int", "ndim": 1, "minimum": 0, "distinct": True}
      {"type": "number", "finite": True, "exclusiveMinimum": 0}

  ``integer`` means a Python ``int`` (not ``bool``, not ``3.0``). Messages name the
  field and the rule it breaks, never the value found (a record may hold secrets).
"""

from __future__ import annotations

import io
import json
import math
import re
import zipfile

import numpy as np
from jsonschema import Draft202012Validator, ValidationError, validators

from riskfed.errors import DataValidationError, format_rows

MAX_JSON_DEPTH = 64
MAX_ARRAY_ELEMENTS = 1 << 31
MAX_NPZ_MEMBERS = 4096
_MEMBER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}\.npy$")
# A JSON string (escapes included); brackets inside strings are not nesting.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NUMERIC_KINDS = "biuf"


def invalid(party: str, context: str, subject: str, problem: str) -> DataValidationError:
    """The one message shape for a stored record that breaks its schema."""
    return DataValidationError(f"{party}: {context}: {subject} {problem}.", party=party)


def read_bounded(path, limit: int, *, party: str, context: str) -> bytes:
    """A file's bytes, refusing one larger than ``limit`` before reading it."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise DataValidationError(f"{party}: {context} is {size:,} bytes; riskfed writes at most {limit:,}.", party=party)
        return path.read_bytes()
    except OSError as exc:
        raise DataValidationError(f"{party}: {context} is unreadable ({exc.strerror or type(exc).__name__}).", party=party) from None


# -- JSON --------------------------------------------------------------------------------
def json_depth(data: bytes) -> int:
    """Deepest nesting of ``[``/``{`` in a JSON text (exact for valid JSON)."""
    codes = np.frombuffer(_JSON_STRING.sub(b"", data), dtype=np.uint8)
    step = np.zeros(codes.size, dtype=np.int64)
    step[(codes == ord("[")) | (codes == ord("{"))] = 1
    step[(codes == ord("]")) | (codes == ord("}"))] = -1
    return int(np.cumsum(step).max(initial=0))


def parse_json(data: bytes | str, *, party: str, context: str):
    """Parse JSON nested at most :data:`MAX_JSON_DEPTH` levels.

    Raises
    ------
    DataValidationError
        Not JSON (also not UTF-8, or an integer of more than 4,300 digits), or nested
        too deeply; the message names ``party`` and ``context`` (the file).
    """
    raw = data.encode() if isinstance(data, str) else bytes(data)
    depth = json_depth(raw)
    if depth > MAX_JSON_DEPTH:
        raise DataValidationError(
            f"{party}: {context} is not valid JSON (nested {depth:,} levels deep; riskfed writes at most "
            f"{MAX_JSON_DEPTH}).",
            party=party,
        )
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        reason = str(exc)[:200] if isinstance(exc, ValueError) else "nested too deeply"
        raise DataValidationError(f"{party}: {context} is not valid JSON ({reason}).", party=party) from None


# -- npz ----------------------------------------------------------------------------------
def _member_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int):
    """(shape, dtype, data bytes) of one ``.npy`` member, read from its header only."""
    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _fortran, dtype = read(fh, max_header_size=10_000)
        stored = info.file_size - fh.tell()
    if dtype.hasobject or dtype.kind not in _NUMERIC_KINDS:
        raise ValueError(f"member {info.filename!r} has dtype {dtype}")
    count = math.prod(shape)  # Python ints: a forged header cannot overflow this
    if count > limit or count * dtype.itemsize != stored:
        raise ValueError(
            f"member {info.filename!r} claims shape {shape} of {dtype} ({count * dtype.itemsize:,} bytes) "
            f"but holds {stored:,} bytes"
        )
    return shape, dtype


def read_npz(blob: bytes, *, party: str, context: str, max_elements: int = MAX_ARRAY_ELEMENTS) -> dict[str, np.ndarray]:
    """The numeric arrays of an uncompressed ``.npz`` (as :func:`numpy.savez` writes it).

    Each member's header is checked first: a numeric dtype (no pickles, no strings),
    at most ``max_elements`` elements, and exactly ``shape × itemsize`` bytes stored.

    Raises
    ------
    DataValidationError
        Anything else: not a zip, compressed or oddly named members, a forged header.
    """
    arrays: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as zf:
            members = zf.infolist()
            if len(members) > MAX_NPZ_MEMBERS:
                raise ValueError(f"{len(members):,} members")
            for info in members:
                if not _MEMBER.match(info.filename) or info.compress_type != zipfile.ZIP_STORED:
                    raise ValueError(f"unexpected member {info.filename[:80]!r}")
                if info.file_size > len(blob):
                    raise ValueError(f"member {info.filename!r} claims {info.file_size:,} bytes")
                _member_header(zf, info, max_elements)
                with zf.open(info) as fh:
                    arrays[info.filename[: -len(".npy")]] = np.lib.format.read_array(fh, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, NotImplementedError) as exc:
        raise DataValidationError(
            f"{party}: {context} holds something other than numeric arrays ({str(exc)[:200]}).", party=party
        ) from None
    return arrays


# -- schemas ------------------------------------------------------------------------------
def _is_int(_checker, value) -> bool:
    # numpy scalars too: a state checked in memory (validate before writing) may hold them.
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(_checker, value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _is_ndarray(_checker, value) -> bool:
    return isinstance(value, np.ndarray)


_BASE = Draft202012Validator.VALIDATORS
_DTYPE_KINDS = {"int": "iu", "float": "f"}
_DTYPE_WORDS = {"int": "integers", "float": "floats"}


def _array_bound(name: str, holds):
    """``minimum``/``maximum``/``exclusiveMinimum`` for arrays too (every element)."""
    base = _BASE[name]

    def check(validator, bound, instance, schema):
        if not isinstance(instance, np.ndarray):
            yield from base(validator, bound, instance, schema)
        elif instance.size and instance.dtype.kind in "iuf" and not holds(instance, bound):
            yield ValidationError(f"must hold values {_BOUND_WORDS[name]} {bound}")

    return check


_BOUND_WORDS = {"minimum": "≥", "maximum": "≤", "exclusiveMinimum": ">"}


def _min_items(validator, count, instance, schema):
    """``minItems`` counts array elements too."""
    if isinstance(instance, np.ndarray):
        if instance.size < count:
            yield ValidationError(f"must have at least {count} item(s)")
    else:
        yield from _BASE["minItems"](validator, count, instance, schema)


def _no_arrays(name: str):
    """``enum``/``const`` refuse arrays (numpy's ``==`` would compare element-wise)."""
    base = _BASE[name]

    def check(validator, value, instance, schema):
        if isinstance(instance, np.ndarray):
            expected = ", ".join(map(repr, value)) if name == "enum" else repr(value)
            yield ValidationError(f"must be {'one of ' if name == 'enum' else ''}{expected}")
        else:
            yield from base(validator, value, instance, schema)

    return check


def _dtype(validator, kind, instance, schema):
    if isinstance(instance, np.ndarray) and instance.dtype.kind not in _DTYPE_KINDS[kind]:
        yield ValidationError(f"must be an array of {_DTYPE_WORDS[kind]}")


def _ndim(validator, ndim, instance, schema):
    if isinstance(instance, np.ndarray) and instance.ndim != ndim:
        yield ValidationError(f"must be a {ndim}-D array")


def _finite(validator, required, instance, schema):
    if not required:
        return
    if isinstance(instance, np.ndarray):
        if instance.dtype.kind == "f" and not np.isfinite(instance).all():
            bad = int((~np.isfinite(instance)).sum())
            yield ValidationError(f"must be finite (it holds {bad:,} NaN or infinite value(s))")
    elif isinstance(instance, (float, np.floating)) and not math.isfinite(instance):
        yield ValidationError("must be finite (it is NaN or infinite)")


def _not_nan(validator, required, instance, schema):
    if required and isinstance(instance, (float, np.floating)) and math.isnan(instance):
        yield ValidationError("must not be NaN")


def _distinct(validator, required, instance, schema):
    if required and isinstance(instance, np.ndarray) and instance.dtype.kind in _NUMERIC_KINDS and instance.size > 1:
        ordered = np.sort(instance, axis=None)
        if (ordered[1:] == ordered[:-1]).any():
            yield ValidationError("must not repeat a value")


_Validator = validators.extend(
    Draft202012Validator,
    {
        "minimum": _array_bound("minimum", lambda a, b: a.min() >= b),
        "maximum": _array_bound("maximum", lambda a, b: a.max() <= b),
        "exclusiveMinimum": _array_bound("exclusiveMinimum", lambda a, b: a.min() > b),
        "minItems": _min_items,
        "enum": _no_arrays("enum"),
        "const": _no_arrays("const"),
        "dtype": _dtype,
        "ndim": _ndim,
        "finite": _finite,
        "notNaN": _not_nan,
        "distinct": _distinct,
    },
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine_many(
        {"integer": _is_int, "number": _is_number, "ndarray": _is_ndarray}
    ),
)
_CUSTOM = {"dtype", "ndim", "finite", "notNaN", "distinct"}
# Keywords that word their own message when they meet an array.
_ARRAY_AWARE = {"minimum", "maximum", "exclusiveMinimum", "minItems", "enum", "const"}
_TYPE_WORDS = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "null": "null",
    "object": "an object",
    "array": "a list",
    "ndarray": "an array (a reference into the .npz)",
}


# Pieces several stored records share (checkpoints, model parts).
PLAIN_ID = {"type": "string", "pattern": r"^[A-Za-z0-9_-]{1,64}$", "description": "a plain identifier ([A-Za-z0-9_-], ≤ 64 characters)"}
ID_NORMALIZATION = {
    "type": "object",
    "required": ["strip", "casefold", "remove"],
    "properties": {"strip": {"type": "boolean"}, "casefold": {"type": "boolean"}, "remove": {"type": "string", "maxLength": 256}},
    "additionalProperties": False,
}


def record(properties: dict, *, optional=(), extra=False) -> dict:
    """Schema of an object with these fields (all required but ``optional``); others
    are refused unless ``extra`` (``True``, or a schema they must satisfy)."""
    required = [k for k in properties if k not in optional]
    return {"type": "object", "required": required, "properties": properties, "additionalProperties": extra}


def field_name(root: str, path) -> str:
    """``state.aligned.partner_rows['fintech_1']``-style name of a field."""
    out = root
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            out += f".{part}" if out else part
        else:
            out += f"[{part[:40]!r}]"
    return out


def _problem(error: ValidationError) -> str:
    """The broken rule in words, never the value found."""
    if "propertyNames" in error.schema_path:
        return f"has an invalid field name (each {_rule(error)})"
    return _rule(error)


def _rule(error: ValidationError) -> str:
    keyword, value, schema = error.validator, error.validator_value, error.schema
    if keyword in _CUSTOM or (keyword in _ARRAY_AWARE and isinstance(error.instance, np.ndarray)):
        return error.message
    if keyword == "type":
        kinds = [value] if isinstance(value, str) else list(value)
        return "must be " + " or ".join(_TYPE_WORDS.get(k, k) for k in kinds)
    if keyword == "required":
        missing = [p for p in value if p not in error.instance]
        return f"lacks {', '.join(missing)} (damaged, or written by an incompatible riskfed version)"
    if keyword == "additionalProperties":
        extra = [str(k)[:40] for k in error.instance if k not in schema.get("properties", {})]
        return f"has unexpected field(s) {format_rows(extra)}"
    if keyword == "pattern":
        return f"must be {schema['description']}" if "description" in schema else f"must match {value}"
    words = {
        "enum": lambda: "must be one of " + ", ".join(map(repr, value)),
        "const": lambda: f"must be {value!r}",
        "minimum": lambda: f"must be ≥ {value}",
        "maximum": lambda: f"must be ≤ {value}",
        "exclusiveMinimum": lambda: f"must be > {value}",
        "minItems": lambda: f"must have at least {value} item(s)",
        "maxItems": lambda: f"must have at most {value} item(s)",
        "minLength": lambda: f"must be at least {value} character(s) long",
        "maxLength": lambda: f"must be at most {value} characters long",
        "minProperties": lambda: "must not be empty",
        "maxProperties": lambda: f"must have at most {value} field(s)",
    }
    return words[keyword]() if keyword in words else f"breaks the rule {keyword!r}"


def _rank(error: ValidationError):
    # Shallowest first; at one field, a wrong type or missing fields before the rest.
    return len(error.absolute_path), error.validator not in ("type", "required", "additionalProperties")


def check_record(value, schema: dict, *, party: str, context: str, root: str = "") -> None:
    """Check ``value`` against ``schema`` (JSON Schema plus the array keywords above).

    Parameters
    ----------
    value:
        The parsed record (arrays already restored).
    schema:
        Its schema.
    party, context:
        Named in the error: whose record and which file (e.g. ``"checkpoint '/x.json'"``).
    root:
        Name of the record in field names (``"state"`` → ``state.local.weights``).

    Raises
    ------
    DataValidationError
        Naming the party, the file, the field and the rule it breaks.
    """
    errors = sorted(_Validator(schema).iter_errors(value), key=_rank)
    if errors:
        error = errors[0]
        subject = field_name(root, error.absolute_path) or "the file"
        raise invalid(party, context, subject, _problem(error))


__all__ = [
    "ID_NORMALIZATION",
    "MAX_JSON_DEPTH",
    "PLAIN_ID",
    "check_record",
    "field_name",
    "invalid",
    "json_depth",
    "parse_json",
    "read_bounded",
    "read_npz",
    "record",
]
