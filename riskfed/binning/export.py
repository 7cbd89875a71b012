"""Export a characteristic's bins for a decision engine: a SQL ``CASE`` and a JSON table.

Both give one value per bin (points, WOE, a code) and reproduce
:meth:`Characteristic.assign <riskfed.binning.bins.Characteristic.assign>` exactly, in the
same order of tests: missing (``NULL``) first, then special values, then intervals
(``col < cut``, so a value equal to a cut goes to the upper interval) or level lists,
then rare levels, and ``ELSE`` for the last interval or for unseen levels.
``tests/binning/test_export.py`` runs the SQL in SQLite on random data with boundaries,
specials, missing values and unseen levels and compares with riskfed's transform.

Categorical levels are compared as text literals (``"EDUCATION" IN ('1', '2')``); SQLite
converts them for an INTEGER column, other engines may need the column as text. Cuts are
written with the shortest text that reads back as the same double.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from riskfed.binning.bins import GROUP, INTERVAL, NUMERIC, Characteristic, number_text
from riskfed.errors import ConfigurationError


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _text(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _value(value: float) -> str:
    value = float(value)
    if not math.isfinite(value):
        raise ConfigurationError(f"Cannot export the non-finite bin value {value!r}.")
    return repr(value)


def _check_values(char: Characteristic, values: Sequence[float]) -> list[float]:
    values = [float(v) for v in values]
    if len(values) != char.n_bins:
        raise ConfigurationError(f"{char.name}: export needs one value per bin ({char.n_bins}); got {len(values)}.")
    return values


def sql_case(char: Characteristic, values: Sequence[float], *, column: str | None = None) -> str:
    """A SQL ``CASE`` expression giving ``values[code]`` for the bin of each row.

    Parameters
    ----------
    char:
        The characteristic.
    values:
        One number per bin code (e.g. points or WOE).
    column:
        Column name in the target table (default: the characteristic's name).

    Returns
    -------
    str
        ``CASE WHEN "col" IS NULL THEN … END``.
    """
    values = _check_values(char, values)
    col = _identifier(column or char.name)
    lines = [f"WHEN {col} IS NULL THEN {_value(values[char.missing_code])}"]
    for j, special in enumerate(char.specials):
        literal = number_text(special) if char.dtype == NUMERIC else _text(special)
        lines.append(f"WHEN {col} = {literal} THEN {_value(values[char.special_code(j)])}")
    if char.dtype == NUMERIC:
        for code, cut in enumerate(char.cuts):
            lines.append(f"WHEN {col} < {number_text(cut)} THEN {_value(values[code])}")
        lines.append(f"ELSE {_value(values[len(char.cuts)])}")
    else:
        for code, group in enumerate(char.groups):
            lines.append(f"WHEN {col} IN ({', '.join(_text(v) for v in group)}) THEN {_value(values[code])}")
        if char.rare_levels:
            lines.append(f"WHEN {col} IN ({', '.join(_text(v) for v in char.rare_levels)}) "
                         f"THEN {_value(values[char.other_code])}")
        lines.append(f"ELSE {_value(values[char.unseen_code])}")
    return "CASE\n  " + "\n  ".join(lines) + "\nEND"


def sql_select(characteristics: Sequence[Characteristic], values: dict[str, Sequence[float]], *,
               table: str, id_column: str, total: str = "points") -> str:
    """``SELECT id, <CASE per characteristic> AS …, <their sum> AS total FROM table``."""
    cases = [f"{sql_case(c, values[c.name])} AS {_identifier(c.name)}" for c in characteristics]
    summed = " + ".join(f"({sql_case(c, values[c.name])})" for c in characteristics) or "0"
    columns = ",\n".join([_identifier(id_column), *cases, f"{summed} AS {_identifier(total)}"])
    return f"SELECT\n{columns}\nFROM {_identifier(table)}"


def json_table(char: Characteristic, values: Sequence[float]) -> dict:
    """The bins and their values as plain JSON: enough for an engine to score by lookup.

    Each bin has ``code``, ``kind``, ``label`` and ``value``; intervals add ``low``
    (inclusive, ``null`` = -inf) and ``high`` (exclusive, ``null`` = +inf); groups add
    ``levels``; specials add ``special``. ``rare_levels`` go to the ``other_code`` bin and
    any other level to ``unseen_code``.
    """
    values = _check_values(char, values)
    bins = []
    for b in char.bins:
        row = {"code": b.code, "kind": b.kind, "label": b.label, "value": values[b.code]}
        if b.kind == INTERVAL:
            row["low"] = char.cuts[b.code - 1] if b.code > 0 else None
            row["high"] = char.cuts[b.code] if b.code < len(char.cuts) else None
        elif b.kind == GROUP:
            row["levels"] = list(char.groups[b.code])
        elif b.code >= char.n_regular + 1:
            row["special"] = char.specials[b.code - char.n_regular - 1]
        bins.append(row)
    out = {"characteristic": char.name, "dtype": char.dtype, "missing_code": char.missing_code, "bins": bins}
    if char.dtype != NUMERIC:
        out |= {"rare_levels": list(char.rare_levels), "other_code": char.other_code, "unseen_code": char.unseen_code}
    return out
