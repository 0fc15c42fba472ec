"""The metrics serving certificate: self-signed renewal, file reloads, and what a TLS
client sees after a rotation (a fake clock; a real handshake on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from pathlib import Path

import pytest
from cryptography import x509

from scheduler.server.tls import (
    SELF_SIGNED_LIFETIME,
    CertificateError,
    Files,
    SelfSigned,
    ServingCertificate,
    self_signed,
)

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


def test_self_signed_certificate_is_for_serving_these_hosts() -> None:
    pair = self_signed(["sched-0", "localhost", "127.0.0.1", "::1"], T0)
    cert = x509.load_pem_x509_certificate(pair.cert_pem)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["sched-0", "localhost"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert [u._name for u in usage] == ["serverAuth"]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert pair.not_before < T0 < pair.not_after == T0 + SELF_SIGNED_LIFETIME


def test_self_signed_is_renewed_when_a_third_of_its_life_is_left() -> None:
    source = SelfSigned(["localhost"])
    first = source.current(T0)
    assert first is not None
    due = source.renew_at(first)
    assert due == T0 + dt.timedelta(hours=16) and first.not_after - due == dt.timedelta(hours=8)
    assert source.current(due - dt.timedelta(seconds=1)) is None
    second = source.current(due)
    assert second is not None and second.cert_pem != first.cert_pem
    assert second.not_after > first.not_after


def _write(tmp_path: Path, pair_hosts: list[str], now: dt.datetime) -> tuple[Path, Path]:
    pair = self_signed(pair_hosts, now)
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_bytes(pair.cert_pem)
    key.write_bytes(pair.key_pem)
    return cert, key


def test_files_are_loaded_again_only_when_they_change(tmp_path: Path) -> None:
    cert, key = _write(tmp_path, ["a"], T0)
    source = Files(str(cert), str(key))
    assert source.current(T0) is not None
    assert source.current(T0) is None  # unchanged
    _write(tmp_path, ["b"], T0)
    assert source.current(T0) is not None
    cert.write_text("not a certificate")
    with pytest.raises(CertificateError, match="not a PEM certificate"):
        source.current(T0)
    assert source.current(T0) is None, "a bad update is reported once"
    key.unlink()
    with pytest.raises(CertificateError, match="cannot read"):
        source.current(T0)


async def _served_names(context: ssl.SSLContext) -> list[str]:
    """The DNS names of the certificate a new connection is shown."""

    async def handle(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    client = ssl.create_default_context()
    client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True)
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
    cert = x509.load_der_x509_certificate(der)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return list(names.get_values_for_type(x509.DNSName))


async def test_new_connections_get_the_rotated_certificate(tmp_path: Path) -> None:
    clock = Clock()
    serving = ServingCertificate(SelfSigned(["first"]), clock)
    await serving.load()
    assert await _served_names(serving.context) == ["first"]
    assert not await serving.refresh()  # not due
    serving.source = SelfSigned(["second"])
    clock.now += SELF_SIGNED_LIFETIME
    assert await serving.refresh()
    assert await _served_names(serving.context) == ["second"]


async def test_a_mismatched_pair_keeps_the_old_one(tmp_path: Path) -> None:
    cert, key = _write(tmp_path, ["old"], T0)
    serving = ServingCertificate(Files(str(cert), str(key)), Clock())
    await serving.load()
    # A writer that replaced the certificate but not (yet) the key.
    cert.write_bytes(self_signed(["new"], T0).cert_pem)
    with pytest.raises(CertificateError, match="do not load"):
        await serving.refresh()
    assert await _served_names(serving.context) == ["old"]
    # Then the key arrives: the whole pair is taken.
    _write(tmp_path, ["new"], T0)
    assert await serving.refresh()
    assert await _served_names(serving.context) == ["new"]


async def test_start_fails_without_a_usable_pair(tmp_path: Path) -> None:
    serving = ServingCertificate(Files(str(tmp_path / "missing.crt"), str(tmp_path / "k")))
    with pytest.raises(CertificateError):
        await serving.load()


# -- the settings ----------------------------------------------------------------------------


def test_secure_metrics_is_the_default_and_a_flag_turns_it_off() -> None:
    from scheduler.cli.main import build_parser
    from scheduler.config import ConfigError, Settings, load_settings

    def settings(*argv: str) -> Settings:
        args = vars(build_parser().parse_args(["run", *argv]))
        return load_settings(
            None, {k: v for k, v in args.items() if k not in ("command", "config")}
        )

    assert settings().secure_metrics is True
    assert settings("--no-secure-metrics").secure_metrics is False
    pair = settings("--tls-cert-file", "/tls/tls.crt", "--tls-private-key-file", "/tls/tls.key")
    assert pair.tls_cert_file == "/tls/tls.crt"
    with pytest.raises(ConfigError, match="go together"):
        settings("--tls-cert-file", "/tls/tls.crt")
    with pytest.raises(ConfigError, match="secure_metrics"):
        settings("--no-secure-metrics", "--tls-cert-file", "a", "--tls-private-key-file", "b")
