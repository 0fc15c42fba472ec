"""Taking the measurements: pod watch, pod creation, clean-up, process CPU and memory,
our scheduler as a subprocess, and the ceiling binder (run as its own process).

Everything is asyncio on one loop; the only blocking calls are reads of small files under
/proc (microseconds) and loading a kubeconfig before the loop starts.

Times are ``time.monotonic()`` of this process.  A pod's *bind time* is when the watch on its
namespace delivered the first event showing ``spec.nodeName``; its *create time* is when the
same watch delivered its ADDED event (the POST's return is kept too).  Nothing is taken from
scheduler logs or metrics, so every scheduler is timed by the same clock in the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import random
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import orjson

from scheduler.api.client import ApiClient, ApiError
from scheduler.api.connection import load_connection

CLK_TCK = os.sysconf("SC_CLK_TCK")
UNLIMITED_QPS = 1e9
"""Client-side budget of the benchmark's own clients (creation, watch, clean-up): none."""


# -- /proc ----------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of ``pid`` so far (not its children), None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    # After the command: state ppid pgrp session tty tpgid flags minflt cminflt majflt
    # cmajflt utime stime ...
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_bytes(pid: int, key: str) -> int | None:
    """A ``kB`` line of /proc/<pid>/status (``VmHWM``: peak RSS, ``VmRSS``) in bytes."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return None


def peak_rss(pid: int) -> int | None:
    return status_bytes(pid, "VmHWM")


def reset_peak_rss(pid: int) -> bool:
    """Reset ``VmHWM`` to the current RSS (``echo 5 > /proc/<pid>/clear_refs``, Linux 4.0+),
    so a long-running process's peak can be taken per workload.  False if not permitted."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def cpu_snapshot(pids: Mapping[str, int]) -> dict[str, float | None]:
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


def cpu_delta(
    before: Mapping[str, float | None], after: Mapping[str, float | None]
) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for name, start in before.items():
        end = after.get(name)
        out[name] = None if start is None or end is None else round(end - start, 3)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- watching pods in one namespace -----------------------------------------------------------


class _Meta(msgspec.Struct, rename="camel"):
    name: str = ""
    resource_version: str = ""
    deletion_timestamp: str = ""


class _Spec(msgspec.Struct, rename="camel"):
    node_name: str = ""


class _Pod(msgspec.Struct):
    metadata: _Meta = msgspec.field(default_factory=_Meta)
    spec: _Spec = msgspec.field(default_factory=_Spec)


class _PodList(msgspec.Struct):
    metadata: _Meta = msgspec.field(default_factory=_Meta)
    items: list[_Pod] = msgspec.field(default_factory=list)


class _Event(msgspec.Struct):
    type: str
    object: msgspec.Raw


class _Status(msgspec.Struct):
    code: int = 0
    message: str = ""


_event_decoder = msgspec.json.Decoder(_Event)
_pod_decoder = msgspec.json.Decoder(_Pod)
_list_decoder = msgspec.json.Decoder(_PodList)
_status_decoder = msgspec.json.Decoder(_Status)

PodCallback = Callable[[str, str, str, float], None]
"""(event type, pod name, node name or "", receive time)."""


class NamespaceWatch:
    """List, then watch the pods of one namespace, calling ``on_pod`` for every pod seen.

    Resumes from the last resourceVersion when the stream ends or breaks; lists again if the
    version is gone (410), reporting the listed pods as ``"LIST"`` events (their times are
    then the relist time, an upper bound; ``relists`` counts how often that happened).
    """

    def __init__(
        self,
        client: ApiClient,
        namespace: str,
        on_pod: PodCallback,
        *,
        timeout: int = 600,
        on_terminating: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.on_pod = on_pod
        self.on_terminating = on_terminating
        """Called with the name of a pod seen with ``deletionTimestamp`` set (and not gone)."""
        self.timeout = timeout
        self.resource_version = ""
        self.relists = 0
        self.reconnects = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def path(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/pods"

    async def start(self) -> None:
        """List (synchronously, so nothing created afterwards is missed), then watch."""
        await self._list()
        self._task = asyncio.create_task(self._run(), name=f"watch {self.namespace}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _list(self) -> None:
        body = await self.client.get(self.path)
        now = time.monotonic()
        listed = _list_decoder.decode(body)
        self.resource_version = listed.metadata.resource_version
        for pod in listed.items:
            self.on_pod("LIST", pod.metadata.name, pod.spec.node_name, now)

    async def _run(self) -> None:
        delay = 0.05
        while True:
            try:
                await self._watch()
                delay = 0.05
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                gone = isinstance(exc, ApiError) and exc.status == 410
                if gone:
                    self.relists += 1
                    with contextlib.suppress(Exception):
                        await self._list()
                        continue
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            self.reconnects += 1

    async def _watch(self) -> None:
        params = {
            "watch": "true",
            "resourceVersion": self.resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(self.timeout),
        }
        async for line in self.client.stream_lines(self.path, params, timeout=self.timeout + 30):
            now = time.monotonic()
            event = _event_decoder.decode(line)
            if event.type == "ERROR":
                status = _status_decoder.decode(event.object)
                raise ApiError(status.code or 500, bytes(event.object), "WATCH", self.path)
            pod = _pod_decoder.decode(event.object)
            if pod.metadata.resource_version:
                self.resource_version = pod.metadata.resource_version
            if event.type != "BOOKMARK":
                self.on_pod(event.type, pod.metadata.name, pod.spec.node_name, now)
                if (
                    self.on_terminating is not None
                    and pod.metadata.deletion_timestamp
                    and event.type != "DELETED"
                ):
                    self.on_terminating(pod.metadata.name)


@dataclass
class PodTimes:
    """What the watch saw of the pods a run expects."""

    expected: frozenset[str]
    added: dict[str, float] = field(default_factory=dict)
    bound: dict[str, float] = field(default_factory=dict)
    node: dict[str, str] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    all_bound: asyncio.Event = field(default_factory=asyncio.Event)

    def on_pod(self, kind: str, name: str, node: str, now: float) -> None:
        if name not in self.expected:
            return
        if kind == "DELETED":
            self.deleted.add(name)
            return
        self.added.setdefault(name, now)
        if node and name not in self.bound:
            self.bound[name] = now
            self.node[name] = node
            if len(self.bound) == len(self.expected):
                self.all_bound.set()


# -- creating and deleting -------------------------------------------------------------------


@dataclass
class CreateResult:
    start: float
    """Just before the first POST left."""
    end: float
    """When the last POST returned."""
    returned: dict[str, float]
    errors: list[str]


async def create_all(
    client: ApiClient,
    path: str,
    bodies: Sequence[tuple[str, bytes]],
    concurrency: int,
    *,
    retries: int = 5,
) -> CreateResult:
    """POST every body with ``concurrency`` requests in flight, in order; 409 counts as
    created (a retry whose first attempt landed); other failures are retried with backoff."""
    returned: dict[str, float] = {}
    errors: list[str] = []
    items = iter(bodies)

    async def worker() -> None:
        for name, body in items:
            for attempt in range(retries + 1):
                try:
                    await client.request("POST", path, body=body)
                    break
                except ApiError as exc:
                    if exc.status == 409:
                        break
                    if attempt == retries:
                        errors.append(f"{name}: {exc}")
                except (aiohttp.ClientError, TimeoutError) as exc:
                    if attempt == retries:
                        errors.append(f"{name}: {type(exc).__name__}: {exc}")
                await asyncio.sleep(0.05 * 2**attempt)
            else:
                continue
            returned[name] = time.monotonic()

    start = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return CreateResult(start, time.monotonic(), returned, errors)


async def warm_up(client: ApiClient, connections: int) -> None:
    """Open ``connections`` pooled connections (TLS handshakes) before a timed interval."""
    await asyncio.gather(
        *(client.get("/version") for _ in range(max(1, connections))), return_exceptions=True
    )


async def delete_pods_and_wait(client: ApiClient, namespace: str, timeout: float = 600) -> float:
    """Force-delete every pod in the namespace (grace 0) and wait until none is left;
    returns the seconds it took."""
    started = time.monotonic()
    path = f"/api/v1/namespaces/{namespace}/pods"
    while True:
        with contextlib.suppress(ApiError, aiohttp.ClientError, TimeoutError):
            await client.request(
                "DELETE", path, params={"gracePeriodSeconds": "0"}, timeout=timeout
            )
        listed = orjson.loads(await client.get(path, {"limit": "1"}))
        if not listed.get("items"):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"pods in {namespace} still there after {timeout:.0f}s")
        await asyncio.sleep(0.5)


async def delete_namespace(client: ApiClient, namespace: str, workloads_path: str | None) -> None:
    """Pods first (waited for), then Workloads and Events, then the namespace itself (which,
    with no namespace controller, stays Terminating but empty)."""
    await delete_pods_and_wait(client, namespace)
    paths = [f"/api/v1/namespaces/{namespace}/events"]
    if workloads_path:
        paths.append(workloads_path)
    for path in paths:
        with contextlib.suppress(ApiError):
            await client.request("DELETE", path, timeout=300)
    with contextlib.suppress(ApiError):
        await client.delete(f"/api/v1/namespaces/{namespace}")


async def ensure_nodes(
    client: ApiClient, manifests: Sequence[dict[str, Any]], concurrency: int = 32
) -> None:
    """Create the nodes (or take existing ones) and write their status through the status
    subresource (the API drops status on create)."""

    async def one(manifest: dict[str, Any]) -> None:
        name = manifest["metadata"]["name"]
        body = {k: v for k, v in manifest.items() if k != "status"}
        try:
            await client.post("/api/v1/nodes", body)
        except ApiError as exc:
            if exc.status != 409:
                raise
        await client.patch(f"/api/v1/nodes/{name}/status", {"status": manifest["status"]})

    items = iter(manifests)

    async def worker() -> None:
        for manifest in items:
            await one(manifest)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


# -- etcd housekeeping --------------------------------------------------------------------


async def etcd_status(session: aiohttp.ClientSession, etcd_url: str) -> dict[str, Any]:
    async with session.post(f"{etcd_url}/v3/maintenance/status", json={}) as resp:
        data: dict[str, Any] = await resp.json(content_type=None)
        return data


async def etcd_compact_defrag(etcd_url: str, threshold_bytes: int) -> dict[str, Any] | None:
    """If etcd's database is above ``threshold_bytes``, compact to the current revision and
    defragment (the dev etcd has a 512 MiB quota; a 50,000-pod run writes hundreds of MiB of
    history).  Between runs only, never while timing.  Returns what was done, or None."""
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        status = await etcd_status(session, etcd_url)
        size = int(status.get("dbSize", 0))
        if size < threshold_bytes:
            return None
        revision = status.get("header", {}).get("revision")
        async with session.post(
            f"{etcd_url}/v3/kv/compaction", json={"revision": revision, "physical": True}
        ) as resp:
            await resp.read()
        async with session.post(f"{etcd_url}/v3/maintenance/defragment", json={}) as resp:
            await resp.read()
        after = await etcd_status(session, etcd_url)
        return {"db_bytes_before": size, "db_bytes_after": int(after.get("dbSize", 0))}


# -- our scheduler as a subprocess -------------------------------------------------------------


async def stop_process(proc: asyncio.subprocess.Process | None, *, grace: float) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; nothing if it is not running."""
    if proc is None or proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


class OurScheduler:
    """``python -m scheduler.cli.main run ...``, as users run it, with its log in a file."""

    def __init__(
        self,
        kubeconfig: str,
        log_path: Path,
        *,
        qps: float,
        burst: int,
        scheduler_name: str = "workload-scheduler",
        extra_args: Sequence[str] = (),
    ) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.qps = qps
        self.burst = burst
        self.scheduler_name = scheduler_name
        self.extra_args = list(extra_args)
        self.proc: asyncio.subprocess.Process | None = None
        self.metrics_url = ""
        """``http://127.0.0.1:<port>/metrics`` once started."""

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self, timeout: float = 120) -> None:
        metrics, health = free_port(), free_port()
        self.metrics_url = f"http://127.0.0.1:{metrics}/metrics"
        cmd = [
            sys.executable, "-m", "scheduler.cli.main", "run",
            "--kubeconfig", self.kubeconfig,
            "--scheduler-name", self.scheduler_name,
            "--kube-api-qps", str(self.qps),
            "--kube-api-burst", str(self.burst),
            "--metrics-bind-address", f"127.0.0.1:{metrics}",
            "--health-bind-address", f"127.0.0.1:{health}",
            "--log-format", "json",
            "--log-level", "warning",
            *self.extra_args,
        ]  # fmt: skip
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *cmd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        url = f"http://127.0.0.1:{health}/readyz"
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while time.monotonic() < deadline:
                if self.proc.returncode is not None:
                    raise RuntimeError(f"our scheduler exited early; see {self.log_path}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError):
                    async with session.get(url) as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.2)
        await self.stop()
        raise RuntimeError(f"our scheduler not ready after {timeout:.0f}s; see {self.log_path}")

    async def stop(self) -> None:
        await stop_process(self.proc, grace=15)


class LeaseObserver:
    """Polls one Lease and keeps its renewals: is the leader still renewing while it works?

    The scheduler's ``renewTime`` values are compared with each other (both are the
    scheduler's clock), so the poll interval only has to be shorter than the renew period;
    the gap still open when observation stops is measured against this machine's clock
    (the same one)."""

    def __init__(self, client: ApiClient, namespace: str, name: str, interval: float = 0.25):
        self.client = client
        self.path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
        self.interval = interval
        self.renewals: list[float] = []
        """Distinct ``renewTime`` values seen, as UNIX seconds, in order."""
        self.holders: list[str] = []
        """Each holder seen, once per change."""
        self.errors = 0
        self._task: asyncio.Task[None] | None = None
        self._stopped_at: float | None = None
        self._held = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"lease {self.path}")

    async def wait_for_holder(self, timeout: float) -> None:
        """Until someone holds the Lease (the scheduler leads and will schedule)."""
        try:
            async with asyncio.timeout(timeout):
                await self._held.wait()
        except TimeoutError:
            raise RuntimeError(f"nobody holds {self.path} after {timeout:.0f}s") from None
        # From here on: the 404s before the Lease existed were no errors, no change yet.
        self.errors = 0
        self.holders = self.holders[-1:]

    async def stop(self) -> None:
        self._stopped_at = time.time()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                spec = orjson.loads(await self.client.get(self.path)).get("spec", {})
            except (ApiError, aiohttp.ClientError, TimeoutError):
                self.errors += 1
            else:
                holder = spec.get("holderIdentity") or ""
                if not self.holders or self.holders[-1] != holder:
                    self.holders.append(holder)
                if holder:
                    self._held.set()
                renewed = spec.get("renewTime")
                if renewed:
                    at = parse_micro_time(renewed)
                    if not self.renewals or at != self.renewals[-1]:
                        self.renewals.append(at)
            await asyncio.sleep(self.interval)

    def summary(self) -> dict[str, Any]:
        """Renewals seen, the longest time between two (or since the last one, at stop),
        and how often the holder changed."""
        gaps = [b - a for a, b in zip(self.renewals, self.renewals[1:], strict=False)]
        if self.renewals and self._stopped_at is not None:
            gaps.append(self._stopped_at - self.renewals[-1])
        return {
            "renewals": len(self.renewals),
            "longest_gap_seconds": round(max(gaps), 2) if gaps else None,
            "holder_changes": max(0, len(self.holders) - 1),
            "read_errors": self.errors,
        }


def parse_micro_time(value: str) -> float:
    """A Kubernetes MicroTime (``2026-12-06T21:20:00.123456Z``) as UNIX seconds."""
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


# -- the ceiling binder ----------------------------------------------------------------------


class CeilingProcess:
    """``python -m bench.run _ceiling-binder ...`` for one namespace: started before the
    pods are created, ready once its watch is up, stopped (SIGTERM) after the run."""

    def __init__(self, kubeconfig: str, namespace: str, plan_path: Path, log_path: Path, *,
                 qps: float, burst: int, concurrency: int) -> None:  # fmt: skip
        self.args = [
            sys.executable, "-m", "bench.run", "_ceiling-binder",
            "--kubeconfig", kubeconfig,
            "--namespace", namespace,
            "--plan", str(plan_path),
            "--qps", str(qps),
            "--burst", str(burst),
            "--concurrency", str(concurrency),
        ]  # fmt: skip
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    async def start(self, timeout: float = 60) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *self.args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except TimeoutError:
            line = b""
        if line.strip() != b"ready":
            await self.stop()
            raise RuntimeError(f"ceiling binder did not start; see {self.log_path}")

    async def stop(self) -> None:
        await stop_process(self.proc, grace=10)


async def ceiling_binder(
    kubeconfig: str, namespace: str, plan: Mapping[str, str], *, qps: float, burst: int,
    concurrency: int,
) -> int:  # fmt: skip
    """Bind each pod of ``plan`` to its planned node the moment the watch shows it, with
    ``concurrency`` bindings in flight and the same client budget as the schedulers.  Prints
    ``ready`` once watching; runs until SIGTERM (so its CPU and memory can still be read
    after the last bind); exit status 0 if every pod of the plan was seen bound."""
    connection = await asyncio.to_thread(load_connection, kubeconfig)
    client = ApiClient(
        connection, qps=qps, burst=burst, user_agent="bench-ceiling", max_connections=concurrency
    )
    queue: asyncio.Queue[str] = asyncio.Queue()
    queued: set[str] = set()
    done: set[str] = set()
    finished = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, finished.set)

    def on_pod(kind: str, name: str, node: str, _now: float) -> None:
        if name not in plan or kind == "DELETED":
            return
        if node:
            done.add(name)
        elif name not in queued:
            queued.add(name)
            queue.put_nowait(name)

    async def binder() -> None:
        path = f"/api/v1/namespaces/{namespace}/pods"
        while True:
            name = await queue.get()
            body = orjson.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Binding",
                    "metadata": {"name": name, "namespace": namespace},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": plan[name]},
                }
            )
            for attempt in range(8):
                try:
                    await client.request("POST", f"{path}/{name}/binding", body=body)
                    break
                except ApiError as exc:
                    if exc.status in (404, 409):
                        break
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.05 * 2**attempt * (1 + random.random()))

    async with client:
        watch = NamespaceWatch(client, namespace, on_pod)
        await watch.start()
        workers = [asyncio.create_task(binder()) for _ in range(concurrency)]
        print("ready", flush=True)
        try:
            await finished.wait()
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await watch.stop()
    return 0 if len(done) == len(plan) else 1


def plan_json(plan: Mapping[str, str]) -> bytes:
    return orjson.dumps(dict(plan))


def load_plan(path: Path) -> dict[str, str]:
    data = orjson.loads(path.read_bytes())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a plan")
    return {str(k): str(v) for k, v in data.items()}


def names_of(bodies: Iterable[tuple[str, bytes]]) -> frozenset[str]:
    return frozenset(name for name, _ in bodies)
