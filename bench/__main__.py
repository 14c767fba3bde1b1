"""
Run the benchmark: ``python -m bench [--sizes 500,10000,...] [--out DIR] [--quick]``.

One control plane serves the whole run, filled cumulatively: fill to the first
size, measure everything, fill up to the next, measure again. Each size gets a
fresh collector process. The figures go to ``DIR/results.json``, the chart to
``DIR/latency.png`` and the page to ``DIR.md`` (``docs/benchmarks.md`` for the
default ``--out docs/benchmarks``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import measure, replay, report
from bench.cluster import ApiSession, Recording, WriteResult
from bench.service import CollectorProcess
from bench.shapes import EventShapes
from controlplane import ControlPlane, build_binaries

logger = logging.getLogger("bench")

# Long enough that no event expires while the largest run is measured.
EVENT_TTL_SECONDS = 6 * 3600.0
SYNC_TIMEOUT_SECONDS = 600.0
STORM_SETTLE_SECONDS = 120.0
VISIBILITY_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, kw_only=True)
class Plan:
    """How much of everything one run does."""

    sizes: list[int]
    concurrency: int = 48
    kubectl_runs: int = 3
    kubectl_budget_seconds: float = 150.0
    latest_calls: int = 2000
    threads: int = 16
    calls_each: int = 250
    storm_patches: int = 20_000
    visibility_samples: int = 50
    max_events: int = 200_000
    event_ttl_hours: float = EVENT_TTL_SECONDS / 3600.0
    namespaces: int = 50

    @classmethod
    def quick(cls) -> Plan:
        """Return the smoke-sized plan: 500 events, few calls and samples."""
        return cls(
            sizes=[500],
            latest_calls=200,
            calls_each=20,
            storm_patches=500,
            visibility_samples=10,
        )


def parse_args(argv: list[str] | None) -> tuple[Plan, Path]:
    """Return the plan and the output directory from the command line."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--sizes",
        default="500,10000,50000,100000",
        help="cluster sizes to measure, in events, filled cumulatively",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("docs/benchmarks"),
        help="directory for results.json and latency.png; the page goes to OUT.md",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="500 events, few calls and samples: the smoke test's run",
    )
    args = parser.parse_args(argv)
    if args.quick:
        return Plan.quick(), args.out
    sizes = sorted({int(size.replace("_", "")) for size in args.sizes.split(",")})
    return Plan(sizes=sizes), args.out


def main(argv: list[str] | None = None) -> int:
    """Run the whole benchmark and write its figures."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", force=True
    )
    plan, out = parse_args(argv)
    bin_dir = build_binaries()
    scratch = Path(tempfile.mkdtemp(prefix="ecb-"))
    with ControlPlane(bin_dir=bin_dir, event_ttl=EVENT_TTL_SECONDS) as plane:
        kubectl = plane.bin_dir / "kubectl"
        machine = report.describe_machine(kubectl=kubectl, kubeconfig=plane.kubeconfig)
        bench = Bench(plane=plane, plan=plan, scratch=scratch)
        steps = [bench.run_step(size) for size in plan.sizes]
    machine["load_average_at_end"] = [round(value, 2) for value in os.getloadavg()]

    targets = report.evaluate_targets(steps)
    results = {
        "machine": machine,
        "settings": asdict(plan),
        "steps": steps,
        "targets": [target.to_json() for target in targets],
    }
    report.write_results(results, out)
    report.draw_chart(steps, out)
    page = report.write_page(results, page=out.with_suffix(".md"), out=out)
    shutil.rmtree(scratch, ignore_errors=True)
    for target in targets:
        logger.info("Target %s: %s %s (%s)", target.name, target.value, target.unit,
                    {True: "met", False: "MISSED", None: "not measured"}[target.met])  # fmt: skip
    logger.info("Wrote %s, %s and %s.", out / report.RESULTS_FILE, out / report.CHART_FILE, page)  # fmt: skip
    return 0


class Bench:
    """The run's state: the cluster, what has been written to it, the plan."""

    def __init__(self, *, plane: ControlPlane, plan: Plan, scratch: Path) -> None:
        self.plane = plane
        self.plan = plan
        self.scratch = scratch
        self.shapes = EventShapes()
        self.filled = 0
        self.written: list[tuple[str, str]] = []
        self.plain: list[tuple[str, str]] = []
        self.mix: collections.Counter[str] = collections.Counter()
        asyncio.run(self._ensure_namespaces())

    def run_step(self, size: int) -> dict[str, Any]:
        """Fill the cluster up to ``size`` events and take every measurement."""
        phases: dict[str, float] = {}
        step: dict[str, Any] = {"events": size, "phase_seconds": phases}
        with _phase(phases, "fill"):
            step["fill"] = self._fill_to(size)
        with _phase(phases, "kubectl_get_sorted"):
            step["kubectl_get_sorted"] = self._kubectl(
                "get events -A --sort-by=.lastTimestamp | tail -n 100"
            )
        with _phase(phases, "kubectl_events"):
            step["kubectl_events"] = self._kubectl("events -A")
        with _phase(phases, "typed_list"):
            step["typed_list"] = measure.time_typed_list(
                kubeconfig=self.plane.kubeconfig,
                runs=self.plan.kubectl_runs,
                budget=self.plan.kubectl_budget_seconds,
            ).to_json()
        with _phase(phases, "collector"):
            step.update(self._measure_collector(size))
        with _phase(phases, "replay"):
            step["replay"] = replay.run_replay(self.scratch / f"replay-{size}")
        logger.info("Step %d done: %s", size, _summary(step))
        return step

    def _fill_to(self, size: int) -> dict[str, Any]:
        count = size - self.filled
        result = asyncio.run(self._create(count)) if count > 0 else WriteResult()
        self.filled = size
        logger.info(
            "Filled %d events in %.1f s (%.0f/s; %d failed, %d existed).",
            result.succeeded,
            result.seconds,
            result.rate,
            result.failures,
            result.conflicts,
        )
        if result.failures:
            raise RuntimeError(f"event creation failed: {result.last_error}")
        return {
            "created": result.succeeded,
            "seconds": round(result.seconds, 2),
            "events_per_second": round(result.rate),
            "concurrency": self.plan.concurrency,
            "mix_percent": {
                trait: round(100.0 * self.mix[trait] / len(self.written))
                for trait in ("warning", "event_time", "long_message")
            },
        }

    def _kubectl(self, command: str) -> dict[str, Any]:
        runs = measure.time_kubectl(
            kubectl=self.plane.bin_dir / "kubectl",
            kubeconfig=self.plane.kubeconfig,
            command=command,
            runs=self.plan.kubectl_runs,
            budget=self.plan.kubectl_budget_seconds,
        )
        logger.info("kubectl %s: median %.2f s %s", command, runs.median, runs.seconds)
        return runs.to_json()

    def _measure_collector(self, size: int) -> dict[str, Any]:
        process = CollectorProcess(
            kubeconfig=self.plane.kubeconfig,
            socket_path=str(self.scratch / "events.sock"),
            max_events=self.plan.max_events,
            log_path=self.scratch / f"collector-{size}.log",
        )
        try:
            sync_seconds = process.start_and_sync(timeout=SYNC_TIMEOUT_SECONDS)
            stats = process.stats()
            after_sync = process.memory_kib()
            figures = self._latency(process)
            storm, recording = asyncio.run(self._storm(process))
            after_storm = process.memory_kib()
            visibility = asyncio.run(self._visibility(process))
        finally:
            exit_code = process.stop()

        replay.save(recording, self.scratch / f"replay-{size}")
        figures["collector"] = {
            "sync_seconds": round(sync_seconds, 3),
            "list_seconds": stats["last_sync_seconds"],
            "synced_records": stats["records"],
            "rss_after_sync_mib": round(after_sync["VmRSS"] / report.MIB, 1),
            "peak_rss_after_sync_mib": round(after_sync["VmHWM"] / report.MIB, 1),
            "rss_after_storm_mib": round(after_storm["VmRSS"] / report.MIB, 1),
            "storm": storm,
            "visibility": visibility,
            "exit_code": exit_code,
        }
        return figures

    def _latency(self, process: CollectorProcess) -> dict[str, Any]:
        sequential = measure.time_latest_sequential(
            socket_path=process.socket_path, calls=self.plan.latest_calls
        )
        concurrent = measure.time_latest_concurrent(
            socket_path=process.socket_path,
            threads=self.plan.threads,
            calls_each=self.plan.calls_each,
        )
        logger.info("latest(100): %s; %d threads: %s", sequential, self.plan.threads, concurrent)  # fmt: skip
        return {
            "latest_sequential": sequential.to_json(),
            "latest_concurrent": concurrent.to_json(),
        }

    async def _ensure_namespaces(self) -> None:
        async with self._session() as api:
            await api.ensure_namespaces(self.shapes.namespaces)

    async def _create(self, count: int) -> WriteResult:
        async with self._session() as api:
            return await api.create_events(self._bodies(), count=count)

    def _bodies(self) -> Iterator[dict[str, Any]]:
        # Remember every name, and apart those whose order a patch of
        # lastTimestamp decides (no series), for the storm and the probes.
        index = self.filled
        while True:
            body = self.shapes.make(index)
            key = (body["metadata"]["namespace"], body["metadata"]["name"])
            self.written.append(key)
            if "lastTimestamp" in body and "series" not in body:
                self.plain.append(key)
            self.mix.update(_traits(body))
            index += 1
            yield body

    async def _storm(
        self, process: CollectorProcess
    ) -> tuple[dict[str, Any], Recording]:
        patches = self.plan.storm_patches
        seed = len(self.written)
        targets = random.Random(seed).sample(
            self.written, min(len(self.written), patches)
        )
        async with self._session() as api:
            recording = await api.list_events()
            listening = asyncio.Event()
            recorder = asyncio.create_task(
                api.record_watch(
                    recording, frames=patches, started=listening, watch_seconds=600.0
                )
            )
            await asyncio.wait_for(listening.wait(), timeout=30.0)
            frames_before = (await asyncio.to_thread(process.stats))["frames"]

            started = time.perf_counter()
            result = await api.patch_events(
                targets, count=patches, timestamp=self.shapes.timestamp
            )
            frames_seen, seen_at = await self._wait_frames(
                process, target=frames_before + result.succeeded
            )
            try:
                await asyncio.wait_for(recorder, timeout=STORM_SETTLE_SECONDS)
            except TimeoutError:
                logger.warning("Recorded %d of %d frames.", len(recording.frames), patches)  # fmt: skip

        frames = frames_seen - frames_before
        storm = {
            "patches": result.succeeded,
            "failed": result.failures,
            "seconds": round(result.seconds, 3),
            "patches_per_second": round(result.rate),
            "frames_seen": frames,
            "frames_per_second": round(frames / (seen_at - started)),
            "recorded_frames": len(recording.frames),
            "seed": seed,
        }
        logger.info("Storm: %s", storm)
        return storm, recording

    async def _wait_frames(
        self, process: CollectorProcess, *, target: int
    ) -> tuple[int, float]:
        deadline = time.perf_counter() + STORM_SETTLE_SECONDS
        while True:
            frames = (await asyncio.to_thread(process.stats))["frames"]
            now = time.perf_counter()
            if frames >= target or now > deadline:
                return frames, now
            await asyncio.sleep(0.01)

    async def _visibility(self, process: CollectorProcess) -> dict[str, Any]:
        # The blocking poll runs on the loop on purpose: nothing else is running,
        # and a thread hop would only add to the delay being measured.
        delays: list[float] = []
        async with self._session() as api:
            for sample in range(self.plan.visibility_samples):
                namespace, name = self.plain[sample * 7919 % len(self.plain)]
                message = f"benchmark probe {sample} at {time.time_ns()}"
                patch = {
                    "message": message,
                    "count": 10_000 + sample,
                    "lastTimestamp": self.shapes.timestamp(),
                }
                answered = await api.patch_event(namespace, name, patch)
                if answered.failures:
                    raise RuntimeError(f"probe patch failed: {answered.last_error}")
                responded = time.perf_counter()
                visible = measure.wait_visible(
                    socket_path=process.socket_path,
                    message=message,
                    timeout=VISIBILITY_TIMEOUT_SECONDS,
                    clock=time.perf_counter,
                )
                delays.append(visible - responded)
                await asyncio.sleep(0.02)
        return {
            "samples": len(delays),
            "p50_ms": round(measure.percentile(delays, 0.5) * 1e3, 3),
            "p99_ms": round(measure.percentile(delays, 0.99) * 1e3, 3),
            "max_ms": round(max(delays) * 1e3, 3),
        }

    def _session(self) -> ApiSession:
        return ApiSession(
            server=self.plane.server,
            pki_dir=self.plane.workdir / "pki",
            concurrency=self.plan.concurrency,
        )


class _phase:
    """Time a block into ``phases[name]``, in seconds."""

    def __init__(self, phases: dict[str, float], name: str) -> None:
        self.phases = phases
        self.name = name

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, *exc_info: object) -> None:
        self.phases[self.name] = round(time.perf_counter() - self.started, 1)


def _traits(body: dict[str, Any]) -> list[str]:
    traits = []
    if body["type"] == "Warning":
        traits.append("warning")
    if "eventTime" in body:
        traits.append("event_time")
    if len(body["message"]) > 2048:
        traits.append("long_message")
    return traits


def _summary(step: dict[str, Any]) -> str:
    return (
        f"kubectl get {step['kubectl_get_sorted']['median_seconds']} s, "
        f"kubectl events {step['kubectl_events']['median_seconds']} s, "
        f"typed {step['typed_list']['median_seconds']} s, "
        f"latest p99 {step['latest_sequential']['p99_ms']} ms, "
        f"RSS {step['collector']['rss_after_sync_mib']} MiB, "
        f"replay {step['replay']['frames_per_second']} frames/s; "
        f"phases {step['phase_seconds']}"
    )


if __name__ == "__main__":
    sys.exit(main())
