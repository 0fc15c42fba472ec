"""The dev cluster's PKI: a chain that verifies, with the names clients and RBAC rely on."""

from __future__ import annotations

import ipaddress
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from devcluster.pki import PkiFiles, write_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    return write_pki(tmp_path_factory.mktemp("pki"))


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _subject(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(attr.value) for attr in cert.subject.get_attributes_for_oid(oid)]


def test_ca_is_a_self_signed_ca(pki: PkiFiles) -> None:
    ca = _cert(pki.ca_cert)
    assert ca.issuer == ca.subject
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    ca.verify_directly_issued_by(ca)


@pytest.mark.parametrize("server_name", ["127.0.0.1", "localhost", "kubernetes.default.svc"])
def test_apiserver_cert_verifies_for_its_names(pki: PkiFiles, server_name: str) -> None:
    store = Store([_cert(pki.ca_cert)])
    name: x509.GeneralName
    try:
        name = x509.IPAddress(ipaddress.ip_address(server_name))
    except ValueError:
        name = x509.DNSName(server_name)
    verifier = PolicyBuilder().store(store).build_server_verifier(name)
    chain = verifier.verify(_cert(pki.apiserver_cert), [])
    assert chain[-1] == _cert(pki.ca_cert)


def test_apiserver_cert_covers_in_cluster_names(pki: PkiFiles) -> None:
    sans = _cert(pki.apiserver_cert).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert {"localhost", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"} <= set(
        sans.value.get_values_for_type(x509.DNSName)
    )
    ips = {str(ip) for ip in sans.value.get_values_for_type(x509.IPAddress)}
    assert {"127.0.0.1", "10.0.0.1"} <= ips  # 10.0.0.1: the `kubernetes` Service's ClusterIP


@pytest.mark.parametrize(
    ("cert_name", "user", "groups"),
    [
        ("admin_cert", "admin", ["system:masters"]),
        ("kube_scheduler_cert", "system:kube-scheduler", []),
        ("kube_controller_manager_cert", "system:kube-controller-manager", []),
        ("kwok_cert", "kwok-controller", ["system:masters"]),
    ],
)
def test_client_certs_carry_the_identity_rbac_sees(
    pki: PkiFiles, cert_name: str, user: str, groups: list[str]
) -> None:
    cert = _cert(getattr(pki, cert_name))
    assert _subject(cert, NameOID.COMMON_NAME) == [user]
    assert _subject(cert, NameOID.ORGANIZATION_NAME) == groups
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    # Not PolicyBuilder's client verifier: its web-PKI profile demands a SAN, which
    # Kubernetes client certificates neither need nor usually have.
    cert.verify_directly_issued_by(_cert(pki.ca_cert))
    now = datetime.now(UTC)
    assert cert.not_valid_before_utc < now < cert.not_valid_after_utc


def test_keys_match_certs_and_are_private(pki: PkiFiles) -> None:
    pairs = [
        (pki.ca_cert, pki.ca_key),
        (pki.apiserver_cert, pki.apiserver_key),
        (pki.admin_cert, pki.admin_key),
        (pki.kube_scheduler_cert, pki.kube_scheduler_key),
        (pki.kube_scheduler_serving_cert, pki.kube_scheduler_serving_key),
        (pki.kube_controller_manager_cert, pki.kube_controller_manager_key),
        (pki.kube_controller_manager_serving_cert, pki.kube_controller_manager_serving_key),
        (pki.kwok_cert, pki.kwok_key),
    ]
    for cert_path, key_path in pairs:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert key.public_key() == _cert(cert_path).public_key()
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600


def test_service_account_key_pair_is_rsa(pki: PkiFiles) -> None:
    private = serialization.load_pem_private_key(
        pki.service_account_key.read_bytes(), password=None
    )
    public = serialization.load_pem_public_key(pki.service_account_pub.read_bytes())
    assert isinstance(private, rsa.RSAPrivateKey)
    assert private.public_key() == public
    assert stat.S_IMODE(pki.service_account_key.stat().st_mode) == 0o600
