"""``python -m devcluster``: build (or find) every pinned control plane, kwok and helm,
with progress. CI runs it before the tests so that a cold build is never silent."""

from devcluster.build import main as build_control_planes
from devcluster.helm import main as build_helm
from devcluster.kwok import ensure_kwok


def _build_kwok() -> int:
    print(f"kwok: {ensure_kwok(progress=lambda m: print(m, flush=True))}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(build_control_planes([]) or _build_kwok() or build_helm())
