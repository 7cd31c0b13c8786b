"""dcc simulate: a newcomer's quickstart runs, is reproducible, and bad files are refused."""

from __future__ import annotations

import csv
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app

pytestmark = pytest.mark.timeout(300)
ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_quickstart_runs_in_event_mode_and_gives_identical_files_for_the_same_seed(
    tmp_path: Path,
) -> None:
    first = runner.invoke(
        app, ["simulate", str(ROOT / "scenarios" / "quickstart.toml"), "--out", str(tmp_path / "a")]
    )
    assert first.exit_code == 0, first.output
    second = runner.invoke(
        app, ["simulate", str(ROOT / "scenarios" / "quickstart.toml"), "--out", str(tmp_path / "b")]
    )
    assert second.exit_code == 0, second.output
    for name in (
        "summary.json",
        "services.csv",
        "outbox_depth.csv",
        "wan_utilisation.csv",
        "cell_utilisation.csv",
        "comms_hub_utilisation.csv",
    ):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    for plot in ("wan_utilisation.png", "outbox_depth.png"):
        assert (tmp_path / "a" / plot).read_bytes().startswith(b"\x89PNG")
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["mode"] == "event"
    assert summary["answers"].get("I99", 0) > 0
    assert summary["responses"].get("I0", 0) > 0


def test_a_small_scenario_runs_in_bulk_mode_too(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "simulate",
            str(ROOT / "scenarios" / "quickstart.toml"),
            "--mode",
            "bulk",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["mode"] == "bulk"
    assert summary["messages"] > 0


def test_a_bad_scenario_file_is_refused_with_file_key_and_reason(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[scenario]\nname = "x"\nstart = 2025-01-01T00:00:00Z\nduration = "1h"\nseed = "seven"\n[fleet]\nsites = 10\n'
    )
    result = runner.invoke(app, ["simulate", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "bad.toml" in result.output
    assert "seed" in result.output


def test_an_sla_threshold_breach_makes_the_exit_code_non_zero(tmp_path: Path) -> None:
    text = (ROOT / "scenarios" / "quickstart.toml").read_text()
    strict = tmp_path / "strict.toml"
    strict.write_text(
        text
        + "\n[sla]\nmax_busy_share = 0.0\nmax_outbox_depth = 0\nmin_within_target = 1.0\n\n[hub]\ncapacity_per_s = 0.01\n"
    )
    result = runner.invoke(app, ["simulate", str(strict), "--out", str(tmp_path / "o")])
    assert result.exit_code == 3, result.output
    assert "SLA breach" in result.output


CELL_OUTAGE = """
[scenario]
name = "cell-outage"
seed = 3
start = 2025-03-03T09:00:00Z
duration = "2h"
[fleet]
sites = 200
[load.on_demand]
per_meter_per_day = 60.0
services = { "4.1.1" = 1.0 }
[load.daily_reads]
share = 0.0
[[load.cell_outages]]
start = 2025-03-03T09:30:00Z
region = "south"
share = 1.0
duration = "30m"
[sla]
min_within_target = 0.0
"""


def test_a_cell_outage_makes_requests_to_its_comms_hubs_fail_in_both_models(tmp_path: Path) -> None:
    path = tmp_path / "cell-outage.toml"
    path.write_text(CELL_OUTAGE)
    event = runner.invoke(
        app, ["simulate", str(path), "--mode", "event", "--out", str(tmp_path / "e")]
    )
    assert event.exit_code == 0, event.output
    summary = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert summary["planned"]["cells_down"] >= 1
    assert summary["responses"].get("E20", 0) > 0
    assert summary["responses"].get("I0", 0) > summary["responses"]["E20"]
    bulk = runner.invoke(
        app, ["simulate", str(path), "--mode", "bulk", "--out", str(tmp_path / "b")]
    )
    assert bulk.exit_code == 0, bulk.output
    rows = (tmp_path / "b" / "services.csv").read_text().splitlines()
    south = next(r for r in rows if r.startswith("bulk,South,on demand"))
    north = next(r for r in rows if r.startswith("bulk,North,on demand"))
    assert float(south.split(",")[-1]) < 0.9  # a quarter of the run, every South cell down
    assert float(north.split(",")[-1]) > 0.95


SMALL = """
[scenario]
name = "small"
seed = 5
start = 2025-03-03T09:00:00Z
duration = "1h"
[fleet]
sites = 40
[load.on_demand]
per_meter_per_day = 200.0
[sla]
min_within_target = 0.0
"""


def dcc(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m cli ARGS`` in a subprocess, as a user would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCC_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=240,
        check=False,
    )


def _layout(directory: Path) -> dict[str, list[str]]:
    """Each result file of a run (the fleet and plots aside) with its CSV header."""
    layout = {}
    for path in sorted(directory.iterdir()):
        if path.suffix == ".csv":
            with path.open(encoding="utf-8") as f:
                layout[path.name] = next(csv.reader(f))
    return layout


def test_an_event_run_and_a_bulk_run_write_the_same_files_with_the_same_columns(
    tmp_path: Path,
) -> None:
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    for mode in ("event", "bulk"):
        result = dcc("simulate", str(path), "--mode", mode, "--out", str(tmp_path / mode))
        assert result.returncode == 0, result.stderr
    event, bulk = _layout(tmp_path / "event"), _layout(tmp_path / "bulk")
    assert event == bulk
    assert set(event) == {
        "services.csv",
        "outbox_depth.csv",
        "wan_utilisation.csv",
        "cell_utilisation.csv",
        "comms_hub_utilisation.csv",
    }
    assert all(header[0] == "mode" for header in event.values())
    assert event["services.csv"] == [
        "mode",
        "region",
        "flow",
        "service",
        "offered",
        "messages",
        "mean_s",
        "p50_s",
        "p95_s",
        "p99_s",
        "within_target",
    ]
    summaries = {
        mode: json.loads((tmp_path / mode / "summary.json").read_text())
        for mode in ("event", "bulk")
    }
    assert set(summaries["event"]) == set(summaries["bulk"])
    assert summaries["event"]["schema"] == summaries["bulk"]["schema"] == 3
    assert summaries["event"]["partial"] is summaries["bulk"]["partial"] is False
    assert summaries["event"]["messages"] > 0
    assert summaries["bulk"]["messages"] > 0
    assert summaries["bulk"]["max_outbox_depth"] is None  # bulk mode models no outbox
    assert set(summaries["event"]["comms_hub_utilisation"]) <= {"North", "Central", "South"}
    assert any(u > 0 for u in summaries["event"]["comms_hub_utilisation"].values())
    assert set(summaries["event"]["peak_cell_utilisation"]) <= {"North", "Central", "South"}
    with (tmp_path / "bulk" / "services.csv").open() as f:
        assert {r["mode"] for r in csv.DictReader(f)} == {"bulk"}
    with (tmp_path / "event" / "wan_utilisation.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {r["mode"] for r in rows} == {"event"}
    assert any(float(r["mean_cell_utilisation"]) > 0 for r in rows)
    assert (tmp_path / "bulk" / "wan_utilisation.png").read_bytes().startswith(b"\x89PNG")


def test_the_console_summary_is_a_table_of_codes_not_a_dict_repr(tmp_path: Path) -> None:
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    result = dcc("simulate", str(path), "--mode", "event", "--out", str(tmp_path / "o"))
    assert result.returncode == 0, result.stderr
    assert "{'" not in result.stdout
    assert "I99 " in result.stdout
    assert "within target" in result.stdout


def test_a_run_without_messages_says_so_instead_of_a_share_within_target() -> None:
    from rich.console import Console

    from cli.simulate_cmd import summary_table

    summary = {
        "scenario": "quiet",
        "mode": "bulk",
        "messages": 0,
        "within_target": None,
        "peak_cell_utilisation": {"North": 0.0},
        "answers": None,
        "breaches": [],
    }
    console = Console(record=True, width=100)
    console.print(summary_table(summary))
    text = console.export_text()
    assert "no messages" in text
    assert "100.00%" not in text


def test_an_existing_output_directory_is_not_overwritten_without_overwrite(
    tmp_path: Path,
) -> None:
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    out = tmp_path / "o"
    assert dcc("simulate", str(path), "--mode", "bulk", "--out", str(out)).returncode == 0
    before = (out / "summary.json").read_bytes()
    again = dcc("simulate", str(path), "--mode", "event", "--out", str(out))
    assert again.returncode == 2, again.stderr
    assert "already exists" in again.stderr
    assert "--overwrite" in again.stderr
    assert "Traceback" not in again.stderr
    assert (out / "summary.json").read_bytes() == before
    forced = dcc("simulate", str(path), "--mode", "event", "--out", str(out), "--overwrite")
    assert forced.returncode == 0, forced.stderr
    assert json.loads((out / "summary.json").read_text())["mode"] == "event"


def test_an_existing_fleet_directory_is_not_overwritten_without_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "fleet"
    args = ("fleet", "generate", "--sites", "5", "--seed", "1", "--out", str(out))
    assert dcc(*args).returncode == 0
    again = dcc(*args[:5], "2", *args[6:])
    assert again.returncode == 2, again.stderr
    assert "already exists" in again.stderr
    assert "--overwrite" in again.stderr
    assert dcc(*args[:5], "2", *args[6:], "--overwrite").returncode == 0


LONG = """
[scenario]
name = "long"
seed = 6
start = 2025-03-03T00:00:00Z
duration = "7d"
[fleet]
sites = 400
[load.on_demand]
per_meter_per_day = 50.0
"""


def _wait_for_line(proc: subprocess.Popen[str], prefix: str, timeout_s: float) -> bool:
    """Read the process's stdout until a line starts with ``prefix`` (False: it ended or the
    time ran out first)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not sel.select(timeout=1.0):
                continue
            line = proc.stdout.readline()
            if not line:
                return False
            if line.startswith(prefix):
                return True
    return False


def test_ctrl_c_writes_the_results_so_far_marked_partial_and_exits_130(tmp_path: Path) -> None:
    from cli.simulate_cmd import STARTED

    path = tmp_path / "long.toml"
    path.write_text(LONG)
    out = tmp_path / "o"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCC_")}
    env.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", COLUMNS="200")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "simulate", str(path), "--mode", "event", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    try:
        assert _wait_for_line(proc, STARTED, 200), "the run never started"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=200)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert "partial results" in stderr
    assert "Traceback" not in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["partial"] is True
    assert 0 <= summary["reached_s"] < summary["simulated_s"] == 7 * 86_400
    assert summary["schema"] == 3
    assert set(_layout(out)) == {
        "services.csv",
        "outbox_depth.csv",
        "wan_utilisation.csv",
        "cell_utilisation.csv",
        "comms_hub_utilisation.csv",
    }
