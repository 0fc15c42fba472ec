"""Pure functions over measured numbers: percentiles, per-run summaries, ratios, the tables.

Nothing here talks to a cluster or reads a clock, so all of it is unit-tested with plain data
(tests/unit/test_bench_report.py).  The run records these functions read are the dicts
``bench.measure`` writes into the results JSON (keys documented in :func:`summarize_runs`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

OURS = "workload-scheduler"
KUBE = "kube-scheduler"
CEILING = "ceiling"
SCHEDULERS = (OURS, KUBE, CEILING)
"""Display order."""

DASH = "-"


# -- statistics ---------------------------------------------------------------------------


def percentile(values: Iterable[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100), linear between closest ranks (numpy's default).

    None for no values.  ``percentile(xs, 50)`` is the median.
    """
    data = sorted(values)
    if not data:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, not {q}")
    pos = (len(data) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    frac = pos - lo
    return data[lo] + (data[hi] - data[lo]) * frac


def median(values: Iterable[float]) -> float | None:
    return percentile(values, 50)


def spread(values: Iterable[float | None]) -> dict[str, float] | None:
    """``{"median", "min", "max"}`` of the values that are not None; None if there are none."""
    data = [v for v in values if v is not None]
    if not data:
        return None
    mid = median(data)
    assert mid is not None
    return {"median": mid, "min": min(data), "max": max(data)}


def throughput(pods: int, start: float, end: float) -> float | None:
    """Pods per second over ``[start, end]``; None if the interval is empty."""
    elapsed = end - start
    if pods <= 0 or elapsed <= 0:
        return None
    return pods / elapsed


def gang_latencies(
    created: Mapping[str, float], bound: Mapping[str, float], gang_of: Mapping[str, str]
) -> dict[str, float]:
    """Admission latency per gang: last member bound - last member created.

    ``created`` and ``bound`` map pod name to a time (same clock), ``gang_of`` maps each gang
    member's pod name to its gang.  Gangs with a member never created or never bound are left
    out (an incomplete run is reported as such, not as a latency).
    """
    members: dict[str, list[str]] = {}
    for pod, gang in gang_of.items():
        members.setdefault(gang, []).append(pod)
    result = {}
    for gang, pods in members.items():
        if all(p in created and p in bound for p in pods):
            result[gang] = max(bound[p] for p in pods) - max(created[p] for p in pods)
    return result


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


# -- summaries ----------------------------------------------------------------------------


def summarize_runs(
    runs: Sequence[Mapping[str, Any]], peak_rss_bytes: int | None = None
) -> dict[str, Any]:
    """One scheduler on one workload, over its runs.

    Each run is a mapping with at least ``complete`` (bool) and, when complete,
    ``pods_per_second``; optionally ``gang_latencies`` (list of seconds), ``cpu_seconds``
    (the scheduler under test, over the measured interval), ``seconds`` (first create to
    last bind) and ``create_seconds`` (first create to last create returned); their
    difference is the *tail*, how long binding trails creation.  Throughput
    statistics use complete runs only; gang percentiles pool the gangs of complete runs.
    """
    complete = [r for r in runs if r.get("complete")]
    gangs = [x for r in complete for x in r.get("gang_latencies", ())]
    return {
        "runs": len(runs),
        "complete_runs": len(complete),
        "pods_per_second": spread(r.get("pods_per_second") for r in complete),
        "seconds": spread(r.get("seconds") for r in complete),
        "tail_seconds": spread(_tail(r) for r in complete),
        "gang_admission_seconds": (
            {"p50": percentile(gangs, 50), "p99": percentile(gangs, 99), "gangs": len(gangs)}
            if gangs
            else None
        ),
        "cpu_seconds": spread(r.get("cpu_seconds") for r in complete),
        "peak_rss_bytes": peak_rss_bytes,
        "placement_violations": _violations(runs),
    }


def _violations(runs: Sequence[Mapping[str, Any]]) -> dict[str, int] | None:
    """Required anti-affinity / spread violations summed over the runs (None if not checked)."""
    checked = [r["placement_violations"] for r in runs if r.get("placement_violations")]
    if not checked:
        return None
    total: dict[str, int] = {}
    for v in checked:
        for key, count in v.items():
            total[key] = total.get(key, 0) + int(count)
    return total


def _tail(run: Mapping[str, Any]) -> float | None:
    """Last bind after the last create returned: how far the scheduler trails creation."""
    seconds, created = run.get("seconds"), run.get("create_seconds")
    if not isinstance(seconds, int | float) or not isinstance(created, int | float):
        return None
    return max(0.0, seconds - created)


def _get(summary: Mapping[str, Any] | None, *keys: str) -> float | None:
    value: Any = summary
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value if isinstance(value, int | float) else None


def ratios(per_scheduler: Mapping[str, Mapping[str, Any]]) -> dict[str, float | None]:
    """Ours against kube-scheduler and against the ceiling, from :func:`summarize_runs` output.

    Throughput ratios above 1 mean ours is faster; latency, CPU and memory ratios above 1
    mean ours needs more.
    """
    ours = per_scheduler.get(OURS)
    kube = per_scheduler.get(KUBE)
    ceiling = per_scheduler.get(CEILING)
    pps = ("pods_per_second", "median")
    return {
        "throughput_vs_kube": ratio(_get(ours, *pps), _get(kube, *pps)),
        "throughput_vs_ceiling": ratio(_get(ours, *pps), _get(ceiling, *pps)),
        "kube_vs_ceiling": ratio(_get(kube, *pps), _get(ceiling, *pps)),
        "gang_p50_vs_kube": ratio(
            _get(ours, "gang_admission_seconds", "p50"), _get(kube, "gang_admission_seconds", "p50")
        ),
        "gang_p99_vs_kube": ratio(
            _get(ours, "gang_admission_seconds", "p99"), _get(kube, "gang_admission_seconds", "p99")
        ),
        "cpu_vs_kube": ratio(
            _get(ours, "cpu_seconds", "median"), _get(kube, "cpu_seconds", "median")
        ),
        "rss_vs_kube": ratio(_get(ours, "peak_rss_bytes"), _get(kube, "peak_rss_bytes")),
    }


def summarize(doc: Mapping[str, Any]) -> dict[str, Any]:
    """``{workload: {"schedulers": {name: summary}, "ratios": {...}}}`` for a results document
    (``doc["workloads"][w]["schedulers"][name]`` has ``runs`` and ``peak_rss_bytes``)."""
    out: dict[str, Any] = {}
    for workload, data in doc.get("workloads", {}).items():
        per = {
            name: summarize_runs(entry.get("runs", []), entry.get("peak_rss_bytes"))
            for name, entry in data.get("schedulers", {}).items()
        }
        out[workload] = {"schedulers": per, "ratios": ratios(per)}
    return out


# -- formatting ---------------------------------------------------------------------------


def fmt_number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return DASH
    return f"{value:,.{digits}f}"


def fmt_spread(stats: Mapping[str, float] | None, digits: int = 0) -> str:
    """``"812 (790-830)"``: median and the range over runs."""
    if not stats:
        return DASH
    med = fmt_number(stats["median"], digits)
    if stats["min"] == stats["max"]:
        return med
    return f"{med} ({fmt_number(stats['min'], digits)}-{fmt_number(stats['max'], digits)})"


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return DASH
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s"


def fmt_bytes(value: float | None) -> str:
    if value is None:
        return DASH
    mib = value / (1024 * 1024)
    return f"{mib:,.0f} MiB"


def fmt_ratio(value: float | None) -> str:
    return DASH if value is None else f"{value:.2f}x"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, left: int = 1) -> str:
    """A plain-text table; the first ``left`` columns are left-aligned, the rest right-aligned."""
    widths = [len(h) for h in headers]
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"row has {len(row)} cells, headers {len(headers)}: {row!r}")
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.ljust(w) if i < left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def format_markdown(headers: Sequence[str], rows: Sequence[Sequence[str]], *, left: int = 1) -> str:
    """The same table as GitHub markdown."""
    align = ["---" if i < left else "---:" for i in range(len(headers))]
    out = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


RESULT_HEADERS = (
    "workload",
    "scheduler",
    "runs",
    "pods/s median (min-max)",
    "tail",
    "gang p50",
    "gang p99",
    "CPU s/run",
    "peak RSS",
)
RATIO_HEADERS = (
    "workload",
    "pods/s ours/kube",
    "pods/s ours/ceiling",
    "pods/s kube/ceiling",
    "gang p50 ours/kube",
    "gang p99 ours/kube",
    "CPU ours/kube",
    "RSS ours/kube",
)


def result_rows(
    summary: Mapping[str, Any], sizes: Mapping[str, str] | None = None
) -> list[list[str]]:
    """Rows of the main table from :func:`summarize` output; ``sizes`` labels each workload."""
    rows = []
    for workload, data in summary.items():
        per = data["schedulers"]
        names = [n for n in SCHEDULERS if n in per] + sorted(set(per) - set(SCHEDULERS))
        for i, name in enumerate(names):
            s = per[name]
            gang = s.get("gang_admission_seconds") or {}
            runs = f"{s['complete_runs']}/{s['runs']}"
            label = workload
            if sizes and sizes.get(workload):
                label = f"{workload} ({sizes[workload]})"
            rows.append(
                [
                    label if i == 0 else "",
                    name,
                    runs,
                    fmt_spread(s.get("pods_per_second")),
                    fmt_seconds(_get(s, "tail_seconds", "median")),
                    fmt_seconds(gang.get("p50")),
                    fmt_seconds(gang.get("p99")),
                    fmt_number(_get(s, "cpu_seconds", "median"), 2),
                    fmt_bytes(s.get("peak_rss_bytes")),
                ]
            )
    return rows


def ratio_rows(summary: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for workload, data in summary.items():
        r = data["ratios"]
        rows.append(
            [
                workload,
                fmt_ratio(r.get("throughput_vs_kube")),
                fmt_ratio(r.get("throughput_vs_ceiling")),
                fmt_ratio(r.get("kube_vs_ceiling")),
                fmt_ratio(r.get("gang_p50_vs_kube")),
                fmt_ratio(r.get("gang_p99_vs_kube")),
                fmt_ratio(r.get("cpu_vs_kube")),
                fmt_ratio(r.get("rss_vs_kube")),
            ]
        )
    return rows


def machine_lines(machine: Mapping[str, Any]) -> list[str]:
    mem = machine.get("memory_bytes")
    return [
        f"machine: {machine.get('nproc', '?')} CPUs ({machine.get('cpu_model', '?')}), "
        f"{fmt_bytes(mem) if mem else '?'} memory, {machine.get('kernel', '?')}",
        f"software: Python {machine.get('python', '?')}, {machine.get('go', '?')}, "
        f"Kubernetes {machine.get('kubernetes', '?')}",
    ]


def format_report(doc: Mapping[str, Any], *, markdown: bool = False) -> str:
    """The whole report for a results document: machine, results table, ratio table."""
    summary = summarize(doc)  # recomputed: older files render with the current columns
    sizes = {w: d.get("size", "") for w, d in doc.get("workloads", {}).items()}
    table = format_markdown if markdown else format_table
    parts = [*machine_lines(doc.get("machine", {}))]
    config = doc.get("config", {})
    if config:
        runs = f"{config.get('runs', '?')} runs per scheduler"
        if "scale" in doc.get("workloads", {}):
            runs += f" ({config.get('scale_runs') or 1} at the scale point)"
        parts.append(
            f"settings: {runs}, client QPS/burst "
            f"{config.get('qps', '?')}/{config.get('burst', '?')} for every scheduler, "
            f"{config.get('create_concurrency', '?')} pod creations in flight"
        )
    parts += ["", table(RESULT_HEADERS, result_rows(summary, sizes), left=2)]
    parts += ["", table(RATIO_HEADERS, ratio_rows(summary))]
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.report FILE.json [--markdown]``: the tables of a saved run."""
    import argparse
    import json
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="python -m bench.report", description=main.__doc__)
    parser.add_argument("results", type=Path, nargs="+", help="results JSON from bench.run")
    parser.add_argument("--markdown", action="store_true", help="markdown tables")
    args = parser.parse_args(argv)
    for i, path in enumerate(args.results):
        if len(args.results) > 1:
            print(("\n" if i else "") + f"# {path}")
        print(format_report(json.loads(path.read_text()), markdown=args.markdown))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
