"""The metrics serving certificate from files, as a mounted Secret provides it: served, and
replaced for new connections when the files change (``workload-scheduler run`` in a
subprocess, against the real API server)."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from pathlib import Path

from scheduler.server.tls import CHECK_SECONDS, KeyPair, self_signed
from tests.e2e.k8s import wait_until
from tests.e2e.scheduler_process import SchedulerProcess


def _write(directory: Path, pair: KeyPair) -> None:
    # As the kubelet updates a Secret volume: new files, then one rename into place.
    for name, data in (("tls.crt", pair.cert_pem), ("tls.key", pair.key_pem)):
        staged = directory / f".{name}.new"
        staged.write_bytes(data)
        staged.replace(directory / name)


def _scheduler(kubeconfig: str, log_dir: Path, tls: Path, name: str) -> SchedulerProcess:
    """Secure metrics with the pair ``tls/tls.crt``, ``tls/tls.key``."""
    files = (
        "--tls-cert-file",
        str(tls / "tls.crt"),
        "--tls-private-key-file",
        str(tls / "tls.key"),
    )
    return SchedulerProcess(kubeconfig, log_dir, *files, name=name, secure=True)


def _verifies_with(port: int, pair: KeyPair) -> bool:
    """Does a client that trusts only ``pair``'s certificate accept the server's, for the
    name localhost?"""
    context = ssl.create_default_context(cadata=pair.cert_pem.decode())
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="localhost"),
        ):
            return True
    except ssl.SSLCertVerificationError:
        return False


def test_certificate_files_are_served_and_reloaded(kubeconfig: str, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    first, second = self_signed(["localhost"], now), self_signed(["localhost"], now)
    tls = tmp_path / "tls"
    tls.mkdir()
    _write(tls, first)
    proc = _scheduler(kubeconfig, tmp_path, tls, "tls-files")
    proc.start(timeout=120)
    try:
        assert _verifies_with(proc.metrics_port, first)
        assert not _verifies_with(proc.metrics_port, second)
        _write(tls, second)
        wait_until(
            lambda: _verifies_with(proc.metrics_port, second),
            timeout=CHECK_SECONDS * 2 + 5,
            what="the new certificate to be served",
        )
        assert not _verifies_with(proc.metrics_port, first)
        # A broken update is refused and the last good pair stays.
        refused = "keeping the current serving certificate"
        before = proc.log_path.read_text().count(refused)
        (tls / "tls.crt").write_text("garbage")
        wait_until(
            lambda: proc.log_path.read_text().count(refused) > before,
            timeout=CHECK_SECONDS * 2 + 5,
            what="the bad update to be refused",
        )
        assert _verifies_with(proc.metrics_port, second)
    finally:
        proc.stop()


def test_unusable_certificate_files_stop_the_scheduler(kubeconfig: str, tmp_path: Path) -> None:
    proc = _scheduler(kubeconfig, tmp_path, tmp_path / "missing", "tls-missing")
    try:
        proc.start(timeout=120)
    except RuntimeError as exc:
        assert "exited early" in str(exc)
    else:
        raise AssertionError("started without its certificate")
    finally:
        proc.stop()
    assert proc.proc is not None and proc.proc.returncode == 1
    assert "cannot serve /metrics over HTTPS" in proc.log_path.read_text()
