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

Both files are written to a temporary name, flushed and moved into place with
``os.replace``; the JSON is written last and names the hash of the arrays, so a
checkpoint is complete exactly when its JSON exists and the hash matches — a crash in
the middle leaves the previous epoch's checkpoint as the latest. The last
:data:`KEEP_EPOCHS` epochs of a session are kept: the bank may have to resume from an
epoch before the one a fintech saved last (it crashed between the two writes).

Threat model: a checkpoint is as sensitive as the party's model part plus the list of
its customers that the partners share; it stays on the party's own disk (files 0600).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from riskfed.errors import ConfigurationError, DataValidationError

FORMAT_VERSION = 1
KEEP_EPOCHS = 3
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ARRAY_TAG = "__ndarray__"


def _check_id(value: str, what: str) -> str:
    # Session ids come from a peer and party names from certificates: both become path
    # components, so nothing but [A-Za-z0-9_-] is allowed.
    if not isinstance(value, str) or not _SAFE_ID.match(value):
        raise ConfigurationError(f"Checkpoint: {what} {value!r} is not a plain identifier ([A-Za-z0-9_-], ≤ 64 characters).")
    return value


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file, fsync and ``os.replace`` (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _split(value, arrays: dict[str, np.ndarray], path: str):
    """Replace numpy arrays by references; everything else must be JSON."""
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise ConfigurationError(f"Checkpoint: {path} is an object array; only numeric arrays are stored.")
        key = f"a{len(arrays)}"
        arrays[key] = np.ascontiguousarray(value)
        return {_ARRAY_TAG: key}
    if isinstance(value, dict):
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


def _join(value, arrays):
    if isinstance(value, dict):
        if set(value) == {_ARRAY_TAG}:
            return arrays[value[_ARRAY_TAG]]
        return {k: _join(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_join(v, arrays) for v in value]
    return value


def _references(value) -> set[str]:
    if isinstance(value, dict):
        if set(value) == {_ARRAY_TAG}:
            return {value[_ARRAY_TAG]}
        return set().union(*(_references(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_references(v) for v in value)) if value else set()
    return set()


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


def read_checkpoint(directory: str | Path, party: str, session_id: str, epoch: int) -> dict:
    """Load and verify one checkpoint; return its state (arrays restored).

    Raises
    ------
    DataValidationError
        Missing, incomplete or altered (hash mismatch) checkpoint, or one of another
        party, session or epoch.
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
    try:
        meta = json.loads((folder / f"{stem}.json").read_text())
        blob = (folder / f"{stem}.npz").read_bytes()
    except (OSError, ValueError) as exc:
        raise DataValidationError(f"{party}: checkpoint {stem} of session {session_id!r} is unreadable ({type(exc).__name__}).", party=party) from None
    expected = {"format_version": FORMAT_VERSION, "party": party, "session_id": session_id, "epoch": epoch}
    wrong = [k for k, v in expected.items() if meta.get(k) != v]
    if wrong:
        raise DataValidationError(f"{party}: checkpoint {stem} of session {session_id!r} has unexpected {', '.join(wrong)}.", party=party)
    if hashlib.sha256(blob).hexdigest() != meta.get("arrays_sha256"):
        raise DataValidationError(f"{party}: the arrays of checkpoint {stem} of session {session_id!r} do not match their hash.", party=party)
    # allow_pickle=False: a checkpoint is data, never code.
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError) as exc:
        raise DataValidationError(
            f"{party}: checkpoint {stem} of session {session_id!r} holds something other than numeric arrays ({exc})."[:300],
            party=party,
        ) from None
    missing = _references(meta["state"]) - set(arrays)
    if missing:
        raise DataValidationError(f"{party}: checkpoint {stem} of session {session_id!r} lacks arrays it refers to.", party=party)
    return _join(meta["state"], arrays)


def latest_checkpoint(directory: str | Path, party: str) -> tuple[str, int] | None:
    """``(session_id, epoch)`` of ``party``'s most recent complete checkpoint, if any."""
    _check_id(party, "party")
    pointer = Path(directory) / party / "latest.json"
    try:
        data = json.loads(pointer.read_text())
        session_id, epoch = data["session_id"], data["epoch"]
        _check_id(session_id, "session id")
    except (OSError, ValueError, KeyError, TypeError, ConfigurationError):
        return None
    if not (Path(directory) / party / session_id / f"{_epoch_stem(epoch)}.json").is_file():
        return None
    return session_id, int(epoch)


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


__all__ = ["KEEP_EPOCHS", "atomic_write", "latest_checkpoint", "read_checkpoint", "table_fingerprint", "write_checkpoint"]
