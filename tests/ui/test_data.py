"""Data page helpers: pilots, sample data, uploads, validation, summaries."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from riskfed.errors import ConfigurationError, DataValidationError, MissingColumnError, SchemaError
from riskfed.ui import data as uidata

REPO = Path(__file__).resolve().parents[2]


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def _bank(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame(
        {"id": [f"00{k}" for k in range(n)], "y": [k % 2 for k in range(n)], "income": [float(10 + k) for k in range(n)]}
    )


def _fintech(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"00{k}" for k in range(n)], "spend": [float(k) for k in range(n)]})


def test_generated_pilot_bundle(ui_bundle):
    assert ui_bundle.source == "pilot" and ui_bundle.synthetic
    assert ui_bundle.bank.n_rows == 2000
    assert ui_bundle.fintech_names == ["fintech_1"]
    assert ui_bundle.id_column == "customer_id" and ui_bundle.label_column == "default"
    assert ui_bundle.applicants is not None and ui_bundle.applicant_outcomes is not None
    assert "2,000 bank customers" in ui_bundle.description


def test_sample_bundle_loads_the_shipped_files():
    bundle = uidata.load_sample_bundle(REPO / "sample_data")
    assert bundle.source == "sample"
    assert bundle.bank.n_rows == 2000
    assert len(bundle.fintechs) == 1
    assert bundle.applicants is not None


def test_missing_sample_folder_names_the_regenerate_command(tmp_path):
    with pytest.raises(DataValidationError, match="riskfed generate --customers 2000 --seed 7"):
        uidata.load_sample_bundle(tmp_path)


def test_read_upload_keeps_id_text_and_reads_parquet():
    frame = uidata.read_upload("bank.csv", _csv(_bank()), party="bank", id_column="id")
    assert frame["id"].tolist()[0] == "000"  # leading zeros survive
    buffer = io.BytesIO()
    _bank().to_parquet(buffer, index=False)
    assert len(uidata.read_upload("bank.parquet", buffer.getvalue(), party="bank")) == 6


def test_read_upload_rejects_other_formats_and_broken_files():
    with pytest.raises(DataValidationError, match=r"bank: 'bank\.xlsx' is neither \.csv nor \.parquet"):
        uidata.read_upload("bank.xlsx", b"whatever", party="bank")
    with pytest.raises(DataValidationError, match=r"bank: cannot read 'bank\.parquet'"):
        uidata.read_upload("bank.parquet", b"not a parquet file", party="bank")


def test_build_bundle_from_frames():
    bundle = uidata.build_bundle(_bank(), [_fintech()], id_column="id", label_column="y", source="upload", description="x")
    assert bundle.bank.n_rows == 6 and bundle.fintechs[0].party == "fintech_1"
    assert bundle.fintech_labels == ("Fintech 1",)


def test_duplicate_ids_are_reported_on_the_data_page():
    bank = _bank()
    bank.loc[3, "id"] = "001"
    with pytest.raises(SchemaError, match=r"bank: 1 id\(s\) in column 'id' occur more than once"):
        uidata.build_bundle(bank, [_fintech()], id_column="id", label_column="y", source="upload", description="x")


def test_label_not_zero_one():
    bank = _bank()
    bank.loc[2, "y"] = 7
    with pytest.raises(SchemaError, match=r"bank: column 'y' must hold 0 \(no default\) or 1 \(default\)"):
        uidata.build_bundle(bank, [_fintech()], id_column="id", label_column="y", source="upload", description="x")


def test_fintech_without_the_id_column():
    with pytest.raises(MissingColumnError, match=r"fintech_1: the id column 'customer' is not in the table"):
        uidata.build_bundle(
            _bank(), [_fintech()], id_column="id", label_column="y", fintech_id_columns=["customer"],
            source="upload", description="x",
        )


def test_no_fintech_table():
    with pytest.raises(ConfigurationError, match="at least one fintech table"):
        uidata.build_bundle(_bank(), [], id_column="id", label_column="y", source="upload", description="x")


@pytest.mark.parametrize(
    ("columns", "id_guess", "label_guess"),
    [
        (["id", "y", "x0"], "id", "y"),
        (["Customer_ID", "Default", "age"], "Customer_ID", "Default"),
        (["ref", "outcome", "age"], None, None),
    ],
)
def test_column_guesses(columns, id_guess, label_guess):
    assert uidata.guess_id_column(columns) == id_guess
    assert uidata.guess_label_column(columns, id_column=id_guess) == label_guess


def test_column_summary_and_overview(ui_bundle):
    summary = uidata.column_summary(ui_bundle.bank_frame, ui_bundle.bank)
    roles = dict(zip(summary["column"], summary["role"]))
    assert roles["customer_id"] == "id" and roles["default"] == "label" and roles["age"] == "feature"
    kinds = dict(zip(summary["column"], summary["type"]))
    assert kinds["region"] == "categorical" and kinds["annual_income"] == "numeric"
    assert summary["missing"].sum() == ui_bundle.bank_frame.isna().sum().sum()

    overview = uidata.party_overview(ui_bundle)
    assert overview["party"].tolist() == ["Bank", "Fintech 1"]
    assert overview.loc[0, "rows"] == 2000
    assert 0.0 < overview.loc[0, "default_rate"] < 0.3
    assert pd.isna(overview.loc[1, "default_rate"])
