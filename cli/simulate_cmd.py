"""``dcc simulate SCENARIO``: run a scenario in simulated time and write what happened.

Decides: which model runs the scenario (event mode: SimPy drives the real hub engine with
simulated devices, for fleets up to ``--event-limit`` sites; bulk mode: the vectorised flow
model, for capacity planning at national scale), whether an event run is split into
partitions by GB distribution area and on how many worker processes (``--partition``,
``--workers``: the results are the same whatever the number of workers), the progress display
and console tables, when the results are written (at the end, or when Ctrl-C stops the run:
the results so far, marked partial) and the exit code (3 when an SLA threshold of the scenario is breached, 2 for a bad
scenario file, 1 with one line when a partition fails, 130 when interrupted).
Must never: make hub decisions or queueing calculations itself, or lay out result files
(``meters_sim.results`` does, the same for both models).
"""

from __future__ import annotations

import os
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from cli import output
from cli.errors import ExitStatus, UserError

if TYPE_CHECKING:  # the simulator is imported when a scenario runs (a fast --help)
    from rich.progress import Progress
    from rich.table import Table

    from meters_sim.results import Results, ServiceRow
    from meters_sim.scenario import Scenario

console = Console()


class Mode(StrEnum):
    """Which model runs a scenario."""

    AUTO = "auto"
    EVENT = "event"
    BULK = "bulk"


class Partitioning(StrEnum):
    """Whether an event-mode run is split into partitions (``meters_sim.partition``)."""

    AUTO = "auto"
    """Partitioned above ``--partition-above`` sites."""
    AREA = "area"
    """Always partitioned, by GB distribution area."""
    NONE = "none"
    """One engine for the whole fleet."""


PARTITION_ABOVE = 20_000
"""Fleets (sites) above which an event run is partitioned under ``--partition auto``."""


STARTED = "running"
"""The first word of the line printed when the model starts running (Ctrl-C from then on
writes the results so far)."""


PARTITION_STARTED = "started partition"
"""The first words of the line printed when a partition of a partitioned event run starts
(followed by its name)."""


NO_MESSAGES = "no messages"
"""What a share within target is shown as when there was nothing to measure."""


def _codes(counts: dict[str, int] | None) -> str:
    """Counts by code for people: ``I99 386, H8 2`` (``none`` when empty)."""
    if not counts:
        return "none"
    return ", ".join(f"{code} {n:,}" for code, n in counts.items())


def summary_table(summary: dict[str, Any]) -> Table:
    """The run's summary as a two-column table for people (the keys a mode cannot fill left
    out); a share within target of no messages is shown as such."""
    from rich.table import Table

    title = f"{summary['scenario']}: summary ({summary['mode']} mode)"
    if summary.get("partial"):
        title += f", partial: stopped at {summary.get('reached_s', 0):,.0f} s"
    table = Table(title=title)
    table.add_column("")
    table.add_column("value", justify="right")
    within = summary["within_target"]
    table.add_row("messages", f"{summary['messages']:,}")
    table.add_row("within target", NO_MESSAGES if within is None else f"{within:.2%}")
    for region, peak in summary["peak_cell_utilisation"].items():
        table.add_row(f"peak cell utilisation, {region}", f"{peak:.1%}")
    if summary.get("comms_hub_utilisation"):
        for region, busy in summary["comms_hub_utilisation"].items():
            table.add_row(f"comms hub utilisation, {region}", f"{busy:.1%}")
    if summary["answers"] is not None:
        table.add_row("answers", _codes(summary["answers"]))
        table.add_row("responses", _codes(summary["responses"]))
        table.add_row("schedules created", f"{summary['schedules_created']:,}")
        table.add_row("alerts delivered", f"{sum(summary['alerts_delivered'].values()):,}")
        table.add_row("outbox peak", f"{summary['max_outbox_depth']:,}")
        table.add_row("expired", f"{summary['expired']:,}")
    table.add_row("SLA breaches", f"{len(summary['breaches'])}")
    return table


def refuse_to_overwrite(directory: Path, overwrite: bool, option: str) -> None:
    """Raise a ``UserError`` (status 2) when ``directory`` exists with something in it and
    ``overwrite`` was not asked for; an empty or missing directory is fine."""
    if overwrite or not directory.is_dir() or not any(directory.iterdir()):
        return
    raise UserError(
        f"{directory} already exists and is not empty",
        f"pass --overwrite to replace it, or choose another {option}",
    )


def _progress() -> Progress:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        console=console,
    )


def _seconds(x: float | None) -> str:
    return "" if x is None else f"{x:.2f}"


def services_table(title: str, rows: list[ServiceRow]) -> Table:
    """services.csv for people: one line per region, flow and service."""
    from rich.table import Table

    table = Table(title=title)
    for col in ("region", "flow", "SRV", "messages", "mean s", "p99 s"):
        table.add_column(col, justify="right")
    table.add_column("within target", justify="right")
    for r in rows:
        table.add_row(
            r.region or "",
            r.flow,
            r.service or "",
            f"{r.messages:,}",
            _seconds(r.mean_s if r.mean_s is not None else r.p50_s),
            _seconds(r.p99_s),
            NO_MESSAGES if r.within_target is None else f"{r.within_target:.1%}",
        )
    return table


def _partitioned(scenario: Scenario, out: Path, workers: int) -> Results:
    """Run the event model partition by partition (on ``workers`` processes; one: in this
    process); Ctrl-C stops it and gives the partitions done so far and, on several workers,
    those running as far as they got, marked partial; a partition's failure is one line and
    status 1."""
    from meters_sim.event_run import write_event_fleet
    from meters_sim.partition import (
        STOP_TIMEOUT_S,
        PartitionError,
        empty_measures,
        plan,
        run_partitioned,
    )
    from meters_sim.results import results_of

    arrays = write_event_fleet(scenario, out / "fleet")
    partitions = plan(arrays)
    del arrays
    where = "in this process" if workers == 1 else f"on {workers} worker processes"

    def stopping(running: int) -> None:
        sys.stderr.write(
            f"stopping: the partitions running ({running}) finish their report step "
            f"(at most {STOP_TIMEOUT_S:,.0f} s; Ctrl-C again leaves them out)\n"
        )

    try:
        console.print(
            f"{STARTED} {scenario.run.name} in event mode, {len(partitions)} partitions {where} "
            "(Ctrl-C writes the results so far)"
        )
        with _progress() as progress:
            task = progress.add_task(
                f"{scenario.run.name} (event mode, by partition)", total=len(partitions)
            )
            run = run_partitioned(
                scenario,
                out / "fleet",
                partitions,
                workers,
                on_started=lambda p: console.print(f"{PARTITION_STARTED} {p.name}"),
                on_done=lambda _: progress.update(task, advance=1),
                on_stopping=stopping,
            )
    except PartitionError as exc:
        raise UserError(str(exc), status=ExitStatus.FAILURE) from None
    except KeyboardInterrupt:  # before the first partition started
        sys.stderr.write(f"0 of {len(partitions)} partitions done\n")
        return results_of(scenario, empty_measures())
    if run.done < run.total:
        stopped = f", {len(run.stopped)} stopped partway" if run.stopped else ""
        sys.stderr.write(f"{run.done} of {run.total} partitions done{stopped}\n")
    for name in run.dropped:
        sys.stderr.write(f"partition {name} did not stop in time: left out\n")
    return results_of(scenario, run.measures)


def _event(scenario: Scenario, out: Path) -> Results:
    """Run the event model; Ctrl-C stops it and gives the results so far, marked partial."""
    from meters_sim.event_run import build_event, play_event, write_event_fleet
    from meters_sim.results import event_results

    write_event_fleet(scenario, out / "fleet")
    run = build_event(scenario, out / "fleet")
    try:
        console.print(
            f"{STARTED} {scenario.run.name} in event mode (Ctrl-C writes the results so far)"
        )
        with _progress() as progress:
            task = progress.add_task(
                f"{scenario.run.name} (event mode, simulated time)", total=scenario.run.duration_s
            )
            play_event(run, on_step=lambda reached: progress.update(task, completed=reached))
    except KeyboardInterrupt:  # outside a step (the display): the run so far
        run.partial = True
    return event_results(
        scenario, run.sim, run.inventory, run.planned, run.outbox, partial=run.partial
    )


def _bulk(scenario: Scenario) -> Results:
    """Run the bulk model region by region; Ctrl-C stops it and gives the regions done so
    far, marked partial."""
    from meters_sim.bulk import run_bulk
    from meters_sim.results import bulk_results
    from meters_sim.scenario import Region

    console.print(f"{STARTED} {scenario.run.name} in bulk mode (Ctrl-C writes the results so far)")
    with _progress() as progress:
        task = progress.add_task(f"{scenario.run.name} (bulk mode, by region)", total=len(Region))
        bulk = run_bulk(scenario, on_region=lambda _region: progress.update(task, advance=1))
    return bulk_results(scenario, bulk)


def simulate(
    scenario_file: Path = typer.Argument(
        ..., help="A scenario TOML file (see scenarios/ and docs/scenarios.md)."
    ),
    out: Path | None = typer.Option(None, help="Output directory (default: out/<scenario name>)."),
    mode: Mode = typer.Option(
        Mode.AUTO,
        case_sensitive=False,
        help="event, bulk, or auto (event up to --event-limit sites).",
    ),
    event_limit: int = typer.Option(
        5_000, min=0, help="Largest fleet (sites) run in event mode under auto."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print summary.json on stdout (progress and tables go to stderr)."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the results of an earlier run in the --out directory."
    ),
    workers: int = typer.Option(
        os.cpu_count() or 1,
        min=1,
        help="Processes a partitioned event run uses (default: the cores; 1: this process).",
        show_default="the number of cores",
    ),
    partition: Partitioning = typer.Option(
        Partitioning.AUTO,
        case_sensitive=False,
        help=f"Split an event run by GB distribution area: area, none, or auto (above "
        f"--partition-above sites; default {PARTITION_ABOVE:,}).",
    ),
    partition_above: int = typer.Option(
        PARTITION_ABOVE, min=0, help="Largest fleet (sites) run whole under --partition auto."
    ),
) -> None:
    """Run a scenario in simulated time; write CSV and JSON results; exit 3 on an SLA breach.
    Ctrl-C writes the results so far (marked partial) and exits 130."""
    from cli.plots import plot_outputs  # matplotlib: only when drawing
    from meters_sim.scenario_files import read_scenario

    console.stderr = as_json  # with --json, stdout carries the summary document alone
    scenario = read_scenario(scenario_file)  # a ScenarioError is reported by cli.errors
    chosen = (
        mode.value
        if mode is not Mode.AUTO
        else ("event" if scenario.fleet.sites <= event_limit else "bulk")
    )
    directory = out or Path("out") / scenario.run.name
    refuse_to_overwrite(directory, overwrite, "--out")
    directory.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    split = partition is Partitioning.AREA or (
        partition is Partitioning.AUTO and scenario.fleet.sites > partition_above
    )
    if chosen == "bulk":
        results = _bulk(scenario)
    elif split:
        results = _partitioned(scenario, directory, workers)
    else:
        results = _event(scenario, directory)
    summary = results.write(directory)
    if results.summary.partial:
        if as_json:
            output.document(summary)
        sys.stderr.write(
            f"interrupted at {results.summary.reached_s:,.0f} s of simulated time: "
            f"partial results in {directory}\n"
        )
        raise typer.Exit(ExitStatus.INTERRUPTED)
    plot_outputs(directory, scenario.run.name)
    console.print(services_table(f"{scenario.run.name}: responses and alerts", results.services))
    console.print(summary_table(summary))
    if as_json:
        output.document(summary)
    console.print(f"results in {directory} ({time.perf_counter() - started:.1f} s wall time)")
    if summary["breaches"]:
        for b in summary["breaches"]:
            sys.stderr.write(f"SLA breach: {b}\n")
        raise typer.Exit(ExitStatus.SLA_BREACH)
