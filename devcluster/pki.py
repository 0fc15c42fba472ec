"""A throw-away PKI for the dev control plane.

One CA signs the apiserver's serving certificate and the client certificates; the apiserver
trusts that CA for client authentication (``--client-ca-file``), so a client certificate's
subject *is* the identity RBAC sees: CN is the user, O the groups.  ServiceAccount tokens are
signed with a separate RSA key, as kube-apiserver requires.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

CA_COMMON_NAME = "workload-scheduler-dev-ca"
ADMIN_USER = "admin"
ADMIN_GROUP = "system:masters"  # bound to cluster-admin by the default RBAC policy
KUBE_SCHEDULER_USER = "system:kube-scheduler"  # bound to the system:kube-scheduler role
# Bound to the system:kube-controller-manager role; each controller then uses its own
# ServiceAccount in kube-system (--use-service-account-credentials).
KUBE_CONTROLLER_MANAGER_USER = "system:kube-controller-manager"
KWOK_USER = "kwok-controller"  # in ADMIN_GROUP: it acts as every simulated kubelet at once

# Names a client may use for the apiserver: loopback, plus the in-cluster service names and
# the first IP of --service-cluster-ip-range (the `kubernetes` Service's ClusterIP).
APISERVER_DNS_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
APISERVER_IPS = ("127.0.0.1", "::1", "10.0.0.1")

_VALIDITY = dt.timedelta(days=365)
# Backdated so a slightly skewed clock does not make fresh certificates "not yet valid".
_BACKDATE = dt.timedelta(hours=1)


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key."""

    certificate: x509.Certificate
    private_key: PrivateKey

    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return _private_pem(self.private_key)


@dataclass(frozen=True)
class PkiFiles:
    """Where :func:`write_pki` puts each PEM file."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def apiserver_cert(self) -> Path:
        return self.directory / "apiserver.crt"

    @property
    def apiserver_key(self) -> Path:
        return self.directory / "apiserver.key"

    @property
    def admin_cert(self) -> Path:
        return self.directory / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.directory / "admin.key"

    @property
    def kube_scheduler_cert(self) -> Path:
        return self.directory / "kube-scheduler.crt"

    @property
    def kube_scheduler_key(self) -> Path:
        return self.directory / "kube-scheduler.key"

    @property
    def kube_scheduler_serving_cert(self) -> Path:
        return self.directory / "kube-scheduler-serving.crt"

    @property
    def kube_scheduler_serving_key(self) -> Path:
        return self.directory / "kube-scheduler-serving.key"

    @property
    def kube_controller_manager_cert(self) -> Path:
        return self.directory / "kube-controller-manager.crt"

    @property
    def kube_controller_manager_key(self) -> Path:
        return self.directory / "kube-controller-manager.key"

    @property
    def kube_controller_manager_serving_cert(self) -> Path:
        return self.directory / "kube-controller-manager-serving.crt"

    @property
    def kube_controller_manager_serving_key(self) -> Path:
        return self.directory / "kube-controller-manager-serving.key"

    @property
    def kwok_cert(self) -> Path:
        return self.directory / "kwok.crt"

    @property
    def kwok_key(self) -> Path:
        return self.directory / "kwok.key"

    @property
    def service_account_key(self) -> Path:
        return self.directory / "sa.key"

    @property
    def service_account_pub(self) -> Path:
        return self.directory / "sa.pub"


def new_key() -> ec.EllipticCurvePrivateKey:
    """A P-256 key: Go and OpenSSL both accept it, and it is much faster to make than RSA."""
    return ec.generate_private_key(ec.SECP256R1())


def new_ca(common_name: str = CA_COMMON_NAME) -> KeyPair:
    """A self-signed CA that may sign leaf certificates only."""
    key = new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (
        _builder(name, name, key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), False)
    )
    return KeyPair(builder.sign(key, hashes.SHA256()), key)


def issue_serving_cert(
    ca: KeyPair,
    *,
    common_name: str = "kube-apiserver",
    dns_names: Iterable[str] = APISERVER_DNS_NAMES,
    ip_addresses: Iterable[str] = APISERVER_IPS,
) -> KeyPair:
    """A TLS server certificate for the given names, signed by ``ca``."""
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return _issue(
        ca,
        subject,
        ExtendedKeyUsageOID.SERVER_AUTH,
        x509.SubjectAlternativeName(sans),
    )


def issue_client_cert(
    ca: KeyPair, *, common_name: str, organizations: Iterable[str] = ()
) -> KeyPair:
    """A client certificate the apiserver maps to user ``common_name`` in ``organizations``."""
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return _issue(ca, x509.Name(attributes), ExtendedKeyUsageOID.CLIENT_AUTH, None)


def new_service_account_key() -> rsa.RSAPrivateKey:
    """The key kube-apiserver signs ServiceAccount tokens with (RS256 needs RSA)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def write_pki(directory: Path) -> PkiFiles:
    """Create a fresh CA, the apiserver certificate, client certificates for admin,
    kube-scheduler, kube-controller-manager and kwok, and the ServiceAccount key pair, as PEM
    files in ``directory``.

    kube-scheduler and kube-controller-manager also get serving certificates from the CA so
    their health endpoints can be probed with normal verification instead of trusting a
    self-signed certificate.  kube-controller-manager signs CSRs with the CA key itself
    (``--cluster-signing-*``).
    """
    files = PkiFiles(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca = new_ca()
    pairs = {
        (files.ca_cert, files.ca_key): ca,
        (files.apiserver_cert, files.apiserver_key): issue_serving_cert(ca),
        (files.admin_cert, files.admin_key): issue_client_cert(
            ca, common_name=ADMIN_USER, organizations=[ADMIN_GROUP]
        ),
        (files.kube_scheduler_cert, files.kube_scheduler_key): issue_client_cert(
            ca, common_name=KUBE_SCHEDULER_USER
        ),
        (files.kube_scheduler_serving_cert, files.kube_scheduler_serving_key): (
            _loopback_serving_cert(ca, "kube-scheduler")
        ),
        (files.kube_controller_manager_cert, files.kube_controller_manager_key): (
            issue_client_cert(ca, common_name=KUBE_CONTROLLER_MANAGER_USER)
        ),
        (files.kube_controller_manager_serving_cert, files.kube_controller_manager_serving_key): (
            _loopback_serving_cert(ca, "kube-controller-manager")
        ),
        (files.kwok_cert, files.kwok_key): issue_client_cert(
            ca, common_name=KWOK_USER, organizations=[ADMIN_GROUP]
        ),
    }
    for (cert_path, key_path), pair in pairs.items():
        cert_path.write_bytes(pair.cert_pem())
        _write_private(key_path, pair.key_pem())
    sa_key = new_service_account_key()
    _write_private(files.service_account_key, _private_pem(sa_key))
    files.service_account_pub.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return files


def _loopback_serving_cert(ca: KeyPair, common_name: str) -> KeyPair:
    return issue_serving_cert(
        ca, common_name=common_name, dns_names=["localhost"], ip_addresses=["127.0.0.1"]
    )


def _builder(subject: x509.Name, issuer: x509.Name, key: PrivateKey) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY)
    )


def _issue(
    ca: KeyPair,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    sans: x509.SubjectAlternativeName | None,
) -> KeyPair:
    key = new_key()
    ca_ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    builder = (
        _builder(subject, ca.certificate.subject, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski.value), False
        )
    )
    if sans is not None:
        builder = builder.add_extension(sans, critical=False)
    return KeyPair(builder.sign(ca.private_key, hashes.SHA256()), key)


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _private_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    # Created 0600 from the start, so the key is never readable by others, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
