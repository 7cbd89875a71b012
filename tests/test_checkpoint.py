"""Per-party checkpoints: atomic files, never pickle, and resume = uninterrupted run.

The resume tests run every party in memory (a fresh coordinator, hence a fresh key, for
the resumed part); tests/network/test_processes.py does the same across real processes.
"""

from __future__ import annotations

import io
import json
import stat

import numpy as np
import pytest

from riskfed.checkpoint import KEEP_EPOCHS, latest_checkpoint, read_checkpoint, table_fingerprint, write_checkpoint
from riskfed.data.schema import validate_table
from riskfed.data.synthetic import generate_pilot
from riskfed.errors import ConfigurationError, DataValidationError, ProtocolError
from riskfed.federation import Cancelled, run_training_session
from riskfed.roles.bank import Bank
from riskfed.roles.coordinator import Coordinator
from riskfed.roles.fintech import Fintech
from riskfed.roles.local import Hyperparameters
from riskfed.transport.memory import InMemoryTransport

SESSION = "0123456789abcdef0123456789abcdef"


def test_round_trip_keeps_arrays_exact_and_files_private(tmp_path):
    state = {
        "weights": np.array([0.1, -2.5e-300, np.pi]),
        "rows": np.arange(5, dtype=np.int64),
        "nested": {"partner_rows": {"fintech_1": np.array([4, 2, 0])}, "history": [{"epoch": 1, "loss": 0.5}]},
        "steps": np.int64(7),
        "name": "bank",
    }
    path = write_checkpoint(tmp_path, "bank", SESSION, 1, state)
    back = read_checkpoint(tmp_path, "bank", SESSION, 1)
    np.testing.assert_array_equal(back["weights"], state["weights"])
    assert back["weights"].dtype == np.float64 and back["rows"].dtype == np.int64
    assert back["nested"]["partner_rows"]["fintech_1"].tolist() == [4, 2, 0]
    assert back["nested"]["history"] == [{"epoch": 1, "loss": 0.5}] and back["steps"] == 7
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert latest_checkpoint(tmp_path, "bank") == (SESSION, 1)
    # No temporary files are left behind.
    assert sorted(p.name for p in path.parent.iterdir()) == ["epoch-0001.json", "epoch-0001.npz"]


def test_only_the_last_epochs_are_kept(tmp_path):
    for epoch in range(1, 6):
        write_checkpoint(tmp_path, "fintech_1", SESSION, epoch, {"w": np.full(2, epoch, dtype=float)})
    kept = sorted(p.name for p in (tmp_path / "fintech_1" / SESSION).glob("*.json"))
    assert kept == [f"epoch-{e:04d}.json" for e in range(6 - KEEP_EPOCHS, 6)]
    assert latest_checkpoint(tmp_path, "fintech_1") == (SESSION, 5)
    with pytest.raises(DataValidationError, match="no checkpoint of session .* after epoch 1 .*have epochs 3, 4, 5"):
        read_checkpoint(tmp_path, "fintech_1", SESSION, 1)


def test_a_crash_mid_write_leaves_the_previous_checkpoint(tmp_path):
    write_checkpoint(tmp_path, "bank", SESSION, 1, {"w": np.zeros(2)})
    # Epoch 2's arrays landed but the process died before its JSON commit record.
    (tmp_path / "bank" / SESSION / "epoch-0002.npz").write_bytes(b"partial")
    assert latest_checkpoint(tmp_path, "bank") == (SESSION, 1)
    assert read_checkpoint(tmp_path, "bank", SESSION, 1)["w"].tolist() == [0.0, 0.0]


def test_tampered_or_foreign_checkpoints_are_refused(tmp_path):
    write_checkpoint(tmp_path, "bank", SESSION, 1, {"w": np.zeros(2)})
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
    import hashlib

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


def test_fintech_refuses_to_resume_another_session(tables, interrupted):
    directory, _ = interrupted
    session_id, epoch = latest_checkpoint(directory, "fintech_1")
    state = read_checkpoint(directory, "fintech_1", session_id, epoch)
    _, _, fintech = _federation(tables)
    fintech.restore_state(state)
    from riskfed.protocol.messages import SessionOpen

    other = SessionOpen(session_id="other", sender="bank", recipient="fintech_1", round=0, purpose="resume", key_bits=512, allow_insecure_key=True, resume_epoch=epoch)
    with pytest.raises(ProtocolError, match="has no checkpoint of session 'other' to resume"):
        fintech.handle(other)
    with pytest.raises(ProtocolError, match="the checkpoint is not one of fintech_2's"):
        Fintech("fintech_2", tables[1]).restore_state(state)
