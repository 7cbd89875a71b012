"""Transcript audit: what each role actually received in a whole federated session.

The in-memory channel keeps every decoded message. Nothing the fintech or the
coordinator receives may contain labels, bank features, unmasked gradients or per-row
partial scores in plaintext; the bank receives the fintech's per-row scores only
encrypted during training. Every message crossed as codec bytes, never as a pickle.
"""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest

from riskfed.crypto.encoding import STATISTICAL_SECURITY_BITS
from riskfed.crypto.paillier import decrypt
from riskfed.learning.linear.fixed_point import gradient_bound_bits, mask_bits, packing_slot_bits
from riskfed.learning.linear.hyperparameters import Hyperparameters
from riskfed.protocol import codec
from riskfed.protocol.messages import PartialScores, TrainingStop

TRAINING_STEPS_TO_COORDINATOR = {
    "session_open",
    "key_request",
    "plan_accepted",
    "training_plan",
    "randomness_request",
    "masked_gradient",
    "training_stop",
}


@pytest.fixture(scope="module")
def audit(fitted_federation):
    model = fitted_federation
    transport = model.transport_
    bank = transport.nodes["bank"].role
    coordinator = transport.nodes["coordinator"].role
    table = model.bank_table_
    aligned_rows = model.outcome_.aligned.bank_rows
    numeric = [c for c in table.feature_names if c not in table.categorical]
    # Bank secrets at aligned level (positions 0..size-1 of the shared customers)...
    aligned_secrets = {"labels": bank.y_aligned.astype(float)}
    for j, name in enumerate(bank.preprocessor.feature_names_):
        aligned_secrets[f"standardised {name}"] = bank.X_full[:, j]
    for col in numeric:
        aligned_secrets[f"raw {col}"] = table.features[col].to_numpy(dtype=float)[aligned_rows]
    aligned_secrets["bank partial score"] = bank.X_full @ bank.weights[:-1] + bank.weights[-1]
    # ...and in the bank's own table order.
    table_secrets = {"labels (table order)": table.labels.astype(float)}
    for col in numeric:
        table_secrets[f"raw {col} (table order)"] = table.features[col].to_numpy(dtype=float)
    # Every row-position vector that crossed the wire, to catch a secret sent for a subset.
    indexings = [np.arange(len(bank.y_aligned))]
    for entry in transport.transcript:
        for f in dataclasses.fields(entry.message):
            v = getattr(entry.message, f.name)
            if isinstance(v, np.ndarray) and v.dtype == np.int64 and v.size:
                indexings.append(v)
    return {
        "model": model,
        "transport": transport,
        "bank": bank,
        "coordinator": coordinator,
        "aligned_secrets": aligned_secrets,
        "table_secrets": table_secrets,
        "indexings": indexings,
    }


def _walk(value, path):
    """Yield (path, leaf) for every leaf of a message field (dicts and lists included)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(value, (list, tuple)) and value and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value):
        yield path, np.asarray(value, dtype=float)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _walk(v, f"{path}[{i}]")
    else:
        yield path, value


def _looks_like(a: np.ndarray, secret: np.ndarray) -> bool:
    if a.shape != secret.shape or a.size < 3:
        return False
    if np.allclose(a, secret, rtol=1e-6, atol=1e-6):
        return True
    if np.std(a) > 0 and np.std(secret) > 0:
        return abs(np.corrcoef(a, secret)[0, 1]) > 0.99
    return False


def _varied_window(secret: np.ndarray, length: int = 16) -> np.ndarray | None:
    """The first ``length`` consecutive values with both classes / several values (a
    constant run's bytes, e.g. all zeros, would match any zero padding; so would a run
    of zeros ending in a single one, e.g. the leading zero bytes of a decrypted value)."""
    binary = np.isin(secret, [0.0, 1.0]).all()
    for start in range(0, max(1, secret.size - length + 1), length):
        window = secret[start : start + length]
        if window.size != length:
            continue
        values, counts = np.unique(window, return_counts=True)
        if (binary and values.size == 2 and counts.min() >= 3) or (not binary and values.size >= 4):
            return window
    return None


def _leaks(audit, message) -> list[str]:
    found = []
    for f in dataclasses.fields(message):
        for path, leaf in _walk(getattr(message, f.name), f.name):
            if isinstance(leaf, np.ndarray) and leaf.dtype.kind in "biuf":
                a = leaf.astype(float).ravel()
                for name, secret in audit["aligned_secrets"].items():
                    for idx in audit["indexings"]:
                        if len(idx) == a.size and idx.max() < secret.size and _looks_like(a, secret[idx]):
                            found.append(f"{message.STEP}.{path} ≈ {name}")
                for name, secret in audit["table_secrets"].items():
                    if _looks_like(a, secret):
                        found.append(f"{message.STEP}.{path} ≈ {name}")
            elif isinstance(leaf, (bytes, bytearray)) and len(leaf) >= 64:
                for name, secret in {**audit["aligned_secrets"], **audit["table_secrets"]}.items():
                    head = _varied_window(secret)
                    if head is None:
                        continue
                    forms = [head.astype("<f8").tobytes(), head.astype("<f4").tobytes()]
                    if np.array_equal(head, np.round(head)):
                        forms += [head.astype("<i8").tobytes(), head.astype("i1").tobytes()]
                    if any(raw in leaf for raw in forms):
                        found.append(f"{message.STEP}.{path} contains the bytes of {name}")
    return found


def _ciphertexts(blob: bytes, pk) -> list[int]:
    width = pk.ciphertext_bytes
    assert len(blob) % width == 0
    return [int.from_bytes(blob[i : i + width], "big") for i in range(0, len(blob), width)]


def _assert_real_ciphertexts(blob: bytes, pk) -> None:
    for c in _ciphertexts(blob, pk):
        assert 0 < c < pk.n_squared
        # (1 + m n) with no randomness would reveal m = (c - 1) / n to anyone.
        assert c % pk.n != 1


def test_every_message_crossed_as_codec_bytes(audit):
    transcript = audit["transport"].transcript
    assert len(transcript) > 50
    for entry in transcript:
        assert entry.size == len(codec.encode(entry.message))
        assert not codec.encode(entry.message).startswith(b"\x80")
    by_sender = {}
    for entry in transcript:
        by_sender[entry.sender] = by_sender.get(entry.sender, 0) + entry.size
    assert by_sender == audit["transport"].stats.bytes_sent


def test_training_never_pickles(monkeypatch, make_estimator, small_pilot):
    def refuse(*args, **kwargs):
        raise AssertionError("pickle used during a federated session")

    for name in ("dumps", "loads", "dump", "load"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(pickle, "Pickler", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    model = make_estimator(max_epochs=1).fit(
        small_pilot.bank, list(small_pilot.fintechs), id_column="customer_id", label_column="default"
    )
    assert model.n_iter_ == 1


def test_fintech_receives_no_labels_features_or_scores(audit):
    received = audit["transport"].received_by("fintech_1")
    pk = audit["bank"].public_key
    steps = {m.STEP for m in received}
    assert "encrypted_residuals" in steps and "partial_scores" not in steps
    dtypes = set()
    for msg in received:
        assert _leaks(audit, msg) == [], msg.STEP
        for f in dataclasses.fields(msg):
            v = getattr(msg, f.name)
            if isinstance(v, np.ndarray):
                dtypes.add(v.dtype.str)
            if isinstance(v, float):
                pytest.fail(f"fintech received a float in {msg.STEP}.{f.name}")
        if msg.STEP == "encrypted_residuals":
            _assert_real_ciphertexts(msg.ciphertexts, pk)
        if msg.STEP in ("training_plan",):
            assert set(msg.hyperparameters) <= set(Hyperparameters.__dataclass_fields__)
    # Only row positions and digests: no float array at all.
    assert dtypes <= {"<i8", "|S32"}


def test_coordinator_receives_only_parameters_control_and_masked_ciphertexts(audit):
    received = audit["transport"].received_by("coordinator")
    assert {m.STEP for m in received} == TRAINING_STEPS_TO_COORDINATOR
    pk = audit["coordinator"].public_key
    for msg in received:
        assert _leaks(audit, msg) == [], msg.STEP
        if msg.STEP == "training_plan":
            assert msg.train_rows.size == 0 and msg.holdout_rows.size == 0
            assert set(msg.hyperparameters) <= set(Hyperparameters.__dataclass_fields__)
            # Counts only: the training rows' number and each party's number of weights.
            assert msg.train_size == len(audit["model"].outcome_.train_rows)
            assert set(msg.party_weights) == {"bank", "fintech_1"}
            assert all(isinstance(v, int) for v in msg.party_weights.values())
        if msg.STEP == "plan_accepted":
            # A fintech's own word on its number of weights: two counts.
            assert msg.sender == "fintech_1" and msg.features == len(audit["model"].coef_["fintech_1"])
        if msg.STEP == "masked_gradient":
            _assert_real_ciphertexts(msg.ciphertexts, pk)
        if msg.STEP == "randomness_request":
            # A count and the key: nothing about any row.
            assert {f.name for f in dataclasses.fields(msg)} - {"session_id", "sender", "recipient", "round"} == {
                "count",
                "key_fingerprint",
            }
        for f in dataclasses.fields(msg):
            v = getattr(msg, f.name)
            assert not (isinstance(v, np.ndarray) and v.size), f"coordinator received an array in {msg.STEP}.{f.name}"


def test_coordinator_decrypts_only_masked_values(audit):
    """With the private key, everything the coordinator can read is mask-sized."""
    model = audit["model"]
    transport = audit["transport"]
    sk = audit["coordinator"]._private_key
    hyper = Hyperparameters.from_dict(model.outcome_.hyperparameters)
    slot_bits = packing_slot_bits(hyper)
    batch_rows = {m.round: len(m.rows) for m in transport.received_by("fintech_1") if m.STEP == "batch_request"}
    expected_slots = {
        "fintech_1": len(model.coef_["fintech_1"]),
        "bank": len(model.coef_["bank"]) + 1 + (1 if hyper.track_loss else 0),  # weights, intercept, loss
    }
    seen = {"bank": 0, "fintech_1": 0}
    for msg in transport.received_by("coordinator"):
        if msg.STEP != "masked_gradient":
            continue
        rows = batch_rows[msg.round]
        low = 1 << (mask_bits(rows) - STATISTICAL_SECURITY_BITS)
        slack = 1 << gradient_bound_bits(rows)
        slots = []
        for packed in decrypt(sk, _ciphertexts(msg.ciphertexts, pk=audit["coordinator"].public_key), signed=False):
            while packed:
                slots.append(packed & ((1 << slot_bits) - 1))
                packed >>= slot_bits
        assert len(slots) == expected_slots[msg.sender]
        # g + m with m ≥ 2^(mask_bits-80) ≥ |g|: never a gradient-sized number.
        assert all(v > low - slack for v in slots), msg.sender
        assert all(v < (1 << mask_bits(rows)) + slack for v in slots)
        seen[msg.sender] += 1
    assert seen["bank"] == seen["fintech_1"] == len(batch_rows)


def test_decrypted_masked_values_returned_to_parties_are_masked(audit):
    transport = audit["transport"]
    model = audit["model"]
    hyper = Hyperparameters.from_dict(model.outcome_.hyperparameters)
    slot_bits = packing_slot_bits(hyper)
    width = (audit["coordinator"].public_key.key_bits + 7) // 8
    batch_rows = {m.round: len(m.rows) for m in transport.received_by("fintech_1") if m.STEP == "batch_request"}
    for party in ("bank", "fintech_1"):
        for msg in transport.received_by(party):
            if msg.STEP != "decrypted_masked":
                continue
            low = 1 << (mask_bits(batch_rows[msg.round]) - STATISTICAL_SECURITY_BITS)
            for i in range(0, len(msg.values), width):
                packed = int.from_bytes(msg.values[i : i + width], "big")
                while packed:
                    assert (packed & ((1 << slot_bits) - 1)) > low // 2
                    packed >>= slot_bits


def test_bank_gets_fintech_scores_only_encrypted_during_training(audit):
    transport = audit["transport"]
    pk = audit["bank"].public_key
    received = [e.message for e in transport.transcript if e.recipient == "bank"]
    stop_at = next(i for i, e in enumerate(transport.transcript) if isinstance(e.message, TrainingStop))
    during = [e.message for e in transport.transcript[:stop_at] if e.recipient == "bank"]
    assert not any(isinstance(m, PartialScores) for m in during)
    for msg in during:
        for f in dataclasses.fields(msg):
            v = getattr(msg, f.name)
            assert not (isinstance(v, np.ndarray) and v.dtype.kind == "f"), f"{msg.STEP}.{f.name}"
        if msg.STEP == "encrypted_scores":
            _assert_real_ciphertexts(msg.ciphertexts, pk)
            if msg.squares:
                _assert_real_ciphertexts(msg.squares, pk)
        if msg.STEP == "batch_done" and msg.loss_share:
            _assert_real_ciphertexts(msg.loss_share, pk)
    # Plaintext partial scores come only afterwards, for the holdout the bank scores.
    after = [m for m in received if isinstance(m, PartialScores)]
    assert [len(m.scores) for m in after] == [len(audit["model"].outcome_.holdout_rows)]
    assert all(m.round > max(e.round for e in transport.transcript[:stop_at]) for m in after)


def test_no_private_key_material_in_any_message(audit):
    sk = audit["coordinator"]._private_key.phe
    secrets = [int(sk.p), int(sk.q)]
    for entry in audit["transport"].transcript:
        blob = codec.encode(entry.message)
        for s in secrets:
            width = (s.bit_length() + 7) // 8
            assert s.to_bytes(width, "big") not in blob
            assert str(s).encode() not in blob


def test_the_audit_finds_planted_leaks(audit):
    """Negative control: the scanner is not vacuous."""
    from riskfed.protocol.messages import BatchRequest, EncryptedScores, SessionOpen

    bank = audit["bank"]
    header = dict(session_id="s", sender="bank", recipient="fintech_1", round=1)
    batch = next(m.rows for m in audit["transport"].received_by("fintech_1") if m.STEP == "batch_request")
    y = bank.y_aligned
    planted = [
        BatchRequest(**header, rows=y[batch].astype(np.int64)),
        PartialScores(**header, scores=bank.X_full[batch, 0] * 2.0 + 1.0),
        PartialScores(**header, scores=bank.X_full @ bank.weights[:-1] + bank.weights[-1]),
        EncryptedScores(**header, ciphertexts=b"\x00" * 40 + y[:400].astype("<f8").tobytes()),
        SessionOpen(**header, id_normalization={"x": audit["table_secrets"]["labels (table order)"].tolist()}),
    ]
    for msg in planted:
        assert _leaks(audit, msg), msg.STEP


def test_fintech_cannot_strip_its_own_randomness_from_the_residuals(monkeypatch, make_estimator, small_pilot):
    """The fintech knows the randomness ρ of every [[u]] and [[u²]] it sent. Residuals
    built as [[u]]^s [[u²]]^t (1 + c n) would carry ρ_u^s ρ_v^t, and the short s, t
    could be found by trial and c read off — the bank's residual, hence the label. Each
    residual must carry fresh randomness from the bank."""
    import gmpy2

    from riskfed.roles import bank_training as bank_module

    plans = []
    real_plan = bank_module.plan_residuals

    def spy(*args, **kwargs):
        plans.append(real_plan(*args, **kwargs))
        return plans[-1]

    monkeypatch.setattr(bank_module, "plan_residuals", spy)
    model = make_estimator(max_epochs=1, expansion="bank").fit(
        small_pilot.bank,
        list(small_pilot.fintechs),
        id_column=small_pilot.id_column,
        label_column=small_pilot.label_column,
        keep_transcript=True,
    )
    transcript = model.transport_.transcript
    scores = next(e.message for e in transcript if e.message.STEP == "encrypted_scores")
    residuals = next(e.message for e in transcript if e.message.STEP == "encrypted_residuals")
    coordinator = model.transport_.nodes["coordinator"].role
    sk = coordinator._private_key
    pk = sk.public_key
    n, n2 = gmpy2.mpz(pk.n), pk.n_squared
    from riskfed.crypto.paillier import from_bytes

    u = from_bytes(pk, scores.ciphertexts)
    v = from_bytes(pk, scores.squares)
    e = from_bytes(pk, residuals.ciphertexts)
    plan = plans[0]

    def randomness(c):
        m = decrypt(sk, [c], signed=False)[0]
        return gmpy2.mpz(c) * gmpy2.invert(1 + m * n, n2) % n2

    for i in range(20):
        s, t = int(plan.s_q[i]), int(plan.t_q[i])
        inherited = gmpy2.powmod(randomness(u[i]), s, n2) * gmpy2.powmod(randomness(v[i]), t, n2) % n2
        assert randomness(e[i]) != inherited
