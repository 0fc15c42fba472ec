"""Where the API server is and how to authenticate, resolved by the official client.

The official client knows every kubeconfig flavour (client certificates, tokens,
exec plugins, in-cluster service-account tokens); we ask it once and turn the
answer into what an aiohttp session needs.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config


class NoClusterError(RuntimeError):
    """No usable cluster credentials."""


@dataclass(slots=True)
class Connection:
    server: str
    ssl_context: ssl.SSLContext | bool
    _token: Callable[[], str | None] = field(repr=False)
    source: str = ""
    """Where the credentials came from, for the start-up log line."""
    ca_path: str | None = None
    cert_path: str | None = None
    key_path: str | None = None
    insecure: bool = False
    """The same credentials as files, for a client that builds its own TLS context (kopf's,
    in ``scheduler.controllers``)."""

    def auth_headers(self) -> dict[str, str]:
        token = self._token()
        return {"Authorization": token} if token else {}


def load_connection(kubeconfig: str | None = None, context: str | None = None) -> Connection:
    """``--kubeconfig``, else in-cluster, else ``$KUBECONFIG`` / ``~/.kube/config``.

    Reads files: call it before the event loop starts (or in a thread).
    """
    cfg = k8s_client.Configuration()
    if kubeconfig:
        k8s_config.load_kube_config(
            config_file=kubeconfig, context=context, client_configuration=cfg
        )
        source = kubeconfig
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        k8s_config.load_incluster_config(client_configuration=cfg)
        source = "in-cluster service account"
    else:
        path = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or str(
            Path("~/.kube/config").expanduser()
        )
        if not Path(path).exists():
            raise NoClusterError(
                "no cluster to talk to: pass --kubeconfig, run in a pod, or set $KUBECONFIG "
                "(`workload-scheduler dev-cluster up` starts a local one)"
            )
        k8s_config.load_kube_config(config_file=path, context=context, client_configuration=cfg)
        source = path
    return Connection(
        server=str(cfg.host).rstrip("/"),
        ssl_context=_ssl_context(cfg),
        _token=lambda: _bearer(cfg),
        source=source,
        ca_path=cfg.ssl_ca_cert or None,
        cert_path=cfg.cert_file or None,
        key_path=cfg.key_file or None,
        insecure=not cfg.verify_ssl,
    )


def _bearer(cfg: Any) -> str | None:
    # The loaders store the token (already "Bearer ...") under "BearerToken" (older
    # clients: "authorization"). get_api_key_with_prefix also runs the in-cluster refresh
    # hook, so rotated service-account tokens are picked up.
    token = cfg.get_api_key_with_prefix("BearerToken", alias="authorization")
    return str(token) if token else None


def _ssl_context(cfg: Any) -> ssl.SSLContext | bool:
    if not str(cfg.host).startswith("https"):
        return False
    if not cfg.verify_ssl:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
    if cfg.cert_file:
        ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    return ctx
