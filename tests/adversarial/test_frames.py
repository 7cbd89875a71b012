"""Hostile frames against live services: refused, bounded, and the session goes on.

A coordinator and a fintech run as real services on 127.0.0.1 (mutual TLS, the default
size limits: 64 MiB per message, 8 MiB per per-batch or set-up step). Parties holding
valid certificates — a fintech outside the session, and the bank's own certificate —
send what an adversarial review sent: a 32 MiB ``SessionOpen``, a frame whose header
lies about its length, 8 MiB of empty maps, a document nested 100,000 deep, frames
without a header. Each is refused with a ProtocolError; tracemalloc shows what it cost
the process that hosts the services (Python allocations, in bytes — never time); and an
honest training session, attacked in the middle of its first epoch, ends exactly as an
unattacked in-memory run.
"""

from __future__ import annotations

import os
import tracemalloc

import grpc
import msgpack
import numpy as np
import pytest

from riskfed.certs import init_federation, load_identity
from riskfed.data.schema import validate_table
from riskfed.data.synthetic import generate_pilot
from riskfed.deploy.service import start_coordinator, start_fintech
from riskfed.errors import ProtocolError
from riskfed.job import run_pipeline
from riskfed.models.estimator import VerticalLogisticRegression
from riskfed.protocol import codec
from riskfed.protocol.messages import SessionOpen, TrainingPlan
from riskfed.transport import wire
from riskfed.transport.network import NetworkLimits, NetworkTransport

MIB = 1 << 20
LOOPBACK = "127.0.0.1:0"
PARAMS = dict(
    key_bits=512,  # test-only key, with the explicit flag
    allow_insecure_key=True,
    psi="keyed-hash",
    n_jobs=1,
    batch_size=256,
    random_state=11,
    max_epochs=2,
    tol=0.0,
)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    path = tmp_path_factory.mktemp("certs")
    init_federation(path, fintechs=2)
    return lambda role: load_identity(path / f"{role}.crt", path / f"{role}.key", path / "ca.crt")


@pytest.fixture(scope="module")
def pilot():
    return generate_pilot(1500, seed=3)


@pytest.fixture
def federation(request, certs, pilot, tmp_path):
    """A coordinator and fintech_1 with the default size limits, stopped afterwards."""
    limits = NetworkLimits(timeout=20.0)
    coordinator = start_coordinator(certs("coordinator"), LOOPBACK, limits=limits, allow_insecure_key=True)
    request.addfinalizer(lambda: coordinator.stop(grace=0))
    table = validate_table(pilot.fintechs[0], party="fintech_1", id_column=pilot.id_column)
    fintech = start_fintech(
        certs("fintech_1"), LOOPBACK, table, coordinator_at=coordinator.address, limits=limits,
        model_dir=tmp_path / "model", allow_insecure_key=True,
    )
    request.addfinalizer(lambda: fintech.stop(grace=0))
    return {"coordinator": coordinator, "fintech_1": fintech, "limits": limits}


@pytest.fixture
def sender(request, certs, federation):
    """``sender(role, target)`` → a NetworkTransport of ``role`` connected to ``target``."""

    def make(role, target):
        transport = NetworkTransport(certs(role), {target: federation[target].address})
        request.addfinalizer(transport.close)
        return transport

    return make


def _peak(call):
    """(exception raised by ``call``, peak Python bytes allocated while it ran)."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        try:
            call()
        except ProtocolError as exc:
            return exc, tracemalloc.get_traced_memory()[1] - base
        raise AssertionError("the hostile frame was accepted")
    finally:
        if started:
            tracemalloc.stop()


def _open(sender_role, recipient, **fields):
    return SessionOpen(session_id="hostile", sender=sender_role, recipient=recipient, round=0, **fields)


def _patched(blob: bytes, marker: bytes, payload: bytes) -> bytes:
    assert blob.count(marker) == 1
    return blob.replace(marker, payload)


def hostile_frames(sender_role: str, recipient: str):
    """(what, step announced in the header, body, expected refusal, bytes it may cost).

    A frame the server reads costs what gRPC's Python layer needs to hand over the body
    (two copies of it) and little more; one refused from its header costs next to
    nothing, however large.
    """
    big_open = msgpack.unpackb(codec.encode(_open(sender_role, recipient)), raw=False)
    big_open["f"]["session_id"] = b"\x00" * (32 * MIB)
    empty_maps = b"\xdd" + (8 * MIB).to_bytes(4, "big") + b"\x80" * (8 * MIB)
    plan = codec.encode(TrainingPlan(session_id="hostile", sender=sender_role, recipient=recipient, round=0, hyperparameters={"x": None}))
    deep = b"\x91" * 100_000 + b"\xc0"
    opening = codec.encode(_open(sender_role, recipient, id_normalization={"x": None}))
    return [
        ("32 MiB session_open", "session_open", msgpack.packb(big_open, use_bin_type=True),
         r"refused a 33,55\d,\d{3}-byte 'session_open' message from .*; the limit for this step is 8,388,608 bytes", MIB),
        ("8 MiB of empty maps", "training_plan", _patched(plan, b"\xa1x\xc0", b"\xa1x" + empty_maps),
         r"an array of 8,388,608 entries \(the limit is 65,536\)", 2 * len(empty_maps) + MIB),
        ("100,000-deep nesting", "session_open", _patched(opening, b"\xa1x\xc0", b"\xa1x" + deep),
         "containers nested deeper than 16 levels", MIB),
        ("a header for another step", "training_plan", codec.encode(_open(sender_role, recipient)),
         "the frame header announces a 'training_plan' message, but it holds 'session_open'", MIB),
        ("garbage", "ack", np.random.default_rng(7).bytes(4096), "Malformed message", MIB),
    ]


@pytest.mark.parametrize("role, target", [("fintech_2", "coordinator"), ("fintech_1", "coordinator"), ("bank", "fintech_1"), ("bank", "coordinator")])
def test_hostile_frames_are_refused_at_bounded_cost(federation, sender, role, target):
    transport = sender(role, target)
    for what, step, body, reason, allowance in hostile_frames(role, target):
        error, peak = _peak(lambda: transport._exchange(target, step, body))
        with pytest.raises(ProtocolError, match=reason):
            raise error
        assert peak < allowance, f"{what}: {peak:,} bytes"
    service = federation[target].service
    assert service.session is None  # nothing reached the service


def _raw_call(transport, target, body, metadata):
    call = transport._channel(target).unary_unary(wire.FULL_METHOD, _registered_method=False)
    try:
        call.with_call(body, timeout=20, metadata=metadata)
    except grpc.RpcError as exc:
        raise transport._map_error(exc, target, "here", "raw", 20, dict(metadata).get(wire.NONCE_HEADER, b"")) from None


def test_a_header_that_lies_about_the_length(federation, sender):
    """The header announces a small acknowledgement; the body is 32 MiB. The server reads
    what gRPC allows (at most the message limit plus 1 MiB), compares and refuses: the
    cost is gRPC's two copies of the body, never a decode of it."""
    transport = sender("fintech_2", "coordinator")
    body = codec.encode(_open("fintech_2", "coordinator", id_normalization={"x": "y" * 100})) + b"\x00" * (32 * MIB)
    nonce = os.urandom(wire.NONCE_BYTES)
    error, peak = _peak(lambda: _raw_call(transport, "coordinator", body, wire.frame_header("ack", 1000, nonce)))
    with pytest.raises(ProtocolError, match=r"its header announced 1,000 bytes, it sent 33,55\d,\d{3} bytes"):
        raise error
    assert peak < 2 * len(body) + 4 * MIB, f"{peak:,} bytes"


@pytest.mark.parametrize(
    "metadata, reason",
    [
        ((), "no known message step in the call's header"),
        (((wire.STEP_HEADER, "exec"), (wire.LENGTH_HEADER, "10")), "no known message step"),
        (((wire.STEP_HEADER, "ack"), (wire.LENGTH_HEADER, "-5")), "no message length"),
        (((wire.STEP_HEADER, "ack"), (wire.LENGTH_HEADER, "9" * 40)), "no message length"),
        (((wire.STEP_HEADER, "ack"), (wire.STEP_HEADER, "training_plan"), (wire.LENGTH_HEADER, "10")), "appears twice"),
    ],
)
def test_calls_without_a_sane_header_are_refused(federation, sender, metadata, reason):
    transport = sender("bank", "fintech_1")
    body = codec.encode(_open("bank", "fintech_1"))
    nonce = ((wire.NONCE_HEADER, os.urandom(wire.NONCE_BYTES)),)
    with pytest.raises(ProtocolError, match=reason):
        _raw_call(transport, "fintech_1", body, metadata + nonce)


def test_a_body_over_the_grpc_ceiling_is_cut_off_by_grpc(federation, sender, certs, request):
    """A client that lifts its own send limit and lies in its header: gRPC refuses the
    body at the server's ceiling (the message limit plus 1 MiB) and the server goes on."""
    limits, bank = federation["limits"], certs("bank")
    creds = grpc.ssl_channel_credentials(root_certificates=bank.ca, private_key=bank.private_key, certificate_chain=bank.certificate)
    options = [("grpc.ssl_target_name_override", "fintech_1.riskfed"), ("grpc.max_send_message_length", 256 * MIB)]
    channel = grpc.secure_channel(federation["fintech_1"].address, creds, options=options)
    request.addfinalizer(channel.close)
    body = b"\x00" * (limits.max_message_bytes + 2 * MIB)
    metadata = wire.frame_header("psi_blinded", 1000, os.urandom(wire.NONCE_BYTES))
    with pytest.raises(grpc.RpcError) as info:
        channel.unary_unary(wire.FULL_METHOD, _registered_method=False).with_call(body, timeout=20, metadata=metadata)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # The service still answers (and refuses garbage as usual).
    with pytest.raises(ProtocolError, match="not a msgpack document"):
        sender("bank", "fintech_1")._exchange("fintech_1", "ack", b"\xc1")


def test_an_honest_session_survives_hostile_frames_before_and_during_it(federation, sender, certs, pilot):
    reference = run_pipeline(
        pilot.bank, list(pilot.fintechs), id_column=pilot.id_column, label_column=pilot.label_column,
        estimator=VerticalLogisticRegression(**PARAMS), centralized=False,
    )
    attackers = [("fintech_2", "coordinator"), ("fintech_1", "coordinator"), ("bank", "fintech_1")]

    def attack():
        refused = 0
        for role, target in attackers:
            transport = sender(role, target)
            for _, step, body, reason, _ in hostile_frames(role, target):
                with pytest.raises(ProtocolError, match=reason):
                    transport._exchange(target, step, body)
                refused += 1
        return refused

    assert attack() == 15  # while the services are idle
    during = []

    def progress(event):
        if event.phase == "training" and not during:
            during.append(attack())  # in the middle of the first epoch

    peers = {"fintech_1": federation["fintech_1"].address, "coordinator": federation["coordinator"].address}
    bank_side = NetworkTransport(certs("bank"), peers)
    try:
        result = run_pipeline(
            pilot.bank, ["fintech_1"], id_column=pilot.id_column, label_column=pilot.label_column,
            estimator=VerticalLogisticRegression(**PARAMS), transport=bank_side, progress=progress,
        )
    finally:
        bank_side.close()
    assert during == [15]
    np.testing.assert_array_equal(result.estimator.coef_["bank"], reference.estimator.coef_["bank"])
    np.testing.assert_array_equal(
        np.asarray(federation["fintech_1"].service.model_part["weights"]), reference.estimator.coef_["fintech_1"]
    )
    assert federation["coordinator"].service.sessions_finished == 1
    assert federation["coordinator"].service.sessions_failed == 0

