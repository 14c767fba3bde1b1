"""Flags, their environment twins, and refusal of bad values."""

from __future__ import annotations

import pytest

from collector.settings import parse_duration, parse_settings


def test_defaults_are_sane_without_flags_or_environment():
    settings = parse_settings([], {})
    assert settings.namespace == ""
    assert settings.socket_path == "/run/event-collector/events.sock"
    assert settings.retention_seconds == 24 * 3600
    assert settings.max_events == 50_000
    assert settings.log_level == "INFO"


def test_environment_twins_apply_and_flags_win():
    env = {
        "EVENT_COLLECTOR_NAMESPACE": "shop",
        "EVENT_COLLECTOR_MAX_EVENTS": "20000",
        "EVENT_COLLECTOR_RETENTION": "6h",
        "KUBECONFIG": "/etc/k/admin.conf",
    }
    settings = parse_settings(["--namespace", "team-a"], env)
    assert settings.namespace == "team-a"
    assert settings.max_events == 20_000
    assert settings.retention_seconds == 6 * 3600
    assert settings.kubeconfig == "/etc/k/admin.conf"


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--max-events", "0"], id="zero-cap"),
        pytest.param(["--max-events", "many"], id="not-a-number"),
        pytest.param(["--retention", "soon"], id="bad-duration"),
        pytest.param(["--log-level", "loud"], id="bad-level"),
        pytest.param(["--watch-timeout", "0"], id="zero-watch-timeout"),
        pytest.param(["--watch-timeout", "4"], id="watch-timeout-below-stale-close"),
        pytest.param(["--socket", ""], id="empty-socket"),
        pytest.param(["--socket", "/tmp/" + "s" * 103 + ".sock"], id="socket-too-long"),
    ],
)
def test_bad_values_exit_with_usage_code_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_settings(argv, {})
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("env", "flag"),
    [
        pytest.param(
            {"EVENT_COLLECTOR_LOG_LEVEL": "verbose"}, "--log-level", id="level"
        ),
        pytest.param(
            {"EVENT_COLLECTOR_LOG_FORMAT": "xml"}, "--log-format", id="format"
        ),
    ],
)
def test_a_bad_choice_from_the_environment_exits_2_too(env, flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_settings([], env)
    assert exit_info.value.code == 2
    assert flag in capsys.readouterr().err


def test_log_level_and_format_take_any_case():
    env = {"EVENT_COLLECTOR_LOG_LEVEL": "Warning", "EVENT_COLLECTOR_LOG_FORMAT": "JSON"}
    settings = parse_settings([], env)
    assert (settings.log_level, settings.log_format) == ("WARNING", "json")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("90s", 90),
        ("30m", 1800),
        ("6h", 21600),
        ("2d", 172800),
        ("1.5h", 5400),
    ],
)
def test_durations_take_units(text, seconds):
    assert parse_duration(text) == seconds
