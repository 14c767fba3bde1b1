"""
Turn a benchmark run into results.json, a chart and docs/benchmarks.md.

The JSON holds every figure and the machine it was taken on; the Markdown page
is generated from it, with the targets marked met or missed, so the page never
disagrees with the numbers. Hand-written analysis lives between the notes
markers of the page and survives regeneration. ``python -m bench.report DIR``
draws the chart and writes the page again from ``DIR/results.json``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NOTES_BEGIN = "<!-- notes:begin -->"
NOTES_END = "<!-- notes:end -->"
CHART_FILE = "latency.png"
RESULTS_FILE = "results.json"
MIB = 1024.0


@dataclass(frozen=True, kw_only=True)
class Target:
    """One goal from the issue, checked against the run's figures."""

    name: str
    goal: str
    value: float | None
    limit: float
    higher_is_better: bool
    unit: str
    where: str

    @property
    def met(self) -> bool | None:
        """Return whether the figure meets the goal; None when it was not measured."""
        if self.value is None:
            return None
        if self.higher_is_better:
            return self.value >= self.limit
        return self.value <= self.limit

    def to_json(self) -> dict[str, Any]:
        """Return the target for results.json."""
        return {
            "name": self.name,
            "goal": self.goal,
            "value": self.value,
            "unit": self.unit,
            "where": self.where,
            "met": self.met,
        }


def describe_machine(*, kubectl: Path, kubeconfig: Path) -> dict[str, Any]:
    """Return the CPU, cores, memory, Python and Kubernetes versions of this run."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
    versions = subprocess.run(
        [str(kubectl), f"--kubeconfig={kubeconfig}", "version", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    parsed = json.loads(versions.stdout or "{}")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / MIB / MIB, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "kubectl": (parsed.get("clientVersion") or {}).get("gitVersion"),
        "kubernetes": (parsed.get("serverVersion") or {}).get("gitVersion"),
        "load_average_at_start": [round(value, 2) for value in os.getloadavg()],
    }


def evaluate_targets(steps: list[dict[str, Any]]) -> list[Target]:
    """Check the issue's targets at the sizes they name, or the nearest measured."""
    at_100k = _step_near(steps, 100_000)
    at_50k = _step_near(steps, 50_000)
    largest = steps[-1]

    speedup = None
    if at_50k["latest_sequential"]["p50_ms"]:
        speedup = round(
            at_50k["kubectl_get_sorted"]["median_seconds"]
            * 1e3
            / at_50k["latest_sequential"]["p50_ms"]
        )
    rss_50k = max(
        at_50k["collector"]["rss_after_sync_mib"],
        at_50k["collector"]["rss_after_storm_mib"],
    )
    return [
        Target(
            name="latest(100) p99",
            goal="<= 2 ms at 100k events",
            value=at_100k["latest_sequential"]["p99_ms"],
            limit=2.0,
            higher_is_better=False,
            unit="ms",
            where=f"{at_100k['events']} events",
        ),
        Target(
            name="latest(100) against `kubectl get --sort-by \\| tail`",
            goal=">= 1000x faster at 50k events (medians)",
            value=speedup,
            limit=1000.0,
            higher_is_better=True,
            unit="x",
            where=f"{at_50k['events']} events",
        ),
        Target(
            name="collector RSS",
            goal="<= 100 MiB with 50k events held (after sync and after a storm)",
            value=rss_50k,
            limit=100.0,
            higher_is_better=False,
            unit="MiB",
            where=f"{at_50k['events']} events",
        ),
        Target(
            name="ingest rate",
            goal=">= 5000 frames/s on one core (replayed stream, wall clock)",
            value=largest["replay"]["frames_per_second"],
            limit=5000.0,
            higher_is_better=True,
            unit="frames/s",
            where=f"{largest['events']} events held",
        ),
        Target(
            name="change visible in latest()",
            goal="<= 100 ms after the API server sends it (p99)",
            value=largest["collector"]["visibility"]["p99_ms"],
            limit=100.0,
            higher_is_better=False,
            unit="ms",
            where=f"{largest['events']} events",
        ),
    ]


def write_results(results: dict[str, Any], out: Path) -> Path:
    """Write results.json into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / RESULTS_FILE
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path


def draw_chart(steps: list[dict[str, Any]], out: Path) -> Path:
    """Plot each approach's time for the latest 100 against N, on log axes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    sizes = [step["events"] for step in steps]
    lines = [
        ("kubectl get events -A --sort-by | tail", "kubectl_get_sorted", "o-"),
        ("kubectl events -A", "kubectl_events", "s-"),
        ("kubernetes-asyncio typed list + sort", "typed_list", "^-"),
    ]
    figure, axes = pyplot.subplots(figsize=(8, 5), dpi=110)
    for label, key, style in lines:
        axes.plot(sizes, [s[key]["median_seconds"] for s in steps], style, label=label)
    for label, key, style in (("p50", "p50_ms", "D-"), ("p99", "p99_ms", "d--")):
        values = [s["latest_sequential"][key] / 1e3 for s in steps]
        axes.plot(sizes, values, style, label=f"client.latest(100) {label}")
    axes.axhline(5.0, color="grey", linestyle=":", label="web app timeout (5 s)")

    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("events in the cluster")
    axes.set_ylabel("seconds for the latest 100 (median unless marked)")
    axes.set_title("The latest 100 events: kubectl against the collector")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    path = out / CHART_FILE
    figure.savefig(path)
    pyplot.close(figure)
    return path


def write_page(results: dict[str, Any], *, page: Path, out: Path) -> Path:
    """Write the Markdown page, keeping the hand-written notes of the old one."""
    notes = _old_notes(page)
    chart = os.path.relpath(out / CHART_FILE, page.parent)
    figures = os.path.relpath(out / RESULTS_FILE, page.parent)
    text = "\n".join(
        [
            "# Benchmarks",
            "",
            "One run of `python -m bench` on one local control plane (etcd and "
            "kube-apiserver built from source), filled step by step with events "
            "shaped like a busy cluster's. Every figure below comes from "
            f"[`{figures}`]({figures}); this page is generated from it.",
            "",
            "## The machine",
            "",
            *_machine_lines(results["machine"]),
            "",
            "## The latest 100 events, four ways",
            "",
            *_approach_table(results["steps"]),
            "",
            f"![Latency against cluster size]({chart})",
            "",
            "## The collector",
            "",
            *_collector_table(results["steps"]),
            "",
            "## Targets",
            "",
            *_target_table(results["targets"]),
            "",
            *_method_lines(results),
            "",
            "## Notes",
            "",
            NOTES_BEGIN,
            notes,
            NOTES_END,
            "",
        ]
    )
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(text)
    return page


def _step_near(steps: list[dict[str, Any]], events: int) -> dict[str, Any]:
    at_or_below = [step for step in steps if step["events"] <= events]
    return at_or_below[-1] if at_or_below else steps[0]


def _machine_lines(machine: dict[str, Any]) -> list[str]:
    return [
        f"- CPU: {machine['cpu']}, {machine['cores']} cores; "
        f"{machine['memory_gib']} GiB RAM; Linux {machine['kernel']}",
        f"- Python {machine['python']}; kubectl {machine['kubectl']}; "
        f"kube-apiserver {machine['kubernetes']}",
        f"- Load average at start: {machine['load_average_at_start']}, at end: "
        f"{machine.get('load_average_at_end')}. The machine is shared (other "
        "builds and tests run on it), so expect noise of tens of percent; the "
        "orders of magnitude are what matter.",
    ]


def _approach_table(steps: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| events | `kubectl get events -A --sort-by=.lastTimestamp \\| tail -n 100` "
        "| `kubectl events -A` | typed kubernetes-asyncio list + sort "
        "| `client.latest(100)` p50 / p99 / max | 16 threads: calls/s, p99 |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for step in steps:
        sequential = step["latest_sequential"]
        concurrent = step["latest_concurrent"]
        lines.append(
            f"| {step['events']:,} "
            f"| {_seconds(step['kubectl_get_sorted'])} "
            f"| {_seconds(step['kubectl_events'])} "
            f"| {_seconds(step['typed_list'])} "
            f"| {sequential['p50_ms']:.2f} / {sequential['p99_ms']:.2f} / "
            f"{sequential['max_ms']:.2f} ms "
            f"| {concurrent['calls_per_second']:,.0f}/s, {concurrent['p99_ms']:.1f} ms |"
        )
    return lines


def _collector_table(steps: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| events | start to synced | RSS after sync (peak) | RSS after storm "
        "| storm: patches/s sent, frames/s seen | visible in latest() p50 / p99 "
        "| replay: frames/s (per CPU s) | store.apply/s | parse+apply/s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for step in steps:
        collector = step["collector"]
        storm = collector["storm"]
        visible = collector["visibility"]
        replay = step["replay"]
        lines.append(
            f"| {step['events']:,} | {collector['sync_seconds']:.2f} s "
            f"| {collector['rss_after_sync_mib']:.0f} MiB "
            f"({collector['peak_rss_after_sync_mib']:.0f}) "
            f"| {collector['rss_after_storm_mib']:.0f} MiB "
            f"| {storm['patches_per_second']:,.0f}, {storm['frames_per_second']:,.0f} "
            f"| {visible['p50_ms']:.1f} / {visible['p99_ms']:.1f} ms "
            f"| {replay['frames_per_second']:,} ({replay['frames_per_cpu_second']:,}) "
            f"| {replay['store_apply_per_second']:,} "
            f"| {replay['parse_and_apply_per_second']:,} |"
        )
    return lines


def _target_table(targets: list[dict[str, Any]]) -> list[str]:
    lines = ["| target | goal | measured | |", "|---|---|---:|---|"]
    for target in targets:
        met = {True: "met", False: "**missed**", None: "not measured"}[target["met"]]
        lines.append(
            f"| {target['name']} | {target['goal']} "
            f"| {target['value']} {target['unit']} ({target['where']}) | {met} |"
        )
    lines += [
        "",
        "Nothing asserts these targets: the benchmark reports, the tests check "
        "behaviour.",
    ]
    return lines


def _method_lines(results: dict[str, Any]) -> list[str]:
    settings = results["settings"]
    mix = results["steps"][-1]["fill"]["mix_percent"]
    return [
        "## How it was measured",
        "",
        "- The cluster is filled once, cumulatively, with concurrent POSTs "
        f"({settings['concurrency']} in flight) over HTTPS with the admin "
        "certificate: "
        f"{settings['namespaces']} namespaces plus `default`, pods and nodes; "
        f"{mix['warning']}% Warning, {mix['event_time']}% written the "
        "events.k8s.io way (`eventTime`, `series`, `reportingComponent`, no "
        f"`lastTimestamp`), {mix['long_message']}% with messages over 2 KiB. "
        "The API server runs with `--event-ttl` of "
        f"{settings['event_ttl_hours']} h, so nothing expires mid-run.",
        f"- kubectl timings are the median of up to {settings['kubectl_runs']} "
        "runs of the command line through `bash -c` with `pipefail` (fewer when "
        "one approach's runs pass its time budget; results.json has each run). "
        "The typed list counts the paged list and the sort, not the client set-up.",
        f"- `client.latest(100)`: {settings['latest_calls']} sequential calls on "
        f"one connection after a warm-up; then {settings['threads']} threads, each "
        f"with its own connection, {settings['calls_each']} calls each. The "
        "collector is a real `python -m collector` process, one per size, with "
        f"`--max-events {settings['max_events']}`.",
        "- Start to synced: from `Popen` to the first `stats` that says synced. "
        "RSS is VmRSS from `/proc/<pid>/status` (peak: VmHWM).",
        f"- Storm: {settings['storm_patches']} merge-patches of `count` and "
        f"`lastTimestamp`, {settings['concurrency']} in flight; frames/s is the "
        "change in the collector's `frames` counter over the time until it has "
        "seen them all. The API server and etcd share the two cores with the "
        "collector, so this is the API server's rate, not the collector's.",
        f"- Visibility: {settings['visibility_samples']} times, patch one event "
        "with a unique message, then poll `latest(1)` until it shows; the delay "
        "is counted from the PATCH's response, an upper bound on the time from "
        "the API server sending the frame.",
        "- Replay: the list before the storm and the raw watch lines it caused are "
        "replayed by `tests/fakeapi.py` in another process, every frame at once, "
        "into the collector's real watcher and store in one process; "
        "frames/s by wall clock and per CPU second of that process. "
        "`store.apply/s` is the store alone on pre-parsed objects; "
        "`parse+apply/s` adds orjson.",
        "",
        "Reproduce (10 to 20 minutes on two cores for the default sizes "
        "500, 10k, 50k and 100k; the phases of each step are timed in "
        "results.json):",
        "",
        "```",
        "scripts/bench                                     # set-up, then python -m bench",
        ".venv/bin/python -m bench.report docs/benchmarks  # redraw from results.json",
        "```",
        "",
        "`python -m bench --quick` runs 500 events with few calls, in under a minute.",
    ]


def _seconds(runs: dict[str, Any]) -> str:
    text = f"{runs['median_seconds']:.2f} s"
    if runs["over_web_timeout"]:
        text += " (over 5 s)"
    return text


def _old_notes(page: Path) -> str:
    if not page.exists():
        return ""
    text = page.read_text()
    start, end = text.find(NOTES_BEGIN), text.find(NOTES_END)
    if start < 0 or end < start:
        return ""
    return text[start + len(NOTES_BEGIN) : end].strip("\n")


def main(argv: list[str]) -> int:
    """Redraw the chart and rewrite the page of an earlier run's results."""
    if len(argv) != 1:
        sys.stderr.write("usage: python -m bench.report DIR\n")
        return 2
    out = Path(argv[0])
    results = json.loads((out / RESULTS_FILE).read_text())
    draw_chart(results["steps"], out)
    write_page(results, page=out.with_suffix(".md"), out=out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
