"""Credentials for a federation: a small private CA and one certificate per party.

Every network connection between riskfed parties is mutually authenticated TLS, and a
certificate does more than prove "signed by our CA": it names the *role* of its holder
(``bank``, ``coordinator``, ``fintech_1`` …). Two places carry the role:

* a SAN URI ``riskfed:role:<role>`` (and the subject CN), which a **server** reads from
  the client's certificate and compares with the ``sender`` of every message the client
  sends — a fintech's certificate cannot send as the bank;
* a SAN DNS name ``<role>.riskfed`` (:func:`tls_server_name`), which a **client** asks
  for when it connects (``grpc.ssl_target_name_override``), so the TLS handshake itself
  fails unless the server's certificate names the role the client meant to reach —
  the coordinator's certificate cannot answer for a fintech. Names under ``.riskfed``
  are reserved for this: :func:`check_host_name` refuses them (and wildcards, and bare
  role names) as extra host names, and :func:`load_identity` refuses a certificate that
  carries another role's server name. Because a certificate from another PKI could
  still carry one, a client also checks the role in the server's certificate itself
  (the SAN URI), through a signed proof on every answer
  (:mod:`riskfed.transport.roleproof`).

:func:`init_federation` makes a CA and a key + certificate per party with the
``cryptography`` package (ECDSA P-256, the curve every TLS stack supports). Parties may
bring certificates from their own PKI instead, as long as the federation's CA bundle
verifies them and they carry the two names above (see ``docs/deployment.md``).

Threat model: the CA key can mint any role; :func:`init_federation` writes it with mode
0600 and it belongs offline once the parties have their certificates. Private keys are
never logged or put in error messages; only file paths and role names are.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from riskfed.errors import ConfigurationError
from riskfed.protocol.messages import BANK, COORDINATOR, fintech_name

ROLE_URI_PREFIX = "riskfed:role:"
SERVER_NAME_SUFFIX = ".riskfed"
# Party names the protocol knows: bank, coordinator, fintech_<k>.
_ROLE_PATTERN = re.compile(r"^(bank|coordinator|fintech_[1-9][0-9]{0,3})$")
# Two years and a bit: long enough for a pilot-to-production engagement, short enough to
# force a rotation (825 days is also the CA/Browser Forum ceiling many tools assume).
DEFAULT_VALIDITY_DAYS = 825

CA_CERT = "ca.crt"
CA_KEY = "ca.key"


def is_role(name: str) -> bool:
    """Whether ``name`` is a party name riskfed understands."""
    return isinstance(name, str) and bool(_ROLE_PATTERN.match(name))


def tls_server_name(role: str) -> str:
    """The DNS name a party's certificate carries so clients can demand that role."""
    return f"{role}{SERVER_NAME_SUFFIX}"


_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def check_host_name(role: str, host: str) -> str:
    """Check an extra host name or IP address for ``role``'s certificate; return it.

    Raises
    ------
    ConfigurationError
        A name under ``.riskfed`` (reserved: clients demand ``<role>.riskfed`` to reach
        a role, so ``fintech_1=coordinator.riskfed`` would let fintech_1 answer as the
        coordinator), a wildcard, a bare role name, or not a valid DNS name or IP.
    """
    if not isinstance(host, str) or not host.strip():
        raise ConfigurationError(f"The host name for {role} must be a non-empty string. Got {host!r} instead.")
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    name = host.lower().rstrip(".")
    if name == SERVER_NAME_SUFFIX[1:] or name.endswith(SERVER_NAME_SUFFIX):
        raise ConfigurationError(
            f"The host name {host!r} for {role} is reserved: names under {SERVER_NAME_SUFFIX!r} tell clients which role a "
            f"server holds ({role}'s certificate already carries {tls_server_name(role)!r}); give its real host name instead."
        )
    if "*" in name:
        raise ConfigurationError(f"The host name {host!r} for {role} is a wildcard; give one exact host name per --host.")
    if is_role(name):
        raise ConfigurationError(f"The host name {host!r} for {role} is a riskfed role name; give its real host name instead.")
    if len(name) > 253 or not all(_DNS_LABEL.match(label) for label in name.split(".")):
        raise ConfigurationError(f"The host name {host!r} for {role} is not a valid DNS name or IP address.")
    return host


def foreign_server_names(cert: x509.Certificate, role: str | None) -> list[str]:
    """DNS names in ``cert`` that a client could mistake for another role's server:
    ``<other role>.riskfed``, any other name under ``.riskfed`` (``*.riskfed`` matches
    every role's) and a bare ``*``. Wildcards of real domains (``*.corp.example``) are
    left to the PKI that issued them: no riskfed client asks for such a name."""
    try:
        dns = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        return []
    own = tls_server_name(role).lower() if role else None
    bad = []
    for name in dns:
        low = name.lower().rstrip(".")
        if low == "*" or (low.endswith(SERVER_NAME_SUFFIX) and low != own):
            bad.append(name)
    return bad


def federation_roles(fintechs: int) -> list[str]:
    """``bank``, ``fintech_1`` … ``fintech_K``, ``coordinator``."""
    return [BANK, *(fintech_name(k + 1) for k in range(fintechs)), COORDINATOR]


# -- reading roles from certificates ---------------------------------------------------
def load_certificate(data: bytes | str | Path) -> x509.Certificate:
    """A PEM certificate from bytes or a file."""
    if isinstance(data, (str, Path)):
        data = Path(data).read_bytes()
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise ConfigurationError("Not a PEM X.509 certificate.") from None


def certificate_roles(cert: x509.Certificate | bytes) -> set[str]:
    """Roles a certificate names.

    The SAN URIs ``riskfed:role:<role>`` when there are any; otherwise a subject CN that
    is itself a party name (for certificates from a PKI that cannot add URIs). Names that
    are not party names are ignored.
    """
    if isinstance(cert, (bytes, bytearray)):
        cert = x509.load_pem_x509_certificate(bytes(cert))
    roles: set[str] = set()
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
            if uri.startswith(ROLE_URI_PREFIX):
                roles.add(uri[len(ROLE_URI_PREFIX) :])
    except x509.ExtensionNotFound:
        pass
    if not roles:
        roles = {a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME) if isinstance(a.value, str)}
    return {r for r in roles if is_role(r)}


def certificate_role(cert: x509.Certificate | bytes) -> str | None:
    """The one role a certificate names, or ``None`` when it names none or several."""
    roles = certificate_roles(cert)
    return next(iter(roles)) if len(roles) == 1 else None


# -- a party's own credentials ---------------------------------------------------------
@dataclass(frozen=True)
class TlsIdentity:
    """One party's TLS credentials (PEM bytes) and the role its certificate names.

    ``repr`` never shows the key.
    """

    role: str
    certificate: bytes
    private_key: bytes
    ca: bytes

    def __repr__(self) -> str:
        return f"TlsIdentity(role={self.role!r})"


def load_identity(cert: str | Path, key: str | Path, ca: str | Path, *, expected_role: str | None = None) -> TlsIdentity:
    """Read and check a party's certificate, key and CA bundle.

    Raises
    ------
    ConfigurationError
        A file is missing or unreadable, the key does not belong to the certificate, the
        certificate is not signed by the CA, names no single role, or names another role
        than ``expected_role``.
    """
    blobs = {}
    for what, path in (("certificate", cert), ("private key", key), ("CA certificate", ca)):
        if path is None:
            raise ConfigurationError(f"TLS: no {what} file given (--cert, --key and --ca are all required).")
        p = Path(path)
        if not p.is_file():
            raise ConfigurationError(f"TLS: the {what} file {str(p)!r} does not exist.")
        blobs[what] = p.read_bytes()
    certificate = load_certificate(blobs["certificate"])
    try:
        private_key = serialization.load_pem_private_key(blobs["private key"], password=None)
    except (ValueError, TypeError):
        raise ConfigurationError(f"TLS: {str(key)!r} is not an unencrypted PEM private key.") from None
    if private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != certificate.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
        raise ConfigurationError(f"TLS: the private key {str(key)!r} does not belong to the certificate {str(cert)!r}.")
    cas = x509.load_pem_x509_certificates(blobs["CA certificate"])
    if not any(_signed_by(certificate, ca_cert) for ca_cert in cas):
        raise ConfigurationError(f"TLS: the certificate {str(cert)!r} is not signed by the CA in {str(ca)!r}.")
    roles = certificate_roles(certificate)
    if len(roles) != 1:
        raise ConfigurationError(
            f"TLS: the certificate {str(cert)!r} must name exactly one riskfed role "
            f"(SAN URI {ROLE_URI_PREFIX}<role>); it names {', '.join(sorted(roles)) or 'none'}."
        )
    role = roles.pop()
    foreign = foreign_server_names(certificate, role)
    if foreign:
        raise ConfigurationError(
            f"TLS: the certificate {str(cert)!r} is for {role!r} but also carries {', '.join(map(repr, foreign))}: "
            f"names under {SERVER_NAME_SUFFIX!r} other than {tls_server_name(role)!r} (and a bare '*') would let it answer "
            "for another role; issue it again without them."
        )
    if expected_role is not None and role != expected_role:
        raise ConfigurationError(
            f"TLS: the certificate {str(cert)!r} is for {role!r}, but this party runs as {expected_role!r}."
        )
    return TlsIdentity(role=role, certificate=blobs["certificate"], private_key=blobs["private key"], ca=blobs["CA certificate"])


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except (ValueError, TypeError, Exception):  # InvalidSignature is not a ValueError
        return False


# -- issuing ---------------------------------------------------------------------------
def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _name(common_name: str, organization: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization), x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )


def make_ca(*, organization: str = "riskfed federation", days: int = DEFAULT_VALIDITY_DAYS):
    """A self-signed CA: ``(key, certificate)``; it may sign end-entity certificates only."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = _dt.datetime.now(_dt.timezone.utc)
    name = _name(f"{organization} CA", organization)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5))
        .not_valid_after(now + _dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue_party_certificate(
    ca_key,
    ca_cert: x509.Certificate,
    role: str,
    *,
    hosts: list[str] | tuple[str, ...] = (),
    organization: str = "riskfed federation",
    days: int = DEFAULT_VALIDITY_DAYS,
):
    """A key and certificate for ``role``: CN and SAN URI name the role, SAN DNS
    ``<role>.riskfed`` lets clients demand it; ``hosts`` adds real host names or IPs.

    The certificate is valid for both TLS server and client authentication: fintechs
    and the coordinator are servers to the bank and a fintech is a client of the
    coordinator.
    """
    if not is_role(role):
        raise ConfigurationError(f"{role!r} is not a riskfed role (bank, coordinator or fintech_<k>).")
    hosts = [check_host_name(role, host) for host in hosts]
    key = ec.generate_private_key(ec.SECP256R1())
    now = _dt.datetime.now(_dt.timezone.utc)
    names: list[x509.GeneralName] = [
        x509.UniformResourceIdentifier(ROLE_URI_PREFIX + role),
        x509.DNSName(tls_server_name(role)),
    ]
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(role, organization))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5))
        .not_valid_after(now + _dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def init_federation(
    out_dir: str | Path,
    *,
    fintechs: int = 1,
    hosts: dict[str, list[str]] | None = None,
    organization: str = "riskfed federation",
    days: int = DEFAULT_VALIDITY_DAYS,
    overwrite: bool = False,
) -> dict[str, dict[str, Path]]:
    """Create ``ca.crt``/``ca.key`` and ``<role>.crt``/``<role>.key`` for every party.

    Parameters
    ----------
    out_dir:
        Directory to write into (created).
    fintechs:
        Number of fintechs (``fintech_1`` … ``fintech_K``).
    hosts:
        Role → extra host names / IP addresses for its certificate (``localhost`` and
        ``127.0.0.1`` are always included, for loopback pilots). Names under
        ``.riskfed``, wildcards and role names are refused (:func:`check_host_name`).
    overwrite:
        Replace existing files (default: refuse, so a CA is never replaced by accident).

    Returns
    -------
    dict
        Role (and ``"ca"``) → ``{"cert": path, "key": path}``.

    Example
    -------
    >>> import tempfile
    >>> paths = init_federation(tempfile.mkdtemp(), fintechs=2)
    >>> sorted(paths)
    ['bank', 'ca', 'coordinator', 'fintech_1', 'fintech_2']
    """
    if isinstance(fintechs, bool) or not isinstance(fintechs, int) or not 1 <= fintechs <= 9999:
        raise ConfigurationError(f"The 'fintechs' parameter must be an int in the range [1, 9999]. Got {fintechs!r} instead.")
    out = Path(out_dir)
    roles = federation_roles(fintechs)
    hosts = dict(hosts or {})
    unknown = sorted(set(hosts) - set(roles))
    if unknown:
        raise ConfigurationError(f"Host names given for {', '.join(unknown)}, which is not a party of this federation.")
    for role, names in hosts.items():
        for host in names:
            check_host_name(role, host)  # before anything is written
    files = [CA_CERT, CA_KEY] + [f"{r}.{ext}" for r in roles for ext in ("crt", "key")]
    existing = [f for f in files if (out / f).exists()]
    if existing and not overwrite:
        raise ConfigurationError(
            f"{str(out)!r} already holds {', '.join(existing[:5])}; refusing to replace credentials "
            "(pass --force to overwrite)."
        )
    out.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = make_ca(organization=organization, days=days)
    _write_private(out / CA_KEY, _key_pem(ca_key))
    (out / CA_CERT).write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    written = {"ca": {"cert": out / CA_CERT, "key": out / CA_KEY}}
    for role in roles:
        key, cert = issue_party_certificate(
            ca_key, ca_cert, role, hosts=["localhost", "127.0.0.1", *hosts.get(role, [])], organization=organization, days=days
        )
        _write_private(out / f"{role}.key", _key_pem(key))
        (out / f"{role}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        written[role] = {"cert": out / f"{role}.crt", "key": out / f"{role}.key"}
    return written


def describe_certificate(path: str | Path) -> dict:
    """Subject, roles, names and validity of a certificate (for ``riskfed certs show``)."""
    cert = load_certificate(path)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = san.get_values_for_type(x509.DNSName)
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
        ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        dns, uris, ips = [], [], []
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "roles": sorted(certificate_roles(cert)),
        "dns": dns,
        "uris": uris,
        "ips": ips,
        "not_after": cert.not_valid_after_utc.isoformat(),
        "sha256": cert.fingerprint(hashes.SHA256()).hex(),
    }


__all__ = [
    "TlsIdentity",
    "certificate_role",
    "check_host_name",
    "certificate_roles",
    "describe_certificate",
    "federation_roles",
    "foreign_server_names",
    "init_federation",
    "is_role",
    "issue_party_certificate",
    "load_identity",
    "make_ca",
    "tls_server_name",
]
