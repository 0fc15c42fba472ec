"""Deployment artefacts against a real API server: the Helm chart and deploy/ apply cleanly,
the chart's RBAC is enough to schedule (and nothing more), and leader election fails over.

The scheduler runs as a subprocess here (no kubelet, no image); what is proven is what the
pod would do with the chart's ServiceAccount, config and flags.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from scheduler.config import load_settings
from scheduler.gang.jobs import GANG_ANNOTATION, GROUP_OBJECT_ANNOTATION
from tests.e2e.conftest import KubeRequest, NodeFactory
from tests.e2e.deploy_fixtures import (
    CHART,
    Applier,
    Release,
    applier,
    by_kind,
    chart_release,
    deploy_manifests,
    helm,
    identity_of,
    in_namespace,
    leader_pair,
    new_api_client,
    one,
    render_chart,
    run_helm,
    running,
    service_account_kubeconfig,
)
from tests.e2e.gang_modes import GangMode
from tests.e2e.jobs import create_job, job_pods
from tests.e2e.k8s import pod_manifest, wait_until
from tests.e2e.scheduler_process import SchedulerProcess

# Fixtures defined in deploy_fixtures, re-exported so pytest finds them in this module.
__all__ = ["applier", "chart_release", "helm"]

REPO = Path(__file__).resolve().parents[2]
RBAC_FILE = REPO / "deploy" / "rbac.yaml"
READER_FILE = REPO / "deploy" / "metrics-reader.yaml"
EXAMPLES = REPO / "examples"


def rules(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: sorted(v) for k, v in rule.items()} for rule in doc["rules"]]


def scheduler_name() -> str:
    return f"ws-{uuid.uuid4().hex[:8]}"


# -- the chart and deploy/ ---------------------------------------------------------------


def test_chart_lints_renders_and_matches_deploy(helm: Path) -> None:
    for values in (
        [],
        ["serviceMonitor.enabled=true", "podDisruptionBudget.enabled=true"],
        [
            "serviceMonitor.enabled=true",
            "serviceMonitor.authorization=bearerTokenFile",
            "serviceMonitor.insecureSkipVerify=false",
            "metrics.tlsSecretName=scheduler-tls",
        ],
        ["metrics.secure=false", "serviceMonitor.enabled=true"],
    ):
        run_helm(helm, "lint", "--strict", str(CHART), *(f"--set={v}" for v in values))

    docs = render_chart(helm, "rel", "sched-ns")
    assert sorted(d["kind"] for d in docs) == [
        "ClusterRole",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Deployment",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
    ]
    # Cluster-scoped names carry the release name: two releases never share them.
    assert one(docs, "ClusterRoleBinding")["metadata"]["name"] == "rel-workload-scheduler"
    role = one(docs, "ClusterRole", "rel-workload-scheduler")
    reader = one(docs, "ClusterRole", "rel-workload-scheduler-metrics-reader")
    # Exactly deploy/rbac.yaml's permissions, and deploy/'s reader role.
    deploy_rbac = list(yaml.safe_load_all(RBAC_FILE.read_text()))
    assert rules(role) == rules(one(deploy_rbac, "ClusterRole"))
    assert rules(one(docs, "Role")) == rules(one(deploy_rbac, "Role"))
    assert rules(reader) == rules(yaml.safe_load(READER_FILE.read_text()))

    # The config file is one the scheduler accepts, with the Lease in the release namespace
    # and /metrics behind authentication (self-signed certificate).
    config_yaml = one(docs, "ConfigMap")["data"]["config.yaml"]
    settings = load_settings(None, yaml.safe_load(config_yaml))
    assert settings.leader_elect and settings.leader_elect_namespace == "sched-ns"
    assert settings.secure_metrics and not settings.tls_cert_file
    container = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == [
        "run",
        "--config",
        "/etc/workload-scheduler/config.yaml",
        "--leader-elect",
    ]
    # The probes stay on the plain, open health port.
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert settings.health_bind_address.endswith(f":{ports['health']}")
    assert settings.metrics_bind_address.endswith(f":{ports['metrics']}")
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] == "health"
        assert container[probe]["httpGet"].get("scheme", "HTTP") == "HTTP"

    optional = render_chart(
        helm,
        "rel",
        "sched-ns",
        "serviceMonitor.enabled=true",
        "podDisruptionBudget.enabled=true",
        "leaderElect.enabled=false",
        "scoringStrategy=MostAllocated",
        "extraConfig.parallel_binds=8",
    )
    assert by_kind(optional, "ServiceMonitor") and by_kind(optional, "PodDisruptionBudget")
    assert not by_kind(optional, "Role"), "no Lease permissions without leader election"
    container = one(optional, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert "--leader-elect" not in container["args"]
    settings = load_settings(
        None, yaml.safe_load(one(optional, "ConfigMap")["data"]["config.yaml"])
    )
    assert settings.scoring_strategy == "MostAllocated" and settings.parallel_binds == 8

    # The ServiceMonitor scrapes over HTTPS with the reader ServiceAccount's token Secret.
    (endpoint,) = one(optional, "ServiceMonitor")["spec"]["endpoints"]
    token_secret = one(optional, "Secret")
    assert token_secret["type"] == "kubernetes.io/service-account-token"
    reader_sa = token_secret["metadata"]["annotations"]["kubernetes.io/service-account.name"]
    assert endpoint["scheme"] == "https" and endpoint["tlsConfig"] == {"insecureSkipVerify": True}
    assert endpoint["authorization"] == {
        "type": "Bearer",
        "credentials": {"name": token_secret["metadata"]["name"], "key": "token"},
    }
    binding = one(optional, "ClusterRoleBinding", reader_sa)
    assert binding["roleRef"]["name"] == "rel-workload-scheduler-metrics-reader"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": reader_sa, "namespace": "sched-ns"}
    ]

    # Or with Prometheus's own token, and a certificate from a Secret verified by its CA.
    own_cert = render_chart(
        helm,
        "rel",
        "sched-ns",
        "serviceMonitor.enabled=true",
        "serviceMonitor.authorization=bearerTokenFile",
        "serviceMonitor.insecureSkipVerify=false",
        "metrics.tlsSecretName=scheduler-tls",
    )
    assert not by_kind(own_cert, "Secret") and len(by_kind(own_cert, "ServiceAccount")) == 1
    (endpoint,) = one(own_cert, "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["bearerTokenFile"] == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    assert endpoint["tlsConfig"] == {
        "ca": {"secret": {"name": "scheduler-tls", "key": "ca.crt"}},
        "serverName": "rel-workload-scheduler-metrics.sched-ns.svc",
    }
    settings = load_settings(
        None, yaml.safe_load(one(own_cert, "ConfigMap")["data"]["config.yaml"])
    )
    pod = one(own_cert, "Deployment")["spec"]["template"]["spec"]
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "metrics-tls"]
    assert settings.tls_cert_file == f"{mount['mountPath']}/tls.crt"
    assert settings.tls_private_key_file == f"{mount['mountPath']}/tls.key"
    (volume,) = [v for v in pod["volumes"] if v["name"] == "metrics-tls"]
    assert volume["secret"] == {"secretName": "scheduler-tls"}
    with pytest.raises(AssertionError, match=r"needs metrics\.tlsSecretName"):
        render_chart(
            helm, "rel", "sched-ns", "serviceMonitor.enabled=true",
            "serviceMonitor.insecureSkipVerify=false",
        )  # fmt: skip

    # Plain HTTP when asked: no reader role, no https in the ServiceMonitor.
    plain = render_chart(
        helm, "rel", "sched-ns", "metrics.secure=false", "serviceMonitor.enabled=true"
    )
    assert [d["metadata"]["name"] for d in by_kind(plain, "ClusterRole")] == [
        "rel-workload-scheduler"
    ]
    (endpoint,) = one(plain, "ServiceMonitor")["spec"]["endpoints"]
    assert "scheme" not in endpoint and "authorization" not in endpoint
    settings = load_settings(None, yaml.safe_load(one(plain, "ConfigMap")["data"]["config.yaml"]))
    assert not settings.secure_metrics

    # values.schema.json refuses what the scheduler would refuse at start-up.
    with pytest.raises(AssertionError, match="scoringStrategy"):
        render_chart(helm, "rel", "sched-ns", "scoringStrategy=Fastest")


def test_deploy_and_chart_apply_server_side(
    helm: Path, applier: Applier, namespace: str, kubeconfig: str
) -> None:
    """Every object of deploy/ and of the chart (all options on) passes the API server's
    strict validation (server-side apply, dry run), and the scheduler pod passes the
    "restricted" Pod Security Standard."""
    deploy_docs = in_namespace(deploy_manifests(), namespace)
    assert {d["kind"] for d in deploy_docs} >= {
        "CustomResourceDefinition",
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "ConfigMap",
        "Deployment",
        "Service",
    }
    chart_docs = render_chart(
        helm,
        f"dry-{namespace}",
        namespace,
        "podDisruptionBudget.enabled=true",
        include_crds=True,
    )
    for doc in deploy_docs + chart_docs:
        try:
            applier.apply(doc, dry_run=True)
        except ApiException as exc:
            raise AssertionError(f"{doc['kind']} {doc['metadata']['name']}: {exc.body}") from exc
    config_yaml = one(deploy_docs, "ConfigMap")["data"]["config.yaml"]
    load_settings(None, yaml.safe_load(config_yaml))  # keys are Settings fields

    # The examples this control plane serves (1.35: the v1alpha1 Workload API and our CRD;
    # examples/gang-v1beta1 and job-scheduling-v1-37 need 1.37) are valid too, Job pod
    # templates included.
    for example in ("gang-v1alpha1", "gang-crd", "job-gang"):
        for path in sorted((EXAMPLES / example).glob("*.yaml")):
            for doc in yaml.safe_load_all(path.read_text()):
                doc["metadata"]["namespace"] = namespace
                try:
                    applier.apply(doc, dry_run=True)
                except ApiException as exc:
                    raise AssertionError(f"{path}: {exc.body}") from exc

    # What `helm install` prints: how to use the scheduler and where the metrics are.
    notes = run_helm(
        helm,
        "install",
        f"notes-{namespace}",
        str(CHART),
        "--namespace",
        namespace,
        "--kubeconfig",
        kubeconfig,
        "--dry-run=client",
        "--set",
        "schedulerName=my-scheduler",
    ).split("NOTES:", 1)[1]
    assert "schedulerName: my-scheduler" in notes
    assert f"svc/notes-{namespace}-workload-scheduler-metrics" in notes and "/metrics" in notes

    # Pod Security "restricted", enforced on the test namespace: the scheduler's pods are
    # admitted, a pod without the security settings is not (so the check is real).
    applier.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": namespace,
                "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
            },
        }
    )
    pods_path = f"/api/v1/namespaces/{namespace}/pods"
    for docs in (deploy_docs, chart_docs):
        template = one(docs, "Deployment")["spec"]["template"]
        pod = {"apiVersion": "v1", "kind": "Pod", **template}
        pod["metadata"] = {**template["metadata"], "name": "scheduler-pod"}
        applier.create(pods_path, pod, dry_run=True)
    with pytest.raises(ApiException) as refused:
        applier.create(pods_path, pod_manifest("plain"), dry_run=True)
    assert refused.value.status == 403 and "restricted" in str(refused.value.body)


# -- RBAC: the chart's ServiceAccount can schedule, and nothing else -----------------------


def test_scheduler_works_with_only_the_chart_rbac(
    chart_release: Release,
    kubeconfig: str,
    kube_request: KubeRequest,
    node_factory: NodeFactory,
    tmp_path: Path,
) -> None:
    ns = chart_release.namespace
    sa_kubeconfig = service_account_kubeconfig(
        kube_request, kubeconfig, ns, chart_release.service_account, tmp_path / "sa.kubeconfig"
    )
    name = scheduler_name()
    zone = {"deploy-test": name}
    for i in range(3):
        node_factory(f"{name}-n{i}", cpu="4", memory="8Gi", labels=zone)
    proc = SchedulerProcess(
        str(sa_kubeconfig),
        tmp_path,
        "--leader-elect",
        "--leader-elect-namespace",
        ns,
        "--leader-elect-lease-name",
        chart_release.lease_name,
        name=name,
        secure=True,  # as the chart runs it
    )
    with running(proc):
        native = GangMode("v1alpha1", kube_request)
        native.create_workload(ns, "train", {"workers": 3})
        crd = GangMode("crd", kube_request)
        crd.create_workload(ns, "tune", {"workers": 2})
        members = [
            native.member(f"w-{i}", "train", "workers", scheduler=name, node_selector=zone)
            for i in range(3)
        ] + [
            crd.member(f"t-{i}", "tune", "workers", scheduler=name, node_selector=zone)
            for i in range(2)
        ]
        for manifest in members:
            native.create_pod(ns, manifest)
        # Too big for any node: reported on the pod (pods/status) and as an Event.
        native.create_pod(ns, pod_manifest("huge", cpu="64", scheduler=name, node_selector=zone))

        # A Job as a gang, with the chart's RBAC: the Job controller (kopf) makes its group
        # object and records it on the Job (jobs patch); its pods are bound together.
        job = create_job(
            kube_request,
            ns,
            "job",
            2,
            {GANG_ANNOTATION: "true"},
            scheduler=name,
            node_selector=zone,
            cpu="100m",
        )
        wait_until(
            lambda: (
                kube_request("GET", f"/apis/batch/v1/namespaces/{ns}/jobs/job")["metadata"]
                .get("annotations", {})
                .get(GROUP_OBJECT_ANNOTATION)
            ),
            what="the Job's group object recorded",
        )
        job_pods(kube_request, job, range(2))

        names = [m["metadata"]["name"] for m in members]

        def placed() -> dict[str, str]:
            items = kube_request("GET", f"/api/v1/namespaces/{ns}/pods")["items"]
            pods = {p["metadata"]["name"]: p["spec"].get("nodeName") for p in items}
            return {n: pods[n] for n in names if pods.get(n)}

        wait_until(lambda: len(placed()) == len(names), timeout=20, what="both gangs bound")

        def job_bound() -> int:
            items = kube_request("GET", f"/api/v1/namespaces/{ns}/pods")["items"]
            return sum(
                1
                for p in items
                if p["metadata"].get("labels", {}).get("batch.kubernetes.io/job-name") == "job"
                and p["spec"].get("nodeName")
            )

        wait_until(lambda: job_bound() == 2, timeout=20, what="the Job's gang bound")
        wait_until(
            lambda: crd.scheduled_status(ns, "tune", "workers") == "True",
            timeout=10,
            what="the CRD Workload's status (workloads/status)",
        )

        def huge_condition() -> str:
            pod = kube_request("GET", f"/api/v1/namespaces/{ns}/pods/huge")
            conditions = pod.get("status", {}).get("conditions", [])
            return next((c["message"] for c in conditions if c["type"] == "PodScheduled"), "")

        assert "Insufficient cpu" in wait_until(huge_condition, timeout=10, what="condition")
        events = kube_request("GET", f"/apis/events.k8s.io/v1/namespaces/{ns}/events")["items"]
        reasons = {(e["regarding"]["name"], e["reason"]) for e in events}
        assert ("huge", "FailedScheduling") in reasons and ("w-0", "Scheduled") in reasons
        # Ours, and the Kubernetes Job controller's for the Job (where it runs).
        assert {e["reportingController"] for e in events} - {"job-controller"} == {name}
        assert (
            "job",
            "GangCreated",
        ) in reasons, "the Job controller's Event, written with the chart's RBAC"

        lease = kube_request(
            "GET", f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{chart_release.lease_name}"
        )
        assert lease["spec"]["holderIdentity"]
        log = proc.log_path.read_text()
        assert "forbidden" not in log.lower(), proc.log_tail()

    # Nothing beyond what the code needs: no secrets, no Leases outside its namespace.
    api = new_api_client(sa_kubeconfig)
    try:
        with pytest.raises(ApiException) as secrets:
            client.CoreV1Api(api).list_secret_for_all_namespaces()
        assert secrets.value.status == 403
        lease_body = client.V1Lease(metadata=client.V1ObjectMeta(name=name))
        with pytest.raises(ApiException) as elsewhere:
            client.CoordinationV1Api(api).create_namespaced_lease("kube-system", lease_body)
        assert elsewhere.value.status == 403
        # Pods may be deleted (preemption's victims); nodes may not.
        with pytest.raises(ApiException) as delete_node:
            client.CoreV1Api(api).delete_node(f"{name}-n0")
        assert delete_node.value.status == 403
        with pytest.raises(ApiException) as update_pod:
            client.CoreV1Api(api).patch_namespaced_pod("huge", ns, {"metadata": {"labels": {}}})
        assert update_pod.value.status == 403
    finally:
        api.close()  # type: ignore[no-untyped-call]


def _create_service_account(kube_request: KubeRequest, ns: str, name: str) -> str:
    """A ServiceAccount and a TokenRequest token for it."""
    kube_request(
        "POST",
        f"/api/v1/namespaces/{ns}/serviceaccounts",
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
    )
    return str(
        kube_request(
            "POST",
            f"/api/v1/namespaces/{ns}/serviceaccounts/{name}/token",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
        )["status"]["token"]
    )


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_metrics_need_a_token_allowed_to_get_them(
    chart_release: Release,
    kubeconfig: str,
    kube_request: KubeRequest,
    tmp_path: Path,
) -> None:
    """The scheduler as the chart runs it (its ServiceAccount, secure metrics): /metrics
    over HTTPS answers 401 without a valid token, 403 to a ServiceAccount without the
    chart's metrics-reader ClusterRole, the metrics to one bound to it; the health
    endpoints answer anyone over plain HTTP."""
    ns = chart_release.namespace
    sa_kubeconfig = service_account_kubeconfig(
        kube_request, kubeconfig, ns, chart_release.service_account, tmp_path / "sa.kubeconfig"
    )
    reader_token = _create_service_account(kube_request, ns, "prometheus")
    nobody_token = _create_service_account(kube_request, ns, "nobody")
    binding_path = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"
    binding = f"{ns}-prometheus-metrics"
    kube_request(
        "POST",
        binding_path,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": binding},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": chart_release.metrics_reader_role,
            },
            "subjects": [{"kind": "ServiceAccount", "name": "prometheus", "namespace": ns}],
        },
    )
    proc = SchedulerProcess(str(sa_kubeconfig), tmp_path, name=scheduler_name(), secure=True)
    try:
        with running(proc):
            url = proc.metrics_url
            assert url.startswith("https://")
            status, body = _get(url)
            assert status == 401 and json.loads(body)["reason"] == "Unauthorized", body
            status, body = _get(url, "not-a-token")
            assert status == 401, body
            status, body = _get(url, nobody_token)
            assert status == 403, body
            assert json.loads(body)["message"] == (
                f'forbidden: User "system:serviceaccount:{ns}:nobody" cannot get path "/metrics"'
            )
            status, body = _get(url, reader_token)
            assert status == 200, body
            assert b"scheduler_pending_pods" in body
            # Again, from the caches: the same answers.
            assert _get(url, reader_token)[0] == 200 and _get(url, nobody_token)[0] == 403
            # Plain HTTP is not served on the metrics port.
            with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
                urllib.request.urlopen(url.replace("https://", "http://"), timeout=5)
            # Health: plain HTTP, no token.
            for path in ("/healthz", "/readyz"):
                assert _get(proc.base_url + path) == (200, b"ok")

            # The self-signed serving certificate is valid for localhost / 127.0.0.1.
            pem = ssl.get_server_certificate(("127.0.0.1", proc.metrics_port))
            verified = ssl.create_default_context(cadata=pem)
            with (
                socket.create_connection(("127.0.0.1", proc.metrics_port), timeout=5) as raw,
                verified.wrap_socket(raw, server_hostname="localhost") as tls,
            ):
                assert tls.version() in ("TLSv1.2", "TLSv1.3")
            log = proc.log_path.read_text()
            assert "cannot review" not in log, proc.log_tail()
    finally:
        kube_request("DELETE", f"{binding_path}/{binding}")


def test_a_missing_permission_is_caught(
    chart_release: Release,
    kubeconfig: str,
    kube_request: KubeRequest,
    node_factory: NodeFactory,
    tmp_path: Path,
) -> None:
    """Without pods/binding in the ClusterRole the pod is not bound and says why: the RBAC
    test above would notice a permission missing from the chart."""
    role_path = f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{chart_release.cluster_role}"
    role = kube_request("GET", role_path)
    role["rules"] = [r for r in role["rules"] if "pods/binding" not in r["resources"]]
    kube_request("PUT", role_path, role)
    ns = chart_release.namespace
    sa_kubeconfig = service_account_kubeconfig(
        kube_request, kubeconfig, ns, chart_release.service_account, tmp_path / "sa.kubeconfig"
    )
    name = scheduler_name()
    node_factory(f"{name}-n0", cpu="4", memory="8Gi", labels={"deploy-test": name})
    proc = SchedulerProcess(str(sa_kubeconfig), tmp_path, name=name)
    with running(proc):
        kube_request(
            "POST",
            f"/api/v1/namespaces/{ns}/pods",
            pod_manifest("p", scheduler=name, node_selector={"deploy-test": name}),
        )

        def refusal() -> str:
            pod = kube_request("GET", f"/api/v1/namespaces/{ns}/pods/p")
            assert not pod["spec"].get("nodeName"), "bound without pods/binding"
            conditions = pod.get("status", {}).get("conditions", [])
            return next((c["message"] for c in conditions if c["type"] == "PodScheduled"), "")

        message = wait_until(refusal, timeout=15, what="the binding to be refused")
        assert "forbidden" in message and "pods/binding" in message, message


# -- leader election --------------------------------------------------------------------


def _scheduled(proc: SchedulerProcess) -> float:
    total = 0.0
    for line in proc.metrics().splitlines():
        if line.startswith("scheduler_schedule_attempts_total{") and 'result="scheduled"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_leader_failover(
    kubeconfig: str,
    kube_request: KubeRequest,
    node_factory: NodeFactory,
    namespace: str,
    tmp_path: Path,
) -> None:
    """Two replicas on one Lease: only the leader binds; SIGKILL it and the other takes over
    within the lease duration (plus a retry period and a margin) and binds new pods."""
    lease_duration, retry_period = 3, 1
    pair = leader_pair(
        kubeconfig,
        kube_request,
        node_factory,
        namespace,
        tmp_path,
        lease_duration=lease_duration,
        renew_deadline=2,
        retry_period=retry_period,
    )
    name, zone, procs, holder = pair.name, pair.zone, pair.procs, pair.holder
    pods_path = f"/api/v1/namespaces/{namespace}/pods"

    def node_of(pod: str) -> str:
        return str(kube_request("GET", f"{pods_path}/{pod}")["spec"].get("nodeName") or "")

    with running(*procs):
        identities = [wait_until(lambda p=p: identity_of(p), what="identity") for p in procs]  # type: ignore[misc]
        leader_identity = wait_until(holder, timeout=10, what="a leader")
        assert leader_identity in identities
        leader = procs[identities.index(leader_identity)]
        follower = procs[1 - identities.index(leader_identity)]

        kube_request("POST", pods_path, pod_manifest("before", scheduler=name, node_selector=zone))
        wait_until(lambda: node_of("before"), timeout=10, what="the leader to bind")
        assert _scheduled(leader) == 1 and _scheduled(follower) == 0

        leader.kill()  # SIGKILL: no clean hand-over, as in a node crash
        killed = time.monotonic()
        kube_request("POST", pods_path, pod_manifest("after", scheduler=name, node_selector=zone))
        wait_until(
            lambda: node_of("after"),
            timeout=lease_duration + retry_period + 6,
            what="the follower to take over and bind",
        )
        took = time.monotonic() - killed
        assert holder() == identities[procs.index(follower)]
        assert _scheduled(follower) == 1
        print(f"failover: new pod bound {took:.1f}s after the leader was killed")
