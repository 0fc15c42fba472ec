"""``python -m devcluster``: build (or find) every pinned control plane and helm,
with progress. CI runs it before the tests so that a cold build is never silent."""

from devcluster.build import main as build_control_planes
from devcluster.helm import main as build_helm

if __name__ == "__main__":
    raise SystemExit(build_control_planes([]) or build_helm())
