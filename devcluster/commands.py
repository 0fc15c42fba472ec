"""The ``workload-scheduler dev-cluster`` and ``demo`` subcommands (parsed by
:mod:`scheduler.cli.main`, run here so that the product never imports the dev tooling)."""

from __future__ import annotations

import argparse

from devcluster.controlplane import down, up


def dev_cluster(args: argparse.Namespace) -> int:
    """``dev-cluster up`` / ``down``: start or stop the local control plane."""
    if args.action == "up":
        info = up(
            args.state_dir,
            release=args.release,
            with_kube_scheduler=args.with_kube_scheduler,
            progress=print,
        )
        print(f"control plane ready: {info.server}")
        print(f"  export KUBECONFIG={info.kubeconfig}")
        print(f"  stop it with: workload-scheduler dev-cluster down --state-dir {args.state_dir}")
        return 0
    down(args.state_dir)
    print("control plane stopped")
    return 0


def demo(args: argparse.Namespace) -> int:
    """Run the demo (``make demo``): see :mod:`devcluster.demo`."""
    from devcluster.demo import run_demo

    return run_demo(kubeconfig=args.kubeconfig, state_dir=args.state_dir, keep=args.keep)
