"""Reading party tables and writing outputs: the only file I/O in the data layer.

* CSV and Parquet by file extension; id columns are read as text from CSV so leading
  zeros survive ("00123" stays "00123").
* A column name that occurs twice in a file's header is an error (pandas would
  silently rename the copy to ``income.1``).
* :func:`iter_table_chunks` streams a large file in row chunks for batch scoring.
* All-or-nothing writes, the one helper for every output riskfed writes:
  :func:`atomic_output_dir` for a directory (``--out``, a pilot's data),
  :func:`atomic_file` / :func:`atomic_write` for one file (scores, checkpoints, model
  parts of a service). Everything is written next to its target first and moved into
  place only when all of it succeeded; on any failure the target is as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from riskfed.data.schema import duplicate_columns, duplicate_columns_error
from riskfed.data.stored import parse_json
from riskfed.errors import ConfigurationError, DataValidationError

_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def table_format(path: str | Path, *, party: str | None = None) -> str:
    fmt = _FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise DataValidationError(
            f"{party or 'Input'}: {str(path)!r} is neither .csv nor .parquet.", party=party
        )
    return fmt


def _check_exists(path: Path, party: str | None) -> None:
    if not path.is_file():
        raise DataValidationError(f"{party or 'Input'}: file {str(path)!r} does not exist.", party=party)


def _header(path: Path, fmt: str) -> list[str]:
    """The column names exactly as the file spells them.

    pandas renames a repeated CSV column (``income``, ``income.1``), which would then
    be indistinguishable from a real column named ``income.1``: read the raw first
    row instead. Empty CSV names are left out (pandas names them ``Unnamed: k``).
    """
    if fmt == "parquet":
        return [str(name) for name in pq.read_schema(path).names]
    first = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
    return [name for name in first.iloc[0].tolist() if name != ""]


def _check_header(path: Path, fmt: str, party: str | None) -> None:
    dup = duplicate_columns(_header(path, fmt))
    if dup:
        raise duplicate_columns_error(party or "Input", dup, repr(str(path)))


def read_table(path: str | Path, *, party: str | None = None, id_column: str | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet table; the id column (if named) is read as text from CSV.

    Raises
    ------
    DataValidationError
        Wrong extension, missing or unreadable file.
    SchemaError
        A column name occurs twice in the header (never renamed to ``income.1``).
    """
    path = Path(path)
    fmt = table_format(path, party=party)
    _check_exists(path, party)
    try:
        _check_header(path, fmt, party)
        if fmt == "csv":
            return pd.read_csv(path, dtype={id_column: str} if id_column else None, low_memory=False)
        return pd.read_parquet(path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataValidationError(f"{party or 'Input'}: cannot read {str(path)!r}: {exc}", party=party) from None


def iter_table_chunks(
    path: str | Path, *, chunk_rows: int = 100_000, party: str | None = None, id_column: str | None = None
) -> Iterator[pd.DataFrame]:
    """Yield the table in chunks of at most ``chunk_rows`` rows (constant memory)."""
    path = Path(path)
    fmt = table_format(path, party=party)
    _check_exists(path, party)
    try:
        _check_header(path, fmt, party)
        if fmt == "csv":
            reader = pd.read_csv(
                path, dtype={id_column: str} if id_column else None, chunksize=chunk_rows, low_memory=False
            )
            with reader:
                yield from reader
        else:
            pf = pq.ParquetFile(path)
            for batch in pf.iter_batches(batch_size=chunk_rows):
                yield batch.to_pandas()
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataValidationError(f"{party or 'Input'}: cannot read {str(path)!r}: {exc}", party=party) from None


def count_rows(path: str | Path, *, party: str | None = None) -> int | None:
    """Row count when it is cheap to know (Parquet metadata), else ``None``."""
    path = Path(path)
    if table_format(path, party=party) == "parquet" and path.is_file():
        return pq.ParquetFile(path).metadata.num_rows
    return None


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write CSV or Parquet by extension."""
    path = Path(path)
    if table_format(path) == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def write_json(data, path: str | Path, *, private: bool = False) -> Path:
    """Write JSON; ``private`` files (a party's secrets) are created with mode 0600."""
    path = Path(path)
    text = json.dumps(data, indent=2, sort_keys=False, default=_json_default)
    if private:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def _json_default(obj):
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def read_json(path: str | Path, *, party: str | None = None):
    """Read a JSON file, its nesting bounded (:func:`riskfed.data.stored.parse_json`).

    Raises
    ------
    DataValidationError
        Unreadable, not JSON, or nested too deeply.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataValidationError(f"{party or 'Input'}: cannot read {str(path)!r}: {exc.strerror or exc}", party=party) from None
    return parse_json(data, party=party or "Input", context=repr(str(path)))


def check_output_dir(out_dir: str | Path) -> None:
    """Fail before any work if ``out_dir`` cannot become an output directory."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigurationError(f"The output path {str(out)!r} exists and is not a directory.")
    parent = out.resolve().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigurationError(f"Cannot write to {str(parent)!r} (permission denied).")


def _outermost_missing(path: Path) -> Path | None:
    """The outermost directory that creating ``path`` (with parents) would create."""
    path = path.absolute()
    return next((p for p in [*reversed(path.parents), path] if not p.exists()), None)


@contextlib.contextmanager
def atomic_output_dir(out_dir: str | Path) -> Iterator[Path]:
    """Yield a staging directory whose contents replace ``out_dir``'s only on success.

    Files and directories in ``out_dir`` that the run does not produce are left alone;
    those it produces are replaced. On any exception — while writing or while moving
    into place — the staging directory is removed, what was already moved is taken back
    out, replaced items are restored, directories this call created are removed, and
    ``out_dir`` is exactly as before.

    Raises
    ------
    ConfigurationError
        ``out_dir`` is a file, or its parent cannot be written.
    """
    out = Path(out_dir)
    check_output_dir(out)
    created = _outermost_missing(out)
    parent = out.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=parent))
    except OSError as exc:
        raise ConfigurationError(f"Cannot write to {str(parent)!r}: {exc.strerror or exc}.") from None
    try:
        yield stage
        _move_in(stage, out)
    except BaseException:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _move_in(stage: Path, out: Path) -> None:
    """Move every item of ``stage`` into ``out``; on failure, put ``out`` back as it was."""
    items = sorted(stage.iterdir())
    out.mkdir(parents=True, exist_ok=True)
    backup = stage / ".riskfed-previous"
    backup.mkdir()
    moved: list[Path] = []
    try:
        for item in items:
            target = out / item.name
            if target.exists() or target.is_symlink():
                # Keep the old item until every new one is in, so a failure can undo.
                os.replace(target, backup / item.name)
            os.replace(item, target)
            moved.append(target)
    except BaseException:
        for target in moved:
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)
        for old in backup.iterdir():
            os.replace(old, out / old.name)
        raise


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (mode 0600); on success it is synced to
    disk and replaces ``path``, on any exception it is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` all-or-nothing (:func:`atomic_file`; mode 0600)."""
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)
