"""The metrics server's serving certificate: from files (a mounted Secret), or self-signed.

- ``--tls-cert-file``/``--tls-private-key-file`` given: the pair is read at start
  (an unreadable or mismatched pair stops the scheduler) and re-read every
  ``CHECK_SECONDS``; a changed pair is taken for new connections once it loads
  (a half-written update is skipped until it is whole). Kubernetes updates a
  mounted Secret by swapping a symlink, so the two files change together.
- None given: a self-signed ECDSA P-256 certificate for the host name, ``localhost``,
  127.0.0.1 and ::1 (and the bind address), valid ``SELF_SIGNED_LIFETIME``, made in
  memory at start and again when a third of its lifetime is left. Upstream's
  kube-scheduler writes its self-signed pair to ``--cert-dir`` and keeps it a year;
  with a read-only root filesystem we keep ours in memory and renew it instead.

Both go into one ``ssl.SSLContext`` the server keeps: loading a new pair into it
changes what new handshakes present and leaves open connections alone. Python's ssl
module loads keys from files only, so the PEM goes through an anonymous in-memory
file (``memfd_create``; a private temporary file where there is none) for the
moment of loading. Generating the key runs in a thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import ipaddress
import os
import socket
import ssl
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = structlog.get_logger(__name__)

SELF_SIGNED_LIFETIME = dt.timedelta(days=1)
RENEW_BEFORE_EXPIRY = 1 / 3
"""A new self-signed certificate is made when this fraction of its lifetime is left
(with a day's lifetime: 8 hours before it expires, 16 hours after it was made)."""
BACKDATE = dt.timedelta(hours=1)
"""notBefore lies this far in the past, for clients whose clock is a little behind."""
CHECK_SECONDS = 10.0
"""How often the files are re-read (and the self-signed certificate's age looked at)."""


class CertificateError(ValueError):
    """A certificate/key pair that cannot be served."""


@dataclass(frozen=True, slots=True)
class KeyPair:
    """PEM certificate (chain) and private key, and when the (leaf) certificate is valid."""

    cert_pem: bytes
    key_pem: bytes
    not_before: dt.datetime
    not_after: dt.datetime

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.cert_pem + self.key_pem).hexdigest()[:16]


class CertificateSource(Protocol):
    """Where the serving certificate comes from."""

    def current(self, now: dt.datetime) -> KeyPair | None:
        """The pair to serve from ``now`` on: a new one, or None to keep serving the last.
        Blocking (reads files or generates a key): called in a thread."""
        ...


class SelfSigned:
    """A fresh self-signed pair at first and whenever the last is due for renewal."""

    def __init__(self, hosts: list[str], lifetime: dt.timedelta = SELF_SIGNED_LIFETIME) -> None:
        self.hosts = hosts
        self.lifetime = lifetime
        self.last: KeyPair | None = None

    def current(self, now: dt.datetime) -> KeyPair | None:
        if self.last is not None and now < self.renew_at(self.last):
            return None
        self.last = self_signed(self.hosts, now, self.lifetime)
        return self.last

    def renew_at(self, pair: KeyPair) -> dt.datetime:
        return pair.not_after - self.lifetime * RENEW_BEFORE_EXPIRY


class Files:
    """The pair in two files, whenever their content changed since it was last loaded."""

    def __init__(self, cert_file: str, key_file: str) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self.last_digest = ""

    def current(self, now: dt.datetime) -> KeyPair | None:
        try:
            cert_pem = Path(self.cert_file).read_bytes()
            key_pem = Path(self.key_file).read_bytes()
        except OSError as exc:
            raise CertificateError(f"cannot read the serving certificate: {exc}") from exc
        digest = hashlib.sha256(cert_pem + b"\0" + key_pem).hexdigest()
        if digest == self.last_digest:
            return None
        # Remembered before it is checked: a bad pair is reported once, not every check.
        self.last_digest = digest
        return parse_pair(cert_pem, key_pem, f"{self.cert_file}, {self.key_file}")


class ServingCertificate:
    """The server's SSL context, kept current from a ``CertificateSource``."""

    def __init__(
        self,
        source: CertificateSource,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.source = source
        self.clock = clock
        self.context = server_context()
        self.pair: KeyPair | None = None

    async def load(self) -> None:
        """The first pair; raises ``CertificateError`` when there is none to serve."""
        if not await self.refresh():
            raise CertificateError("no serving certificate")

    async def refresh(self) -> bool:
        """Take a new pair if the source has one; True when it was taken."""
        pair = await asyncio.to_thread(self.source.current, self.clock())
        if pair is None:
            return False
        with _pem_file(pair.key_pem + pair.cert_pem) as path:
            # Into a scratch context first: a pair that does not load leaves the live
            # context untouched (load_cert_chain could fail after taking the certificate).
            try:
                server_context().load_cert_chain(path)
            except ssl.SSLError as exc:
                raise CertificateError(f"certificate and key do not load: {exc}") from exc
            self.context.load_cert_chain(path)
        self.pair = pair
        log.info(
            "serving certificate loaded",
            not_after=pair.not_after.isoformat(),
            fingerprint=pair.fingerprint,
        )
        return True

    async def run(self, interval: float = CHECK_SECONDS) -> None:
        """Keep checking the source; a bad update is logged and the last pair kept."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except CertificateError as exc:
                log.warning("keeping the current serving certificate", error=str(exc))


def server_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def parse_pair(cert_pem: bytes, key_pem: bytes, where: str) -> KeyPair:
    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
        serialization.load_pem_private_key(key_pem, password=None)
    except ValueError as exc:
        raise CertificateError(f"{where}: not a PEM certificate and key: {exc}") from exc
    leaf = chain[0]
    return KeyPair(cert_pem, key_pem, leaf.not_valid_before_utc, leaf.not_valid_after_utc)


def self_signed(
    hosts: list[str], now: dt.datetime, lifetime: dt.timedelta = SELF_SIGNED_LIFETIME
) -> KeyPair:
    """A self-signed serving certificate; ``hosts`` are DNS names or IP addresses."""
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"{hosts[0]}@{int(now.timestamp())}")]
    )
    not_before = now - BACKDATE
    not_after = now + lifetime
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        cert.not_valid_before_utc,
        cert.not_valid_after_utc,
    )


def self_signed_hosts(bind_host: str) -> list[str]:
    """Names the self-signed certificate is for: this host, loopback, the bind address."""
    hosts = [socket.gethostname(), "localhost", "127.0.0.1", "::1"]
    if bind_host not in ("", "0.0.0.0", "::"):
        hosts.append(bind_host)
    return hosts


def certificate_source(cert_file: str, key_file: str, bind_host: str) -> CertificateSource:
    if cert_file:
        return Files(cert_file, key_file)
    return SelfSigned(self_signed_hosts(bind_host))


@contextlib.contextmanager
def _pem_file(data: bytes) -> Iterator[str]:
    """A path to ``data`` that lives only as long as the ``with`` block."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("workload-scheduler-tls", os.MFD_CLOEXEC)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory() as tmp:  # 0700: for our user alone
        path = Path(tmp) / "pair.pem"
        path.write_bytes(data)
        yield str(path)
