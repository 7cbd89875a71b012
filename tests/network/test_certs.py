"""Federation credentials: a private CA and one certificate per role."""

from __future__ import annotations

import stat

import pytest
from cryptography import x509

from riskfed.certs import (
    certificate_role,
    certificate_roles,
    describe_certificate,
    init_federation,
    issue_party_certificate,
    load_identity,
    make_ca,
    tls_server_name,
)
from riskfed.cli import main
from riskfed.errors import ConfigurationError


def test_init_makes_one_certificate_per_role(certs_dir):
    for role in ("bank", "fintech_1", "fintech_2", "coordinator"):
        cert = x509.load_pem_x509_certificate((certs_dir / f"{role}.crt").read_bytes())
        assert certificate_roles(cert) == {role}
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert f"riskfed:role:{role}" in san.get_values_for_type(x509.UniformResourceIdentifier)
        assert tls_server_name(role) in san.get_values_for_type(x509.DNSName)
        assert stat.S_IMODE((certs_dir / f"{role}.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((certs_dir / "ca.key").stat().st_mode) == 0o600


def test_identity_checks_key_ca_and_role(certs_dir, other_certs_dir):
    ident = load_identity(certs_dir / "bank.crt", certs_dir / "bank.key", certs_dir / "ca.crt", expected_role="bank")
    assert ident.role == "bank"
    assert "PRIVATE" not in repr(ident)
    with pytest.raises(ConfigurationError, match="is for 'bank', but this party runs as 'coordinator'"):
        load_identity(certs_dir / "bank.crt", certs_dir / "bank.key", certs_dir / "ca.crt", expected_role="coordinator")
    with pytest.raises(ConfigurationError, match="does not belong to the certificate"):
        load_identity(certs_dir / "bank.crt", certs_dir / "fintech_1.key", certs_dir / "ca.crt")
    with pytest.raises(ConfigurationError, match="is not signed by the CA"):
        load_identity(other_certs_dir / "bank.crt", other_certs_dir / "bank.key", certs_dir / "ca.crt")
    with pytest.raises(ConfigurationError, match="the private key file .* does not exist"):
        load_identity(certs_dir / "bank.crt", certs_dir / "missing.key", certs_dir / "ca.crt")


def _plain_certificate(ca_key, ca_cert, common_name: str) -> x509.Certificate:
    """A certificate without SANs, as some corporate PKIs issue them."""
    import datetime as dt

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )


def test_bring_your_own_certificate_with_role_in_cn_only():
    ca_key, ca_cert = make_ca()
    _, issued = issue_party_certificate(ca_key, ca_cert, "fintech_3")
    assert certificate_role(issued) == "fintech_3"
    # Without a SAN URI the CN counts, but only when it is a party name.
    assert certificate_roles(_plain_certificate(ca_key, ca_cert, "coordinator")) == {"coordinator"}
    assert certificate_roles(_plain_certificate(ca_key, ca_cert, "www.example.org")) == set()
    assert certificate_role(_plain_certificate(ca_key, ca_cert, "fintech_0")) is None
    with pytest.raises(ConfigurationError, match="'admin' is not a riskfed role"):
        issue_party_certificate(ca_key, ca_cert, "admin")


def test_init_refuses_to_overwrite(tmp_path):
    init_federation(tmp_path, fintechs=1)
    with pytest.raises(ConfigurationError, match="refusing to replace credentials"):
        init_federation(tmp_path, fintechs=1)
    init_federation(tmp_path, fintechs=1, overwrite=True)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"fintechs": 0}, "'fintechs' parameter must be an int in the range \\[1, 9999\\]"),
        ({"fintechs": 1, "hosts": {"fintech_9": ["x"]}}, "fintech_9, which is not a party of this federation"),
    ],
)
def test_init_validates_its_arguments(tmp_path, kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        init_federation(tmp_path, **kwargs)


def test_cli_certs_init_and_show(tmp_path, capsys):
    out = tmp_path / "certs"
    assert main(["certs", "init", "--out", str(out), "--fintechs", "2", "--host", "fintech_1=fin1.example.org"]) == 0
    info = describe_certificate(out / "fintech_1.crt")
    assert info["roles"] == ["fintech_1"] and "fin1.example.org" in info["dns"]
    assert main(["certs", "show", str(out / "coordinator.crt")]) == 0
    assert "roles coordinator" in capsys.readouterr().out
    assert main(["certs", "init", "--out", str(out)]) == 2
    assert "refusing to replace credentials" in capsys.readouterr().err
