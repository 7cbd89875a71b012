"""A party cannot answer as another role: reserved names, and the role proof on every answer.

``riskfed certs init`` refuses host names under ``.riskfed``, wildcards and role names,
so no certificate it issues carries another role's server name. A certificate from
elsewhere might, so clients do not stop at the DNS name: every answer must carry a
proof, signed with the server's certificate key, that the certificate names the role the
client called (``riskfed.transport.roleproof``). These tests run real TLS on loopback
with certificates that carry another role's server name.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from concurrent import futures

import grpc
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from riskfed.certs import TlsIdentity, check_host_name, init_federation, load_identity
from riskfed.cli import main
from riskfed.errors import ConfigurationError, ProtocolError
from riskfed.protocol import codec
from riskfed.protocol.messages import Ack, BatchRequest, KeyRequest
from riskfed.transport import wire
from riskfed.transport.network import NetworkLimits, NetworkTransport, PartyServer
from riskfed.transport.roleproof import ProofVerifier, ServerProver

LOOPBACK = "127.0.0.1:0"
RESERVED = [
    ("fintech_1", "coordinator.riskfed", "is reserved: names under '.riskfed'"),
    ("fintech_1", "Coordinator.RISKFED.", "is reserved: names under '.riskfed'"),
    ("bank", "fintech_2.riskfed", "is reserved"),
    ("fintech_2", "anything.riskfed", "is reserved"),
    ("coordinator", "riskfed", "is reserved"),
    ("fintech_1", "*", "is a wildcard"),
    ("coordinator", "*.example.org", "is a wildcard"),
    ("fintech_1", "coordinator", "is a riskfed role name"),
    ("fintech_2", "bank", "is a riskfed role name"),
    ("fintech_1", "fin1..example.org", "is not a valid DNS name"),
    ("fintech_1", "-fin1.example.org", "is not a valid DNS name"),
]


# -- certs init ------------------------------------------------------------------------
@pytest.mark.parametrize("role, host, message", RESERVED)
def test_certs_init_refuses_reserved_host_names(tmp_path, capsys, role, host, message):
    out = tmp_path / "certs"
    assert main(["certs", "init", "--out", str(out), "--fintechs", "2", "--host", f"{role}={host}"]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and message in " ".join(err.split()) and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())  # nothing half-written
    with pytest.raises(ConfigurationError, match=message.replace("*", r"\*").replace(".", r"\.")):
        init_federation(tmp_path / "api", fintechs=2, hosts={role: [host]})


@pytest.mark.parametrize("host", ["fin1.example.org", "coordinator.example.org", "10.0.0.5", "::1", "localhost", "fintech-1"])
def test_real_host_names_are_accepted(host):
    assert check_host_name("fintech_1", host) == host


# -- certificates that carry another role's server name ------------------------------
def _forged(certs_dir, role: str, dns: list[str], *, key=None) -> TlsIdentity:
    """A certificate for ``role`` from the federation's own CA that also carries ``dns``
    (what a careless or hostile PKI could issue; ``certs init`` refuses to)."""
    ca_key = serialization.load_pem_private_key((certs_dir / "ca.key").read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate((certs_dir / "ca.crt").read_bytes())
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    names = [x509.UniformResourceIdentifier(f"riskfed:role:{role}")] + [x509.DNSName(d) for d in dns]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, role)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return TlsIdentity(role=role, certificate=pem, private_key=key_pem, ca=(certs_dir / "ca.crt").read_bytes())


@pytest.mark.parametrize(
    "extra, refused",
    [
        ("coordinator.riskfed", True),
        ("*.riskfed", True),  # gRPC's name check would let it match every role
        ("*", True),
        ("Bank.Riskfed.", True),
        ("fin1.example.org", False),
        ("*.corp.example", False),  # a real domain's wildcard: no riskfed client asks for it
    ],
)
def test_a_certificate_with_another_roles_server_name_is_refused_at_start_up(certs_dir, tmp_path, extra, refused):
    forged = _forged(certs_dir, "fintech_1", ["fintech_1.riskfed", extra])
    (tmp_path / "f.crt").write_bytes(forged.certificate)
    (tmp_path / "f.key").write_bytes(forged.private_key)
    load = lambda: load_identity(tmp_path / "f.crt", tmp_path / "f.key", certs_dir / "ca.crt")  # noqa: E731
    if refused:
        with pytest.raises(ConfigurationError, match=rf"is for 'fintech_1' but also carries '{re.escape(extra)}'"):
            load()
    else:
        assert load().role == "fintech_1"


class _Acker:
    def __init__(self, name):
        self.name, self.received = name, []

    def __call__(self, message):
        self.received.append(message)
        return [Ack(session_id=message.session_id, sender=self.name, recipient=message.sender, round=message.round)]


@pytest.fixture
def acking_server(request):
    """``acking_server(identity, allowed)`` → a PartyServer that acknowledges every message."""

    def start(ident: TlsIdentity, allowed=("bank",)):
        stub = _Acker(ident.role)
        server = PartyServer(ident, LOOPBACK, stub, allowed_senders=allowed, limits=NetworkLimits(timeout=10)).start()
        request.addfinalizer(lambda: server.stop(grace=0))
        return server, stub

    return start


@pytest.mark.parametrize(
    "holder, poses_as, client",
    [
        ("fintech_1", "coordinator", "bank"),  # would hand the bank a key fintech_1 holds
        ("coordinator", "fintech_1", "bank"),
        ("bank", "coordinator", "fintech_1"),  # would hand a fintech a key the bank holds
        ("fintech_2", "coordinator", "fintech_1"),
    ],
)
def test_a_client_refuses_a_server_of_another_role_despite_the_dns_name(certs_dir, identity, request, holder, poses_as, client):
    forged = _forged(certs_dir, holder, [f"{holder}.riskfed", f"{poses_as}.riskfed"])
    prover, received = ServerProver(forged), []

    def answer_as_the_other_role(body, context):
        # A well-formed reply in the other role's name, with the only proof this server
        # can make: one for its own certificate.
        received.append(body)
        nonce = dict(context.invocation_metadata())[wire.NONCE_HEADER]
        context.set_trailing_metadata(prover.trailers(client, nonce))
        return _ack_envelope(to=client, sender=poses_as)

    address = _raw_server(request, forged, answer_as_the_other_role)
    transport = NetworkTransport(identity(client), {poses_as: address})
    request.addfinalizer(transport.close)
    message = KeyRequest(session_id="s", sender=client, recipient=poses_as, round=0)
    with pytest.raises(ProtocolError, match=rf"holds a certificate for '{holder}', not '{poses_as}'; {client} refused its answer"):
        transport.request(message)
    # The handshake passed on the DNS name (the impostor saw the request), but its
    # answer never reached the caller.
    assert len(received) == 1


def test_the_honest_server_proves_its_role(identity, acking_server, request):
    server, stub = acking_server(identity("coordinator"), allowed=("bank",))
    transport = NetworkTransport(identity("bank"), {"coordinator": server.address})
    request.addfinalizer(transport.close)
    replies = transport.request(KeyRequest(session_id="s", sender="bank", recipient="coordinator", round=0))
    assert [type(r) for r in replies] == [Ack]


def _raw_server(request, ident: TlsIdentity, behaviour):
    """A gRPC server speaking riskfed's method with ``behaviour(body, context) -> bytes``."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    handler = grpc.unary_unary_rpc_method_handler(behaviour)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(wire.SERVICE, {wire.METHOD: handler}),))
    creds = grpc.ssl_server_credentials([(ident.private_key, ident.certificate)], root_certificates=ident.ca, require_client_auth=True)
    port = server.add_secure_port(LOOPBACK, creds)
    server.start()
    request.addfinalizer(lambda: server.stop(0))
    return f"127.0.0.1:{port}"


def _ack_envelope(to="bank", sender="coordinator"):
    return wire.encode_replies([codec.encode(Ack(session_id="s", sender=sender, recipient=to, round=0))])


def test_an_answer_without_a_proof_is_refused(certs_dir, identity, request):
    forged = _forged(certs_dir, "fintech_1", ["coordinator.riskfed"])
    address = _raw_server(request, forged, lambda body, context: _ack_envelope())
    transport = NetworkTransport(identity("bank"), {"coordinator": address})
    request.addfinalizer(transport.close)
    with pytest.raises(ProtocolError, match=r"reached as coordinator, step 'key_request'\) did not prove its role"):
        transport.request(KeyRequest(session_id="s", sender="bank", recipient="coordinator", round=0))


def test_a_proof_relayed_from_the_real_party_is_refused(certs_dir, identity, request):
    """fintech_1, posing as the coordinator, forwards the bank's nonce to the real
    coordinator and hands back its proof: the proof names fintech_1 as the client."""
    real = PartyServer(identity("coordinator"), LOOPBACK, _Acker("coordinator"), allowed_senders=("bank", "fintech_1"))
    real.start()
    request.addfinalizer(lambda: real.stop(grace=0))
    own = identity("fintech_1")
    creds = grpc.ssl_channel_credentials(root_certificates=own.ca, private_key=own.private_key, certificate_chain=own.certificate)
    channel = grpc.secure_channel(real.address, creds, options=[("grpc.ssl_target_name_override", "coordinator.riskfed")])
    request.addfinalizer(channel.close)

    def relay(body, context):
        nonce = dict(context.invocation_metadata())[wire.NONCE_HEADER]
        mine = codec.encode(KeyRequest(session_id="s", sender="fintech_1", recipient="coordinator", round=0))
        _, call = channel.unary_unary(wire.FULL_METHOD, _registered_method=False).with_call(
            mine, timeout=10, metadata=wire.frame_header("key_request", len(mine), nonce)
        )
        context.set_trailing_metadata(tuple(call.trailing_metadata()))
        return _ack_envelope()

    forged = _forged(certs_dir, "fintech_1", ["coordinator.riskfed"])
    address = _raw_server(request, forged, relay)
    transport = NetworkTransport(identity("bank"), {"coordinator": address})
    request.addfinalizer(transport.close)
    with pytest.raises(ProtocolError, match=r"a role proof that does not match this call \(a relayed or forged proof\)"):
        transport.request(KeyRequest(session_id="s", sender="bank", recipient="coordinator", round=0))


def test_proof_verification(identity, other_certs_dir):
    nonce = os.urandom(wire.NONCE_BYTES)
    verifier = ProofVerifier(identity("bank"))
    good = ServerProver(identity("coordinator")).trailers("bank", nonce)
    verifier.check("coordinator", nonce, good, address="a", step="s")
    with pytest.raises(ProtocolError, match="does not match this call"):
        verifier.check("coordinator", os.urandom(wire.NONCE_BYTES), good, address="a", step="s")  # replayed
    with pytest.raises(ProtocolError, match="does not match this call"):
        verifier.check("coordinator", nonce, ServerProver(identity("coordinator")).trailers("fintech_1", nonce), address="a", step="s")
    with pytest.raises(ProtocolError, match="holds a certificate for 'fintech_1', not 'coordinator'"):
        verifier.check("coordinator", nonce, ServerProver(identity("fintech_1")).trailers("bank", nonce), address="a", step="s")
    stranger = load_identity(other_certs_dir / "coordinator.crt", other_certs_dir / "coordinator.key", other_certs_dir / "ca.crt")
    with pytest.raises(ProtocolError, match="bad certificate \\(the certificate is not signed by the federation CA\\)"):
        verifier.check("coordinator", nonce, ServerProver(stranger).trailers("bank", nonce), address="a", step="s")
    with pytest.raises(ProtocolError, match="did not prove its role"):
        verifier.check("coordinator", nonce, (), address="a", step="s")


def test_an_rsa_certificate_from_another_pki_proves_its_role(certs_dir, identity):
    from cryptography.hazmat.primitives.asymmetric import rsa

    own = _forged(certs_dir, "coordinator", ["coordinator.riskfed"], key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    nonce = os.urandom(wire.NONCE_BYTES)
    ProofVerifier(identity("bank")).check("coordinator", nonce, ServerProver(own).trailers("bank", nonce), address="a", step="s")
    with pytest.raises(ProtocolError, match="does not match this call"):
        ProofVerifier(identity("bank")).check("coordinator", nonce, ServerProver(own).trailers("fintech_1", nonce), address="a", step="s")


def test_a_refusal_without_a_proof_is_not_believed(certs_dir, identity, request):
    """An impostor's error must not pass for the real party's: it needs the proof too."""
    forged = _forged(certs_dir, "fintech_1", ["coordinator.riskfed"])

    def refuse(body, context):
        context.set_trailing_metadata(((wire.ERROR_HEADER, "KeyMismatchError"), (wire.PARTY_HEADER, "coordinator")))
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "the coordinator says: use my other key")

    address = _raw_server(request, forged, refuse)
    transport = NetworkTransport(identity("bank"), {"coordinator": address})
    request.addfinalizer(transport.close)
    rows = np.arange(3, dtype=np.int64)
    with pytest.raises(ProtocolError, match="did not prove its role"):
        transport.request(BatchRequest(session_id="s", sender="bank", recipient="coordinator", round=1, rows=rows))
