"""Settings: defaults, then a YAML file (``--config``), then command-line flags.

The YAML keys are the flag names in snake_case, e.g.::

    scheduler_name: workload-scheduler
    scoring_strategy: MostAllocated
    leader_elect: true
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

ScoringStrategy = Literal["LeastAllocated", "MostAllocated"]
"""NodeResourcesFit's scoring: spread pods out (least allocated) or pack them (most).
Declared here, with the settings, so the plugin reads the same type (as upstream's
plugins read their args from ``apis/config``)."""
SCORING_STRATEGIES: tuple[ScoringStrategy, ...] = get_args(ScoringStrategy)


TOPOLOGY_SPREAD_DEFAULTING = ("System", "List")
_SPREAD_KEYS = frozenset(
    {
        "maxSkew",
        "topologyKey",
        "whenUnsatisfiable",
        "minDomains",
        "nodeAffinityPolicy",
        "nodeTaintsPolicy",
        "matchLabelKeys",
    }
)


class ConfigError(ValueError):
    pass


@dataclass(slots=True)
class Settings:
    kubeconfig: str | None = None
    scheduler_name: str = "workload-scheduler"
    metrics_bind_address: str = "0.0.0.0:8080"
    health_bind_address: str = "0.0.0.0:8081"
    secure_metrics: bool = True
    """/metrics over HTTPS, only for bearer tokens allowed ``get`` on it (TokenReview and
    SubjectAccessReview, as kube-scheduler's secure port); false: plain HTTP for anyone."""
    tls_cert_file: str = ""
    """PEM serving certificate (chain) for /metrics; empty: self-signed, in memory."""
    tls_private_key_file: str = ""
    log_format: str = "console"
    log_level: str = "info"
    scoring_strategy: ScoringStrategy = "LeastAllocated"
    leader_elect: bool = False
    leader_elect_namespace: str = "kube-system"
    leader_elect_lease_name: str = "workload-scheduler"
    leader_elect_lease_duration: float = 15.0
    leader_elect_renew_deadline: float = 10.0
    leader_elect_retry_period: float = 2.0
    kube_api_qps: float = 1000.0
    kube_api_burst: int = 1000
    parallel_binds: int = 64
    gang_timeout_seconds: float = 300.0
    volume_bind_timeout_seconds: float = 600.0
    """How long VolumeBinding's PreBind waits for the PV controller (upstream's
    ``bindTimeoutSeconds``)."""
    batching: bool = True
    percentage_of_nodes_to_score: int = 0
    """As kube-scheduler's: 0 adapts to the cluster size (all nodes up to 100)."""
    topology_spread_defaulting: str = "System"
    """PodTopologySpread constraints for pods without any: ``System`` (kube-scheduler's:
    soft, hostname maxSkew 3 and zone maxSkew 5) or ``List``
    (``topology_spread_default_constraints``; an empty list turns defaulting off)."""
    topology_spread_default_constraints: list[dict[str, Any]] = field(default_factory=list)
    """Reuse filter and score results across pods with the same signature."""
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if self.scoring_strategy not in SCORING_STRATEGIES:
            raise ConfigError(
                f"scoring_strategy must be one of {', '.join(SCORING_STRATEGIES)}, "
                f"not {self.scoring_strategy!r}"
            )
        if self.log_format not in ("json", "console"):
            raise ConfigError(f"log_format must be json or console, not {self.log_format!r}")
        for name in ("metrics_bind_address", "health_bind_address"):
            split_address(getattr(self, name), name)
        if bool(self.tls_cert_file) != bool(self.tls_private_key_file):
            raise ConfigError("tls_cert_file and tls_private_key_file go together")
        if self.tls_cert_file and not self.secure_metrics:
            raise ConfigError("tls_cert_file is for secure_metrics; it is off")
        if self.parallel_binds < 1:
            raise ConfigError("parallel_binds must be at least 1")
        self.check_spread_defaults()

    def check_spread_defaults(self) -> None:
        """PodTopologySpread's defaulting, checked here as plain data (the plugin builds
        its constraints from it: ``pod_topology_spread.spread_defaults``)."""
        if self.topology_spread_defaulting not in TOPOLOGY_SPREAD_DEFAULTING:
            raise ConfigError(
                "topology_spread_defaulting must be System or List, "
                f"not {self.topology_spread_defaulting!r}"
            )
        constraints = self.topology_spread_default_constraints
        if self.topology_spread_defaulting == "System" and constraints:
            raise ConfigError(
                "topology_spread_default_constraints need topology_spread_defaulting: List"
            )
        for i, raw in enumerate(constraints):
            where = f"topology_spread_default_constraints[{i}]"
            if not isinstance(raw, dict):
                raise ConfigError(f"{where} must be a mapping, not {raw!r}")
            if "labelSelector" in raw:
                raise ConfigError(
                    f"{where}: no labelSelector (the selector comes from the pod's Services "
                    "and controller)"
                )
            skew = raw.get("maxSkew")
            if not isinstance(skew, int) or isinstance(skew, bool) or skew < 1:
                raise ConfigError(f"{where}: maxSkew must be a positive integer")
            if not isinstance(raw.get("topologyKey"), str) or not raw["topologyKey"]:
                raise ConfigError(f"{where}: topologyKey must be a label key")
            if raw.get("whenUnsatisfiable") not in ("DoNotSchedule", "ScheduleAnyway"):
                raise ConfigError(
                    f"{where}: whenUnsatisfiable must be DoNotSchedule or ScheduleAnyway"
                )
            unknown = set(raw) - _SPREAD_KEYS
            if unknown:
                raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")


def load_settings(path: str | None, overrides: dict[str, Any]) -> Settings:
    settings = Settings()
    if path:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"config {path} must be a mapping of setting names to values")
        _apply(settings, {k.replace("-", "_"): v for k, v in data.items()}, source=path)
    _apply(settings, {k: v for k, v in overrides.items() if v is not None}, source="flags")
    settings.validate()
    return settings


def _apply(settings: Settings, values: dict[str, Any], source: str) -> None:
    known = {f.name: f for f in dataclasses.fields(settings) if f.name != "extra"}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{source}: unknown setting {key!r}")
        current = getattr(settings, key)
        if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
            setattr(settings, key, float(value))
        elif current is not None and not isinstance(value, type(current)):
            raise ConfigError(f"{source}: {key} must be {type(current).__name__}, not {value!r}")
        else:
            setattr(settings, key, value)


def split_address(address: str, what: str = "address") -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"{what} must be HOST:PORT, not {address!r}")
    return host or "0.0.0.0", int(port)
