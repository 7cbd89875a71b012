"""The SQL CASE export, run in SQLite, gives the same values as riskfed's transform."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskfed.binning import Characteristic, PartyBinner, json_table, sql_case, sql_select
from riskfed.errors import ConfigurationError


def _run_sql(frame: pd.DataFrame, sql: str, types: dict[str, str]) -> pd.DataFrame:
    con = sqlite3.connect(":memory:")
    try:
        cols = ", ".join(f'"{c}" {t}' for c, t in types.items())
        con.execute(f"CREATE TABLE applicants ({cols})")
        rows = [tuple(None if pd.isna(v) else v for v in row) for row in frame[list(types)].itertuples(index=False)]
        con.executemany(f"INSERT INTO applicants VALUES ({', '.join('?' * len(types))})", rows)
        return pd.read_sql_query(sql, con)
    finally:
        con.close()


def _random_characteristics(rng: np.random.Generator) -> tuple[Characteristic, Characteristic]:
    cuts = tuple(sorted(set(np.round(rng.normal(0, 100, size=rng.integers(0, 8)), 1).tolist())))
    num = Characteristic("amount", "numeric", cuts=cuts, specials=(-1.0, 999999.0))
    cat = Characteristic("segment", "categorical", groups=(("L0", "L1"), ("L2",), ("L3", "L4")),
                         rare_levels=("L5", "L6"), specials=("n/a",),
                         unseen=str(rng.choice(["other", "missing"])))
    if rng.random() < 0.5:
        cat = cat.merge([0, 1, 2, 0, 10, 11])[0]  # "other" merged into the first group
    return num, cat


def _random_values(rng: np.random.Generator, num: Characteristic, n: int) -> pd.DataFrame:
    amount = rng.normal(0, 150, size=n).round(2)
    pick = rng.random(n)
    boundaries = np.array(num.cuts or (0.0,))
    amount[pick < 0.2] = rng.choice(boundaries, size=int((pick < 0.2).sum()))  # exactly on a cut
    amount[(pick >= 0.2) & (pick < 0.3)] = np.nan
    amount[(pick >= 0.3) & (pick < 0.35)] = -1.0
    amount[(pick >= 0.35) & (pick < 0.4)] = 999999.0
    segment = rng.choice(["L0", "L1", "L2", "L3", "L4", "L5", "L6", "L7", "new", "n/a", None], size=n)
    return pd.DataFrame({"id": np.arange(n), "amount": amount, "segment": segment})


@given(st.integers(0, 100_000))
@settings(max_examples=40)
def test_sql_case_in_sqlite_equals_transform(seed):
    rng = np.random.default_rng(seed)
    num, cat = _random_characteristics(rng)
    frame = _random_values(rng, num, 300)
    values = {c.name: rng.normal(0, 50, size=c.n_bins).round(6) for c in (num, cat)}
    sql = sql_select([num, cat], values, table="applicants", id_column="id")
    got = _run_sql(frame, sql, {"id": "INTEGER", "amount": "REAL", "segment": "TEXT"})
    for char in (num, cat):
        codes, _ = char.assign(frame[char.name])
        # Same bin for every row; the value may differ by one ulp because SQLite's own
        # decimal-to-double conversion is not always correctly rounded (-47.777393 can read
        # back as -47.777393000000004).
        assert np.allclose(got[char.name].to_numpy(), values[char.name][codes], rtol=4e-16, atol=0)
    assert np.allclose(got["points"], sum(values[c.name][c.assign(frame[c.name])[0]] for c in (num, cat)))


def test_fitted_binning_exports_woe_that_sqlite_reproduces():
    rng = np.random.default_rng(0)
    n = 3000
    frame = pd.DataFrame({
        "id": np.arange(n),
        "LIMIT_BAL": rng.choice([10000, 20000, 50000, 80000, 200000, 500000], size=n).astype(float),
        "EDUCATION": rng.choice([1, 2, 3, 4, 0], p=[0.35, 0.45, 0.15, 0.03, 0.02], size=n),
    })
    y = (rng.random(n) < np.where(frame["LIMIT_BAL"] < 60000, 0.35, 0.15)).astype(int)
    features = frame[["LIMIT_BAL", "EDUCATION"]]
    binner = PartyBinner("bank", method="optimal", categorical=["EDUCATION"], rare_level_share=0.025).fit(features, y)
    scoring = features.assign(EDUCATION=features["EDUCATION"].where(frame.index % 50 != 0, 9)).assign(
        LIMIT_BAL=features["LIMIT_BAL"].where(frame.index % 40 != 0, np.nan))
    values = {n: binner.statistics_[n].woe for n in binner.characteristics_}
    sql = sql_select(list(binner.characteristics_.values()), values, table="applicants", id_column="id")
    # A coded categorical stored as INTEGER: SQLite compares it with the text literals.
    got = _run_sql(scoring.assign(id=frame["id"]), sql, {"id": "INTEGER", "LIMIT_BAL": "REAL", "EDUCATION": "INTEGER"})
    expected = binner.woe(scoring)
    assert np.allclose(got[["LIMIT_BAL", "EDUCATION"]].to_numpy(), expected.to_numpy(), rtol=0, atol=1e-12)
    assert binner.transform(scoring).unseen == {"EDUCATION": 60}


def test_json_table_describes_every_bin():
    num = Characteristic("amount", "numeric", cuts=(0.5, 10.0), specials=(-1.0,))
    table = json_table(num, [1, 2, 3, 4, 5])
    assert json.loads(json.dumps(table)) == table
    assert [b["label"] for b in table["bins"]] == ["[-inf, 0.5)", "[0.5, 10)", "[10, inf)", "missing", "special: -1"]
    assert table["bins"][0] == {"code": 0, "kind": "interval", "label": "[-inf, 0.5)", "value": 1.0, "low": None, "high": 0.5}
    assert table["bins"][4]["special"] == -1.0
    cat = Characteristic("seg", "categorical", groups=(("a", "b"),), rare_levels=("z",))
    ctable = json_table(cat, [7, 8, 9])
    assert ctable["bins"][0]["levels"] == ["a", "b"]
    assert (ctable["other_code"], ctable["unseen_code"], ctable["rare_levels"]) == (1, 1, ["z"])


def test_export_needs_one_finite_value_per_bin():
    num = Characteristic("amount", "numeric", cuts=(0.5,))
    with pytest.raises(ConfigurationError, match=r"amount: export needs one value per bin \(3\); got 2"):
        sql_case(num, [1, 2])
    with pytest.raises(ConfigurationError, match="non-finite bin value"):
        sql_case(num, [1, np.nan, 2])


def test_identifiers_and_levels_are_quoted():
    cat = Characteristic('odd "name"', "categorical", groups=(("it's",),))
    sql = sql_case(cat, [1, 2, 3])
    assert '"odd ""name"""' in sql and "'it''s'" in sql
