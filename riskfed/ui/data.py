"""The Data page's work: sample data, generated pilots, uploads, validation, summaries.

Every way of getting data ends in a :class:`DataBundle`: the raw frames (for previews)
plus the validated :class:`~riskfed.data.schema.PartyTable` of each party, checked the
same way the training session checks them, and with the id normalisation applied once
so duplicate ids are reported here, on the Data page, rather than mid-training.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from riskfed.alignment.normalize import IdNormalization
from riskfed.data.io import read_table
from riskfed.data.schema import PartyTable, validate_table
from riskfed.data.synthetic import generate_pilot
from riskfed.errors import ConfigurationError, DataValidationError
from riskfed.protocol.messages import BANK, fintech_name

PILOT_ID_COLUMN = "customer_id"
PILOT_LABEL_COLUMN = "default"
UPLOAD_TYPES = ("csv", "parquet")

# Column names analysts commonly use, most specific first; the pickers start here.
_ID_NAMES = ("customer_id", "client_id", "applicant_id", "account_id", "cust_id", "id", "customer", "client")
_LABEL_NAMES = ("default", "is_default", "default_flag", "defaulted", "bad", "bad_flag", "target", "label", "y")


@dataclass(frozen=True)
class DataBundle:
    """Validated data of one analysis.

    Attributes
    ----------
    source:
        ``"pilot"`` (generated here), ``"sample"`` (shipped files) or ``"upload"``.
    description:
        One line for the page header, e.g. "Generated pilot: 5,000 customers …".
    bank, fintechs:
        The validated party tables (fintechs named ``fintech_1``, ``fintech_2``… in order).
    bank_frame, fintech_frames:
        The raw frames, for previews.
    fintech_labels:
        How to call each fintech on screen (file name for uploads).
    applicants, applicant_outcomes:
        New applicants to score and, for synthetic data only, their simulated outcomes.
    synthetic:
        ``True`` when the data is synthetic, so a centralised reference is a fair pilot
        yardstick.
    """

    source: str
    description: str
    bank: PartyTable
    fintechs: tuple[PartyTable, ...]
    bank_frame: pd.DataFrame
    fintech_frames: tuple[pd.DataFrame, ...]
    fintech_labels: tuple[str, ...] = ()
    applicants: pd.DataFrame | None = None
    applicant_outcomes: pd.DataFrame | None = None
    synthetic: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def id_column(self) -> str:
        return self.bank.id_column

    @property
    def label_column(self) -> str:
        return str(self.bank.label_column)

    @property
    def fintech_names(self) -> list[str]:
        return [t.party for t in self.fintechs]

    @property
    def fintech_tables(self) -> dict[str, PartyTable]:
        return {t.party: t for t in self.fintechs}


def check_ids(table: PartyTable) -> None:
    """Apply the alignment's id normalisation, so duplicate or empty ids fail here.

    Raises
    ------
    SchemaError
        Naming the party, the id column and a few offending rows.
    """
    IdNormalization().apply(table.ids, party=table.party, column=table.id_column)


def build_bundle(
    bank: pd.DataFrame,
    fintechs: Sequence[pd.DataFrame],
    *,
    id_column: str,
    label_column: str,
    fintech_id_columns: Sequence[str] | None = None,
    source: str,
    description: str,
    fintech_labels: Sequence[str] | None = None,
    applicants: pd.DataFrame | None = None,
    applicant_outcomes: pd.DataFrame | None = None,
    synthetic: bool = False,
) -> DataBundle:
    """Validate every party's frame and bundle them.

    Raises
    ------
    DataValidationError
        The first problem found, with ``party`` set so the page can show it next to
        that party's input.
    """
    if not fintechs:
        raise ConfigurationError("Add at least one fintech table: federated training needs a partner.")
    id_cols = list(fintech_id_columns) if fintech_id_columns else [id_column] * len(fintechs)
    bank_table = validate_table(bank, party=BANK, id_column=id_column, label_column=label_column)
    check_ids(bank_table)
    tables = []
    for k, (frame, col) in enumerate(zip(fintechs, id_cols)):
        table = validate_table(frame, party=fintech_name(k + 1), id_column=col)
        check_ids(table)
        tables.append(table)
    labels = tuple(fintech_labels) if fintech_labels else tuple(f"Fintech {k + 1}" for k in range(len(fintechs)))
    return DataBundle(
        source=source,
        description=description,
        bank=bank_table,
        fintechs=tuple(tables),
        bank_frame=bank.reset_index(drop=True),
        fintech_frames=tuple(f.reset_index(drop=True) for f in fintechs),
        fintech_labels=labels,
        applicants=applicants,
        applicant_outcomes=applicant_outcomes,
        synthetic=synthetic,
    )


def generate_pilot_bundle(customers: int, *, overlap: float, fintechs: int, seed: int) -> DataBundle:
    """Generate a synthetic pilot (see :func:`riskfed.data.synthetic.generate_pilot`)."""
    pilot = generate_pilot(int(customers), overlap=float(overlap), fintechs=int(fintechs), seed=int(seed))
    description = (
        f"Generated pilot: {int(customers):,} bank customers, {overlap:.0%} known to the "
        f"fintech{'s' if fintechs > 1 else ''}, {int(fintechs)} fintech{'s' if fintechs > 1 else ''}, seed {int(seed)}"
    )
    return build_bundle(
        pilot.bank,
        list(pilot.fintechs),
        id_column=pilot.id_column,
        label_column=pilot.label_column,
        source="pilot",
        description=description,
        applicants=pilot.applicants,
        applicant_outcomes=pilot.applicant_outcomes,
        synthetic=True,
    )


def _first_existing(directory: Path, stem: str) -> Path | None:
    for ext in (".parquet", ".csv"):
        path = directory / f"{stem}{ext}"
        if path.is_file():
            return path
    return None


def load_sample_bundle(directory: str | Path) -> DataBundle:
    """Load the shipped sample (``bank``, ``fintech`` or ``fintech_k``, ``applicants``).

    Raises
    ------
    DataValidationError
        If the folder does not hold a sample (with the command that regenerates it).
    """
    directory = Path(directory)
    bank_path = _first_existing(directory, "bank")
    fintech_paths = [p for p in [_first_existing(directory, "fintech")] if p is not None]
    k = 1
    while (path := _first_existing(directory, f"fintech_{k}")) is not None:
        fintech_paths.append(path)
        k += 1
    if bank_path is None or not fintech_paths:
        raise DataValidationError(
            f"No sample data in {str(directory)!r}. Create it with: "
            "riskfed generate --customers 2000 --seed 7 --out sample_data"
        )
    bank = read_table(bank_path, party=BANK, id_column=PILOT_ID_COLUMN)
    fintechs = [read_table(p, party=fintech_name(i + 1), id_column=PILOT_ID_COLUMN) for i, p in enumerate(fintech_paths)]
    applicants_path = _first_existing(directory, "applicants")
    outcomes_path = _first_existing(directory, "applicant_outcomes")
    applicants = read_table(applicants_path, party=BANK, id_column=PILOT_ID_COLUMN) if applicants_path else None
    outcomes = read_table(outcomes_path, party=BANK, id_column=PILOT_ID_COLUMN) if outcomes_path else None
    return build_bundle(
        bank,
        fintechs,
        id_column=PILOT_ID_COLUMN,
        label_column=PILOT_LABEL_COLUMN,
        source="sample",
        description=f"Sample data shipped with riskfed: {len(bank):,} bank customers, {len(fintechs)} fintech file(s)",
        applicants=applicants,
        applicant_outcomes=outcomes,
        synthetic=True,
    )


def read_upload(name: str, content: bytes, *, party: str, id_column: str | None = None) -> pd.DataFrame:
    """Read an uploaded CSV or Parquet file with riskfed's own reader.

    The bytes go to a private temporary file that is removed at once, so the reader's
    rules (id column kept as text, so leading zeros survive) and its typed errors are
    the same as on the command line.

    Raises
    ------
    DataValidationError
        For an unsupported extension or an unreadable file, naming the party.
    """
    suffix = Path(name).suffix.lower()
    if suffix.lstrip(".") not in UPLOAD_TYPES:
        raise DataValidationError(f"{party}: {name!r} is neither .csv nor .parquet.", party=party)
    fd, tmp = tempfile.mkstemp(suffix=suffix, prefix="riskfed-upload-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
        frame = read_table(tmp, party=party, id_column=id_column)
    except DataValidationError as exc:
        # The temporary path means nothing to the analyst: name their file instead.
        raise DataValidationError(str(exc).replace(repr(tmp), repr(name)), party=party) from None
    finally:
        os.unlink(tmp)
    if len(frame.columns) == 0:
        raise DataValidationError(f"{party}: {name!r} has no columns.", party=party)
    return frame


def guess_column(columns: Sequence[str], candidates: Sequence[str], *, exclude: Sequence[str] = ()) -> str | None:
    """The first column whose name (case-insensitive) is a known id or label name."""
    lookup = {str(c).strip().lower(): c for c in columns if c not in set(exclude)}
    for name in candidates:
        if name in lookup:
            return lookup[name]
    return None


def guess_id_column(columns: Sequence[str]) -> str | None:
    return guess_column(columns, _ID_NAMES)


def guess_label_column(columns: Sequence[str], *, id_column: str | None = None) -> str | None:
    return guess_column(columns, _LABEL_NAMES, exclude=[id_column] if id_column else ())


def column_summary(frame: pd.DataFrame, table: PartyTable) -> pd.DataFrame:
    """One row per column: role, type, missing values, distinct values.

    Parameters
    ----------
    frame:
        The party's raw frame.
    table:
        Its validated table (for roles and which features are categorical).
    """
    rows = []
    n = max(len(frame), 1)
    for col in frame.columns:
        if col == table.id_column:
            role, kind = "id", "identifier"
        elif col == table.label_column:
            role, kind = "label", "0/1 default flag"
        else:
            role = "feature"
            kind = "categorical" if col in table.categorical else "numeric"
        missing = int(frame[col].isna().sum())
        rows.append(
            {
                "column": str(col),
                "role": role,
                "type": kind,
                "missing": missing,
                "missing_share": missing / n,
                "distinct": int(frame[col].nunique(dropna=True)),
            }
        )
    return pd.DataFrame(rows)


def party_overview(bundle: DataBundle) -> pd.DataFrame:
    """One row per party: rows, features, missing values, default rate (bank only)."""
    rows = []
    for label, table in [("Bank", bundle.bank), *zip(bundle.fintech_labels, bundle.fintechs)]:
        cells = table.n_rows * max(len(table.features.columns), 1)
        missing = int(sum(table.missing.values()))
        rows.append(
            {
                "party": label,
                "rows": table.n_rows,
                "features": len(table.features.columns),
                "missing_values": missing,
                "missing_share": missing / cells if cells else 0.0,
                "default_rate": float(np.mean(table.labels)) if table.labels is not None else np.nan,
            }
        )
    return pd.DataFrame(rows)
