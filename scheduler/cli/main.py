"""``workload-scheduler``: the scheduler, the local dev cluster and the demo.

workload-scheduler run [--kubeconfig F] [--scheduler-name N] ...
workload-scheduler dev-cluster up|down --state-dir DIR
workload-scheduler dev-cluster nodes add --count N --cpu C --memory M [--gpus G] ...
workload-scheduler demo
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

import structlog

from scheduler import __version__
from scheduler.config import ConfigError, Settings, load_settings

DEFAULT_STATE_DIR = Path(".dev-cluster")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workload-scheduler",
        description="A workload-aware (gang) secondary scheduler for Kubernetes.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the scheduler against a cluster")
    defaults = Settings()
    run.add_argument("--config", help="YAML file whose keys mirror these flags (snake_case)")
    run.add_argument("--kubeconfig", help="else in-cluster, else $KUBECONFIG or ~/.kube/config")
    run.add_argument(
        "--scheduler-name",
        help=f"pods' spec.schedulerName we serve (default {defaults.scheduler_name})",
    )
    run.add_argument(
        "--metrics-bind-address",
        help=f"HOST:PORT for /metrics (default {defaults.metrics_bind_address})",
    )
    run.add_argument(
        "--health-bind-address",
        help=f"HOST:PORT for /healthz, /readyz (default {defaults.health_bind_address})",
    )
    run.add_argument(
        "--secure-metrics",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="serve /metrics over HTTPS to bearer tokens allowed to get it, checked with "
        "TokenReview and SubjectAccessReview (default on); --no-secure-metrics: plain HTTP "
        "for anyone, for local runs",
    )
    run.add_argument(
        "--tls-cert-file",
        help="PEM serving certificate for /metrics, re-read when it changes "
        "(default: self-signed, in memory, renewed before it expires)",
    )
    run.add_argument("--tls-private-key-file", help="its private key (PEM)")
    run.add_argument("--log-format", choices=["json", "console"])
    run.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    run.add_argument(
        "--scoring-strategy",
        choices=["LeastAllocated", "MostAllocated"],
        help="spread pods out (default) or pack them (bin packing)",
    )
    run.add_argument(
        "--leader-elect",
        action="store_true",
        default=None,
        help="only schedule while holding the Lease",
    )
    run.add_argument("--leader-elect-namespace")
    run.add_argument("--leader-elect-lease-name")
    run.add_argument("--kube-api-qps", type=float)
    run.add_argument("--kube-api-burst", type=int)
    run.add_argument("--parallel-binds", type=int, help="bind requests in flight at once")
    run.add_argument(
        "--gang-timeout-seconds",
        type=float,
        help="how long a placed gang may take to be fully bound (default 300)",
    )
    run.add_argument(
        "--volume-bind-timeout-seconds",
        type=float,
        help="how long a pod's PreBind waits for its claims to be bound (default 600)",
    )
    run.add_argument(
        "--percentage-of-nodes-to-score",
        type=int,
        help="in large clusters, stop once this %% of nodes was found feasible "
        "(default 0: adaptive, as kube-scheduler)",
    )
    run.add_argument(
        "--batching",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="reuse feasibility across identical pods (default on)",
    )

    dev = sub.add_parser(
        "dev-cluster",
        help="a local control plane (etcd, kube-apiserver, kube-controller-manager, kwok)",
    )
    dev_sub = dev.add_subparsers(dest="action", required=True)
    up = dev_sub.add_parser("up", help="build (first time) and start the control plane")
    up.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    up.add_argument(
        "--version",
        dest="release",
        default="1.35",
        help="Kubernetes minor version to run (see hack/controlplane)",
    )
    up.add_argument(
        "--with-kube-scheduler",
        action="store_true",
        help="also run the real kube-scheduler of the same version",
    )
    up.add_argument(
        "--controller-manager",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run kube-controller-manager (Jobs, namespaces, garbage collection, PodGC, ...)",
    )
    up.add_argument(
        "--kwok",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run kwok: simulated kubelets for annotated nodes (see `dev-cluster nodes`)",
    )
    down = dev_sub.add_parser("down", help="stop it; nothing is left running")
    down.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    nodes = dev_sub.add_parser("nodes", help="simulated (kwok) nodes of a chosen shape")
    nodes_sub = nodes.add_subparsers(dest="nodes_action", required=True)
    add = nodes_sub.add_parser("add", help="create COUNT alike nodes and wait until Ready")
    add.add_argument("--count", type=int, default=1)
    add.add_argument("--cpu", default="4", help="allocatable cpu (default 4)")
    add.add_argument("--memory", default="16Gi", help="allocatable memory (default 16Gi)")
    add.add_argument("--pods", type=int, default=110, help="pod capacity (default 110)")
    add.add_argument("--gpus", type=int, default=0, help="nvidia.com/gpu per node")
    add.add_argument(
        "--resource", action="append", default=[], metavar="NAME=QTY", help="extended resource"
    )
    add.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    add.add_argument("--taint", action="append", default=[], metavar="KEY[=VALUE]:EFFECT")
    add.add_argument("--name-prefix", default="sim-node", help="names are PREFIX-001, ...")
    add.add_argument("--wait", action=argparse.BooleanOptionalAction, default=True)
    remove = nodes_sub.add_parser("delete", help="delete nodes by name, or --all kwok nodes")
    remove.add_argument("names", nargs="*")
    remove.add_argument("--all", action="store_true", help="every node kwok manages")
    for nodes_parser in (add, remove):
        nodes_parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
        nodes_parser.add_argument("--kubeconfig", help="another cluster (default: the dev one)")

    demo = sub.add_parser("demo", help="schedule the examples on a cluster and show the result")
    demo.add_argument("--kubeconfig", help="use this cluster (default: start the dev cluster)")
    demo.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    demo.add_argument("--keep", action="store_true", help="leave the dev cluster running")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    return _dev_command(args)


def _dev_command(args: argparse.Namespace) -> int:
    """``dev-cluster`` and ``demo`` live in the top-level ``devcluster`` package, which a
    developer checkout has (``pip install -e '.[dev]'``) and the container image does not."""
    try:
        from devcluster import commands
    except ModuleNotFoundError as exc:
        if exc.name != "devcluster":
            raise
        print(
            f"workload-scheduler {args.command} needs a developer checkout: run it from a clone "
            "of the repository after `make install` (pip install -e '.[dev]').",
            file=sys.stderr,
        )
        return 2
    if args.command == "dev-cluster":
        return commands.dev_cluster(args)
    return commands.demo(args)


def _run(args: argparse.Namespace) -> int:
    from scheduler import logs
    from scheduler.api.connection import NoClusterError, load_connection
    from scheduler.app import App
    from scheduler.leader import identity, run_for_leadership
    from scheduler.metrics import loop as loop_monitor
    from scheduler.server.tls import CertificateError

    overrides = {k: v for k, v in vars(args).items() if k not in ("command", "config")}
    try:
        settings = load_settings(args.config, overrides)
    except ConfigError as exc:
        print(f"workload-scheduler: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format, settings.log_level)
    log = structlog.get_logger("workload-scheduler")
    try:
        connection = load_connection(settings.kubeconfig)
    except (NoClusterError, Exception) as exc:
        log.error("cannot connect", error=str(exc))
        return 1

    async def main_async() -> int:
        app = App(settings, connection)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        lost = asyncio.Event()
        elect = None
        if settings.leader_elect:
            ident = identity()

            async def on_stopped() -> None:
                log.error("leadership lost, exiting", identity=ident)
                lost.set()
                stop.set()

            def elect(schedule):  # type: ignore[no-untyped-def]
                return run_for_leadership(settings, ident, schedule, on_stopped)

        try:
            await app.run(until=stop, elect=elect)
        except CertificateError as exc:  # raised before the app starts its tasks
            log.error("cannot serve /metrics over HTTPS", error=str(exc))
            await app.client.close()
            return 1
        return 1 if lost.is_set() else 0

    # The loop's turns are timed by its selector (the event-loop stall metrics).
    with asyncio.Runner(loop_factory=loop_monitor.new_event_loop) as runner:
        return runner.run(main_async())


if __name__ == "__main__":
    sys.exit(main())
