"""Per-party checkpoints: atomic files, never pickle, and resume = uninterrupted run.

The resume tests run every party in memory (a fresh coordinator, hence a fresh key, for
the resumed part); tests/network/test_processes.py does the same across real processes.
"""

from __future__ import annotations

import hashlib
import io
import json
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskfed.alignment.normalize import IdNormalization
from riskfed.checkpoint import (
    KEEP_EPOCHS,
    latest_checkpoint,
    read_checkpoint,
    table_fingerprint,
    validate_state,
    write_checkpoint,
)
from riskfed.data.schema import validate_table
from riskfed.data.synthetic import generate_pilot
from riskfed.errors import ConfigurationError, DataValidationError, ProtocolError
from riskfed.learning.linear.hyperparameters import Hyperparameters
from riskfed.roles.bank import Bank
from riskfed.roles.coordinator import Coordinator
from riskfed.roles.fintech import Fintech
from riskfed.session.progress import Cancelled
from riskfed.session.training import run_training_session
from riskfed.transport.memory import InMemoryTransport

SESSION = "0123456789abcdef0123456789abcdef"


def _fintech_state(weights=(0.5, -1.0, 2.0), rows=20) -> dict:
    """A well-formed fintech checkpoint state (no session needed)."""
    w = np.asarray(weights, dtype=np.float64)
    return {
        "kind": "riskfed-fintech-checkpoint",
        "party": "fintech_1",
        "session_id": SESSION,
        "round": 1_000_000,
        "id_normalization": IdNormalization().to_dict(),
        "hyperparameters": Hyperparameters().to_dict(),
        "aligned_rows": np.arange(rows, dtype=np.int64)[::-1].copy(),
        "train_rows": np.arange(rows // 2, dtype=np.int64),
        "local": {"steps": np.int64(7), "weights": w, "average": w / 2, "velocity": np.zeros_like(w),
                  "second": np.zeros_like(w), "epoch_start": w.copy()},  # fmt: skip
    }


def _bank_state(epochs=1) -> dict:
    """A well-formed bank checkpoint state after ``epochs`` epochs: 20 of 25 bank rows shared."""
    fintech = _fintech_state(weights=(0.1, 0.2, 0.3, -1.5))
    return {
        "kind": "riskfed-bank-checkpoint",
        "party": "bank",
        "session_id": SESSION,
        "seed": 11,
        "psi_method": "keyed-hash",
        "key_bits": 512,
        "fintechs": ["fintech_1"],
        "fintech_rows": {"fintech_1": 30},
        "slots": {"fintech_1": 2},
        "id_normalization": IdNormalization().to_dict(),
        "hyperparameters": Hyperparameters().to_dict(),
        "history": [{"epoch": e, "relative_change": 1.0 / e, "loss": 0.5, "converged": False, "seconds": 0.1} for e in range(1, epochs + 1)],
        "aligned": {
            "method": "keyed-hash",
            "bank_count": 25,
            "partner_counts": {"fintech_1": 30},
            "bank_rows": np.arange(20, dtype=np.int64),
            "partner_rows": {"fintech_1": np.arange(20, dtype=np.int64)[::-1] + 5},
        },
        "train_rows": np.arange(14, dtype=np.int64),
        "holdout_rows": np.arange(14, 20, dtype=np.int64),
        "local": fintech["local"],
        "batch_losses": [{"epoch": 1, "batch": 1, "loss": 0.69}],
    }


def test_round_trip_keeps_arrays_exact_and_files_private(tmp_path):
    state = _fintech_state(weights=[0.1, -2.5e-300, np.pi])
    path = write_checkpoint(tmp_path, "fintech_1", SESSION, 1, state)
    back = read_checkpoint(tmp_path, "fintech_1", SESSION, 1)
    np.testing.assert_array_equal(back["local"]["weights"], state["local"]["weights"])
    assert back["local"]["weights"].dtype == np.float64 and back["aligned_rows"].dtype == np.int64
    assert back["aligned_rows"].tolist() == list(range(19, -1, -1))
    assert back["hyperparameters"] == Hyperparameters().to_dict() and back["local"]["steps"] == 7
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert latest_checkpoint(tmp_path, "fintech_1") == (SESSION, 1)
    # No temporary files are left behind.
    assert sorted(p.name for p in path.parent.iterdir()) == ["epoch-0001.json", "epoch-0001.npz"]
    # Nested lists and dicts (the bank's history, partner rows) come back as written.
    write_checkpoint(tmp_path, "bank", SESSION, 2, _bank_state(epochs=2))
    bank = read_checkpoint(tmp_path, "bank", SESSION, 2, table_rows=25)
    assert bank["aligned"]["partner_rows"]["fintech_1"].tolist() == list(range(24, 4, -1))
    assert [h["epoch"] for h in bank["history"]] == [1, 2] and bank["batch_losses"] == [{"epoch": 1, "batch": 1, "loss": 0.69}]


def test_only_the_last_epochs_are_kept(tmp_path):
    for epoch in range(1, 6):
        write_checkpoint(tmp_path, "fintech_1", SESSION, epoch, _fintech_state(weights=np.full(2, epoch, dtype=float)))
    kept = sorted(p.name for p in (tmp_path / "fintech_1" / SESSION).glob("*.json"))
    assert kept == [f"epoch-{e:04d}.json" for e in range(6 - KEEP_EPOCHS, 6)]
    assert latest_checkpoint(tmp_path, "fintech_1") == (SESSION, 5)
    with pytest.raises(DataValidationError, match="no checkpoint of session .* after epoch 1 .*have epochs 3, 4, 5"):
        read_checkpoint(tmp_path, "fintech_1", SESSION, 1)


def test_a_crash_mid_write_leaves_the_previous_checkpoint(tmp_path):
    write_checkpoint(tmp_path, "fintech_1", SESSION, 1, _fintech_state(weights=np.zeros(2)))
    # Epoch 2's arrays landed but the process died before its JSON commit record.
    (tmp_path / "fintech_1" / SESSION / "epoch-0002.npz").write_bytes(b"partial")
    assert latest_checkpoint(tmp_path, "fintech_1") == (SESSION, 1)
    assert read_checkpoint(tmp_path, "fintech_1", SESSION, 1)["local"]["weights"].tolist() == [0.0, 0.0]


def test_tampered_or_foreign_checkpoints_are_refused(tmp_path):
    write_checkpoint(tmp_path, "bank", SESSION, 1, _bank_state())
    folder = tmp_path / "bank" / SESSION
    npz = folder / "epoch-0001.npz"
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    with pytest.raises(DataValidationError, match="do not match their hash"):
        read_checkpoint(tmp_path, "bank", SESSION, 1)
    # A pickled object array with a matching hash is still never unpickled.
    buf = io.BytesIO()
    np.savez(buf, a0=np.array([{"x": 1}], dtype=object))
    npz.write_bytes(buf.getvalue())
    meta = json.loads((folder / "epoch-0001.json").read_text())
    meta["arrays_sha256"] = hashlib.sha256(buf.getvalue()).hexdigest()
    (folder / "epoch-0001.json").write_text(json.dumps(meta))
    with pytest.raises(DataValidationError, match="holds something other than numeric arrays"):
        read_checkpoint(tmp_path, "bank", SESSION, 1)
    meta["party"] = "fintech_1"
    (folder / "epoch-0001.json").write_text(json.dumps(meta))
    with pytest.raises(DataValidationError, match="has unexpected party"):
        read_checkpoint(tmp_path, "bank", SESSION, 1)


@pytest.mark.parametrize(
    "party, session, state, message",
    [
        ("bank", "../../etc", {}, "session id '../../etc' is not a plain identifier"),
        ("bank/x", SESSION, {}, "party 'bank/x' is not a plain identifier"),
        ("bank", SESSION, {"o": np.array([object()])}, "state.o is an object array"),
        ("bank", SESSION, {"f": open}, "state.f holds a builtin_function_or_method"),
    ],
)
def test_unsafe_input_is_refused(tmp_path, party, session, state, message):
    with pytest.raises(ConfigurationError, match=message):
        write_checkpoint(tmp_path, party, session, 1, state)


def test_table_fingerprint_sees_any_change():
    pilot = generate_pilot(300, seed=1)
    table = validate_table(pilot.fintechs[0], party="fintech_1", id_column=pilot.id_column)
    base = table_fingerprint(table.ids, table.features)
    assert table_fingerprint(table.ids, table.features.copy()) == base
    changed = table.features.copy()
    changed.iloc[3, 0] = changed.iloc[3, 0] + 1
    assert table_fingerprint(table.ids, changed) != base
    assert table_fingerprint(table.ids[::-1], table.features) != base


# -- resume --------------------------------------------------------------------------
HYPER = Hyperparameters(batch_size=256, max_epochs=3, tol=0.0)


@pytest.fixture(scope="module")
def tables():
    pilot = generate_pilot(1500, seed=3)
    bank = validate_table(pilot.bank, party="bank", id_column=pilot.id_column, label_column=pilot.label_column)
    fintech = validate_table(pilot.fintechs[0], party="fintech_1", id_column=pilot.id_column)
    return bank, fintech


def _federation(tables, seed=11):
    bank_table, fintech_table = tables
    transport = InMemoryTransport()
    bank = Bank(bank_table, ["fintech_1"], allow_insecure_key=True, seed=seed)  # test-only 512-bit keys
    fintech = Fintech("fintech_1", fintech_table, allow_insecure_key=True)
    for role in (bank, Coordinator(allow_insecure_key=True), fintech):
        transport.register(role)
    return transport, bank, fintech


@pytest.fixture(scope="module")
def uninterrupted(tables):
    transport, bank, fintech = _federation(tables)
    outcome = run_training_session(bank, transport, hyper=HYPER, key_bits=512, psi_method="keyed-hash")
    return outcome, bank.weights, fintech.weights


@pytest.fixture(scope="module")
def interrupted(tables, tmp_path_factory):
    """A run that checkpoints every epoch to disk and 'crashes' after epoch 1."""
    directory = tmp_path_factory.mktemp("ckpt")
    transport, bank, fintech = _federation(tables)

    def checkpoint(state):
        epoch = len(state["history"])
        write_checkpoint(directory, "bank", state["session_id"], epoch, state)
        write_checkpoint(directory, "fintech_1", state["session_id"], epoch, fintech.checkpoint_state())
        if epoch == 1:
            raise Cancelled("simulated crash after epoch 1")

    with pytest.raises(Cancelled, match="simulated crash"):
        run_training_session(bank, transport, hyper=HYPER, key_bits=512, psi_method="keyed-hash", checkpoint=checkpoint)
    return directory, bank.public_key.fingerprint


def _resume(tables, directory, epoch=None, hyper=HYPER, seed=11):
    session_id, latest = latest_checkpoint(directory, "bank")
    epoch = epoch or latest
    transport, bank, fintech = _federation(tables, seed=seed)
    fintech.restore_state(read_checkpoint(directory, "fintech_1", session_id, epoch))
    state = read_checkpoint(directory, "bank", session_id, epoch)
    outcome = run_training_session(bank, transport, hyper=hyper, key_bits=512, resume=state)
    return outcome, bank, fintech


def test_resumed_training_equals_an_uninterrupted_run(tables, interrupted, uninterrupted):
    directory, first_key = interrupted
    ref_outcome, ref_bank, ref_fintech = uninterrupted
    outcome, bank, fintech = _resume(tables, directory)
    np.testing.assert_array_equal(bank.weights, ref_bank)
    np.testing.assert_array_equal(fintech.weights, ref_fintech)
    np.testing.assert_array_equal(outcome.holdout_scores, ref_outcome.holdout_scores)
    assert outcome.batch_losses == ref_outcome.batch_losses
    assert [h["relative_change"] for h in outcome.history] == [h["relative_change"] for h in ref_outcome.history]
    # A fresh key: no ciphertext from before the crash was needed to continue.
    assert outcome.key_fingerprint != first_key


def test_checkpoints_hold_no_key_and_no_ciphertext(interrupted):
    directory, _ = interrupted
    for party in ("bank", "fintech_1"):
        session_id, epoch = latest_checkpoint(directory, party)
        state = read_checkpoint(directory, party, session_id, epoch)

        def walk(value):
            if isinstance(value, dict):
                for v in value.values():
                    yield from walk(v)
            elif isinstance(value, list):
                for v in value:
                    yield from walk(v)
            else:
                yield value

        leaves = list(walk(state))
        assert not any(isinstance(v, (bytes, bytearray)) for v in leaves)
        assert all(v.dtype.kind in "if" for v in leaves if isinstance(v, np.ndarray))
        assert "public_key" not in json.dumps({k: v for k, v in state.items() if not isinstance(v, (np.ndarray, dict))})


def test_resuming_after_the_last_epoch_only_stops_and_evaluates(tables, tmp_path, uninterrupted):
    transport, bank, fintech = _federation(tables)
    saved = {}

    def checkpoint(state):
        saved["bank"], saved["fintech"] = state, fintech.checkpoint_state()

    run_training_session(bank, transport, hyper=HYPER, key_bits=512, psi_method="keyed-hash", checkpoint=checkpoint)
    transport, bank2, fintech2 = _federation(tables)
    fintech2.restore_state(saved["fintech"])
    outcome = run_training_session(bank2, transport, hyper=HYPER, key_bits=512, resume=saved["bank"])
    np.testing.assert_array_equal(bank2.weights, uninterrupted[1])
    np.testing.assert_array_equal(fintech2.weights, uninterrupted[2])
    assert outcome.epochs == HYPER.max_epochs


def test_resume_refuses_other_settings_or_seed(tables, interrupted):
    directory, _ = interrupted
    with pytest.raises(ConfigurationError, match="Cannot resume: the checkpoint was trained with learning_rate=1.0, this run asks for 0.5"):
        _resume(tables, directory, hyper=Hyperparameters(batch_size=256, max_epochs=3, tol=0.0, learning_rate=0.5))
    with pytest.raises(ConfigurationError, match="checkpoint was made with seed 11, not 12"):
        _resume(tables, directory, seed=12)


def test_a_fresh_secret_session_resumes_from_its_own_checkpoint(tables, tmp_path):
    """Without a fixed seed the session secret lives in the bank's checkpoint (hex, never
    in an error): a bank given no seed resumes with it and ends with the same model."""
    transport, bank, fintech = _federation(tables, seed=None)

    def checkpoint(state):
        epoch = len(state["history"])
        write_checkpoint(tmp_path, "bank", state["session_id"], epoch, state)
        write_checkpoint(tmp_path, "fintech_1", state["session_id"], epoch, fintech.checkpoint_state())

    run_training_session(bank, transport, hyper=HYPER, key_bits=512, psi_method="keyed-hash", checkpoint=checkpoint)
    state = read_checkpoint(tmp_path, "bank", bank.session_id, 1)
    assert state["secret"] == f"{bank.session_seed:x}" and state["seed"] == 0
    outcome, resumed, resumed_fintech = _resume(tables, tmp_path, epoch=1, seed=None)
    assert resumed.session_seed == bank.session_seed
    np.testing.assert_array_equal(resumed.weights, bank.weights)
    np.testing.assert_array_equal(resumed_fintech.weights, fintech.weights)
    with pytest.raises(ConfigurationError, match="made with a fresh secret seed, not 12; resume with the same seed") as info:
        _resume(tables, tmp_path, epoch=1, seed=12)
    assert str(bank.session_seed) not in str(info.value) and f"{bank.session_seed:x}" not in str(info.value)


def test_fintech_refuses_to_resume_another_session(tables, interrupted):
    directory, _ = interrupted
    session_id, epoch = latest_checkpoint(directory, "fintech_1")
    state = read_checkpoint(directory, "fintech_1", session_id, epoch)
    _, _, fintech = _federation(tables)
    fintech.restore_state(state)
    from riskfed.protocol.messages import SessionOpen

    other = SessionOpen(
        session_id="other", sender="bank", recipient="fintech_1", round=0, purpose="resume",
        parties=("bank", "coordinator", "fintech_1"), key_bits=512, allow_insecure_key=True, resume_epoch=epoch,
    )
    with pytest.raises(ProtocolError, match="has no checkpoint of session 'other' to resume"):
        fintech.handle(other)
    with pytest.raises(ProtocolError, match="the checkpoint is not one of fintech_2's"):
        Fintech("fintech_2", tables[1]).restore_state(state)


# -- tampered checkpoints: typed errors naming the party, the file and the field --------------
def _set(path, value):
    """Mutator setting ``state[path[0]][path[1]]… = value`` (arrays included)."""

    def mutate(state):
        target = state
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value(target[path[-1]]) if callable(value) else value

    return mutate


def _with_nan(index=0, value=np.nan):
    def put(a):
        a = a.copy()
        a[index] = value
        return a

    return put


BANK_FILE = r"bank: checkpoint '.*bank/0123456789abcdef0123456789abcdef/epoch-0001\.json': "
FINTECH_FILE = r"fintech_1: checkpoint '.*fintech_1/0123456789abcdef0123456789abcdef/epoch-0001\.json': "
TAMPERED_STATES = [
    # (case, party, mutation, message after the party and the file)
    ("seed text", "bank", _set(["seed"], "eleven"), r"state\.seed must be an integer"),
    ("seed float", "bank", _set(["seed"], 11.5), r"state\.seed must be an integer"),
    ("seed bool", "bank", _set(["seed"], True), r"state\.seed must be an integer"),
    ("seed negative", "bank", _set(["seed"], -1), r"state\.seed must be ≥ 0"),
    ("seed list", "bank", _set(["seed"], [11]), r"state\.seed must be an integer"),
    ("nan weights", "bank", _set(["local", "weights"], _with_nan()), r"state\.local\.weights must be finite \(it holds 1 NaN"),
    ("inf average", "bank", _set(["local", "average"], _with_nan(2, -np.inf)), r"state\.local\.average must be finite"),
    ("nan optimizer state", "fintech_1", _set(["local", "velocity"], _with_nan(1)), r"state\.local\.velocity must be finite"),
    ("negative second moment", "fintech_1", _set(["local", "second"], _with_nan(0, -1.0)), r"state\.local\.second must hold values ≥ 0"),
    ("nan learning rate", "fintech_1", _set(["hyperparameters", "learning_rate"], np.nan), r"state\.hyperparameters\.learning_rate must be finite"),
    ("batch size 1", "fintech_1", _set(["hyperparameters", "batch_size"], 1), r"state\.hyperparameters are out of range \(The 'batch_size' parameter"),
    ("2-D weights", "fintech_1", _set(["local", "weights"], lambda a: a.reshape(-1, 1)), r"state\.local\.weights must be a 1-D array"),
    ("short velocity", "fintech_1", _set(["local", "velocity"], lambda a: a[:-1]), r"state\.local must hold non-empty optimizer arrays of one length"),
    ("float rows", "fintech_1", _set(["aligned_rows"], lambda a: a.astype(float)), r"state\.aligned_rows must be an array of integers"),
    ("negative rows", "fintech_1", _set(["train_rows"], _with_nan(0, -3)), r"state\.train_rows must hold values ≥ 0"),
    ("repeated rows", "fintech_1", _set(["aligned_rows"], _with_nan(1, 19)), r"state\.aligned_rows must not repeat a value"),
    ("train rows beyond the shared ones", "fintech_1", _set(["train_rows"], _with_nan(0, 20)), r"state\.train_rows must point into the shared customers \(0 … 19\); it holds 20"),
    ("bank rows beyond the table", "bank", _set(["aligned", "bank_rows"], _with_nan(0, 25)), r"state\.aligned\.bank_rows must point into the bank's table \(0 … 24\)"),
    ("partner rows beyond its table", "bank", _set(["aligned", "partner_rows", "fintech_1"], _with_nan(0, 30)), r"state\.aligned\.partner_rows\.fintech_1 must point into fintech_1's table"),
    ("partner rows of another length", "bank", _set(["aligned", "partner_rows", "fintech_1"], lambda a: a[:-1]), r"state\.aligned\.partner_rows\.fintech_1 must list as many customers as state\.aligned\.bank_rows \(20\)"),
    ("holdout overlaps training", "bank", _set(["holdout_rows"], _with_nan(0, 3)), r"state\.holdout_rows must not share a row with state\.train_rows"),
    ("slots of an unknown fintech", "bank", _set(["slots"], {"fintech_9": 2}), r"state\.slots must name exactly the fintechs fintech_1"),
    ("a fintech name with a path", "bank", _set(["fintech_rows"], {"../f": 2}), r"state\.fintech_rows has an invalid field name \(each must be a plain identifier"),
    ("history of another epoch", "bank", _set(["history", 0, "epoch"], 2), r"state\.history must list epochs 1, 2, … in order"),
    ("nan loss", "bank", _set(["history", 0, "loss"], np.nan), r"state\.history\[0\]\.loss must be finite"),
    ("unknown psi", "bank", _set(["psi_method"], "plain"), r"state\.psi_method must be one of 'ecdh', 'keyed-hash'"),
    ("key bits text", "bank", _set(["key_bits"], "2048"), r"state\.key_bits must be an integer"),
    ("array where a number belongs", "bank", _set(["key_bits"], np.arange(3)), r"state\.key_bits must be an integer"),
    ("array where a name belongs", "bank", _set(["psi_method"], np.arange(3)), r"state\.psi_method must be one of"),
    ("local not a dict", "bank", _set(["local"], [1, 2]), r"state\.local must be an object"),
    ("unexpected field", "bank", _set(["evil"], {"x": 1}), r"state has unexpected field\(s\) 'evil'"),
    ("session id with a path", "fintech_1", _set(["session_id"], "../x"), r"state\.session_id must be a plain identifier"),
    ("another session", "fintech_1", _set(["session_id"], "other"), r"state\.session_id must be the file's session"),
    ("another fintech", "fintech_1", _set(["party"], "fintech_2"), r"state\.party must be 'fintech_1', whose checkpoint this is"),
    ("bad secret", "bank", _set(["secret"], "not hex"), r"state\.secret must be hex digits"),
    ("secret of the wrong type", "bank", _set(["secret"], [1, 2]), r"state\.secret must be an integer or a string"),
    ("unknown kind", "bank", _set(["kind"], "riskfed-coordinator-checkpoint"), r"state\.kind must be one of 'riskfed-bank-checkpoint'"),
]


@pytest.mark.parametrize("case, party, mutate, message", TAMPERED_STATES, ids=[c[0] for c in TAMPERED_STATES])
def test_tampered_fields_are_named(tmp_path, case, party, mutate, message):
    state = _bank_state() if party == "bank" else _fintech_state()
    mutate(state)
    write_checkpoint(tmp_path, party, SESSION, 1, state)
    with pytest.raises(DataValidationError, match=(BANK_FILE if party == "bank" else FINTECH_FILE) + message) as info:
        read_checkpoint(tmp_path, party, SESSION, 1, table_rows=25 if party == "bank" else 20)
    assert info.value.party == party
    assert "Traceback" not in str(info.value) and len(str(info.value)) < 400


@pytest.mark.parametrize("secret", [2**2047 + 12345, 987654321987, "00ff" * 64, "DEADbeef7777"])
def test_a_session_secret_is_accepted_and_never_echoed(tmp_path, secret):
    write_checkpoint(tmp_path, "bank", SESSION, 1, _bank_state() | {"secret": secret})
    assert read_checkpoint(tmp_path, "bank", SESSION, 1)["secret"] == secret
    # A bad value elsewhere: the error names fields, never the secret's value.
    write_checkpoint(tmp_path, "bank", SESSION, 1, _bank_state() | {"secret": secret, "seed": "x"})
    with pytest.raises(DataValidationError, match=r"state\.seed must be an integer") as info:
        read_checkpoint(tmp_path, "bank", SESSION, 1)
    assert str(secret)[-12:] not in str(info.value)


def test_rows_beyond_the_table_and_another_table_size(tmp_path):
    write_checkpoint(tmp_path, "fintech_1", SESSION, 1, _fintech_state(rows=20))
    with pytest.raises(DataValidationError, match=FINTECH_FILE + r"state\.aligned_rows must point into fintech_1's table \(0 … 14\); it holds 19"):
        read_checkpoint(tmp_path, "fintech_1", SESSION, 1, table_rows=15)
    write_checkpoint(tmp_path, "bank", SESSION, 1, _bank_state())
    with pytest.raises(ConfigurationError, match=r"bank: checkpoint '.*epoch-0001\.json' was made on a table of 25 rows; this one has 40"):
        read_checkpoint(tmp_path, "bank", SESSION, 1, table_rows=40)


def test_a_checkpoint_of_the_other_kind_is_refused(tmp_path):
    write_checkpoint(tmp_path, "fintech_1", SESSION, 1, _bank_state())
    with pytest.raises(DataValidationError, match=FINTECH_FILE + r"state\.kind must not be 'riskfed-bank-checkpoint' in fintech_1's checkpoint"):
        read_checkpoint(tmp_path, "fintech_1", SESSION, 1)
    write_checkpoint(tmp_path, "bank", SESSION, 1, _fintech_state() | {"party": "bank"})
    with pytest.raises(DataValidationError, match=BANK_FILE + r"state\.kind must not be 'riskfed-fintech-checkpoint' in bank's checkpoint"):
        read_checkpoint(tmp_path, "bank", SESSION, 1)


def test_the_history_must_match_the_epoch(tmp_path):
    write_checkpoint(tmp_path, "bank", SESSION, 3, _bank_state(epochs=2))
    with pytest.raises(DataValidationError, match=r"state\.history must have one entry per epoch of the checkpoint \(3\)"):
        read_checkpoint(tmp_path, "bank", SESSION, 3)


def _rewrite(tmp_path, party, *, meta=None, text=None, npz=None, raw=None):
    """Write a valid checkpoint, then replace its JSON and/or arrays (hash kept consistent)."""
    path = write_checkpoint(tmp_path, party, SESSION, 1, _bank_state() if party == "bank" else _fintech_state())
    body = json.loads(path.read_text())
    if npz is not None:
        (path.with_suffix(".npz")).write_bytes(npz)
        body["arrays_sha256"] = hashlib.sha256(npz).hexdigest()
    if meta is not None:
        meta(body)
    path.write_bytes(raw if raw is not None else (text if text is not None else json.dumps(body)).encode())


def _forged_npz(arrays, member, header, data: bytes) -> bytes:
    """``arrays`` as an npz with ``member`` replaced by a forged header and data."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, array in arrays.items():
            raw = io.BytesIO()
            if name == member:
                np.lib.format.write_array_header_1_0(raw, header)
                raw.write(data)
            else:
                np.lib.format.write_array(raw, array)
            zf.writestr(f"{name}.npy", raw.getvalue())
    return buf.getvalue()


def _drop(key):
    return lambda body: body.pop(key)


def _state_set(path, value):
    return lambda body: _set(path, value)(body["state"])


BANK_JSON = r"bank: checkpoint '.*bank/0123456789abcdef0123456789abcdef/epoch-0001\.json'"
RAW_TAMPERING = [
    ("list instead of an array reference", dict(meta=_state_set(["local", "weights"], [0.1, 0.2, 0.3, -1.5])), r": state\.local\.weights must be an array \(a reference into the \.npz\)"),
    ("reference to no array", dict(meta=_state_set(["local", "weights"], {"__ndarray__": "a99"})), r": state\.local\.weights refers to no array of the \.npz"),
    ("unhashable reference", dict(meta=_state_set(["local", "weights"], {"__ndarray__": ["a1"]})), r": state\.local\.weights refers to no array"),
    ("one array twice", dict(meta=_state_set(["local", "average"], {"__ndarray__": "a0"})), r": state\.local\.average refers to no array of the \.npz \(or to one twice\)"),
    ("meta not a dict", dict(text="[1, 2, 3]"), r": the file must be an object"),
    ("missing state", dict(meta=_drop("state")), r": the file lacks state \(damaged"),
    ("state not a dict", dict(meta=lambda b: b.update(state=[])), r": state must be an object"),
    ("epoch as text", dict(meta=lambda b: b.update(epoch="1")), r": epoch must be an integer"),
    ("not JSON", dict(text='{"format_version": 1,'), r" is not valid JSON \(Expecting property name"),
    ("not UTF-8", dict(raw=b'{"x": "\xff\xfe"}'), r" is not valid JSON \('utf-8' codec can't decode"),
    ("100k-deep JSON", dict(text="[" * 100_000 + "]" * 100_000), r" is not valid JSON \(nested 100,000 levels deep; riskfed writes at most 64\)"),
    ("brackets inside a string are not nesting", dict(text='{"x": "' + "[" * 100_000 + '"}'), r": the file lacks format_version"),
    ("a 5,000-digit integer", dict(raw=b'{"format_version": ' + b"9" * 5000 + b"}"), r" is not valid JSON \(Exceeds the limit \(4300 digits\)"),
]


@pytest.mark.parametrize("case, change, message", RAW_TAMPERING, ids=[c[0] for c in RAW_TAMPERING])
def test_tampered_files_are_typed_errors(tmp_path, case, change, message):
    _rewrite(tmp_path, "bank", **change)
    with pytest.raises(DataValidationError, match=BANK_JSON + message) as info:
        read_checkpoint(tmp_path, "bank", SESSION, 1)
    assert info.value.party == "bank"


def test_an_npz_header_claiming_8_tib_is_refused_before_any_allocation(tmp_path):
    _rewrite(tmp_path, "bank")
    with np.load(tmp_path / "bank" / SESSION / "epoch-0001.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    forged = _forged_npz(arrays, "a4", {"descr": "<f8", "fortran_order": False, "shape": (1 << 40,)}, b"\0" * 32)
    _rewrite(tmp_path, "bank", npz=forged)
    npz_file = r"bank: checkpoint '.*epoch-0001\.npz' holds something other than numeric arrays"
    with pytest.raises(DataValidationError, match=npz_file + r" \(member 'a4\.npy' claims shape \(1099511627776,\) of float64 \(8,796,093,022,208 bytes\) but holds 32 bytes\)"):
        read_checkpoint(tmp_path, "bank", SESSION, 1)
    # A header whose shape product overflows 64 bits, and one of strings: refused alike.
    for header, data, message in [
        ({"descr": "<i8", "fortran_order": False, "shape": (1 << 62, 1 << 3)}, b"", r"claims shape"),
        ({"descr": "<U4", "fortran_order": False, "shape": (2,)}, b"\0" * 32, r"has dtype <U4"),
    ]:
        _rewrite(tmp_path, "bank", npz=_forged_npz(arrays, "a4", header, data))
        with pytest.raises(DataValidationError, match=npz_file + r" \(member 'a4\.npy' " + message):
            read_checkpoint(tmp_path, "bank", SESSION, 1)


def test_an_npz_with_arrays_nothing_refers_to_is_refused(tmp_path):
    _rewrite(tmp_path, "bank")
    with np.load(tmp_path / "bank" / SESSION / "epoch-0001.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    buf = io.BytesIO()
    np.savez(buf, **arrays, a77=np.zeros(3))
    _rewrite(tmp_path, "bank", npz=buf.getvalue())
    with pytest.raises(DataValidationError, match=r"bank: checkpoint '.*epoch-0001\.npz': the file holds array\(s\) nothing refers to: 'a77'"):
        read_checkpoint(tmp_path, "bank", SESSION, 1)


@pytest.mark.parametrize(
    "pointer, message",
    [
        ("[" * 2000 + "]" * 2000, r"is not valid JSON \(nested 2,000 levels deep"),
        ('{"session_id": "../../etc", "epoch": 1}', r"session_id must be a plain identifier"),
        ('{"session_id": "' + SESSION + '", "epoch": "1"}', r"epoch must be an integer"),
        ('{"session_id": "' + SESSION + '", "epoch": [1]}', r"epoch must be an integer"),
        ("[]", r"the file must be an object"),
    ],
)
def test_a_tampered_latest_pointer_is_a_typed_error(tmp_path, pointer, message):
    write_checkpoint(tmp_path, "fintech_1", SESSION, 1, _fintech_state())
    (tmp_path / "fintech_1" / "latest.json").write_text(pointer)
    with pytest.raises(DataValidationError, match=r"fintech_1: checkpoint pointer '.*fintech_1/latest\.json':? " + message):
        latest_checkpoint(tmp_path, "fintech_1")


def test_validate_state_checks_states_held_in_memory():
    validate_state(_bank_state(), "bank", table_rows=25)
    with pytest.raises(DataValidationError, match=r"bank: checkpoint: state\.local\.weights must be finite"):
        validate_state(_bank_state() | {"local": _fintech_state(weights=[np.inf, 1.0])["local"]}, "bank")
    with pytest.raises(DataValidationError, match=r"bank: checkpoint: state\.kind must be one of"):
        validate_state(["not", "a", "state"], "bank")


def test_real_checkpoints_satisfy_their_schema_against_the_tables(tables, interrupted):
    directory, _ = interrupted
    for party, table in zip(("bank", "fintech_1"), tables):
        session_id, epoch = latest_checkpoint(directory, party)
        state = read_checkpoint(directory, party, session_id, epoch, table_rows=table.n_rows)
        assert np.isfinite(state["local"]["weights"]).all() and state["kind"].startswith(f"riskfed-{party.split('_')[0]}")


def _paths(value, prefix=()):
    """Every position in a JSON document (as key paths), containers included."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=6)
    | st.sampled_from([{"__ndarray__": "a0"}, {"__ndarray__": "a999"}, {"__ndarray__": 0}, [], {}]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)  # fmt: skip


@pytest.mark.parametrize("party", ["bank", "fintech_1"])
@settings(max_examples=120, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzzed_checkpoints_load_or_fail_typed(tables, interrupted, party, data):
    """Any one field replaced or removed: the checkpoint loads and restores, or a typed error says why."""
    import shutil
    import tempfile

    from riskfed.errors import RiskfedError
    from riskfed.protocol.messages import SessionOpen

    source, _ = interrupted
    session_id, epoch = latest_checkpoint(source, party)
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(source / party, f"{tmp}/{party}")
        path = Path(tmp) / party / session_id / f"epoch-{epoch:04d}.json"
        meta = json.loads(path.read_text())
        paths = list(_paths(meta))[1:]
        where = data.draw(st.sampled_from(paths))
        parent = meta
        for key in where[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[where[-1]]
        else:
            parent[where[-1]] = data.draw(_JSON_VALUES)
        path.write_text(json.dumps(meta))
        try:
            state = read_checkpoint(tmp, party, session_id, epoch, table_rows=tables[0 if party == "bank" else 1].n_rows)
            _, bank, fintech = _federation(tables)
            if party == "bank":
                bank.restore_state(state)
            else:
                fintech.restore_state(state)
                fintech.handle(SessionOpen(session_id=session_id, sender="bank", recipient=party, round=0, purpose="resume",
                                           key_bits=512, allow_insecure_key=True, resume_epoch=epoch))  # fmt: skip
        except RiskfedError:
            pass  # typed: DataValidationError, ConfigurationError or ProtocolError, with a message


def test_the_bank_resumes_only_from_a_checkpoint_that_passes(tables, interrupted, tmp_path):
    from riskfed.deploy.bank import checkpoint_writer, load_resume_state

    directory, _ = interrupted
    session_id, epoch = latest_checkpoint(directory, "bank")
    state = read_checkpoint(directory, "bank", session_id, epoch)
    bank_table = tables[0]
    checkpoint_writer(tmp_path, bank_table)(state)
    assert load_resume_state(tmp_path, bank_table)["session_id"] == session_id
    state["local"]["weights"][0] = np.nan
    checkpoint_writer(tmp_path, bank_table)(state)
    with pytest.raises(DataValidationError, match=r"bank: checkpoint '.*epoch-0001\.json': state\.local\.weights must be finite"):
        load_resume_state(tmp_path, bank_table)
    state["local"]["weights"][0] = 0.0
    checkpoint_writer(tmp_path, bank_table)(state)
    smaller = validate_table(generate_pilot(1500, seed=3).bank.iloc[:1400], party="bank", id_column="customer_id", label_column="default")
    with pytest.raises(ConfigurationError, match=r"bank: checkpoint '.*epoch-0001\.json' was made on a table of 1,500 rows; this one has 1,400"):
        load_resume_state(tmp_path, smaller)
