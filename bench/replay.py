"""
The collector's pure ingest rate: a recorded watch stream, replayed flat out.

Against the real API server the collector only ever sees frames as fast as the
API server and etcd can make them, on the same two cores. To see what the
collector itself can take, a recording of a real storm (the list before it and
the raw watch lines it caused) is played back by the scripted API server of the
tests, in its own process, with every frame written at once. The collector's
real watcher and store take it in this process, timed by the wall clock and by
this process's CPU time (the collector is one thread: CPU time is one core).

Two further figures strip away more: the store alone (``EventStore.apply`` on
objects parsed beforehand), and parsing plus the store without any HTTP.

Run as ``python -m bench.replay measure DIR`` (prints JSON); it starts
``python -m bench.replay serve DIR PORT_FILE`` itself.
"""

from __future__ import annotations

import asyncio
import gc
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench.cluster import Recording
from collector import kube
from collector.store import EventStore
from collector.watching import Watcher, WatchSettings
from tests.fakeapi import ListStep, ScriptedApiServer, WatchStep

LIST_FILE = "list.json"
FRAMES_FILE = "frames.ndjson"
SERVER_START_TIMEOUT_SECONDS = 60.0
# Retention long enough that nothing recorded ever counts as expired.
RETENTION_SECONDS = 10 * 365 * 86400.0


def save(recording: Recording, directory: Path) -> None:
    """Write a recording where ``load`` and the replay server find it."""
    directory.mkdir(parents=True, exist_ok=True)
    listed = {"resourceVersion": recording.resource_version, "items": recording.items}
    (directory / LIST_FILE).write_bytes(orjson.dumps(listed))
    (directory / FRAMES_FILE).write_bytes(b"".join(recording.frames))


def load(directory: Path) -> Recording:
    """Read a recording written by ``save``."""
    listed = orjson.loads((directory / LIST_FILE).read_bytes())
    frames = (directory / FRAMES_FILE).read_bytes().splitlines(keepends=True)
    return Recording(
        resource_version=listed["resourceVersion"],
        items=listed["items"],
        frames=frames,
    )


def run_replay(directory: Path) -> dict[str, Any]:
    """Measure the replay of a recording in a fresh process; return its figures."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.replay", "measure", str(directory)],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        check=False,
        timeout=900.0,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the replay failed: {done.stderr[-2000:].decode()}")
    figures: dict[str, Any] = json.loads(done.stdout)
    return figures


async def serve(directory: Path, port_file: Path) -> None:
    """Serve the recording once: the list, then every frame, then a 410."""
    recording = load(directory)
    version = recording.resource_version
    server = ScriptedApiServer(
        [
            ListStep(resource_version=version, items=recording.items),
            WatchStep(from_rv=version, frames=list(recording.frames), end="gone-410"),
        ]
    )
    await server.start()
    await asyncio.to_thread(port_file.write_text, str(server.port))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop()


def measure(directory: Path) -> dict[str, Any]:
    """Replay through the real watcher and store; time the list and the watch."""
    with tempfile.TemporaryDirectory(prefix="ecb-replay-") as scratch:
        port_file = Path(scratch) / "port"
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.replay",
                "serve",
                str(directory),
                str(port_file),
            ]
        )
        try:
            port = _wait_for_port(port_file, server)
            kubeconfig = _write_kubeconfig(Path(scratch) / "kubeconfig", port)
            figures = asyncio.run(_replay_stream(kubeconfig))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30.0)

    figures.update(_store_only(load(directory)))
    return figures


async def _replay_stream(kubeconfig: Path) -> dict[str, Any]:
    api_client = await kube.connect(kubeconfig=str(kubeconfig), context=None)
    async with api_client:
        store = EventStore(max_records=10**7, retention_seconds=RETENTION_SECONDS)
        watcher = Watcher(
            api=kube.EventsApi(api_client, namespace=""),
            store=store,
            settings=WatchSettings(),
        )
        wall, cpu = time.perf_counter(), time.process_time()
        await watcher.list_events()
        list_wall, list_cpu = time.perf_counter() - wall, time.process_time() - cpu

        frames_before = watcher.frames
        wall, cpu = time.perf_counter(), time.process_time()
        await watcher.watch_events()
        watch_wall, watch_cpu = time.perf_counter() - wall, time.process_time() - cpu
        frames = watcher.frames - frames_before

    return {
        "listed_events": len(store),
        "list_seconds": round(list_wall, 4),
        "list_events_per_second": round(len(store) / list_wall),
        "list_events_per_cpu_second": round(len(store) / list_cpu),
        "frames": frames,
        "bad_frames": watcher.bad_frames,
        "watch_seconds": round(watch_wall, 4),
        "frames_per_second": round(frames / watch_wall),
        "frames_per_cpu_second": round(frames / watch_cpu),
    }


def _store_only(recording: Recording) -> dict[str, Any]:
    # Parsing is timed apart from the store, each on a store that holds the list.
    objects = [orjson.loads(line)["object"] for line in recording.frames]
    store = _listed_store(recording)
    gc.collect()
    started = time.perf_counter()
    for obj in objects:
        store.apply(obj)
    apply_seconds = time.perf_counter() - started

    store = _listed_store(recording)
    gc.collect()
    started = time.perf_counter()
    for line in recording.frames:
        store.apply(orjson.loads(line)["object"])
    parse_apply_seconds = time.perf_counter() - started

    count = len(objects)
    return {
        "store_apply_per_second": round(count / apply_seconds),
        "parse_and_apply_per_second": round(count / parse_apply_seconds),
        "frame_bytes_mean": round(sum(map(len, recording.frames)) / max(1, count)),
    }


def _listed_store(recording: Recording) -> EventStore:
    store = EventStore(max_records=10**7, retention_seconds=RETENTION_SECONDS)
    store.begin_list()
    for item in recording.items:
        store.apply(item)
    store.finish_list()
    return store


def _wait_for_port(port_file: Path, server: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the replay server exited with {server.returncode}")
        if port_file.exists() and port_file.read_text():
            return int(port_file.read_text())
        time.sleep(0.05)
    raise RuntimeError("the replay server did not start")


def _write_kubeconfig(path: Path, port: int) -> Path:
    server = ScriptedApiServer([])
    server.port = port
    return server.write_kubeconfig(path)


def main(argv: list[str]) -> int:
    """Dispatch ``serve`` or ``measure``."""
    if argv[:1] == ["serve"] and len(argv) == 3:
        asyncio.run(serve(Path(argv[1]), Path(argv[2])))
        return 0
    if argv[:1] == ["measure"] and len(argv) == 2:
        figures = measure(Path(argv[1]))
        sys.stdout.write(json.dumps(figures) + "\n")
        return 0
    sys.stderr.write(
        "usage: python -m bench.replay serve DIR PORT_FILE | measure DIR\n"
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
