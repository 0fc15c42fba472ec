"""The ``workload-scheduler dev-cluster`` and ``demo`` subcommands (parsed by
:mod:`scheduler.cli.main`, run here so that the product never imports the dev tooling)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from devcluster.controlplane import down, load_cluster_info, up
from devcluster.nodes import (
    NodeShape,
    ShapeError,
    create_nodes,
    is_kwok_managed,
    list_nodes,
    next_names,
    parse_label,
    parse_resource,
    parse_taint,
)
from scheduler.api.client import ApiClient, gather_limited
from scheduler.api.connection import load_connection


def dev_cluster(args: argparse.Namespace) -> int:
    """``dev-cluster up`` / ``down`` / ``nodes``: the local control plane and its nodes."""
    if args.action == "up":
        info = up(
            args.state_dir,
            release=args.release,
            with_kube_scheduler=args.with_kube_scheduler,
            with_controller_manager=args.controller_manager,
            with_kwok=args.kwok,
            progress=print,
        )
        print(f"control plane ready: {info.server}")
        print(f"  export KUBECONFIG={info.kubeconfig}")
        if info.with_kwok:
            print(
                "  simulated nodes: workload-scheduler dev-cluster nodes add --count 4 "
                f"--cpu 8 --memory 32Gi --state-dir {args.state_dir}"
            )
        print(f"  stop it with: workload-scheduler dev-cluster down --state-dir {args.state_dir}")
        return 0
    if args.action == "nodes":
        return nodes(args)
    down(args.state_dir)
    print("control plane stopped")
    return 0


def nodes(args: argparse.Namespace) -> int:
    """``dev-cluster nodes add`` / ``delete``: simulated nodes of a chosen shape."""
    kubeconfig, kwok_runs = _cluster_kubeconfig(args)
    if kubeconfig is None:
        return 2
    if args.nodes_action == "delete":
        return asyncio.run(_delete_nodes(kubeconfig, args.names, everything=args.all))
    try:
        shape = NodeShape(
            cpu=args.cpu,
            memory=args.memory,
            pods=args.pods,
            gpus=args.gpus,
            resources=dict(parse_resource(r) for r in args.resource),
            labels=dict(parse_label(label) for label in args.label),
            taints=[parse_taint(t) for t in args.taint],
        )
    except ShapeError as exc:
        print(f"dev-cluster nodes add: {exc}", file=sys.stderr)
        return 2
    if args.count < 1:
        print("dev-cluster nodes add: --count must be at least 1", file=sys.stderr)
        return 2
    wait = args.wait and kwok_runs
    return asyncio.run(_add_nodes(kubeconfig, shape, args.count, args.name_prefix, wait))


def _cluster_kubeconfig(args: argparse.Namespace) -> tuple[str | None, bool]:
    """The kubeconfig to use, and whether kwok is known to run there."""
    if args.kubeconfig:
        info = load_cluster_info(Path(args.kubeconfig).resolve().parent)
        return args.kubeconfig, info is None or info.with_kwok
    info = load_cluster_info(args.state_dir)
    if info is None:
        print(
            f"no dev cluster in {args.state_dir}: start one with `workload-scheduler "
            f"dev-cluster up --state-dir {args.state_dir}`, or pass --kubeconfig",
            file=sys.stderr,
        )
        return None, False
    if not info.with_kwok:
        print(
            "note: kwok does not run on this dev cluster (started with --no-kwok), so the "
            "nodes will be API objects only: nothing keeps them Ready or runs their pods",
            file=sys.stderr,
        )
    return str(info.kubeconfig), info.with_kwok


async def _add_nodes(
    kubeconfig: str, shape: NodeShape, count: int, prefix: str, wait: bool, timeout: float = 60.0
) -> int:
    async with ApiClient(load_connection(kubeconfig)) as client:
        existing = [n["metadata"]["name"] for n in await list_nodes(client)]
        names = next_names(prefix, existing, count)
        await create_nodes(client, [shape.manifest(name) for name in names])
        print(f"created {count} node(s): {_span(names)}")
        if not wait:
            return 0
        # kwok marks a node it has taken over with status.phase Running.
        deadline = time.monotonic() + timeout
        pending = set(names)
        while pending and time.monotonic() < deadline:
            running = {
                n["metadata"]["name"]
                for n in await list_nodes(client)
                if n.get("status", {}).get("phase") == "Running"
            }
            pending -= running
            if pending:
                await asyncio.sleep(0.5)
        if pending:
            print(
                f"{len(pending)} node(s) not taken over by kwok after {timeout:.0f}s "
                f"(is it running? see kwok.log in the state dir): {_span(sorted(pending))}",
                file=sys.stderr,
            )
            return 1
        print(f"all {count} Ready (kwok manages them)")
    return 0


async def _delete_nodes(kubeconfig: str, names: list[str], *, everything: bool) -> int:
    async with ApiClient(load_connection(kubeconfig)) as client:
        if everything:
            names = [n["metadata"]["name"] for n in await list_nodes(client) if is_kwok_managed(n)]
        results = await gather_limited(16, *(client.delete(f"/api/v1/nodes/{n}") for n in names))
    failed = [(n, r) for n, r in zip(names, results, strict=True) if isinstance(r, BaseException)]
    for name, error in failed:
        print(f"node {name}: {error}", file=sys.stderr)
    print(f"deleted {len(names) - len(failed)} node(s)")
    return 1 if failed else 0


def _span(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 4 else f"{names[0]} ... {names[-1]}"


def demo(args: argparse.Namespace) -> int:
    """Run the demo (``make demo``): see :mod:`devcluster.demo`."""
    from devcluster.demo import run_demo

    return run_demo(kubeconfig=args.kubeconfig, state_dir=args.state_dir, keep=args.keep)
