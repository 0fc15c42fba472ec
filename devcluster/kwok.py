"""kwok: simulated kubelets for the dev cluster's nodes.

kwok (``sigs.k8s.io/kwok``, pinned by ``hack/kwok/go.mod``) watches the Nodes annotated
:data:`MANAGED_ANNOTATION` and the pods bound to them, and plays the stages in
``kwok_stages.yaml`` on them: a node gets its conditions (``Ready``), addresses and a Lease it
renews like a kubelet; a bound pod becomes ``Running`` with an IP, keeps running while it is
deleted until its grace period is over, and finishes when its annotations ask for it
(:data:`COMPLETE_AFTER`, :data:`FAIL_AFTER`).  There are no containers: a pod "runs" for
exactly as long as the API says it does.

kwok authenticates with a client certificate in ``system:masters``: it speaks for every
managed node at once, which the Node authorizer cannot express for one identity.
"""

from __future__ import annotations

from pathlib import Path

from devcluster.build import Progress
from devcluster.gotool import GoTool

MODULE_DIR = Path("hack") / "kwok"
"""The Go module that pins kwok, relative to the repository root."""

STAGES_FILE = Path(__file__).with_name("kwok_stages.yaml")
"""The Stage objects kwok plays (its ``--config``)."""

MANAGED_ANNOTATION = "kwok.x-k8s.io/node"
MANAGED_VALUE = "fake"
"""kwok manages exactly the Nodes annotated ``kwok.x-k8s.io/node: fake``."""

COMPLETE_AFTER = "workload-scheduler.io/kwok-complete-after"
"""Pod annotation: a Go duration (``"5s"``) after it started running, the pod succeeds."""
FAIL_AFTER = "workload-scheduler.io/kwok-fail-after"
"""Pod annotation: a Go duration after it started running, the pod fails."""
EXIT_CODE = "workload-scheduler.io/kwok-exit-code"
"""Pod annotation: the containers' exit code when :data:`FAIL_AFTER` fires (default 1)."""

POD_CIDR = "10.64.0.0/10"
"""Where pod IPs come from: four million addresses, apart from the Service range."""
NODE_IP = "10.63.0.1"
"""The InternalIP every simulated node reports (pods' hostIP); nothing connects to it."""
NODE_LEASE_SECONDS = 40
"""The kubelet's default Lease duration; kwok renews each node's Lease every quarter of it."""
_KWOK_MODULE = "sigs.k8s.io/kwok"

KWOK = GoTool(
    name="kwok",
    module_dir=MODULE_DIR,
    module=_KWOK_MODULE,
    package=f"{_KWOK_MODULE}/cmd/kwok",
    # As kwok's release script does: the version nodes report as their kubeletVersion.
    ldflags=lambda _go_mod, version: [f"-X {_KWOK_MODULE}/pkg/consts.Version={version}"],
)


def kwok_version(repo_root: Path | None = None) -> str:
    """The kwok version ``hack/kwok/go.mod`` pins, e.g. ``v0.8.0``."""
    return KWOK.version(repo_root)


def ensure_kwok(progress: Progress | None = None, *, repo_root: Path | None = None) -> Path:
    """Return the path of the pinned ``kwok`` executable, building it on the first call."""
    return KWOK.ensure(progress, repo_root=repo_root)


def kwok_args(kubeconfig: Path, port: int, *, stages: Path = STAGES_FILE) -> list[str]:
    """kwok's command line: manage the annotated nodes, serve ``/healthz`` on ``port``."""
    return [
        f"--kubeconfig={kubeconfig}",
        f"--config={stages}",
        f"--manage-nodes-with-annotation-selector={MANAGED_ANNOTATION}={MANAGED_VALUE}",
        f"--node-lease-duration-seconds={NODE_LEASE_SECONDS}",
        f"--cidr={POD_CIDR}",
        f"--node-ip={NODE_IP}",
        # Plain HTTP and TLS on one loopback port: /healthz, and the kubelet API (logs, exec)
        # that nothing here configures.
        f"--server-address=127.0.0.1:{port}",
    ]
