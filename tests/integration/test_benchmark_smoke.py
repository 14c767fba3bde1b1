"""
The benchmark at smoke size: ``python -m bench --quick`` runs end to end.

The benchmark is a tool people run once in a while, so it rots unless something
runs it. This runs it at 500 events, as a subprocess exactly as documented, and
checks that every figure it promises is there and plausible. It asserts no speed
target: on a shared two-core machine those are for people to read, not for CI
to flake on.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.benchmark]

REPO_ROOT = Path(__file__).resolve().parents[2]
QUICK_EVENTS = 500
LATEST_LIMIT = 100
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run the quick benchmark once for this module; return its output directory."""
    out = tmp_path_factory.mktemp("bench") / "benchmarks"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", f"--out={out}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def results(quick_run: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((quick_run / "results.json").read_text())
    return loaded


@pytest.fixture(scope="module")
def step(results: dict[str, Any]) -> dict[str, Any]:
    assert [s["events"] for s in results["steps"]] == [QUICK_EVENTS]
    only: dict[str, Any] = results["steps"][0]
    return only


def test_the_quick_run_fills_the_cluster_with_a_realistic_mix(step):
    fill = step["fill"]

    assert fill["created"] == QUICK_EVENTS
    assert fill["events_per_second"] > 0
    assert all(share > 0 for share in fill["mix_percent"].values())


@pytest.mark.parametrize(
    "approach",
    [
        pytest.param("kubectl_get_sorted", id="kubectl-get-tail"),
        pytest.param("typed_list", id="typed-list"),
    ],
)
def test_each_latest_100_approach_is_timed_and_yields_100(step, approach):
    runs = step[approach]

    assert runs["median_seconds"] > 0
    assert all(seconds > 0 for seconds in runs["runs_seconds"])
    assert runs["lines"] == LATEST_LIMIT


def test_kubectl_events_is_timed_printing_every_event(step):
    runs = step["kubectl_events"]

    assert runs["median_seconds"] > 0
    # A header, then one line per event or more: long messages span lines.
    assert runs["lines"] > QUICK_EVENTS


def test_latest_is_timed_sequentially_and_from_many_threads(step, results):
    settings = results["settings"]
    sequential = step["latest_sequential"]
    concurrent = step["latest_concurrent"]

    assert sequential["calls"] == settings["latest_calls"]
    assert 0 < sequential["p50_ms"] <= sequential["p99_ms"] <= sequential["max_ms"]
    assert sequential["events_returned"] == LATEST_LIMIT
    assert concurrent["calls"] == settings["threads"] * settings["calls_each"]
    assert 0 < concurrent["p50_ms"] <= concurrent["p99_ms"] <= concurrent["max_ms"]
    assert concurrent["calls_per_second"] > 0
    assert concurrent["events_returned"] == LATEST_LIMIT


def test_the_collector_syncs_every_event_and_reports_its_memory(step):
    collector = step["collector"]

    assert collector["synced_records"] >= QUICK_EVENTS
    assert collector["sync_seconds"] > 0
    assert collector["rss_after_sync_mib"] > 0
    assert collector["peak_rss_after_sync_mib"] >= collector["rss_after_sync_mib"]
    assert collector["rss_after_storm_mib"] > 0
    assert collector["exit_code"] == 0


def test_the_storm_reaches_the_collector_and_is_recorded(step, results):
    storm = step["collector"]["storm"]
    patches = results["settings"]["storm_patches"]

    assert storm["patches"] == patches
    assert storm["failed"] == 0
    assert storm["frames_seen"] >= patches
    assert storm["frames_per_second"] > 0
    assert storm["recorded_frames"] == patches


def test_every_probe_change_shows_in_latest(step, results):
    visibility = step["collector"]["visibility"]

    assert visibility["samples"] == results["settings"]["visibility_samples"]
    assert 0 < visibility["p50_ms"] <= visibility["p99_ms"] <= visibility["max_ms"]


def test_the_replay_feeds_every_recorded_frame_through_the_collector(step):
    replay = step["replay"]

    assert replay["listed_events"] >= QUICK_EVENTS
    assert replay["frames"] == step["collector"]["storm"]["recorded_frames"]
    assert replay["bad_frames"] == 0
    for figure in (
        "frames_per_second",
        "frames_per_cpu_second",
        "list_events_per_second",
        "store_apply_per_second",
        "parse_and_apply_per_second",
    ):
        assert replay[figure] > 0, figure


def test_every_target_has_a_measured_value_and_a_verdict(results):
    targets = results["targets"]

    assert len(targets) == 5
    for target in targets:
        assert target["value"] is not None and target["value"] > 0, target
        assert target["met"] in (True, False), target


def test_the_run_describes_the_machine(results):
    machine = results["machine"]

    assert machine["cpu"] and machine["cores"] >= 1
    assert machine["memory_gib"] > 0
    assert machine["kubectl"].startswith("v")
    assert machine["kubernetes"].startswith("v")


def test_the_chart_and_the_page_are_written(quick_run):
    page = quick_run.with_suffix(".md").read_text()

    assert (quick_run / "latency.png").read_bytes().startswith(PNG_MAGIC)
    assert "| 500 |" in page
    assert "![Latency against cluster size](benchmarks/latency.png)" in page
