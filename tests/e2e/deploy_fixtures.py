"""Helpers and fixtures for tests/e2e/test_deploy.py: helm, server-side apply, tokens.

The test module imports the fixtures by name (pytest finds fixtures in a module's
namespace), so conftest.py stays as it is.
"""

from __future__ import annotations

import base64
import contextlib
import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from devcluster.helm import ensure_helm
from tests.e2e.conftest import REPO, KubeRequest
from tests.e2e.scheduler_process import SchedulerProcess

CHART = REPO / "charts" / "workload-scheduler"
DEPLOY = REPO / "deploy"
FIELD_MANAGER = "workload-scheduler-e2e"
APPLY_YAML = "application/apply-patch+yaml"

Manifest = dict[str, Any]


def _progress(message: str) -> None:
    print(f"[helm] {message}", file=sys.__stderr__, flush=True)


@pytest.fixture(scope="session")
def helm() -> Path:
    """The pinned helm (hack/helm/go.mod), built from source once and cached."""
    return ensure_helm(progress=_progress)


def run_helm(helm: Path, *args: str) -> str:
    result = subprocess.run(
        [str(helm), *args], capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def render_chart(
    helm: Path,
    release: str,
    namespace: str,
    *sets: str,
    include_crds: bool = False,
) -> list[Manifest]:
    """``helm template`` the chart; ``sets`` are ``--set`` values (``key=value``)."""
    args = ["template", release, str(CHART), "--namespace", namespace]
    if include_crds:
        args.append("--include-crds")
    for value in sets:
        args += ["--set", value]
    return [doc for doc in yaml.safe_load_all(run_helm(helm, *args)) if doc]


def deploy_manifests() -> list[Manifest]:
    """What ``kubectl kustomize deploy/`` builds: every resource kustomization.yaml lists."""
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    docs: list[Manifest] = []
    for resource in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((DEPLOY / resource).read_text()) if d]
    return docs


def in_namespace(docs: list[Manifest], namespace: str) -> list[Manifest]:
    """Kustomize's ``namespace:`` transform: namespaced objects and RBAC subjects move to
    ``namespace`` (so deploy/ can be applied beside other tests)."""
    out = []
    for original in docs:
        doc = json.loads(json.dumps(original))
        if "namespace" in doc["metadata"]:
            doc["metadata"]["namespace"] = namespace
        for subject in doc.get("subjects", []):
            if subject.get("kind") == "ServiceAccount":
                subject["namespace"] = namespace
        out.append(doc)
    return out


def by_kind(docs: list[Manifest], kind: str) -> list[Manifest]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    """The one ``kind`` (named ``name``, when there are several of the kind)."""
    found = [d for d in by_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}, got {[d['metadata']['name'] for d in found]}"
    return found[0]


class Applier:
    """Server-side apply of arbitrary manifests, with strict field validation: a field the
    API server does not know (a typo in a manifest or template) is an error, not a warning."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self._resources: dict[tuple[str, str], tuple[str, bool]] = {}

    def _resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        """(plural, namespaced) from API discovery."""
        if (api_version, kind) not in self._resources:
            base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
            for res in self._call("GET", base)["resources"]:
                if "/" not in res["name"]:
                    self._resources[(api_version, res["kind"])] = (res["name"], res["namespaced"])
        return self._resources[(api_version, kind)]

    def path(self, doc: Manifest) -> str:
        api_version = doc["apiVersion"]
        plural, namespaced = self._resource(api_version, doc["kind"])
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        if namespaced:
            base += f"/namespaces/{doc['metadata']['namespace']}"
        return f"{base}/{plural}/{doc['metadata']['name']}"

    def apply(self, doc: Manifest, *, dry_run: bool = False, force: bool = False) -> Manifest:
        params = [("fieldManager", FIELD_MANAGER), ("fieldValidation", "Strict")]
        if dry_run:
            params.append(("dryRun", "All"))
        if force:
            params.append(("force", "true"))
        return self._call("PATCH", self.path(doc), doc, params, content_type=APPLY_YAML)

    def create(self, path: str, doc: Manifest, *, dry_run: bool = False) -> Manifest:
        params = [("fieldValidation", "Strict")] + ([("dryRun", "All")] if dry_run else [])
        return self._call("POST", path, doc, params)

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> Manifest:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        serialized = self.api.param_serialize(
            method,
            path,
            query_params=params or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(*serialized)
        data = response.read()  # type: ignore[no-untyped-call]
        if not 200 <= response.status <= 299:
            raise ApiException(http_resp=response)
        result: Manifest = json.loads(data) if data else {}
        return result


@pytest.fixture
def applier(api_client: client.ApiClient) -> Applier:
    return Applier(api_client)


def service_account_kubeconfig(
    request: KubeRequest,
    admin_kubeconfig: str,
    namespace: str,
    service_account: str,
    path: Path,
) -> Path:
    """A kubeconfig that authenticates as the ServiceAccount with a TokenRequest token (as
    the kubelet mounts one in the scheduler's pod); server and CA from the admin kubeconfig."""
    token = request(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )["status"]["token"]
    admin = yaml.safe_load(Path(admin_kubeconfig).read_text())
    current = admin.get("current-context") or admin["contexts"][0]["name"]
    context = next(c for c in admin["contexts"] if c["name"] == current)["context"]
    cluster = next(c for c in admin["clusters"] if c["name"] == context["cluster"])["cluster"]
    if "certificate-authority" in cluster:  # inline it: the file path may be relative
        ca = Path(cluster.pop("certificate-authority")).read_bytes()
        cluster["certificate-authority-data"] = base64.b64encode(ca).decode()
    user = f"system:serviceaccount:{namespace}:{service_account}"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "cluster", "cluster": cluster}],
                "users": [{"name": user, "user": {"token": token}}],
                "contexts": [{"name": "sa", "context": {"cluster": "cluster", "user": user}}],
                "current-context": "sa",
            }
        )
    )
    path.chmod(0o600)
    return path


@dataclass
class Release:
    """The chart, rendered and applied for real into a test namespace."""

    name: str
    namespace: str
    docs: list[Manifest]
    service_account: str
    lease_name: str
    cluster_role: str
    metrics_reader_role: str
    """The ClusterRole that lets a user get /metrics."""


@pytest.fixture
def chart_release(
    helm: Path, applier: Applier, namespace: str, api_client: client.ApiClient
) -> Iterator[Release]:
    """``helm template`` + server-side apply of the chart into the test namespace, under a
    unique release name (its ClusterRole and ClusterRoleBinding carry that name). The CRD
    is already installed by the session, and the Deployment would make kube-controller-
    manager start the scheduler's pods (kwok would "run" them on the test's nodes): both
    are applied as a dry run only."""
    name = f"ws-{uuid.uuid4().hex[:6]}"
    docs = render_chart(helm, name, namespace, include_crds=True)
    for doc in docs:
        applier.apply(doc, dry_run=doc["kind"] in ("CustomResourceDefinition", "Deployment"))
    config_map = yaml.safe_load(one(docs, "ConfigMap")["data"]["config.yaml"])
    release = Release(
        name=name,
        namespace=namespace,
        docs=docs,
        service_account=one(docs, "ServiceAccount")["metadata"]["name"],
        lease_name=config_map["leader_elect_lease_name"],
        cluster_role=one(docs, "ClusterRole", f"{name}-workload-scheduler")["metadata"]["name"],
        metrics_reader_role=one(docs, "ClusterRole", f"{name}-workload-scheduler-metrics-reader")[
            "metadata"
        ]["name"],
    )
    try:
        yield release
    finally:
        rbac = client.RbacAuthorizationV1Api(api_client)
        deletes = {
            "ClusterRoleBinding": rbac.delete_cluster_role_binding,
            "ClusterRole": rbac.delete_cluster_role,
        }
        for doc in docs:  # the cluster-scoped objects outlive the namespace
            if doc["kind"] in deletes:
                try:
                    deletes[doc["kind"]](doc["metadata"]["name"])
                except ApiException as exc:
                    if exc.status != 404:
                        raise


def new_api_client(kubeconfig: Path | str) -> client.ApiClient:
    api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig)
    )
    return api


@contextlib.contextmanager
def running(*procs: SchedulerProcess, timeout: float = 60) -> Iterator[None]:
    """Start the schedulers, and stop every one of them afterwards, also when one fails to
    become ready (``SchedulerProcess.start`` leaves its process running when it raises)."""
    try:
        for proc in procs:
            proc.start(timeout=timeout)
        yield
    finally:
        for proc in procs:
            proc.stop()


def identity_of(proc: SchedulerProcess) -> str:
    """The leader-election identity a scheduler logged ("" until it has)."""
    for line in proc.log_path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == "waiting for leadership":
            return str(entry["identity"])
    return ""


@dataclass
class LeaderPair:
    """Two replicas of one scheduler name on one Lease in ``namespace``."""

    procs: list[SchedulerProcess]
    lease_path: str
    request: KubeRequest
    name: str
    """The scheduler name (and Lease name) of both."""
    zone: dict[str, str]
    """The label of the one node made for them: pods select it."""

    def holder(self) -> str:
        try:
            spec = self.request("GET", self.lease_path)["spec"]
        except ApiException as exc:
            if exc.status == 404:
                return ""
            raise
        return str(spec.get("holderIdentity") or "")


def leader_pair(
    kubeconfig: str,
    request: KubeRequest,
    node_factory: Callable[..., Any],
    namespace: str,
    tmp_path: Path,
    *,
    lease_duration: float,
    renew_deadline: float,
    retry_period: float,
) -> LeaderPair:
    """Two ``--leader-elect`` replicas (not started) of a new scheduler name, with these
    election timings, and a node of their own."""
    name = f"ws-{uuid.uuid4().hex[:8]}"
    zone = {"leader-test": name}
    node_factory(f"{name}-n0", cpu="4", memory="8Gi", labels=zone)
    config_file = tmp_path / "config.yaml"
    election = {
        "leader_elect_lease_duration": lease_duration,
        "leader_elect_renew_deadline": renew_deadline,
        "leader_elect_retry_period": retry_period,
    }
    config_file.write_text(yaml.safe_dump(election))
    args = ("--config", str(config_file), "--leader-elect")
    args += ("--leader-elect-namespace", namespace, "--leader-elect-lease-name", name)
    logs = [tmp_path / "a", tmp_path / "b"]  # one log each (the file name is per millisecond)
    for log_dir in logs:
        log_dir.mkdir()
    procs = [SchedulerProcess(kubeconfig, log_dir, *args, name=name) for log_dir in logs]
    lease_path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
    return LeaderPair(procs, lease_path, request, name, zone)
