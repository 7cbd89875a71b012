"""Training checkpoints: each party writes its own state after every epoch, atomically.

A checkpoint is what a party needs to continue a session after a crash from the last
complete epoch: alignment (row positions), the split, the hyper-parameters and its
optimizer state (weights, running average, momentum, step count). It holds **no
ciphertext and no key**: every ciphertext of a batch is consumed within that batch
(``[[u]]`` → ``[[e]]`` → ``[[g + m]]`` → ``g + m``), so nothing encrypted lives across an
epoch boundary and a resumed session runs under a fresh Paillier key. The coordinator
therefore persists nothing at all: its private key never touches a disk.

Layout (one directory per party, so parties may share a parent in a pilot)::

    DIR/<party>/latest.json                        pointer: session id and epoch
    DIR/<party>/<session_id>/epoch-0003.npz        arrays (numpy, loaded without pickle)
    DIR/<party>/<session_id>/epoch-0003.json       everything else + the npz's SHA-256

Both files are written all-or-nothing (:func:`riskfed.data.io.atomic_write`); the JSON is written last and names the hash of the arrays, so a
checkpoint is complete exactly when its JSON exists and the hash matches — a crash in
the middle leaves the previous epoch's checkpoint as the latest. The last
:data:`KEEP_EPOCHS` epochs of a session are kept: the bank may have to resume from an
epoch before the one a fintech saved last (it crashed between the two writes).

Threat model: a checkpoint is as sensitive as the party's model part plus the list of
its customers that the partners share; it stays on the party's own disk (files 0600).

Reading one back trusts nothing in it: JSON nesting and ``.npz`` headers are bounded
before parsing (:mod:`riskfed.data.stored`); the state must satisfy the schema of its
kind (:data:`CHECKPOINT_SCHEMAS`: type, shape and range of every field, weights finite)
and agree with the party's table (rows in range) before any role sees it, or reading
ends in a :class:`~riskfed.errors.DataValidationError` naming the party, file and field.
A new field is one entry in the schema of its kind (``optional`` unless always written).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from riskfed.alignment.index import METHODS
from riskfed.data.io import atomic_write
from riskfed.data.stored import (
    ID_NORMALIZATION,
    PLAIN_ID,
    check_record,
    field_name,
    invalid,
    parse_json,
    read_bounded,
    read_npz,
    record,
)
from riskfed.errors import ConfigurationError, DataValidationError, format_rows
from riskfed.learning.linear.hyperparameters import Hyperparameters
from riskfed.protocol.messages import BANK

FORMAT_VERSION = 1
KEEP_EPOCHS = 3
BANK_KIND = "riskfed-bank-checkpoint"
FINTECH_KIND = "riskfed-fintech-checkpoint"
MAX_JSON_BYTES = 64 << 20
MAX_NPZ_BYTES = 64 << 30
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ARRAY_TAG = "__ndarray__"


def _check_id(value: str, what: str) -> str:
    # Session ids come from a peer and party names from certificates: both become path
    # components, so nothing but [A-Za-z0-9_-] is allowed.
    if not isinstance(value, str) or not _SAFE_ID.match(value):
        raise ConfigurationError(f"Checkpoint: {what} {value!r} is not a plain identifier ([A-Za-z0-9_-], ≤ 64 characters).")
    return value


# -- schemas -------------------------------------------------------------------------------
_ID = PLAIN_ID
_TRAIN_ROWS = {"type": "ndarray", "dtype": "int", "ndim": 1, "minimum": 0, "distinct": True, "minItems": 1}
_COUNT = {"type": "integer", "minimum": 1, "maximum": 1 << 40}
_ROWS = {"type": "ndarray", "dtype": "int", "ndim": 1, "minimum": 0, "distinct": True}
_VECTOR = {"type": "ndarray", "dtype": "float", "ndim": 1, "finite": True}
_HEX64 = {"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "a SHA-256 hex digest"}
_SCALAR = {"type": ["number", "string", "boolean", "null"], "notNaN": True}


def _by_fintech(value: dict) -> dict:
    return {"type": "object", "propertyNames": _ID, "additionalProperties": value, "maxProperties": 64}


def _hyperparameters_schema() -> dict:
    # Derived from the dataclass, so a new hyper-parameter is checked without an edit here;
    # ranges are Hyperparameters' own (checked in _check_common).
    kinds = {bool: {"type": "boolean"}, int: {"type": "integer"}, float: {"type": "number", "finite": True}, str: {"type": "string"}}
    return record({f.name: kinds.get(type(f.default), {}) for f in dataclasses.fields(Hyperparameters)})


_OPTIMIZER = record(
    {"steps": {"type": "integer", "minimum": 0}}
    | {name: _VECTOR for name in ("weights", "average", "velocity", "epoch_start")}
    | {"second": _VECTOR | {"minimum": 0}}
)
_COMMON = {
    "session_id": _ID,
    "id_normalization": ID_NORMALIZATION,
    "hyperparameters": _hyperparameters_schema(),
    "local": _OPTIMIZER,
    "data_fingerprint": _HEX64,
}
_EPOCH_ENTRY = record(
    {
        "epoch": {"type": "integer", "minimum": 1},
        "relative_change": {"type": "number", "minimum": 0, "notNaN": True},
        "loss": {"type": ["number", "null"], "finite": True},
        "converged": {"type": "boolean"},
        "seconds": {"type": "number", "minimum": 0, "finite": True},
    },
    optional=("loss", "seconds"),
    extra=_SCALAR,
)
_BATCH_LOSS = record(
    {"epoch": {"type": "integer", "minimum": 1}, "batch": {"type": "integer", "minimum": 1}, "loss": {"type": ["number", "null"], "finite": True}},
    extra=_SCALAR,
)
BANK_CHECKPOINT = record(
    _COMMON
    | {
        "kind": {"const": BANK_KIND},
        "party": {"const": BANK},
        "seed": {"type": "integer", "minimum": 0, "maximum": (1 << 32) - 1},
        "psi_method": {"enum": list(METHODS)},
        "key_bits": {"type": "integer", "minimum": 256, "maximum": 16384},
        "fintechs": {"type": "array", "items": _ID, "minItems": 1, "maxItems": 64},
        "fintech_rows": _by_fintech(_COUNT),
        "slots": _by_fintech({"type": "integer", "minimum": 1, "maximum": 1 << 20}),
        "history": {"type": "array", "items": _EPOCH_ENTRY},
        "aligned": record(
            {
                "method": {"enum": list(METHODS)},
                "bank_count": _COUNT,
                "partner_counts": _by_fintech(_COUNT),
                "bank_rows": _ROWS,
                "partner_rows": _by_fintech(_ROWS),
            }
        ),
        "train_rows": _TRAIN_ROWS,
        "holdout_rows": _ROWS,
        "batch_losses": {"type": "array", "items": _BATCH_LOSS},
        # The per-session secret behind the split and batch order (an int or hex bytes).
        "secret": {"type": ["integer", "string"], "minimum": 0, "pattern": "^[0-9a-fA-F]{1,4096}$", "description": "hex digits"},
    },
    optional=("batch_losses", "data_fingerprint", "secret"),
)
FINTECH_CHECKPOINT = record(
    _COMMON
    | {
        "kind": {"const": FINTECH_KIND},
        "party": _ID,
        "round": {"type": "integer", "minimum": 0, "maximum": 1 << 62},
        "aligned_rows": _ROWS,
        "train_rows": _TRAIN_ROWS,
    },
    optional=("data_fingerprint",),
)
#: Checkpoint kind → the schema its state must satisfy.
CHECKPOINT_SCHEMAS = {BANK_KIND: BANK_CHECKPOINT, FINTECH_KIND: FINTECH_CHECKPOINT}
_ENVELOPE = record(
    {"format_version": {"type": "integer"}, "party": {"type": "string"}, "session_id": {"type": "string"},
     "epoch": {"type": "integer"}, "arrays_sha256": {"type": "string"},
     "state": {"type": "object", "properties": {"kind": {"enum": list(CHECKPOINT_SCHEMAS)}}, "required": ["kind"]}}
)  # fmt: skip
_POINTER = record({"session_id": _ID, "epoch": {"type": "integer", "minimum": 1, "maximum": 9999}})


# -- checks across fields ------------------------------------------------------------------
class _Checker:
    """Cross-field checks of one checkpoint state; ``fail`` names the party and the file."""

    def __init__(self, state: dict, party: str, context: str) -> None:
        self.state, self.party, self.context = state, party, context

    def fail(self, subject: str, problem: str) -> DataValidationError:
        return invalid(self.party, self.context, subject, problem)

    def rows_below(self, rows: np.ndarray, limit: int, subject: str, what: str) -> None:
        if rows.size and int(rows.max()) >= limit:
            raise self.fail(subject, f"must point into {what} (0 … {limit - 1:,}); it holds {int(rows.max()):,}")

    def names(self, mapping: dict, subject: str, names: list[str]) -> None:
        if sorted(mapping) != sorted(names):
            raise self.fail(subject, f"must name exactly the fintechs {', '.join(names)}")

    def common(self, session_id: str | None) -> None:
        s = self.state
        if session_id is not None and s["session_id"] != session_id:
            raise self.fail("state.session_id", f"must be the file's session {session_id!r}")
        try:
            hyper = Hyperparameters.from_dict(s["hyperparameters"])
        except ConfigurationError as exc:
            raise self.fail("state.hyperparameters", f"are out of range ({str(exc).rstrip('.')})") from None
        shapes = {a.shape for a in s["local"].values() if isinstance(a, np.ndarray)}
        if len(shapes) != 1 or not next(iter(shapes))[0]:
            raise self.fail("state.local", "must hold non-empty optimizer arrays of one length")
        self.hyper = hyper

    def bank(self, epoch: int | None, table_rows: int | None) -> None:
        s, a = self.state, self.state["aligned"]
        fintechs = s["fintechs"]
        if len(set(fintechs)) != len(fintechs):
            raise self.fail("state.fintechs", "must not repeat a name")
        for subject, mapping in [("state.fintech_rows", s["fintech_rows"]), ("state.slots", s["slots"]),
                                 ("state.aligned.partner_counts", a["partner_counts"]), ("state.aligned.partner_rows", a["partner_rows"])]:  # fmt: skip
            self.names(mapping, subject, fintechs)
        if table_rows is not None and a["bank_count"] != table_rows:
            raise ConfigurationError(
                f"bank: {self.context} was made on a table of {a['bank_count']:,} rows; this one has {table_rows:,}.", party=BANK
            )
        self.rows_below(a["bank_rows"], a["bank_count"], "state.aligned.bank_rows", "the bank's table")
        aligned = a["bank_rows"].size
        for name, rows in a["partner_rows"].items():
            subject = field_name("state.aligned.partner_rows", [name])
            if rows.size != aligned:
                raise self.fail(subject, f"must list as many customers as state.aligned.bank_rows ({aligned:,})")
            self.rows_below(rows, a["partner_counts"][name], subject, f"{name}'s table")
        self.split(s["train_rows"], s["holdout_rows"], aligned)
        history = s["history"]
        if [h["epoch"] for h in history] != list(range(1, len(history) + 1)):
            raise self.fail("state.history", "must list epochs 1, 2, … in order")
        if epoch is not None and len(history) != epoch:
            raise self.fail("state.history", f"must have one entry per epoch of the checkpoint ({epoch})")
        if len(history) > self.hyper.max_epochs:
            raise self.fail("state.history", f"has more epochs than max_epochs ({self.hyper.max_epochs})")
        if any(b["epoch"] > len(history) for b in s.get("batch_losses", [])):
            raise self.fail("state.batch_losses", "must belong to the epochs in state.history")

    def split(self, train: np.ndarray, holdout: np.ndarray, aligned: int) -> None:
        self.rows_below(train, aligned, "state.train_rows", "the shared customers")
        self.rows_below(holdout, aligned, "state.holdout_rows", "the shared customers")
        in_train = np.zeros(aligned, dtype=bool)
        in_train[train] = True
        if in_train[holdout].any():
            raise self.fail("state.holdout_rows", "must not share a row with state.train_rows")

    def fintech(self, table_rows: int | None) -> None:
        s = self.state
        if s["party"] != self.party:
            raise self.fail("state.party", f"must be {self.party!r}, whose checkpoint this is")
        if table_rows is not None:
            self.rows_below(s["aligned_rows"], table_rows, "state.aligned_rows", f"{self.party}'s table")
        self.rows_below(s["train_rows"], s["aligned_rows"].size, "state.train_rows", "the shared customers")


def validate_state(
    state,
    party: str,
    *,
    context: str = "checkpoint",
    epoch: int | None = None,
    session_id: str | None = None,
    table_rows: int | None = None,
) -> None:
    """Check a checkpoint state against the schema of its kind and against the table.

    Parameters
    ----------
    state, party:
        A state as the roles' ``checkpoint_state`` returns it, and whose it is.
    context:
        How to name it in errors (e.g. ``"checkpoint '/x/epoch-0003.json'"``).
    epoch, session_id, table_rows:
        The epoch and session the file claims and the rows of the party's table, when known.

    Raises
    ------
    DataValidationError
        Naming the party, the file, the field and the rule it breaks.
    ConfigurationError
        A bank checkpoint made on a table of another size than ``table_rows``.
    """
    kind = state.get("kind") if isinstance(state, dict) else None
    if kind not in CHECKPOINT_SCHEMAS:
        raise invalid(party, context, "state.kind", f"must be one of {', '.join(map(repr, CHECKPOINT_SCHEMAS))}")
    if (kind == BANK_KIND) != (party == BANK):
        raise invalid(party, context, "state.kind", f"must not be {kind!r} in {party}'s checkpoint")
    check_record(state, CHECKPOINT_SCHEMAS[kind], party=party, context=context, root="state")
    checker = _Checker(state, party, context)
    checker.common(session_id)
    if kind == BANK_KIND:
        checker.bank(epoch, table_rows)
    else:
        checker.fintech(table_rows)


# -- files ---------------------------------------------------------------------------------
def _split(value, arrays: dict[str, np.ndarray], path: str):
    """Replace numpy arrays by references; everything else must be JSON."""
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise ConfigurationError(f"Checkpoint: {path} is an object array; only numeric arrays are stored.")
        key = f"a{len(arrays)}"
        arrays[key] = np.ascontiguousarray(value)
        return {_ARRAY_TAG: key}
    if isinstance(value, dict):
        if _ARRAY_TAG in value:
            raise ConfigurationError(f"Checkpoint: {path} uses the reserved key {_ARRAY_TAG!r}.")
        return {str(k): _split(v, arrays, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_split(v, arrays, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise ConfigurationError(f"Checkpoint: {path} holds a {type(value).__name__}; only JSON values and arrays are stored.")


def _join(body, arrays: dict[str, np.ndarray], *, party: str, context: str) -> tuple[dict, list[str]]:
    """Put the arrays back where the JSON refers to them (each at most once); also the unused ones."""
    used: set[str] = set()

    def join(value, path):
        if isinstance(value, dict):
            if _ARRAY_TAG in value:
                key = value[_ARRAY_TAG]
                if len(value) != 1 or not isinstance(key, str) or key not in arrays or key in used:
                    raise invalid(party, context, field_name("state", path), "refers to no array of the .npz (or to one twice)")
                used.add(key)
                return arrays[key]
            return {k: join(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [join(v, (*path, i)) for i, v in enumerate(value)]
        return value

    state = join(body, ())
    return state, sorted(set(arrays) - used)


def _epoch_stem(epoch: int) -> str:
    return f"epoch-{epoch:04d}"


def write_checkpoint(directory: str | Path, party: str, session_id: str, epoch: int, state: dict) -> Path:
    """Write ``state`` as ``party``'s checkpoint after ``epoch`` complete epochs.

    Parameters
    ----------
    directory:
        The checkpoint root (``DIR`` above).
    party, session_id:
        Who and which session.
    epoch:
        Number of complete epochs the state includes (≥ 1).
    state:
        JSON values and numeric numpy arrays (nested dicts/lists allowed).

    Returns
    -------
    pathlib.Path
        The JSON file that commits the checkpoint.
    """
    _check_id(party, "party")
    _check_id(session_id, "session id")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
        raise ConfigurationError(f"Checkpoint: epoch must be an int ≥ 1. Got {epoch!r} instead.")
    root = Path(directory) / party
    folder = root / session_id
    arrays: dict[str, np.ndarray] = {}
    body = _split(state, arrays, "state")
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    blob = buf.getvalue()
    stem = _epoch_stem(epoch)
    atomic_write(folder / f"{stem}.npz", blob)
    meta = {
        "format_version": FORMAT_VERSION,
        "party": party,
        "session_id": session_id,
        "epoch": epoch,
        "arrays_sha256": hashlib.sha256(blob).hexdigest(),
        "state": body,
    }
    commit = folder / f"{stem}.json"
    atomic_write(commit, json.dumps(meta).encode())
    atomic_write(root / "latest.json", json.dumps({"session_id": session_id, "epoch": epoch}).encode())
    _prune(folder, keep=KEEP_EPOCHS)
    return commit


def _prune(folder: Path, *, keep: int) -> None:
    epochs = sorted(int(p.stem.split("-")[1]) for p in folder.glob("epoch-*.json"))
    for old in epochs[:-keep]:
        for ext in ("json", "npz"):
            (folder / f"{_epoch_stem(old)}.{ext}").unlink(missing_ok=True)


def read_checkpoint(
    directory: str | Path, party: str, session_id: str, epoch: int, *, table_rows: int | None = None
) -> dict:
    """Load one checkpoint, verify its hash and check it (:func:`validate_state`); return its state.

    Parameters
    ----------
    directory, party, session_id, epoch:
        Which checkpoint (as written by :func:`write_checkpoint`).
    table_rows:
        Rows of the party's table, when known: row positions in the checkpoint must
        point into it, and the bank's must have been made on a table of that size.

    Raises
    ------
    DataValidationError
        Missing, incomplete, altered (hash mismatch) or malformed checkpoint, or one of
        another party, session or epoch; the message names the party and the file.
    ConfigurationError
        The bank's checkpoint was made on a table of another size.
    """
    _check_id(party, "party")
    _check_id(session_id, "session id")
    folder = Path(directory) / party / session_id
    stem = _epoch_stem(epoch) if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 1 else None
    if stem is None or not (folder / f"{stem}.json").is_file():
        have = sorted(int(p.stem.split("-")[1]) for p in folder.glob("epoch-*.json")) if folder.is_dir() else []
        raise DataValidationError(
            f"{party}: no checkpoint of session {session_id!r} after epoch {epoch} in {str(folder)!r}"
            + (f" (have epochs {', '.join(map(str, have))})." if have else " (none for this session)."),
            party=party,
        )
    json_path, npz_path = folder / f"{stem}.json", folder / f"{stem}.npz"
    context, npz_context = f"checkpoint {str(json_path)!r}", f"checkpoint {str(npz_path)!r}"
    meta = parse_json(read_bounded(json_path, MAX_JSON_BYTES, party=party, context=context), party=party, context=context)
    check_record(meta, _ENVELOPE, party=party, context=context)
    expected = {"format_version": FORMAT_VERSION, "party": party, "session_id": session_id, "epoch": epoch}
    wrong = [k for k, v in expected.items() if meta[k] != v]
    if wrong:
        raise DataValidationError(f"{party}: checkpoint {stem} of session {session_id!r} has unexpected {', '.join(wrong)}.", party=party)
    blob = read_bounded(npz_path, MAX_NPZ_BYTES, party=party, context=npz_context)
    if hashlib.sha256(blob).hexdigest() != meta["arrays_sha256"]:
        raise DataValidationError(f"{party}: the arrays of checkpoint {stem} of session {session_id!r} do not match their hash.", party=party)
    # Headers are checked before numpy allocates anything; nothing is unpickled.
    arrays = read_npz(blob, party=party, context=npz_context)
    state, unused = _join(meta["state"], arrays, party=party, context=context)
    validate_state(state, party, context=context, epoch=epoch, session_id=session_id, table_rows=table_rows)
    if unused:
        raise invalid(party, npz_context, "the file", f"holds array(s) nothing refers to: {format_rows(unused)}")
    return state


def latest_checkpoint(directory: str | Path, party: str) -> tuple[str, int] | None:
    """``(session_id, epoch)`` of ``party``'s most recent complete checkpoint, if any.

    Raises
    ------
    DataValidationError
        The pointer file exists but is not one riskfed wrote.
    """
    _check_id(party, "party")
    pointer = Path(directory) / party / "latest.json"
    if not pointer.is_file():
        return None
    context = f"checkpoint pointer {str(pointer)!r}"
    data = parse_json(read_bounded(pointer, 4096, party=party, context=context), party=party, context=context)
    check_record(data, _POINTER, party=party, context=context)
    session_id, epoch = data["session_id"], data["epoch"]
    if not (Path(directory) / party / session_id / f"{_epoch_stem(epoch)}.json").is_file():
        return None
    return session_id, epoch


def table_fingerprint(ids, features: pd.DataFrame) -> str:
    """SHA-256 over a party's ids and features (row order included).

    Stored in the party's checkpoint and compared on resume, so a session is never
    continued on different data (the row positions in the checkpoint would point at
    other customers).
    """
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(pd.Series(np.asarray(ids, dtype=object)), index=False).to_numpy().tobytes())
    h.update(pd.util.hash_pandas_object(features, index=False).to_numpy().tobytes())
    h.update(",".join(map(str, features.columns)).encode())
    return h.hexdigest()


__all__ = [
    "BANK_CHECKPOINT",
    "CHECKPOINT_SCHEMAS",
    "FINTECH_CHECKPOINT",
    "KEEP_EPOCHS",
    "latest_checkpoint",
    "read_checkpoint",
    "table_fingerprint",
    "validate_state",
    "write_checkpoint",
]
