"""validate_table: a usable table becomes a PartyTable; anything else a typed error that
names the party, the column and at most five rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskfed.data.schema import MAX_CATEGORIES, PartyTable, validate_table
from riskfed.errors import ConfigurationError, MissingColumnError, SchemaError


def _bank(n=12):
    return pd.DataFrame(
        {
            "id": [f"C{i:03d}" for i in range(n)],
            "y": [0, 1] * (n // 2),
            "income": np.linspace(1000, 5000, n),
            "flag": [True, False] * (n // 2),
            "region": ["north", "south", "east"] * (n // 3),
        }
    )


def test_valid_table_is_typed_and_counted():
    df = _bank()
    df.loc[3, "income"] = np.nan
    t = validate_table(df, party="bank", id_column="id", label_column="y", source="bank.csv")
    assert isinstance(t, PartyTable)
    assert t.n_rows == 12 and t.party == "bank" and t.source == "bank.csv"
    assert t.feature_names == ["income", "flag", "region"]
    assert t.categorical == ("region",)
    assert t.features["income"].dtype == np.float64 and t.features["flag"].dtype == np.float64
    assert t.labels.dtype == np.int8 and t.labels.tolist() == [0, 1] * 6
    assert t.ids.tolist()[:2] == ["C000", "C001"]
    assert t.missing["income"] == 1
    summary = t.summary()
    assert summary["missing_values"] == {"income": 1} and summary["default_rate"] == 0.5
    assert "C000" not in str(summary)  # counts only, no values


def test_numeric_ids_become_text_and_label_strings_are_accepted():
    df = _bank()
    df["id"] = range(100, 112)
    df["y"] = df["y"].astype(str)
    t = validate_table(df, party="bank", id_column="id", label_column="y")
    assert t.ids.tolist()[0] == "100"
    assert t.labels.tolist()[:2] == [0, 1]


def test_declared_categorical_numbers_and_explicit_features():
    df = _bank()
    df["grade"] = [1, 2, 3] * 4
    t = validate_table(df, party="bank", id_column="id", label_column="y", features=["income", "grade"], categorical=["grade"])
    assert t.feature_names == ["income", "grade"] and t.categorical == ("grade",)
    assert t.features["grade"].tolist()[:3] == ["1", "2", "3"]
    t = validate_table(df, party="bank", id_column="id", label_column="y", exclude=["region", "grade"])
    assert t.feature_names == ["income", "flag"]


def test_fintech_table_has_no_labels():
    df = _bank().drop(columns="y")
    t = validate_table(df, party="fintech_1", id_column="id")
    assert t.labels is None and "default_rate" not in t.summary()


@pytest.mark.parametrize("column, role", [("id", "id"), ("y", "label")])
def test_missing_id_or_label_column(column, role):
    df = _bank().drop(columns=column)
    with pytest.raises(MissingColumnError, match=rf"bank: the {role} column '{column}' is not in the table \(columns: ") as info:
        validate_table(df, party="bank", id_column="id", label_column="y")
    assert (info.value.party, info.value.column) == ("bank", column)


def test_missing_declared_feature_or_categorical_column():
    with pytest.raises(MissingColumnError, match="fintech_1: the feature column 'spend' is not in the table"):
        validate_table(_bank(), party="fintech_1", id_column="id", features=["spend"])
    with pytest.raises(MissingColumnError, match="bank: the categorical column 'grade' is not in the table"):
        validate_table(_bank(), party="bank", id_column="id", label_column="y", categorical=["grade"])


def test_null_ids_are_named_by_row():
    df = _bank()
    df.loc[[2, 7], "id"] = None
    with pytest.raises(SchemaError, match=r"bank: column 'id' has missing ids in 2 row\(s\): row\(s\) 2, 7") as info:
        validate_table(df, party="bank", id_column="id", label_column="y")
    assert info.value.rows == [2, 7] and info.value.column == "id"


@pytest.mark.parametrize("bad", [2, -1, 0.5, "yes", None])
def test_labels_other_than_0_1(bad):
    df = _bank()
    df["y"] = df["y"].astype(object)
    df.loc[4, "y"] = bad
    with pytest.raises(SchemaError, match=r"bank: column 'y' must hold 0 \(no default\) or 1 \(default\) but has other values in 1 row\(s\): id\(s\) 'C004'") as info:
        validate_table(df, party="bank", id_column="id", label_column="y")
    assert info.value.rows == ["C004"]


def test_single_class_labels():
    df = _bank()
    df["y"] = 0
    with pytest.raises(SchemaError, match="bank: column 'y' holds only the class 0; a default model needs both"):
        validate_table(df, party="bank", id_column="id", label_column="y")


def test_numeric_column_with_stray_text():
    df = _bank()
    df["income"] = df["income"].astype(object)
    df.loc[[1, 5], "income"] = ["n/a", "12,5"]
    with pytest.raises(SchemaError, match=r"fintech_1: column 'income' is numeric but holds text values in 2 row\(s\): id\(s\) 'C001', 'C005'") as info:
        validate_table(df.drop(columns="y"), party="fintech_1", id_column="id")
    assert (info.value.party, info.value.column, info.value.rows) == ("fintech_1", "income", ["C001", "C005"])


def test_numbers_written_as_text_are_numeric():
    df = _bank()
    df["income"] = df["income"].map(str)
    t = validate_table(df, party="bank", id_column="id", label_column="y")
    assert t.features["income"].dtype == np.float64 and "income" not in t.categorical


def test_at_most_five_rows_are_listed():
    df = _bank(30)
    df["income"] = np.inf
    with pytest.raises(SchemaError, match=r"holds infinite values in 30 row\(s\): id\(s\) 'C000', 'C001', 'C002', 'C003', 'C004' and 25 more") as info:
        validate_table(df, party="bank", id_column="id", label_column="y")
    assert len(info.value.rows) == 5


def test_negative_infinity_is_refused():
    df = _bank()
    df.loc[6, "income"] = -np.inf
    with pytest.raises(SchemaError, match=r"bank: column 'income' holds infinite values in 1 row\(s\): id\(s\) 'C006'"):
        validate_table(df, party="bank", id_column="id", label_column="y")


def test_all_null_feature():
    df = _bank()
    df["income"] = np.nan
    with pytest.raises(SchemaError, match=r"bank: feature 'income' is empty \(every value is missing\)") as info:
        validate_table(df, party="bank", id_column="id", label_column="y")
    assert info.value.column == "income"
    # Allowed only where the caller asks for it (scoring small chunks of applicants).
    t = validate_table(df, party="bank", id_column="id", label_column="y", allow_empty_features=True)
    assert t.features["income"].isna().all()


def test_free_text_column_is_not_a_category():
    df = _bank(60)
    df["note"] = [f"free text {i}" for i in range(60)]
    with pytest.raises(SchemaError, match=rf"bank: feature 'note' is text with 60 distinct values; riskfed treats text columns with at most {MAX_CATEGORIES} values"):
        validate_table(df, party="bank", id_column="id", label_column="y")


def test_empty_table_duplicate_columns_and_no_features():
    with pytest.raises(SchemaError, match="bank: the table has no rows"):
        validate_table(_bank().iloc[:0], party="bank", id_column="id", label_column="y")
    dup = pd.concat([_bank(), _bank()[["income"]]], axis=1)
    with pytest.raises(SchemaError, match="bank: column name\\(s\\) 'income' appear more than once"):
        validate_table(dup, party="bank", id_column="id", label_column="y")
    with pytest.raises(SchemaError, match="bank: the table has no feature columns besides id and label"):
        validate_table(_bank()[["id", "y"]], party="bank", id_column="id", label_column="y")
    with pytest.raises(ConfigurationError, match="bank: expected a pandas DataFrame, got list"):
        validate_table([1, 2], party="bank", id_column="id")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="'y' cannot be both a feature and the id/label column"):
        validate_table(_bank(), party="bank", id_column="id", label_column="y", features=["y"])


def test_index_is_ignored():
    df = _bank().set_index(pd.Index(range(100, 112)))
    df.loc[105, "income"] = np.inf
    with pytest.raises(SchemaError, match="id\\(s\\) 'C005'"):
        validate_table(df, party="bank", id_column="id", label_column="y")
