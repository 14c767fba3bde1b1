"""
``python -m client`` as a person uses it: run as a command against a real
collector process, read back as text.

The sample events are dated relative to the collector's start, so every age
in the table is known (a few seconds' drift only moves the youngest ones).
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile

import pytest

import client
from client.__main__ import (
    COLUMNS,
    WIDE_COLUMNS,
    human_age,
    human_duration,
)
from client.protocol import parse_rfc3339
from tests.collector_process import (
    REPO_ROOT,
    SAMPLE_NEWEST_FIRST,
    ApiThread,
    clean_environment,
    start_collector,
)
from tests.fakeapi import ListStep, WatchStep

SECONDS = re.compile(r"^\d+s$")


@pytest.fixture(scope="module")
def collector(tmp_path_factory):
    api_thread = ApiThread()
    socket_dir = tempfile.mkdtemp(prefix="ec-")
    process, _ = start_collector(
        api_thread,
        workdir=tmp_path_factory.mktemp("collector"),
        socket_path=os.path.join(socket_dir, "events.sock"),
    )
    yield process
    process.kill()
    api_thread.close()
    shutil.rmtree(socket_dir, ignore_errors=True)


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "client", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO_ROOT,
        env=clean_environment(**env),
    )


def read_table(text: str, header: list[str]) -> list[dict[str, str]]:
    """
    Cut each row at the columns' header offsets; a cell spilling into the next
    column (a misaligned table) shows up as a wrong value.
    """
    lines = text.splitlines()
    assert re.split(r" {3,}", lines[0]) == header
    starts = [0]
    for name in header[1:]:
        starts.append(lines[0].index(name, starts[-1] + 1))
    rows = []
    for line in lines[1:]:
        for start in starts[1:]:
            assert line[start - 1] == " ", f"misaligned at {start}: {line!r}"
        ends = [*starts[1:], None]
        cells = [line[a:b].strip() for a, b in zip(starts, ends, strict=True)]
        rows.append(dict(zip(header, cells, strict=True)))
    return rows


def test_latest_prints_kubectls_columns_newest_first(collector):
    result = run_cli("latest", "--socket", collector.socket_path)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    rows = read_table(result.stdout, COLUMNS)
    objects = [row["OBJECT"] for row in rows]
    assert objects == [
        "pod/web-1",
        "pod/web-1",
        "node/node-a",
        "pod/web-2",
        "pod/dns-1",
        "pod/web-1",
        "pod/db-0",
    ]
    assert [row["REASON"] for row in rows] == [
        "Created",
        "Killing",
        "NodeReady",
        "BackOff",
        "Scheduled",
        "Pulled",
        "FailedMount",
    ]
    backoff = rows[3]
    assert backoff == {
        "NAMESPACE": "shop",
        "LAST SEEN": backoff["LAST SEEN"],
        "TYPE": "Warning",
        "REASON": "BackOff",
        "OBJECT": "pod/web-2",
        "MESSAGE": "Back-off restarting failed container web in pod web-2",
    }
    assert SECONDS.match(backoff["LAST SEEN"])


def test_latest_shows_ages_like_kubectl_and_marks_deleted_events(collector):
    result = run_cli("latest", "--socket", collector.socket_path)

    ages = [row["LAST SEEN"] for row in read_table(result.stdout, COLUMNS)]
    assert all(SECONDS.match(age) for age in ages[:4]), ages
    assert ages[4:] == ["10m", "3h (deleted)", "2d"]


def test_latest_wide_adds_the_wide_columns(collector):
    result = run_cli("latest", "5", "--wide", "--socket", collector.socket_path)

    assert result.returncode == 0, result.stderr
    rows = read_table(result.stdout, WIDE_COLUMNS)
    assert len(rows) == 5
    backoff, scheduled = rows[3], rows[4]
    assert backoff["SUBOBJECT"] == "spec.containers{web}"
    assert backoff["SOURCE"] == "kubelet, node-a"
    assert backoff["FIRST SEEN"] == "20m"
    assert backoff["COUNT"] == "5"
    assert backoff["NAME"] == "web-1.backoff"
    assert scheduled["SOURCE"] == "default-scheduler"
    assert (scheduled["FIRST SEEN"], scheduled["COUNT"]) == ("10m", "1")


@pytest.mark.parametrize(
    ("args", "reasons"),
    [
        pytest.param(["2"], ["Created", "Killing"], id="limit"),
        pytest.param(
            ["--namespace", "shop", "--type", "Warning"],
            ["BackOff", "FailedMount"],
            id="namespace-type",
        ),
        pytest.param(
            ["--kind", "Pod", "--name", "web-1", "1"], ["Created"], id="kind-name"
        ),
        pytest.param(["--reason", "Scheduled"], ["Scheduled"], id="reason"),
    ],
)
def test_latest_passes_the_limit_and_filters(collector, args, reasons):
    result = run_cli("latest", *args, "--socket", collector.socket_path)

    assert result.returncode == 0, result.stderr
    assert [row["REASON"] for row in read_table(result.stdout, COLUMNS)] == reasons


def test_latest_since_keeps_the_recent_events(collector):
    since = client.latest(4, socket_path=collector.socket_path)[3]["last_seen"]

    result = run_cli("latest", "--since", since, "--socket", collector.socket_path)

    rows = read_table(result.stdout, COLUMNS)
    assert [row["REASON"] for row in rows] == [
        "Created",
        "Killing",
        "NodeReady",
        "BackOff",
    ]


def test_latest_without_matches_says_so_on_stderr(collector):
    result = run_cli(
        "latest", "--namespace", "nowhere", "--socket", collector.socket_path
    )

    assert result.returncode == 0
    assert result.stdout == ""
    assert "No events found" in result.stderr


def test_latest_json_is_one_array_of_the_records(collector):
    result = run_cli("latest", "--json", "--socket", collector.socket_path)

    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert [record["uid"] for record in records] == SAMPLE_NEWEST_FIRST
    assert records == list(client.latest(100, socket_path=collector.socket_path))
    assert records[SAMPLE_NEWEST_FIRST.index("pulled")]["deleted"] is True


def test_stats_prints_key_value_lines_or_json(collector):
    text = run_cli("stats", "--socket", collector.socket_path)
    as_json = run_cli("stats", "--json", "--socket", collector.socket_path)

    assert text.returncode == 0 and as_json.returncode == 0
    lines = dict(line.split(": ", 1) for line in text.stdout.splitlines())
    assert lines["records"] == "7"
    assert lines["deleted"] == "1"
    assert lines["synced"] == "true"
    assert lines["last_error"] == "null"
    stats = json.loads(as_json.stdout)
    assert (stats["records"], stats["synced"]) == (7, True)


def test_ping_prints_ok(collector):
    result = run_cli("ping", "--socket", collector.socket_path)

    assert (result.returncode, result.stdout, result.stderr) == (0, "ok\n", "")


def test_the_socket_comes_from_the_environment(collector):
    result = run_cli("latest", "1", EVENT_COLLECTOR_SOCKET=collector.socket_path)

    assert result.returncode == 0, result.stderr
    assert [row["REASON"] for row in read_table(result.stdout, COLUMNS)] == ["Created"]


@pytest.mark.parametrize("command", ["latest", "stats", "ping"])
def test_a_missing_socket_exits_1_with_one_line_naming_it(command):
    path = "/tmp/ec-absent/events.sock"

    result = run_cli(command, "--socket", path)

    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("error: ") and path in result.stderr
    assert "Traceback" not in result.stderr


def test_a_collector_that_never_answers_exits_1_after_the_timeout():
    directory = tempfile.mkdtemp(prefix="ec-")
    path = os.path.join(directory, "mute.sock")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as mute:
            mute.bind(path)
            mute.listen(1)
            result = run_cli("ping", "--socket", path, "--timeout", "0.2")
    finally:
        shutil.rmtree(directory, ignore_errors=True)

    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1
    assert "no answer from" in result.stderr and path in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        pytest.param([], id="no-command"),
        pytest.param(["tail"], id="unknown-command"),
        pytest.param(["latest", "0"], id="limit-zero"),
        pytest.param(["latest", "5001"], id="limit-over-max"),
        pytest.param(["latest", "ten"], id="limit-not-a-number"),
        pytest.param(["latest", "--since", "yesterday"], id="since-not-rfc3339"),
        pytest.param(["ping", "--timeout", "0"], id="timeout-zero"),
        pytest.param(["ping", "--timeout", "10000000000"], id="timeout-past-sockets"),
        pytest.param(["stats", "--wide"], id="flag-of-another-command"),
    ],
)
def test_bad_usage_exits_2(args):
    result = run_cli(*args, "--socket", "/tmp/ec-absent/events.sock")

    assert result.returncode == 2
    assert "usage:" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_explains_the_socket_the_marks_and_the_exit_codes():
    top = run_cli("--help")
    latest = run_cli("latest", "--help")

    assert top.returncode == 0 and latest.returncode == 0
    for text in (top.stdout, latest.stdout):
        assert "$EVENT_COLLECTOR_SOCKET" in text
        assert "/run/event-collector/events.sock" in text
        assert "(deleted)" in text
        assert "exit codes" in text
    for command in ("latest", "stats", "ping"):
        assert command in top.stdout
    for flag in ("--namespace", "--type", "--reason", "--kind", "--name", "--since"):
        assert flag in latest.stdout
    for flag in ("--json", "--wide", "--socket", "--timeout"):
        assert flag in latest.stdout


async def test_a_collector_still_listing_gets_a_note_on_stderr(run_collector):
    # The first list page takes longer than the test: the collector is not synced.
    script = [ListStep("100", [], page_delay=30), WatchStep("100")]
    async with run_collector(script) as harness:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "client", "latest", "--socket", harness.socket_path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=REPO_ROOT,
            env=clean_environment(),
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), 30)

    assert process.returncode == 0
    assert "collector not yet synced; list may be incomplete" in stderr.decode()


NOW = datetime.datetime(2026, 5, 1, 12, 0, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        pytest.param(0, "0s", id="now"),
        pytest.param(119, "119s", id="under-2m"),
        pytest.param(120, "2m", id="2m"),
        pytest.param(182, "3m2s", id="3m2s"),
        pytest.param(599, "9m59s", id="under-10m"),
        pytest.param(600 + 59, "10m", id="10m-drops-seconds"),
        pytest.param(3 * 3600 - 1, "179m", id="under-3h"),
        pytest.param(3 * 3600 + 30 * 60, "3h30m", id="3h30m"),
        pytest.param(8 * 3600 + 59 * 60, "8h", id="8h-drops-minutes"),
        pytest.param(48 * 3600, "2d", id="2d"),
        pytest.param(2 * 86400 + 5 * 3600, "2d5h", id="2d5h"),
        pytest.param(8 * 86400 + 5 * 3600, "8d", id="8d-drops-hours"),
        pytest.param(730 * 86400, "2y", id="2y"),
        pytest.param(800 * 86400, "2y70d", id="2y70d"),
        pytest.param(9 * 365 * 86400, "9y", id="9y"),
    ],
)
def test_ages_read_like_kubectls(seconds, shown):
    assert human_duration(seconds) == shown
    moment = NOW - datetime.timedelta(seconds=seconds)
    assert human_age(moment.isoformat().replace("+00:00", "Z"), now=NOW) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        pytest.param("", "<unknown>", id="empty"),
        pytest.param("2026-05-01T12:00:01Z", "0s", id="a-second-ahead"),
        pytest.param("2026-05-01T12:00:05Z", "<invalid>", id="in-the-future"),
        pytest.param("2026-05-01T11:59:54.123456Z", "5s", id="microseconds"),
        pytest.param("2026-05-01T13:59:00+02:00", "60s", id="offset"),
    ],
)
def test_odd_times_get_kubectls_placeholders(value, shown):
    assert human_age(value, now=NOW) == shown


@pytest.mark.parametrize(
    "value",
    ["2026-05-01", "yesterday", "2026-05-01T25:00:00Z", "2026-05-01T10:00:00"],
)
def test_parse_rfc3339_refuses_what_is_not_rfc3339(value):
    with pytest.raises(ValueError, match="not an RFC 3339 date-time"):
        parse_rfc3339(value)
