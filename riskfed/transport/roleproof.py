"""A server proves its role to the client on every call, not only its DNS name.

The TLS handshake makes the server show a certificate with the DNS name
``<role>.riskfed`` the client asks for. That alone would let a certificate of another
role that also carries the name — a misissued one, or one from a partner's own PKI —
answer as that role, and gRPC's Python API does not let the client read the server's
certificate. So every answer also carries a proof, in the call's trailing metadata:

* the server's certificate (DER), which must chain to the federation CA and name the
  role the client meant to reach (SAN URI ``riskfed:role:<role>``, see
  :mod:`riskfed.certs`);
* a signature with that certificate's key over a domain-separated transcript of the
  server's role, the role of the *client as the server authenticated it* (from the
  client's certificate) and a hash of the client's fresh per-call nonce.

A server of another role cannot produce it, and cannot relay it either: asking the real
party would make it sign the relaying party's own role as the client, which the client
refuses. A client refuses any answer — reply or riskfed error — without a valid proof.

Threat model: the proof authenticates answers. A request reaches whichever server
completes the TLS handshake, so the request itself is protected by the DNS-name check
(``riskfed certs init`` refuses to put reserved names in a certificate); a server of the
wrong role learns the first request, but its answer is refused.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import threading

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa

from riskfed.certs import TlsIdentity, certificate_role
from riskfed.errors import ProtocolError

CERT_TRAILER = "riskfed-cert-bin"
PROOF_TRAILER = "riskfed-proof-bin"
_CONTEXT = b"riskfed server role proof, version 1\x00"
_CACHE_SIZE = 64


def transcript(server_role: str, client_role: str, nonce: bytes) -> bytes:
    """The bytes a server signs (length-prefixed, so no two inputs collide)."""
    parts = [server_role.encode(), client_role.encode(), hashlib.sha256(nonce).digest()]
    return _CONTEXT + b"".join(len(p).to_bytes(2, "big") + p for p in parts)


def _sign(key, data: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH), hashes.SHA256())
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return key.sign(data)
    raise TypeError(f"cannot sign with a {type(key).__name__}")


def _verify(public_key, signature: bytes, data: bytes) -> None:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    elif isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(signature, data, padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH), hashes.SHA256())
    elif isinstance(public_key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        public_key.verify(signature, data)
    else:
        raise InvalidSignature(f"unsupported key type {type(public_key).__name__}")


class ServerProver:
    """Signs the role proof of one server (the key is loaded once)."""

    def __init__(self, identity: TlsIdentity) -> None:
        self.role = identity.role
        self._key = serialization.load_pem_private_key(identity.private_key, password=None)
        self._cert_der = x509.load_pem_x509_certificate(identity.certificate).public_bytes(serialization.Encoding.DER)

    def __repr__(self) -> str:
        return f"ServerProver(role={self.role!r})"

    def trailers(self, client_role: str | None, nonce: bytes | None) -> tuple[tuple[str, bytes], ...]:
        """The trailing metadata proving this server's role to ``client_role``."""
        if nonce is None:
            return ()
        signature = _sign(self._key, transcript(self.role, client_role or "", nonce))
        return ((CERT_TRAILER, self._cert_der), (PROOF_TRAILER, signature))


class ProofVerifier:
    """Checks the role proofs a client receives (certificates checked once, then cached)."""

    def __init__(self, identity: TlsIdentity) -> None:
        self.client_role = identity.role
        self._cas = x509.load_pem_x509_certificates(identity.ca)
        self._known: dict[bytes, tuple[str | None, object, _dt.datetime]] = {}
        self._lock = threading.Lock()

    def _certificate(self, der: bytes) -> tuple[str | None, object]:
        with self._lock:
            hit = self._known.get(der)
        now = _dt.datetime.now(_dt.timezone.utc)
        if hit is not None and now < hit[2]:
            return hit[0], hit[1]
        cert = x509.load_der_x509_certificate(der)
        if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
            raise ValueError("the certificate is not valid now")
        if not any(_issued_by(cert, ca) for ca in self._cas):
            raise ValueError("the certificate is not signed by the federation CA")
        role, key = certificate_role(cert), cert.public_key()
        with self._lock:
            if len(self._known) >= _CACHE_SIZE:
                self._known.clear()
            self._known[der] = (role, key, cert.not_valid_after_utc)
        return role, key

    def check(self, expected_role: str, nonce: bytes, trailers, *, address: str, step: str) -> None:
        """Refuse the answer unless it carries a valid proof that ``expected_role`` sent it.

        Raises
        ------
        ProtocolError
            No proof, a certificate outside the federation or of another role, or a
            signature that does not match this call.
        """
        values = dict(trailers or ())
        der, signature = values.get(CERT_TRAILER), values.get(PROOF_TRAILER)
        where = f"the server at {address} (reached as {expected_role}, step {step!r})"
        if not isinstance(der, bytes) or not isinstance(signature, bytes):
            raise ProtocolError(f"{where} did not prove its role; {self.client_role} refused its answer.", party=expected_role)
        try:
            role, key = self._certificate(der)
        except ValueError as exc:
            raise ProtocolError(f"{where} proved its role with a bad certificate ({exc}); answer refused.", party=expected_role) from None
        if role != expected_role:
            raise ProtocolError(
                f"{where} holds a certificate for {role!r}, not {expected_role!r}; {self.client_role} refused its answer.",
                party=expected_role,
            )
        try:
            _verify(key, signature, transcript(expected_role, self.client_role, nonce))
        except (InvalidSignature, ValueError, TypeError):
            raise ProtocolError(
                f"{where} sent a role proof that does not match this call (a relayed or forged proof); answer refused.",
                party=expected_role,
            ) from None


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


__all__ = ["CERT_TRAILER", "PROOF_TRAILER", "ProofVerifier", "ServerProver", "transcript"]
