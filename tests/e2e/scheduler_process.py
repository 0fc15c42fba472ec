"""Our scheduler as users run it: the ``workload-scheduler run`` command, in a subprocess."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SchedulerProcess:
    """``secure``: /metrics on its own port over HTTPS with token authentication (the
    chart's setting); otherwise (``--no-secure-metrics``) one plain HTTP port serves all."""

    def __init__(
        self,
        kubeconfig: str,
        log_dir: Path,
        *extra_args: str,
        name: str = "workload-scheduler",
        secure: bool = False,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_dir / f"{name}-{int(time.time() * 1000)}.log"
        self.port = free_port()
        self.secure = secure
        self.metrics_port = free_port() if secure else self.port
        self.extra_args = list(extra_args)
        self.name = name
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """The health endpoints (and, unless ``secure``, /metrics)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        scheme = "https" if self.secure else "http"
        return f"{scheme}://127.0.0.1:{self.metrics_port}/metrics"

    def start(self, timeout: float = 60) -> SchedulerProcess:
        address = f"127.0.0.1:{self.port}"
        secure_args = ["--secure-metrics"] if self.secure else ["--no-secure-metrics"]
        cmd = [
            sys.executable,
            "-m",
            "scheduler.cli.main",
            "run",
            "--kubeconfig",
            self.kubeconfig,
            "--scheduler-name",
            self.name,
            "--metrics-bind-address",
            f"127.0.0.1:{self.metrics_port}",
            "--health-bind-address",
            address,
            *secure_args,
            "--log-format",
            "json",
            *self.extra_args,
        ]
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            cmd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"scheduler exited early:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"scheduler not ready in {timeout}s:\n{self.log_tail()}")

    def metrics(self, token: str | None = None) -> str:
        """GET /metrics (with ``token`` as bearer token); raises HTTPError on 4xx/5xx."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        request = urllib.request.Request(self.metrics_url, headers=headers)
        # The self-signed serving certificate is checked by the test that needs it.
        context = ssl._create_unverified_context() if self.secure else None
        with urllib.request.urlopen(request, timeout=5, context=context) as r:
            return str(r.read().decode())

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as a crash would be."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if hasattr(self, "_log"):
            self._log.close()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return ""
