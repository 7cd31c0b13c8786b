"""Partitioned event runs: the same bytes whatever the number of workers, counts that are the
sums of the partitions', limits split by share, failures in one line, no process left over."""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import Counter
from pathlib import Path
from typing import IO

import pytest
from typer.testing import CliRunner

from cli.app import app
from hub.engine import EngineConfig
from hub.policies.traffic.config import TrafficConfig, UserAllocation
from meters_sim import partition as part
from meters_sim.event_run import StopCheck, write_event_fleet
from meters_sim.partition import (
    Partition,
    PartitionError,
    PartRegisters,
    partition_scenario,
    plan,
    run_partition,
    run_partitioned,
    seed_for,
    split_config,
)
from meters_sim.results import FILES, EventMeasures, merge_drains, merge_measures, results_of
from meters_sim.scenario import Scenario
from meters_sim.scenario_files import read_scenario

SMALL = """
[scenario]
name = "parts"
seed = 3
start = 2025-03-03T17:00:00Z
duration = "20m"
report_interval = "5m"
[fleet]
sites = 150
[load.on_demand]
per_meter_per_day = 30.0
[load.top_ups]
per_prepayment_meter_per_day = 4.0
"""


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Scenario, Path, list[Partition]]:
    """A small scenario, its fleet written once, and its partitions."""
    d = tmp_path_factory.mktemp("parts")
    (d / "s.toml").write_text(SMALL)
    scenario = read_scenario(d / "s.toml")
    arrays = write_event_fleet(scenario, d / "fleet")
    return scenario, d / "fleet", plan(arrays)


def _children() -> list[str]:
    """The command lines of this process's live children (multiprocessing's resource tracker,
    which lives as long as this process, aside)."""
    me = str(os.getpid())
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[1] == me and fields[0] != "Z" and "resource_tracker" not in cmd:
            out.append(cmd)
    return out


def _no_children_left(timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _children():
            return True
        time.sleep(0.2)  # polling for processes to exit, not synchronising the run
    return False


def _files(results_dir: Path) -> dict[str, bytes]:
    return {n: (results_dir / n).read_bytes() for n in [*FILES, "summary.json"]}


def test_every_cell_is_in_exactly_one_partition_named_by_its_distribution_area(
    small: tuple[Scenario, Path, list[Partition]],
) -> None:
    scenario, _, partitions = small
    cells = [c for p in partitions for c in p.cells]
    assert len(cells) == len(set(cells))
    assert sum(p.sites for p in partitions) == scenario.fleet.sites
    assert all(p.name[:2].isdigit() and p.cells for p in partitions)
    assert [p.name for p in partitions] == sorted(p.name for p in partitions)


def test_a_partition_seed_depends_on_the_scenario_seed_and_its_name_alone() -> None:
    assert seed_for(1, "10 Eastern") == seed_for(1, "10 Eastern")
    assert seed_for(1, "10 Eastern") != seed_for(2, "10 Eastern")
    assert seed_for(1, "10 Eastern") != seed_for(1, "12 London")
    assert 0 <= seed_for(7, "x") < 2**63


def test_hub_wide_and_per_user_limits_take_the_share_and_per_cell_ones_stay() -> None:
    config = EngineConfig(
        max_pending=20_000,
        traffic=TrafficConfig(
            capacity_per_s=1_000.0,
            user_rate_per_s=50.0,
            user_allocations={"u": UserAllocation(10.0, 20.0)},
            cell_bytes_per_s=5_000.0,
        ),
    )
    split = split_config(config, 0.25)
    assert split.traffic.capacity_per_s == 250.0
    assert split.traffic.user_rate_per_s == 12.5
    assert split.traffic.user_burst == config.traffic.user_burst * 0.25
    assert split.traffic.user_allocations["u"] == UserAllocation(2.5, 5.0)
    assert split.max_pending == 5_000
    assert split.max_in_flight == config.max_in_flight // 4
    assert split.traffic.hub_bound == config.traffic.hub_bound // 4 + (
        config.traffic.hub_bound % 4 > 0
    )
    assert split.traffic.cell_bytes_per_s == 5_000.0
    assert split.max_per_comms_hub == config.max_per_comms_hub
    assert split.response_timeout_s == config.response_timeout_s
    assert split_config(config, 1.0) == config
    with pytest.raises(ValueError):
        split_config(config, 0.0)


def test_a_partitioned_backlog_has_drained_when_its_slowest_partition_has() -> None:
    merged: dict[str, list[float | None]] = {}
    merge_drains(merged, {"user u-supa": [30.0, 12.0, 5.0]})
    merge_drains(merged, {"user u-supa": [45.0, None, 2.0], "role IS": [7.0]})
    merge_drains(merged, {})  # a partition with none of the entry's users
    assert merged == {"user u-supa": [45.0, None, 5.0], "role IS": [7.0]}


def test_a_partition_takes_its_share_of_the_fleet_wide_installations_and_of_each_recipient(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        SMALL
        + """
[load.installations]
per_day = 400

[[recipients]]
user = "u-supa"
push_rate = 200
max_in_flight = 100
ack_delay = "2s"
"""
    )
    scenario = read_scenario(path)
    own = partition_scenario(scenario, Partition("10 Eastern", frozenset(), 1), 1.0, 0.1)
    assert own.load.installations.per_day == pytest.approx(40.0)
    [r] = own.recipients
    assert r.push_rate_per_s == pytest.approx(20.0)
    assert r.max_in_flight == 10
    assert r.ack_delay_s == scenario.recipients[0].ack_delay_s  # a time, not a rate: kept
    assert own.load.on_demand == scenario.load.on_demand  # per meter already: kept
    whole = partition_scenario(scenario, Partition("10 Eastern", frozenset(), 1))
    assert whole.recipients == scenario.recipients
    assert whole.load.installations == scenario.load.installations


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_partitioned_results_are_the_same_bytes_on_one_worker_and_on_two_processes(
    small: tuple[Scenario, Path, list[Partition]], tmp_path: Path
) -> None:
    scenario, fleet_dir, partitions = small
    assert len(partitions) >= 2
    written = []
    for workers in (1, 2):
        run = run_partitioned(scenario, fleet_dir, partitions, workers)
        assert (run.done, run.total) == (len(partitions), len(partitions))
        assert not run.measures.partial
        out = tmp_path / f"w{workers}"
        out.mkdir()
        results_of(scenario, run.measures).write(out)
        written.append(_files(out))
    assert written[0] == written[1]
    summary = results_of(scenario, run.measures).summary
    assert summary.messages
    assert summary.commands
    assert _no_children_left(), _children()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_counts_of_a_partitioned_run_are_the_sums_of_its_partitions_run_alone(
    small: tuple[Scenario, Path, list[Partition]],
) -> None:
    scenario, fleet_dir, partitions = small
    alone = [run_partition(str(fleet_dir), scenario, p) for p in partitions]
    whole = results_of(scenario, run_partitioned(scenario, fleet_dir, partitions, 1).measures)
    each = [results_of(scenario, m) for m in alone]
    for name in ("offered", "messages", "commands", "meters", "schedules_created", "expired"):
        assert getattr(whole.summary, name) == sum(getattr(r.summary, name) for r in each), name
    answers: Counter[str] = Counter()
    for r in each:
        answers.update(r.summary.answers or {})
    assert whole.summary.answers == dict(sorted(answers.items()))
    by_row: dict[tuple[str | None, str, str | None], int] = {}
    for r in each:
        for row in r.services:
            key = (row.region, row.flow, row.service)
            by_row[key] = by_row.get(key, 0) + row.messages
    assert {(r.region, r.flow, r.service): r.messages for r in whole.services} == by_row
    # percentiles come from all the samples, not from the partitions' percentiles
    merged = merge_measures(alone)
    samples = sorted(t for m in alone for ts in m.times.values() for t in ts)
    assert sorted(t for ts in merged.times.values() for t in ts) == samples


def fail_in_one_area(
    fleet_dir: str,
    scenario: Scenario,
    p: Partition,
    registers: PartRegisters | None = None,
    stop: StopCheck | None = None,
) -> EventMeasures:
    """A partition runner that fails for the partitions of the Central region (a worker's
    error)."""
    if any(region == "Central" for region, _ in p.cells):
        raise RuntimeError("the meter fleet of this area is corrupt\nsecond line")
    return run_partition(fleet_dir, scenario, p, registers, stop)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_failing_partition_stops_the_run_with_one_line_and_exit_status_1(
    small: tuple[Scenario, Path, list[Partition]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario, fleet_dir, partitions = small
    central = [p.name for p in partitions if any(r == "Central" for r, _ in p.cells)]
    assert len(central) == 1
    with pytest.raises(PartitionError) as caught:
        run_partitioned(scenario, fleet_dir, partitions, 1, runner=fail_in_one_area)
    assert str(caught.value) == (
        f"partition {central[0]} failed: RuntimeError: the meter fleet of this area is corrupt"
    )
    monkeypatch.setattr(part, "run_partition", fail_in_one_area)
    (tmp_path / "s.toml").write_text(SMALL)
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            str(tmp_path / "s.toml"),
            "--mode",
            "event",
            "--partition",
            "area",
            "--workers",
            "2",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: partition {central[0]} failed: RuntimeError: "
        "the meter fleet of this area is corrupt"
    ]
    assert "Traceback" not in result.output
    assert _no_children_left(), _children()


def test_merging_no_partition_is_refused_and_one_partition_is_itself(
    small: tuple[Scenario, Path, list[Partition]],
) -> None:
    with pytest.raises(ValueError):
        merge_measures([])
    m = EventMeasures(reached_s=60.0, interval_s=900.0, partial=False, meters=3)
    m.times[("North", "on demand", "4.1.1")] = [1.0, 2.0]
    merged = merge_measures([m])
    assert merged == m


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


def _in_session(sid: int) -> list[int]:
    """Live processes of a session (the run's, started with a session of its own)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[3]) == sid:
            out.append(int(entry.name))
    return out


class _Lines:
    """A process's stdout read line by line on a thread of its own (several lines may come in
    one read, so waiting on the pipe for the next one could wait for ever)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, prefix: str, timeout_s: float) -> bool:
        """Until a line starts with ``prefix`` (False: the output ended or the time ran out)."""
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                return False
            if line is None:
                return False
            if line.startswith(prefix):
                return True
        return False

    def close(self, timeout_s: float) -> None:
        """Wait (bounded) for the end of the output, then close the stream."""
        self._thread.join(timeout_s)
        self._stream.close()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ctrl_c_on_two_workers_keeps_the_running_partitions_as_far_as_they_got_and_exits_130(
    tmp_path: Path,
) -> None:
    import json
    import signal
    import subprocess
    import sys

    from cli.simulate_cmd import PARTITION_STARTED, STARTED
    from tests.test_simulate_cli import ROOT

    path = tmp_path / "long.toml"
    path.write_text(LONG)
    out = tmp_path / "o"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCC_")}
    env.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", COLUMNS="200")
    errors = (tmp_path / "stderr.txt").open("w+")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli",
            "simulate",
            str(path),
            "--mode",
            "event",
            "--partition",
            "area",
            "--workers",
            "2",
            "--out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
        cwd=ROOT,
        env=env,
        start_new_session=True,  # Ctrl-C at a terminal reaches the whole process group
    )
    assert proc.stdout is not None
    lines = _Lines(proc.stdout)
    try:
        assert lines.wait_for(STARTED, 200), "the run never started"
        for worker in (1, 2):  # one partition started on each worker
            assert lines.wait_for(PARTITION_STARTED, 200), f"{worker - 1} started"
        os.killpg(proc.pid, signal.SIGINT)  # workers included, as at a terminal
        proc.wait(timeout=400)
        stderr = (tmp_path / "stderr.txt").read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        errors.close()
        lines.close(60)
    assert proc.returncode == 130, stderr
    assert "partial results" in stderr
    assert "Traceback" not in stderr
    # a week of simulated time: no partition was done, the two running are kept partway
    assert "partitions done, 2 stopped partway" in stderr, stderr
    assert "0 of " in stderr, stderr
    assert "left out" not in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["partial"] is True
    assert summary["messages"] > 0
    assert 0 < summary["reached_s"] < 7 * 86_400
    assert all((out / name).exists() for name in FILES)
    deadline = time.monotonic() + 60
    while _in_session(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)  # polling for the workers to be gone
    assert _in_session(proc.pid) == []


def never_stop(
    fleet_dir: str,
    scenario: Scenario,
    p: Partition,
    registers: PartRegisters | None = None,
    stop: StopCheck | None = None,
) -> EventMeasures:
    """A partition runner that is never asked to stop (a partition stuck in one long step)."""
    return run_partition(fleet_dir, scenario, p, registers)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_running_partition_that_does_not_stop_in_time_is_left_out_and_named(
    tmp_path: Path,
) -> None:
    import signal

    (tmp_path / "long.toml").write_text(LONG)
    scenario = read_scenario(tmp_path / "long.toml")
    partitions = plan(write_event_fleet(scenario, tmp_path / "fleet"))
    interrupted: list[str] = []

    def ctrl_c_once(p: Partition) -> None:  # on the client's thread: Ctrl-C to the main one
        if not interrupted:
            interrupted.append(p.name)
            os.kill(os.getpid(), signal.SIGINT)

    run = run_partitioned(
        scenario,
        tmp_path / "fleet",
        partitions,
        2,
        on_started=ctrl_c_once,
        runner=never_stop,
        stop_timeout_s=2.0,
    )
    assert interrupted
    assert interrupted[0] in run.dropped
    assert set(run.dropped) <= {p.name for p in partitions}
    assert (run.done, run.stopped) == (0, ())
    assert run.measures.partial
    assert _no_children_left(), _children()
