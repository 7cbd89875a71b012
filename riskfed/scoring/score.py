"""Batch scoring: probability of default, scorecard points, reasons, and who scored it.

For each applicant the bank computes its own part of the log-odds and asks every
fintech, through a scoring session, for its partial score (keyed-hash digests with a
fresh per-session key by default, or ECDH PSI). Applicants that every fintech knows are
scored by the federated model; the rest by the bank-only fallback model, and the output
says which (``model`` column). Reasons are the factors that cost the applicant the most
points relative to the average applicant: bank features by name, and each fintech's
whole contribution as one factor (the bank never sees fintech feature values).

:func:`score_file` streams applicants in chunks through one session, so a million rows
need only a few chunks in memory, and writes the output atomically.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from riskfed import settings
from riskfed.data.io import atomic_file, iter_table_chunks, table_format
from riskfed.data.preprocess import Preprocessor
from riskfed.data.schema import PartyTable, validate_table
from riskfed.errors import ConfigurationError, DataValidationError, MissingColumnError, SchemaError, format_rows
from riskfed.models.artifact import FederatedModel
from riskfed.protocol.messages import BANK
from riskfed.scoring.scorecard import Scorecard, reason_codes
from riskfed.session.scoring import ScoringSession
from riskfed.transport.base import Transport

FEDERATED = "federated"
FALLBACK = "bank_only_fallback"
# Scoring settings declared in riskfed.settings.
_SCORING = {p.kwarg: p.default for p in settings.params(owner="scoring")}
DEFAULT_CHUNK_ROWS = _SCORING["chunk_rows"]


def _source_column(feature: str, pre: Preprocessor) -> str:
    """The input column an expanded feature comes from (one-hot level, missing flag)."""
    if feature.endswith("__missing") and feature[: -len("__missing")] in pre.numeric:
        return feature[: -len("__missing")]
    if "=" in feature and feature.split("=", 1)[0] in pre.categorical:
        return feature.split("=", 1)[0]
    return feature


def _grouped_contributions(X: np.ndarray, weights: np.ndarray, pre: Preprocessor, prefix: str) -> pd.DataFrame:
    """Per-row contribution of each *input* column to the log-odds (vs. the average applicant)."""
    contrib = X * weights
    names = pre.feature_names_
    groups: dict[str, np.ndarray] = {}
    for j, name in enumerate(names):
        key = prefix + _source_column(name, pre)
        groups[key] = groups[key] + contrib[:, j] if key in groups else contrib[:, j].copy()
    return pd.DataFrame(groups)


@dataclass
class ScoringSummary:
    """Counts for a scoring run (no applicant data)."""

    rows: int = 0
    federated: int = 0
    fallback: int = 0
    seconds: float = 0.0
    unseen_categories: dict | None = None

    def to_dict(self) -> dict:
        return {
            "rows": self.rows,
            "scored_federated": self.federated,
            "scored_fallback": self.fallback,
            "seconds": round(self.seconds, 3),
            "unseen_categories": self.unseen_categories or {},
        }


class ApplicantScorer:
    """Scores applicants with a saved model through one scoring session.

    In memory it builds the fintech roles from their model parts and tables; pass a
    ``transport`` already connected to remote fintech services to score over the network
    (:class:`~riskfed.session.scoring.ScoringSession`).
    """

    def __init__(
        self,
        model: FederatedModel,
        fintech_tables: Mapping[str, PartyTable] | None = None,
        *,
        id_column: str | None = None,
        psi: str = _SCORING["psi"],
        transport: Transport | None = None,
        n_jobs: int = 1,
        scorecard: Scorecard | None = None,
        top_reasons: int = _SCORING["top_reasons"],
    ) -> None:
        self.model = model
        self.id_column = id_column or model.bank.get("id_column")
        self.scorecard = scorecard or model.scorecard
        self.top_reasons = top_reasons
        bank = model.bank
        self.pre = Preprocessor.from_dict(bank["preprocessing"])
        self.weights = np.asarray(bank["weights"], dtype=np.float64)
        self.intercept = float(bank["intercept"])
        self.fallback = model.fallback
        self.names = model.fintech_names
        self.session = ScoringSession(
            self.names,
            normalization=model.normalization,
            psi=psi,
            transport=transport,
            parts=model.fintechs,
            tables=fintech_tables,
            n_jobs=n_jobs,
        )
        self.summary = ScoringSummary(unseen_categories={})

    def _validate(self, frame: pd.DataFrame) -> PartyTable:
        table = validate_table(
            frame,
            party=BANK,
            id_column=self.id_column,
            features=self.pre.numeric + self.pre.categorical,
            categorical=self.pre.categorical,
            allow_empty_features=True,
        )
        wrong = [c for c in self.pre.numeric if c in table.categorical]
        if wrong:
            raise SchemaError(
                f"bank: column {wrong[0]!r} holds text in the applicants but was numeric when the model was trained.",
                party=BANK,
                column=wrong[0],
            )
        return table

    def score_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Score one chunk of applicants (rows in input order)."""
        t0 = time.perf_counter()
        table = self._validate(frame)
        norm = self.model.normalization.apply(table.ids, party=BANK, column=self.id_column)
        self.last_normalized_ids = norm
        X = self.pre.transform(table.features)
        for col, count in self.pre.last_unseen.items():
            self.summary.unseen_categories[col] = self.summary.unseen_categories.get(col, 0) + count
        z = X @ self.weights + self.intercept
        partners = self.session.partial_scores(norm)
        known_all, per = partners.known, partners.per_fintech
        z_fed = z + partners.total
        z_fb, X_fb = self.fallback.log_odds(table.features)
        use_fed = known_all
        log_odds = np.where(use_fed, z_fed, z_fb)
        p = 1.0 / (1.0 + np.exp(-log_odds))

        fed_contrib = _grouped_contributions(X, self.weights, self.pre, "bank:")
        for name in self.names:
            fed_contrib[f"{name}:data"] = per[name]
        fb_contrib = _grouped_contributions(X_fb, self.fallback.coef, self.fallback.preprocessor, "bank:")
        reasons_fed = reason_codes(fed_contrib, top=self.top_reasons, scorecard=self.scorecard)
        reasons_fb = reason_codes(fb_contrib, top=self.top_reasons, scorecard=self.scorecard)
        reasons = reasons_fed.where(pd.Series(use_fed, index=reasons_fed.index), reasons_fb, axis=0)

        out = pd.DataFrame(
            {
                self.id_column: table.ids,
                "probability_of_default": p,
                "score_points": np.round(np.asarray(self.scorecard.points(p), dtype=np.float64), 1),
                "model": np.where(use_fed, FEDERATED, FALLBACK),
            }
        )
        out = pd.concat([out, reasons.reset_index(drop=True)], axis=1)
        self.summary.rows += len(out)
        self.summary.federated += int(use_fed.sum())
        self.summary.fallback += int((~use_fed).sum())
        self.summary.seconds += time.perf_counter() - t0
        return out


def _tables(fintechs, names: list[str], id_column: str | None, id_columns: Sequence[str] | None) -> dict[str, PartyTable]:
    if isinstance(fintechs, (pd.DataFrame, PartyTable)):
        fintechs = [fintechs]
    if isinstance(fintechs, Mapping):
        items = list(fintechs.items())
    else:
        items = list(zip(names, fintechs))
        if len(fintechs) != len(names):
            raise ConfigurationError(f"The model has {len(names)} fintech(s) ({', '.join(names)}); got {len(fintechs)} table(s).")
    cols = list(id_columns) if id_columns else [id_column] * len(items)
    out = {}
    for (name, data), col in zip(items, cols):
        if isinstance(data, PartyTable):
            out[name] = data
        else:
            if col is None:
                raise ConfigurationError(f"{name}: pass id_column= to use a DataFrame.", party=name)
            out[name] = validate_table(data, party=name, id_column=col)
    return out


def _output_schema(scored: pd.DataFrame) -> pa.Schema:
    """Fixed Parquet schema, so a chunk whose reasons are all empty still matches."""
    fields = []
    for col in scored.columns:
        if col.startswith("reason_") or col == "model":
            fields.append(pa.field(col, pa.string()))
        elif col.startswith("points_") or col in ("probability_of_default", "score_points"):
            fields.append(pa.field(col, pa.float64()))
        else:
            fields.append(pa.field(col, pa.string()))
    return pa.schema(fields)


def score_applicants(
    model: FederatedModel,
    applicants: pd.DataFrame,
    fintechs,
    *,
    id_column: str | None = None,
    fintech_id_columns: Sequence[str] | None = None,
    psi: str = _SCORING["psi"],
    scorecard: Scorecard | None = None,
    top_reasons: int = _SCORING["top_reasons"],
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Score a DataFrame of applicants in memory.

    Parameters
    ----------
    model:
        The trained :class:`~riskfed.models.artifact.FederatedModel` (all parts).
    applicants:
        The bank's applicant table: id column plus the bank features of the model.
    fintechs:
        The fintechs' tables (list in model order, or a name → table mapping).
    id_column:
        Applicant id column (default: the one used in training).
    psi:
        ``keyed-hash`` (default; fresh key per session) or ``ecdh``.
    scorecard:
        Points scaling (default: the one saved with the model).

    Returns
    -------
    pandas.DataFrame
        ``id``, ``probability_of_default``, ``score_points``, ``model``
        (``federated`` / ``bank_only_fallback``), ``reason_1..k`` and ``points_1..k``.
    """
    id_column = id_column or model.bank.get("id_column")
    tables = _tables(fintechs, model.fintech_names, id_column, fintech_id_columns)
    session = ApplicantScorer(
        model, tables, id_column=id_column, psi=psi, n_jobs=n_jobs, scorecard=scorecard, top_reasons=top_reasons
    )
    return session.score_frame(applicants)


def score_file(
    model: FederatedModel,
    applicants_path: str | Path,
    fintechs,
    out_path: str | Path,
    *,
    id_column: str | None = None,
    fintech_id_columns: Sequence[str] | None = None,
    psi: str = _SCORING["psi"],
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    scorecard: Scorecard | None = None,
    top_reasons: int = _SCORING["top_reasons"],
    n_jobs: int = 1,
    transport: Transport | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> ScoringSummary:
    """Stream applicants from a CSV/Parquet file to a scored CSV/Parquet file.

    The output appears only when every chunk scored; on any error nothing is written.
    """
    settings.check("chunk_rows", chunk_rows, "score_file")
    out_path = Path(out_path)
    out_fmt = table_format(out_path)
    id_column = id_column or model.bank.get("id_column")
    tables = None if transport is not None else _tables(fintechs, model.fintech_names, id_column, fintech_id_columns)
    session = ApplicantScorer(
        model,
        tables,
        id_column=id_column,
        psi=psi,
        transport=transport,
        n_jobs=n_jobs,
        scorecard=scorecard,
        top_reasons=top_reasons,
    )
    with atomic_file(out_path) as tmp, _ScoresWriter(tmp, out_fmt) as writer:
        for scored in _scored_chunks(session, applicants_path, id_column=id_column, chunk_rows=chunk_rows):
            writer.write(scored)
            if progress is not None:
                progress(session.summary.rows, None)
        if writer.chunks == 0:
            raise DataValidationError(f"bank: {str(applicants_path)!r} has no applicants.", party=BANK)
    return session.summary


def _scored_chunks(scorer: ApplicantScorer, applicants_path, *, id_column: str, chunk_rows: int):
    """Score the file chunk by chunk; refuse a missing id column or an id seen before."""
    seen: set = set()
    for chunk in iter_table_chunks(applicants_path, chunk_rows=chunk_rows, party=BANK, id_column=id_column):
        if id_column not in chunk.columns:
            raise MissingColumnError(f"bank: the id column {id_column!r} is not in {str(applicants_path)!r}.", party=BANK, column=id_column)
        scored = scorer.score_frame(chunk)
        # Duplicates within a chunk are caught by normalisation; across chunks here.
        keys = scorer.last_normalized_ids.tolist()
        dup = [k for k in keys if k in seen]
        if dup:
            raise SchemaError(
                f"bank: applicant id(s) {format_rows(dup)} appear more than once in {str(applicants_path)!r}.",
                party=BANK,
                column=id_column,
                rows=dup,
            )
        seen.update(keys)
        yield scored


class _ScoresWriter:
    """Appends scored chunks to one CSV or Parquet file (Parquet under one fixed schema)."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path, self.fmt = path, fmt
        self.chunks = 0
        self._parquet: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None

    def write(self, scored: pd.DataFrame) -> None:
        if self.fmt == "csv":
            first = self.chunks == 0
            scored.to_csv(self.path, mode="w" if first else "a", header=first, index=False)
        else:
            if self._parquet is None:
                self._schema = _output_schema(scored)
                self._parquet = pq.ParquetWriter(self.path, self._schema)
            self._parquet.write_table(pa.Table.from_pandas(scored, schema=self._schema, preserve_index=False))
        self.chunks += 1

    def __enter__(self) -> "_ScoresWriter":
        return self

    def __exit__(self, *exc) -> None:
        if self._parquet is not None:
            self._parquet.close()
