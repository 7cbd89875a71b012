"""Id normalisation: the rule, its errors, and its record."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from riskfed.alignment.normalize import IdNormalization
from riskfed.errors import ConfigurationError, SchemaError

RULE = IdNormalization()


def norm(ids, rule=RULE):
    return rule.apply(ids, party="bank", column="customer_id").tolist()


def reference(value: str, rule: IdNormalization = RULE) -> str:
    """The rule's definition, one id at a time, in plain Python."""
    if rule.casefold:
        value = value.casefold()
    value = value.translate(str.maketrans("", "", rule.remove))
    return value.strip() if rule.strip else value


# ---------------------------------------------------------------------- examples


def test_phone_number_separators_match_the_bare_number():
    assert norm(["138-0013-8000", "+86 (138) 0013.8000"]) == ["13800138000", "8613800138000"]
    assert norm(["138-0013-8000"]) == norm(["13800138000"])


def test_case_and_surrounding_whitespace_are_ignored():
    assert norm(["  AbC-001 ", "\tX_9/2\n"]) == ["abc001", "x92"]


def test_separators_exposing_whitespace_are_trimmed_too():
    assert norm(["(\t42)"]) == ["42"]


def test_casefold_is_stronger_than_lower_outside_ascii():
    assert norm(["Straße", "ÉCOLE-1"]) == ["strasse", "école1"]


def test_output_is_object_array_of_str_in_input_order():
    out = RULE.apply(pd.Series(["B", "a", "C"], index=[7, 3, 5]), party="bank", column="id")
    assert out.dtype == object
    assert out.tolist() == ["b", "a", "c"]
    assert all(type(v) is str for v in out)


def test_empty_input_gives_empty_output():
    out = RULE.apply([], party="bank", column="id")
    assert out.shape == (0,) and out.dtype == object


@pytest.mark.parametrize(
    "ids, expected",
    [
        ([12, 7], ["12", "7"]),
        (np.array([12, 7], dtype=np.int64), ["12", "7"]),
        (np.array([12, 7], dtype=np.uint64), ["12", "7"]),
        (np.array([123.0, -4.0]), ["123", "4"]),  # "-" is a separator by default
        (pd.Series([13800138000.0, 5.0]), ["13800138000", "5"]),
        (pd.Series([1, 2], dtype="Int64"), ["1", "2"]),
        (["A-1", 2, 3.0, np.int32(4)], ["a1", "2", "3", "4"]),
    ],
)
def test_numeric_ids_become_their_decimal_text(ids, expected):
    assert norm(ids) == expected


def test_steps_can_be_switched_off():
    rule = IdNormalization(strip=False, casefold=False, remove="")
    assert norm([" A-1", "a-1"], rule) == [" A-1", "a-1"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=12), max_size=30))
@example(["Straße", "a-B", " ", "ǅ x"])
def test_apply_equals_the_per_id_definition(ids):
    """Fast ASCII path and general path both compute casefold → delete → strip."""
    expected = [reference(v) for v in ids]
    if "" in expected or len(set(expected)) != len(expected):
        with pytest.raises(SchemaError, match=r"bank: .*'customer_id'"):
            norm(ids)
    else:
        assert norm(ids) == expected


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize("missing", [None, np.nan, pd.NA, float("nan")])
def test_missing_ids_are_named_by_party_column_and_row(missing):
    with pytest.raises(SchemaError, match=r"^bank: column 'customer_id' has 1 missing id\(s\) at rows 1;") as err:
        norm(["a", missing, "b"])
    assert (err.value.party, err.value.column, err.value.rows) == ("bank", "customer_id", [1])


def test_missing_ids_in_a_float_series():
    with pytest.raises(SchemaError, match=r"missing id\(s\) at rows 0, 2"):
        RULE.apply(pd.Series([np.nan, 1.0, np.nan]), party="fintech_1", column="phone")


def test_ids_empty_after_normalisation():
    with pytest.raises(SchemaError, match=r"fintech_1: 2 id\(s\) in column 'phone' are empty after normalisation \(trim, case-fold, remove ' -_\./\(\)\+'\): row 1 \(' - '\), row 3 \(''\)") as err:
        RULE.apply(["a", " - ", "b", ""], party="fintech_1", column="phone")
    assert (err.value.party, err.value.column, err.value.rows) == ("fintech_1", "phone", [1, 3])


def test_duplicates_after_normalisation_name_the_colliding_ids():
    with pytest.raises(SchemaError, match=r"'C-001' and 'c001' both normalise to 'c001' \(rows 0, 2\)") as err:
        norm(["C-001", "x", "c001"])
    assert "bank" in str(err.value) and "'customer_id'" in str(err.value)
    assert (err.value.party, err.value.column, err.value.rows) == ("bank", "customer_id", [0, 2])


def test_exact_duplicates_and_three_way_collisions():
    with pytest.raises(SchemaError, match=r"'A1', 'a-1', 'a 1' all normalise to 'a1' \(rows 0, 2, 4\); 'x' appears 2 times \(rows 1, 3\)\."):
        norm(["A1", "x", "a-1", "x", "a 1"])


def test_many_duplicates_list_at_most_five():
    ids = [f"id{i}" for i in range(8)] * 2
    with pytest.raises(SchemaError, match=r"8 id\(s\) in column 'customer_id' occur more than once .*; and 3 more\.") as err:
        norm(ids)
    assert len(err.value.rows) == 5


@pytest.mark.parametrize(
    "ids, bad_row",
    [
        (np.array([1.0, 2.5]), 1),
        (np.array([1.0, np.inf]), 1),
        (np.array([2.0**60, 3.0]), 0),
        ([1.5, "a"], 0),
        (["a", True], 1),
        (["a", b"raw"], 1),
        (np.array([True, False]), 0),
    ],
)
def test_unsupported_id_values_are_schema_errors(ids, bad_row):
    with pytest.raises(SchemaError, match=rf"bank: .* in column 'customer_id' .*row {bad_row} ") as err:
        norm(ids)
    assert err.value.rows[0] == bad_row


def test_ids_that_are_not_valid_unicode_are_rejected():
    with pytest.raises(SchemaError, match=r"1 id\(s\) in column 'customer_id' are not valid Unicode text: row 1"):
        norm(["a", "b\ud800"])


def test_two_dimensional_input_is_rejected():
    with pytest.raises(SchemaError, match=r"'customer_id' must be one-dimensional"):
        norm(np.array([["a", "b"]], dtype=object))


# ---------------------------------------------------------------------- record


def test_describe_for_reports():
    assert RULE.describe() == "trim, case-fold, remove ' -_./()+'"
    assert IdNormalization(strip=False, remove="-").describe() == "case-fold, remove '-'"
    assert IdNormalization(False, False, "").describe() == "ids used as given"


def test_dict_round_trip():
    rule = IdNormalization(strip=False, casefold=True, remove="-")
    assert rule.to_dict() == {"strip": False, "casefold": True, "remove": "-"}
    assert IdNormalization.from_dict(rule.to_dict()) == rule
    assert IdNormalization.from_dict({}) == RULE


def test_from_dict_rejects_unknown_fields():
    with pytest.raises(ConfigurationError, match=r"Unknown IdNormalization field\(s\) 'lower'"):
        IdNormalization.from_dict({"lower": True})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"strip": "yes"}, r"The 'strip' parameter of IdNormalization must be a bool\. Got 'yes'"),
        ({"casefold": 1}, r"The 'casefold' parameter of IdNormalization must be a bool\. Got 1"),
        ({"remove": ["-"]}, r"The 'remove' parameter of IdNormalization must be a str"),
    ],
)
def test_invalid_parameters(kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        IdNormalization(**kwargs)
