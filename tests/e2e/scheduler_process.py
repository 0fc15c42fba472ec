"""Our scheduler as users run it: the ``workload-scheduler run`` command, in a subprocess."""

from __future__ import annotations

import os
import socket
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
    def __init__(
        self, kubeconfig: str, log_dir: Path, *extra_args: str, name: str = "workload-scheduler"
    ) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_dir / f"{name}-{int(time.time() * 1000)}.log"
        self.port = free_port()
        self.extra_args = list(extra_args)
        self.name = name
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> SchedulerProcess:
        address = f"127.0.0.1:{self.port}"
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
            address,
            "--health-bind-address",
            address,
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

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.base_url}/metrics", timeout=5) as r:
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
