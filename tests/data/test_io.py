"""Reading party tables, streaming chunks, and all-or-nothing output directories."""

from __future__ import annotations

import os
import stat

import numpy as np
import pandas as pd
import pytest

from riskfed.data.io import (
    atomic_output_dir,
    count_rows,
    iter_table_chunks,
    read_json,
    read_table,
    table_format,
    write_json,
    write_table,
)
from riskfed.data.schema import validate_table
from riskfed.errors import DataValidationError, SchemaError


@pytest.fixture
def frame():
    return pd.DataFrame({"id": ["00123", "00045", "9"], "x": [1.5, np.nan, -2.0], "c": ["a", "b", None]})


def test_csv_keeps_leading_zeros_of_ids(tmp_path, frame):
    path = write_table(frame, tmp_path / "t.csv")
    assert read_table(path, id_column="id")["id"].tolist() == ["00123", "00045", "9"]
    # Without naming the id column pandas would read numbers (why the id is read as text).
    assert read_table(path)["id"].tolist() == [123, 45, 9]


@pytest.mark.parametrize("suffix", [".parquet", ".pq", ".PARQUET"])
def test_parquet_round_trip(tmp_path, frame, suffix):
    path = write_table(frame, tmp_path / f"t{suffix}") if suffix != ".PARQUET" else tmp_path / f"t{suffix}"
    if suffix == ".PARQUET":
        frame.to_parquet(path, index=False)
    back = read_table(path, id_column="id")
    pd.testing.assert_frame_equal(back, frame)
    assert count_rows(path) == 3


def test_wrong_extension(tmp_path, frame):
    path = tmp_path / "bank.xlsx"
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(DataValidationError, match=r"bank: '.*bank.xlsx' is neither .csv nor .parquet") as info:
        read_table(path, party="bank")
    assert info.value.party == "bank"
    with pytest.raises(DataValidationError, match="neither .csv nor .parquet"):
        table_format("scores.txt")


def test_missing_file(tmp_path):
    with pytest.raises(DataValidationError, match=r"fintech_1: file '.*nope.csv' does not exist"):
        read_table(tmp_path / "nope.csv", party="fintech_1")
    with pytest.raises(DataValidationError, match="does not exist"):
        list(iter_table_chunks(tmp_path / "nope.parquet", party="bank"))


@pytest.mark.parametrize(
    "name, content",
    [("bank.parquet", b"this is not parquet"), ("bank.csv", b""), ("bank.csv", b'id,x\n1,"2\n3,4\n')],
)
def test_unreadable_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataValidationError, match=r"bank: cannot read '.*bank\.") as info:
        read_table(path, party="bank")
    assert info.value.party == "bank"


def test_directory_instead_of_a_file(tmp_path):
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(DataValidationError, match="does not exist"):
        read_table(tmp_path / "dir.csv", party="bank")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_chunks_cover_the_table_in_order(tmp_path, suffix):
    df = pd.DataFrame({"id": [f"{i:04d}" for i in range(23)], "x": np.arange(23.0)})
    path = write_table(df, tmp_path / f"a{suffix}")
    chunks = list(iter_table_chunks(path, chunk_rows=5, id_column="id"))
    assert [len(c) for c in chunks] == [5, 5, 5, 5, 3]
    joined = pd.concat(chunks, ignore_index=True)
    assert joined["id"].tolist() == df["id"].tolist()
    assert joined["x"].tolist() == df["x"].tolist()


def test_atomic_output_dir_success_replaces_only_produced_files(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    (out / "report.json").write_text("old")
    (out / "model").mkdir()
    (out / "model" / "stale.json").write_text("old model")
    with atomic_output_dir(out) as stage:
        assert stage != out and not (stage / "keep.txt").exists()
        (stage / "report.json").write_text("new")
        (stage / "model").mkdir()
        (stage / "model" / "bank.json").write_text("{}")
    assert (out / "keep.txt").read_text() == "mine"
    assert (out / "report.json").read_text() == "new"
    assert sorted(p.name for p in (out / "model").iterdir()) == ["bank.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging leftovers


def test_atomic_output_dir_failure_changes_nothing(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text("old")
    before = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_output_dir(out) as stage:
            (stage / "report.json").write_text("half")
            raise RuntimeError("boom")
    after = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_atomic_output_dir_failure_creates_no_directory(tmp_path):
    out = tmp_path / "fresh"
    with pytest.raises(KeyboardInterrupt):
        with atomic_output_dir(out):
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_json_helpers_and_private_files(tmp_path):
    data = {"a": np.int64(3), "b": np.float32(0.5), "c": np.arange(3), "p": tmp_path}
    path = write_json(data, tmp_path / "x.json")
    assert read_json(path) == {"a": 3, "b": 0.5, "c": [0, 1, 2], "p": str(tmp_path)}
    secret = write_json({"k": 1}, tmp_path / "secret.json", private=True)
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    with pytest.raises(TypeError, match="object is not JSON serialisable"):
        write_json({"o": object()}, tmp_path / "bad.json")


# -- repeated column names: refused from the raw header, never renamed -----------------------
DUPLICATE = r"bank: column name\(s\) 'income' appear more than once in '.*{name}'; give each column its own name"


def test_a_repeated_csv_column_is_refused_not_renamed(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("id,income,age,income\n1,10,30,11\n2,20,40,21\n")
    # What pandas alone would do: rename the copy and carry on.
    assert pd.read_csv(path).columns.tolist() == ["id", "income", "age", "income.1"]
    with pytest.raises(SchemaError, match=DUPLICATE.format(name=r"dup\.csv")) as info:
        read_table(path, party="bank", id_column="id")
    assert (info.value.party, info.value.column) == ("bank", "income")
    with pytest.raises(SchemaError, match=DUPLICATE.format(name=r"dup\.csv")):
        list(iter_table_chunks(path, chunk_rows=1, party="bank", id_column="id"))


def test_every_repeated_name_is_listed(tmp_path):
    path = tmp_path / "dups.csv"
    path.write_text('id,"a",b,a,b,b,"x,y","x,y"\n1,2,3,4,5,6,7,8\n')
    with pytest.raises(SchemaError, match=r"fintech_1: column name\(s\) 'a', 'b', 'x,y' appear more than once"):
        read_table(path, party="fintech_1")


def test_a_real_column_named_like_a_pandas_copy_is_kept(tmp_path):
    path = tmp_path / "real.csv"
    path.write_text("id,income,income.1,,\n1,10,11,,\n2,20,21,,\n")
    frame = read_table(path, party="bank", id_column="id")
    # 'income.1' is the file's own name; empty names are pandas' 'Unnamed: k', not duplicates.
    assert frame.columns.tolist() == ["id", "income", "income.1", "Unnamed: 3", "Unnamed: 4"]
    assert frame["income.1"].tolist() == [11, 21]
    assert [c.columns.tolist()[:3] for c in iter_table_chunks(path, chunk_rows=1, id_column="id")] == [["id", "income", "income.1"]] * 2


def test_a_repeated_parquet_column_gets_the_same_message(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "dup.parquet"
    pq.write_table(pa.table([pa.array(["1"]), pa.array([10]), pa.array([11])], names=["id", "income", "income"]), path)
    with pytest.raises(SchemaError, match=DUPLICATE.format(name=r"dup\.parquet")):
        read_table(path, party="bank")
    with pytest.raises(SchemaError, match=DUPLICATE.format(name=r"dup\.parquet")):
        list(iter_table_chunks(path, party="bank"))


def test_a_repeated_dataframe_column_names_the_source():
    frame = pd.DataFrame([[1, 10, 11]], columns=["id", "income", "income"])
    with pytest.raises(SchemaError, match=DUPLICATE.format(name="bank.csv")):
        validate_table(frame, party="bank", id_column="id", source="bank.csv")
    with pytest.raises(SchemaError, match=r"bank: column name\(s\) 'income' appear more than once in the table"):
        validate_table(frame, party="bank", id_column="id")


def test_read_json_bounds_nesting(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 50_000 + "]" * 50_000)
    with pytest.raises(DataValidationError, match=r"bank: '.*deep\.json' is not valid JSON \(nested 50,000 levels deep"):
        read_json(path, party="bank")
    path.write_text('{"a": [1, {"b": "[[[["}]}')
    assert read_json(path) == {"a": [1, {"b": "[[[["}]}
