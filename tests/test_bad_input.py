"""Bad input never ends in a traceback or a silently wrong model.

Each case gets a typed riskfed error naming the party, the column and a few rows — from
the Python API and from the CLI, which must exit non-zero with one error line, no
traceback, and leave ``--out`` exactly as it was.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskfed.cli import main
from riskfed.errors import (
    AlignmentError,
    DataValidationError,
    InsecureKeyError,
    MissingColumnError,
    RiskfedError,
    SchemaError,
)


def _set(df, rows, column, values):
    df = df.copy()
    df[column] = df[column].astype(object)
    df.loc[rows, column] = values
    return df


def _rename_ids(df, rows, new):
    df = df.copy()
    df.loc[rows, "id"] = new
    return df


def _ids_of(df, rows):
    return [str(df.loc[r, "id"]) for r in rows]


# (name, mutate(bank, fintech) -> (bank, fintech), error type, regex on the message, party, column)
CASES = [
    ("bank missing id column", lambda b, f: (b.rename(columns={"id": "customer"}), f), MissingColumnError, r"bank: the id column 'id' is not in the table", "bank", "id"),
    ("fintech missing id column", lambda b, f: (b, f.rename(columns={"id": "cust_no"})), MissingColumnError, r"fintech_1: the id column 'id' is not in the table", "fintech_1", "id"),
    ("missing label column", lambda b, f: (b.drop(columns="y"), f), MissingColumnError, r"bank: the label column 'y' is not in the table", "bank", "y"),
    ("duplicate bank ids", lambda b, f: (_rename_ids(b, [5], "C00003"), f), SchemaError, r"bank: 1 id\(s\) in column 'id' occur more than once after normalisation .*'C00003' appears 2 times \(rows 3, 5\)", "bank", "id"),
    ("duplicate only after normalisation", lambda b, f: (_rename_ids(b, [5], " c-00003 "), f), SchemaError, r"bank: .*column 'id' occur more than once after normalisation .*'C00003' and ' c-00003 ' both normalise to 'c00003' \(rows 3, 5\)", "bank", "id"),
    ("duplicate fintech ids", lambda b, f: (b, _rename_ids(f, [7], str(f.loc[2, "id"]).lower())), SchemaError, r"fintech_1: 1 id\(s\) in column 'id' occur more than once after normalisation", "fintech_1", "id"),
    ("null bank ids", lambda b, f: (_rename_ids(b, [4, 8], None), f), SchemaError, r"bank: column 'id' has missing ids in 2 row\(s\): row\(s\) 4, 8", "bank", "id"),
    ("null fintech ids", lambda b, f: (b, _rename_ids(f, [1], None)), SchemaError, r"fintech_1: column 'id' has missing ids in 1 row\(s\): row\(s\) 1", "fintech_1", "id"),
    ("stray text in a numeric feature", lambda b, f: (b, _set(f, [2, 7], "late_bills", ["abc", "12,5"])), SchemaError, r"fintech_1: column 'late_bills' is numeric but holds text values in 2 row\(s\): id\(s\) '{f2}', '{f7}'", "fintech_1", "late_bills"),
    ("stray text in a bank feature", lambda b, f: (_set(b, [11], "income", "unknown!"), f), SchemaError, r"bank: column 'income' is numeric but holds text values in 1 row\(s\): id\(s\) 'C00011'", "bank", "income"),
    ("all-null feature", lambda b, f: (_set(b, list(range(len(b))), "utilisation", np.nan), f), SchemaError, r"bank: feature 'utilisation' is empty \(every value is missing\)", "bank", "utilisation"),
    ("all-null fintech feature", lambda b, f: (b, _set(f, list(range(len(f))), "spend_volatility", np.nan)), SchemaError, r"fintech_1: feature 'spend_volatility' is empty", "fintech_1", "spend_volatility"),
    ("infinite values", lambda b, f: (_set(b, [3, 9], "income", [np.inf, -np.inf]), f), SchemaError, r"bank: column 'income' holds infinite values in 2 row\(s\): id\(s\) 'C00003', 'C00009'", "bank", "income"),
    ("infinite fintech values", lambda b, f: (b, _set(f, [0], "spend_volatility", np.inf)), SchemaError, r"fintech_1: column 'spend_volatility' holds infinite values in 1 row\(s\): id\(s\) '{f0}'", "fintech_1", "spend_volatility"),
    ("label 2", lambda b, f: (_set(b, [6], "y", 2), f), SchemaError, r"bank: column 'y' must hold 0 \(no default\) or 1 \(default\) but has other values in 1 row\(s\): id\(s\) 'C00006'", "bank", "y"),
    ("label text", lambda b, f: (_set(b, [6, 12], "y", "yes"), f), SchemaError, r"bank: column 'y' must hold 0 .* in 2 row\(s\): id\(s\) 'C00006', 'C00012'", "bank", "y"),
    ("single-class labels", lambda b, f: (b.assign(y=0), f), SchemaError, r"bank: column 'y' holds only the class 0", "bank", "y"),
    # A repeated header: refused, never renamed to income.1 (the file is named by the CLI).
    ("repeated bank column", lambda b, f: (b.set_axis(["id", "y", "income", "income", "region"], axis=1), f), SchemaError, r"bank: column name\(s\) 'income' appear more than once in ", "bank", "income"),
    ("repeated fintech column", lambda b, f: (b, f.set_axis(["id", "late_bills", "late_bills"], axis=1)), SchemaError, r"fintech_1: column name\(s\) 'late_bills' appear more than once in ", "fintech_1", "late_bills"),
]
ALIGNMENT_CASES = [
    ("empty intersection", lambda b, f: (b, f.assign(id=[f"Z{i:05d}" for i in range(len(f))])), AlignmentError, r"The intersection of bank \(400 rows\) and fintech_1 \(360 rows\) has 0 customers; at least 100 are required", "fintech_1"),
    ("tiny intersection", lambda b, f: (b, f.assign(id=[f"C{i:05d}" if i < 20 else f"Z{i:05d}" for i in range(len(f))])), AlignmentError, r"has 20 customers; at least 100 are required", "fintech_1"),
    ("too few shared rows to train", lambda b, f: (b, f), AlignmentError, r"bank: only 210 shared customers are left for training; the minimum batch size is 256", "bank"),
]


def _format(pattern, fin):
    return pattern.format(f0=fin.loc[0, "id"], f2=fin.loc[2, "id"], f7=fin.loc[7, "id"])


def _fit(bank, fin, **params):
    from riskfed.models.estimator import VerticalLogisticRegression

    model = VerticalLogisticRegression(
        **({"key_bits": 512, "allow_insecure_key": True, "psi": "keyed-hash", "n_jobs": 1} | params)
    )
    return model.fit(bank, [fin], id_column="id", label_column="y")


# -- Python API ------------------------------------------------------------------------
@pytest.mark.parametrize("name, mutate, error, pattern, party, column", CASES, ids=[c[0] for c in CASES])
def test_api_data_errors_name_party_column_and_rows(tiny_bank, tiny_fintech, name, mutate, error, pattern, party, column):
    bank, fin = mutate(tiny_bank, tiny_fintech)
    with pytest.raises(error, match=_format(pattern, tiny_fintech)) as info:
        _fit(bank, fin)
    err = info.value
    assert (err.party, err.column) == (party, column)
    if "row(s)" in str(err) or "rows " in str(err):
        assert err.rows and len(err.rows) <= 5


@pytest.mark.parametrize("name, mutate, error, pattern, party", ALIGNMENT_CASES, ids=[c[0] for c in ALIGNMENT_CASES])
def test_api_intersection_errors(tiny_bank, tiny_fintech, name, mutate, error, pattern, party):
    bank, fin = mutate(tiny_bank, tiny_fintech)
    with pytest.raises(error, match=pattern) as info:
        _fit(bank, fin)
    assert info.value.party == party


def test_api_intersection_with_a_single_class(tiny_bank, tiny_fintech):
    bank = tiny_bank.copy()
    shared = bank["id"].isin(tiny_fintech["id"])
    bank.loc[shared, "y"] = 0  # defaulters only among customers the fintech does not know
    with pytest.raises(AlignmentError, match=r"bank: the 300 shared customers include 0 defaulter\(s\) and 300 non-defaulter\(s\)") as info:
        _fit(bank, tiny_fintech)
    assert info.value.party == "bank"


def test_api_key_under_2048_without_flag(tiny_bank, tiny_fintech):
    with pytest.raises(InsecureKeyError, match="A 1024-bit Paillier key is below the 2048-bit floor"):
        _fit(tiny_bank, tiny_fintech, key_bits=1024, allow_insecure_key=False)


# -- CLI -------------------------------------------------------------------------------
def _write_inputs(tmp_path, bank, fin):
    src = tmp_path / "in"
    src.mkdir()
    bank.to_csv(src / "bank.csv", index=False)
    fin.to_csv(src / "fintech.csv", index=False)
    return src / "bank.csv", src / "fintech.csv"


def _tree(path):
    return {p.relative_to(path): (p.read_bytes() if p.is_file() else None) for p in sorted(path.rglob("*"))}


def _run_cli(tmp_path, capsys, argv, *, out):
    """Run the CLI with --out pre-filled by an earlier run; return (code, stderr)."""
    out.mkdir()
    (out / "report.json").write_text('{"from": "an earlier run"}')
    before = _tree(tmp_path)
    code = main(argv)
    captured = capsys.readouterr()
    assert code != 0
    text = captured.out + captured.err
    assert "Traceback" not in text and 'File "' not in text
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert _tree(tmp_path) == before  # nothing written into --out, no staging leftovers
    return code, lines[0]


def _run_args(bank_path, fin_path, out, *extra):
    return [
        "run", "--bank", str(bank_path), "--fintech", str(fin_path), "--id-column", "id", "--label-column", "y",
        "--out", str(out), "--psi", "keyed-hash", "--n-jobs", "1", "--quiet", *extra,
    ]  # fmt: skip


TEST_KEY = ("--key-bits", "512", "--insecure-test-key")


@pytest.mark.parametrize(
    "name, mutate, error, pattern, party, column", CASES + [c[:5] + (None,) for c in ALIGNMENT_CASES], ids=[c[0] for c in CASES + ALIGNMENT_CASES]
)
def test_cli_bad_data(tmp_path, capsys, tiny_bank, tiny_fintech, name, mutate, error, pattern, party, column):
    bank, fin = mutate(tiny_bank, tiny_fintech)
    bank_path, fin_path = _write_inputs(tmp_path, bank, fin)
    out = tmp_path / "out"
    code, line = _run_cli(tmp_path, capsys, _run_args(bank_path, fin_path, out, *TEST_KEY), out=out)
    assert code == 2
    # The CLI prints the API's message, naming the same party, column and rows.
    assert re.search(_format(pattern, tiny_fintech), line), line
    assert party in line
    if column is not None:
        assert f"'{column}'" in line


@pytest.mark.parametrize("extra", [("--key-bits", "1024"), ("--key-bits", "512")])
def test_cli_key_under_2048_without_test_flag(tmp_path, capsys, tiny_bank, tiny_fintech, extra):
    bank_path, fin_path = _write_inputs(tmp_path, tiny_bank, tiny_fintech)
    out = tmp_path / "out"
    _, line = _run_cli(tmp_path, capsys, _run_args(bank_path, fin_path, out, *extra), out=out)
    assert f"A {extra[1]}-bit Paillier key is below the 2048-bit floor" in line
    assert "--insecure-test-key" in line


def _write(path, content: bytes):
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    "setup, pattern",
    [
        (lambda p: _write(p.with_suffix(".xlsx"), b"PK\x03\x04"), r"bank: '.*bank\.xlsx' is neither \.csv nor \.parquet"),
        (lambda p: p.with_name("missing.csv"), r"bank: file '.*missing\.csv' does not exist"),
        (lambda p: _write(p.with_suffix(".parquet"), b"not parquet"), r"bank: cannot read '.*bank\.parquet'"),
        (lambda p: _write(p.with_name("empty.csv"), b""), r"bank: cannot read '.*empty\.csv'"),
    ],
    ids=["wrong extension", "missing file", "corrupt parquet", "empty csv"],
)
def test_cli_unreadable_bank_file(tmp_path, capsys, tiny_bank, tiny_fintech, setup, pattern):
    bank_path, fin_path = _write_inputs(tmp_path, tiny_bank, tiny_fintech)
    bad = setup(bank_path)
    out = tmp_path / "out"
    _, line = _run_cli(tmp_path, capsys, _run_args(bad, fin_path, out, *TEST_KEY), out=out)
    assert re.search(pattern, line), line


def test_cli_unreadable_fintech_file(tmp_path, capsys, tiny_bank, tiny_fintech):
    bank_path, _ = _write_inputs(tmp_path, tiny_bank, tiny_fintech)
    out = tmp_path / "out"
    _, line = _run_cli(tmp_path, capsys, _run_args(bank_path, tmp_path / "in" / "fintech.json", out, *TEST_KEY), out=out)
    assert "fintech_1: " in line and "is neither .csv nor .parquet" in line


def test_cli_fresh_out_dir_is_not_created_on_error(tmp_path, capsys, tiny_bank, tiny_fintech):
    bank_path, fin_path = _write_inputs(tmp_path, tiny_bank.drop(columns="y"), tiny_fintech)
    out = tmp_path / "fresh" / "out"
    code = main(_run_args(bank_path, fin_path, out, *TEST_KEY))
    assert code == 2
    assert not out.exists()
    assert "error: bank: the label column 'y'" in capsys.readouterr().err


# -- scoring ---------------------------------------------------------------------------
def test_cli_score_applicants_missing_a_model_feature(tmp_path, capsys, saved_model_dir, small_pilot):
    applicants = small_pilot.applicants.drop(columns="debt_to_income")
    applicants.to_csv(tmp_path / "applicants.csv", index=False)
    small_pilot.fintechs[0].to_csv(tmp_path / "fintech.csv", index=False)
    before = _tree(tmp_path)
    scores = tmp_path / "scores.csv"
    code = main(
        ["score", "--model", str(saved_model_dir), "--bank", str(tmp_path / "applicants.csv"),
         "--fintech", str(tmp_path / "fintech.csv"), "--out", str(scores), "--quiet", "--chunk-rows", "50"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: bank: the feature column 'debt_to_income' is not in the table")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not scores.exists() and _tree(tmp_path) == before


def test_api_score_applicants_missing_a_model_feature(fitted_federation, small_pilot):
    with pytest.raises(MissingColumnError, match="bank: the feature column 'region' is not in the table") as info:
        fitted_federation.predict_proba(small_pilot.applicants.drop(columns="region"), list(small_pilot.fintechs))
    assert (info.value.party, info.value.column) == ("bank", "region")


def test_cli_score_with_a_missing_model_directory(tmp_path, capsys, small_pilot):
    small_pilot.applicants.to_csv(tmp_path / "a.csv", index=False)
    code = main(
        ["score", "--model", str(tmp_path / "nope"), "--bank", str(tmp_path / "a.csv"), "--fintech",
         str(tmp_path / "a.csv"), "--out", str(tmp_path / "s.csv"), "--quiet"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: bank: no model part at") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s.csv").exists()


def test_every_error_here_is_a_riskfed_error():
    for case in CASES + ALIGNMENT_CASES:
        assert issubclass(case[2], RiskfedError)
    assert issubclass(DataValidationError, RiskfedError)


# -- repeated column names in files ------------------------------------------------------
def test_cli_names_the_file_with_a_repeated_column(tmp_path, capsys, tiny_bank, tiny_fintech):
    bank_path, fin_path = _write_inputs(tmp_path, tiny_bank, tiny_fintech)
    text = bank_path.read_text().splitlines()
    assert text[0] == "id,y,income,utilisation,region"
    bank_path.write_text("\n".join(["id,y,income,income,region", *text[1:]]) + "\n")
    out = tmp_path / "out"
    code, line = _run_cli(tmp_path, capsys, _run_args(bank_path, fin_path, out, *TEST_KEY), out=out)
    assert code == 2
    assert re.fullmatch(r"error: bank: column name\(s\) 'income' appear more than once in '.*in/bank\.csv'; give each column its own name .*", line), line


def test_a_real_column_named_income_1_is_a_feature(tmp_path, capsys, tiny_bank, tiny_fintech):
    from riskfed.data.io import read_table
    from riskfed.data.schema import validate_table

    bank = tiny_bank.assign(**{"income.1": tiny_bank["income"] * 2})
    bank_path, fin_path = _write_inputs(tmp_path, bank, tiny_fintech)
    table = validate_table(read_table(bank_path, party="bank", id_column="id"), party="bank", id_column="id", label_column="y")
    assert table.feature_names == ["income", "utilisation", "region", "income.1"]
    # The CLI reads it too and stops only later, at training (these tables are too small).
    out = tmp_path / "out"
    _, line = _run_cli(tmp_path, capsys, _run_args(bank_path, fin_path, out, *TEST_KEY), out=out)
    assert "only 210 shared customers are left for training" in line and "appear more than once" not in line


# -- damaged or edited model parts -------------------------------------------------------------
def _tampered_model(saved_model_dir, tmp_path, party, edit):
    import json
    import shutil

    model = tmp_path / "model"
    shutil.copytree(saved_model_dir, model)
    path = model / party / "model.json"
    part = json.loads(path.read_text())
    edit(part)
    path.write_text(json.dumps(part))  # NaN and Infinity written as JSON allows them
    return model


def _put(*path_and_value):
    *path, value = path_and_value

    def edit(part):
        target = part
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value(target[path[-1]]) if callable(value) else value

    return edit


MODEL_PART_CASES = [
    ("nan bank weight", "bank", _put("weights", 0, float("nan")), r"weights\[0\] must be finite \(it is NaN or infinite\)"),
    ("infinite fintech weight", "fintech_1", _put("weights", 2, float("inf")), r"weights\[2\] must be finite"),
    ("nan intercept", "bank", _put("intercept", float("nan")), r"intercept must be finite"),
    ("absurd weight", "fintech_1", _put("weights", 1, 1e300), r"weights\[1\] must be ≤ 1000000\.0"),
    ("text intercept", "bank", _put("intercept", "-1.2"), r"intercept must be a number"),
    ("one weight short", "fintech_1", _put("weights", lambda w: w[:-1]), r"weights must have one weight per feature \(\d+\); it has \d+"),
    ("feature names of another model", "bank", _put("feature_names", lambda n: n[::-1]), r"feature_names must be the features the preprocessing produces"),
    ("zero scale", "bank", _put("preprocessing", "scale", 1, 0.0), r"preprocessing\.scale\[1\] must be > 0"),
    ("nan median", "fintech_1", _put("preprocessing", "medians", "monthly_spend", float("nan")), r"preprocessing\.medians\.monthly_spend must be finite"),
    ("mean of another length", "bank", _put("preprocessing", "mean", lambda m: m + [0.0]), r"preprocessing\.mean must have one value per model feature"),
    ("levels of a missing category", "bank", _put("preprocessing", "levels", lambda lv: {}), r"preprocessing\.levels must list the levels of each categorical feature"),
    ("preprocessing not a dict", "fintech_1", _put("preprocessing", [1, 2]), r"preprocessing must be an object"),
    ("nan fallback weight", "bank", _put("fallback", "weights", 3, float("nan")), r"fallback\.weights\[3\] must be finite"),
    ("negative pdo", "bank", _put("scorecard", "pdo", -20.0), r"scorecard\.pdo must be > 0"),
    ("infinite base odds", "bank", _put("scorecard", "base_odds", float("inf")), r"scorecard\.base_odds must be finite"),
    ("a fintech name that leaves the directory", "bank", _put("fintechs", ["../../etc"]), r"fintechs\[0\] must be a plain identifier"),
    ("another fintech's part", "fintech_1", _put("party", "fintech_2"), r"party must be 'fintech_1', whose part this is"),
    ("unknown normalisation", "bank", _put("id_normalization", "strip", "yes"), r"id_normalization\.strip must be true or false"),
]


@pytest.mark.parametrize("case, party, edit, message", MODEL_PART_CASES, ids=[c[0] for c in MODEL_PART_CASES])
def test_api_damaged_model_parts_are_named(saved_model_dir, tmp_path, case, party, edit, message):
    from riskfed.models.artifact import FederatedModel

    model = _tampered_model(saved_model_dir, tmp_path, party, edit)
    with pytest.raises(DataValidationError, match=rf"{party}: model part '.*{party}/model\.json': " + message) as info:
        FederatedModel.load(model)
    assert info.value.party == party


def test_api_deeply_nested_model_part(saved_model_dir, tmp_path):
    from riskfed.models.artifact import FederatedModel

    model = _tampered_model(saved_model_dir, tmp_path, "bank", lambda part: None)
    (model / "bank" / "model.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DataValidationError, match=r"bank: '.*bank/model\.json' is not valid JSON \(nested 100,000 levels deep"):
        FederatedModel.load(model)


def test_cli_score_refuses_a_nan_weight(tmp_path, capsys, saved_model_dir, small_pilot):
    model = _tampered_model(saved_model_dir, tmp_path, "fintech_1", _put("weights", 0, float("nan")))
    small_pilot.applicants.to_csv(tmp_path / "applicants.csv", index=False)
    small_pilot.fintechs[0].to_csv(tmp_path / "fintech.csv", index=False)
    before = _tree(tmp_path)
    scores = tmp_path / "scores.csv"
    code = main(
        ["score", "--model", str(model), "--bank", str(tmp_path / "applicants.csv"),
         "--fintech", str(tmp_path / "fintech.csv"), "--out", str(scores), "--quiet"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert re.match(r"error: fintech_1: model part '.*fintech_1/model\.json': weights\[0\] must be finite", err), err
    assert not scores.exists() and _tree(tmp_path) == before


def _positions(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _positions(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _positions(v, (*prefix, i))


@pytest.mark.parametrize("party", ["bank", "fintech_1"])
# A tiny but positive scale may still overflow exp() in the sigmoid (to a score of 0 or 1,
# which the assertion below accepts as finite).
@pytest.mark.filterwarnings("ignore:overflow encountered in exp:RuntimeWarning")
@settings(max_examples=60, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzzed_model_parts_score_or_fail_typed(saved_model_dir, small_pilot, party, data):
    """Any one field of a part replaced or removed: it scores (finite results) or a typed error says why."""
    import json
    import shutil
    import tempfile

    from riskfed.models.artifact import FederatedModel
    from riskfed.scoring.score import score_applicants

    values = st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.floats() | st.text(max_size=5) | st.lists(st.floats(), max_size=3) | st.just({})
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model"
        shutil.copytree(saved_model_dir, model)
        path = model / party / "model.json"
        part = json.loads(path.read_text())
        where = data.draw(st.sampled_from(list(_positions(part))[1:]))
        parent = part
        for key in where[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[where[-1]]
        else:
            parent[where[-1]] = data.draw(values)
        path.write_text(json.dumps(part))
        try:
            loaded = FederatedModel.load(model)
            out = score_applicants(loaded, small_pilot.applicants.head(30), list(small_pilot.fintechs))
        except RiskfedError:
            return  # typed, with a message
        assert np.isfinite(out["probability_of_default"]).all()
