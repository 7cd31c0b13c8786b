"""Logging is configured once by ``dcc``: the level by option, environment or file, human lines
or JSON lines on stderr, each with its time, level, component and the ids a log call gives.
Driven as a user would, in a subprocess (``dcc serve`` failing to start on a store that is
not one, which logs the cause at DEBUG and ends with one error)."""

from __future__ import annotations

import io
import json
import logging
import re
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from cli.logs import LogFormat, LogLevel, configure
from tests.live_support import free_port, make_fleet
from tests.test_cli_errors import dcc

pytestmark = pytest.mark.timeout(180)

HUMAN_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR) \S+: ")


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("fleet")
    make_fleet(directory, sites=10)
    return directory


@pytest.fixture
def broken_data(tmp_path: Path) -> Path:
    """A data directory whose store is not a database: ``dcc serve`` cannot start on it."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "hub.sqlite").write_bytes(b"not a database, only the name of one" * 100)
    return data


def _serve(fleet: Path, data: Path, *before: str, env: dict[str, str] | None = None) -> list[str]:
    """Run ``dcc BEFORE serve`` on the broken store; check it fails as it should; its stderr."""
    done = dcc(
        *before,
        "serve",
        "--fleet",
        str(fleet),
        "--data",
        str(data),
        "--endpoint",
        f"tcp://127.0.0.1:{free_port()}",
        env=env,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == "", "logs and errors never go to stdout"
    return done.stderr.splitlines()


def _records(lines: list[str]) -> list[dict[str, object]]:
    records = [json.loads(line) for line in lines]
    assert all(isinstance(r, dict) for r in records), lines
    return records


def test_a_serve_start_error_with_json_logs_gives_json_lines_on_stderr_that_parse(
    fleet_dir: Path, broken_data: Path
) -> None:
    records = _records(_serve(fleet_dir, broken_data, "--log-format", "json"))
    for r in records:
        assert {"time", "level", "component", "message"} <= r.keys(), r
        assert str(r["time"]).endswith("Z")
        datetime.fromisoformat(str(r["time"]).replace("Z", "+00:00"))
    last = records[-1]
    assert last["level"] == "ERROR"
    assert last["component"] == "dcc.serve"
    assert last["status"] == 2
    assert str(broken_data / "hub.sqlite") in str(last["message"])


def test_the_log_level_option_filters_what_is_written(fleet_dir: Path, broken_data: Path) -> None:
    quiet = _records(_serve(fleet_dir, broken_data, "--log-format", "json"))
    assert {r["level"] for r in quiet} == {"ERROR"}, quiet
    loud = _records(_serve(fleet_dir, broken_data, "--log-format", "json", "--log-level", "debug"))
    cause = [r for r in loud if r["component"] == "actors.live" and r["level"] == "DEBUG"]
    assert len(cause) == 1, loud
    assert "not a database" in str(cause[0]["exception"])
    assert loud[-1]["level"] == "ERROR"


def test_the_log_level_and_format_come_from_the_environment_too(
    fleet_dir: Path, broken_data: Path
) -> None:
    env = {"DCC_LOG_LEVEL": "DEBUG", "DCC_LOG_FORMAT": "json"}
    records = _records(_serve(fleet_dir, broken_data, env=env))
    assert any(r["level"] == "DEBUG" and r["component"] == "actors.live" for r in records)


def test_the_log_level_comes_from_the_configuration_file_below_the_command_line(
    fleet_dir: Path, broken_data: Path, tmp_path: Path
) -> None:
    config = tmp_path / "dcc.toml"
    config.write_text('log_level = "debug"\nlog_format = "json"\n')
    records = _records(_serve(fleet_dir, broken_data, "--config", str(config)))
    assert any(r["level"] == "DEBUG" for r in records)
    overridden = _serve(fleet_dir, broken_data, "--config", str(config), "--log-level", "error")
    assert {r["level"] for r in _records(overridden)} == {"ERROR"}


def test_human_log_lines_carry_time_level_and_component_and_the_error_keeps_its_form(
    fleet_dir: Path, broken_data: Path
) -> None:
    lines = _serve(fleet_dir, broken_data, "--log-level", "debug")
    starts = [line for line in lines if HUMAN_LINE.match(line)]
    assert any(" DEBUG actors.live: start failed" in line for line in starts), lines
    assert lines[-1].startswith("error: dcc serve: cannot open the store"), lines


@pytest.mark.parametrize(
    ("args", "env"),
    [(("--log-level", "loud"), {}), ((), {"DCC_LOG_LEVEL": "loud"}), (("--log-format", "xml"), {})],
)
def test_a_bad_log_level_or_format_is_refused_with_status_2(
    args: tuple[str, ...], env: dict[str, str]
) -> None:
    done = dcc(*args, "catalogue", "--json", env=env)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.startswith("error: "), done.stderr
    assert "loud" in done.stderr or "xml" in done.stderr


# ---- the formatters, in process --------------------------------------------------------------


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level, hook = list(root.handlers), root.level, threading.excepthook
    yield
    threading.excepthook = hook
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


def test_a_json_line_carries_the_ids_a_log_call_gives_and_stays_one_line(
    restore_root_logging: None,
) -> None:
    out = io.StringIO()
    configure(LogLevel.INFO, LogFormat.JSON, out)
    log = logging.getLogger("actors.front_door")
    log.info("step failed:\nsecond line", extra={"user": "u-one", "request_id": "r-7"})
    log.debug("not written at info")
    log.warning("lost", extra={"device": "00-11-22-33-44-55-66-77"})
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "step failed:\nsecond line"
    assert (first["user"], first["request_id"], first["component"]) == (
        "u-one",
        "r-7",
        "actors.front_door",
    )
    assert "device" not in first
    assert (second["level"], second["device"]) == ("WARNING", "00-11-22-33-44-55-66-77")


def test_a_human_line_names_the_ids_after_the_message(restore_root_logging: None) -> None:
    out = io.StringIO()
    configure(LogLevel.WARNING, LogFormat.HUMAN, out)
    logging.getLogger("actors.front_door").warning("user key revoked", extra={"user": "u-two"})
    (line,) = out.getvalue().splitlines()
    assert HUMAN_LINE.match(line), line
    assert line.endswith(" WARNING actors.front_door: user key revoked user=u-two")
