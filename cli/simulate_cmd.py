"""``dcc simulate SCENARIO``: run a scenario in simulated time and write what happened.

Decides: which model runs the scenario (event mode: SimPy drives the real hub engine with
simulated devices, for fleets up to ``--event-limit`` sites; bulk mode: the vectorised flow
model, for capacity planning at national scale), the progress display, the output files
(CSV and JSON, identical for the same scenario and seed) and the exit code (3 when an SLA
threshold of the scenario is breached, 2 for a bad scenario file).
Must never: make hub decisions or queueing calculations itself.
"""

from __future__ import annotations

import csv
import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
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

    from meters_sim.scenario import Scenario

console = Console()


class Mode(StrEnum):
    """Which model runs a scenario."""

    AUTO = "auto"
    EVENT = "event"
    BULK = "bulk"


SCHEMA = 1
"""Version of the result files' layout (``schema`` in summary.json, docs/scenarios.md); raised
whenever a file, a column or a summary key changes meaning or goes away."""

SERVICES_COLUMNS = (
    "mode",
    "region",
    "flow",
    "service",
    "messages",
    "p50_s",
    "p95_s",
    "p99_s",
    "within_target",
)
"""``services.csv``: response times per service (event) or per region and flow (bulk)."""
OUTBOX_COLUMNS = ("mode", "t_s", "held")
"""``outbox_depth.csv``: deliveries held at each report interval (event mode only; bulk mode
writes the header alone, it models no outbox)."""
WAN_COLUMNS = ("mode", "region", "interval_start_s", "mean_cell_utilisation")
"""``wan_utilisation.csv``: mean cell utilisation per region and 15-minute interval."""
CELL_COLUMNS = ("mode", "region", "cell", "interval_start_s", "bytes", "utilisation")
"""``cell_utilisation.csv``: utilisation per busy cell and interval (bytes: event mode only)."""
FILES: dict[str, tuple[str, ...]] = {
    "services.csv": SERVICES_COLUMNS,
    "outbox_depth.csv": OUTBOX_COLUMNS,
    "wan_utilisation.csv": WAN_COLUMNS,
    "cell_utilisation.csv": CELL_COLUMNS,
}
"""Every CSV file a run writes, in both modes, with its columns."""
SUMMARY_KEYS = (
    "schema",
    "scenario",
    "mode",
    "seed",
    "sites",
    "meters",
    "simulated_s",
    "messages",
    "within_target",
    "service_messages_per_meter_per_month",
    "alerts_per_meter_per_month",
    "peak_cell_utilisation",
    "planned",
    "answers",
    "responses",
    "alerts_delivered",
    "quarantined",
    "expired",
    "max_outbox_depth",
    "commands",
    "security_alerts",
    "breaches",
)
"""Every key of summary.json, in both modes (null where a mode cannot fill it)."""
INTERVAL_S = 900.0
"""Width of a utilisation interval (15 minutes) in both modes."""


@dataclass
class Results:
    """What a run has produced so far: the rows of each CSV file and the summary."""

    mode: str
    """``event`` or ``bulk``: the first column of every row."""
    rows: dict[str, list[list[Any]]] = field(default_factory=lambda: {n: [] for n in FILES})
    """Rows per file name (without the mode column)."""
    summary: dict[str, Any] = field(default_factory=dict)
    """summary.json's values; missing keys are written as null."""

    def write(self, directory: Path) -> dict[str, Any]:
        """Write every file of the schema into ``directory``; returns the summary written."""
        for name, columns in FILES.items():
            _write_csv(directory / name, list(columns), [[self.mode, *r] for r in self.rows[name]])
        summary = {k: self.summary.get(k) for k in SUMMARY_KEYS}
        summary["schema"] = SCHEMA
        summary["mode"] = self.mode
        (directory / "summary.json").write_text(
            json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        return summary


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

    table = Table(title=f"{summary['scenario']}: summary ({summary['mode']} mode)")
    table.add_column("")
    table.add_column("value", justify="right")
    within = summary["within_target"]
    table.add_row("messages", f"{summary['messages']:,}")
    table.add_row("within target", NO_MESSAGES if within is None else f"{within:.2%}")
    for region, peak in summary["peak_cell_utilisation"].items():
        table.add_row(f"peak cell utilisation, {region}", f"{peak:.1%}")
    if summary["answers"] is not None:
        table.add_row("answers", _codes(summary["answers"]))
        table.add_row("responses", _codes(summary["responses"]))
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


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(["" if v is None else v for v in r] for r in rows)


def _r(x: float) -> float:
    return round(float(x), 6)


def _opt(x: float) -> float | None:
    """A figure rounded, or None (an empty cell) when there was nothing to measure."""
    return None if math.isnan(x) else _r(x)


def _progress() -> Progress:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        console=console,
    )


def _scenario_values(scenario: Scenario) -> dict[str, Any]:
    """The summary values that follow from the scenario alone (both modes)."""
    rates = scenario.message_rates()
    return {
        "scenario": scenario.run.name,
        "seed": scenario.run.seed,
        "sites": scenario.fleet.sites,
        "simulated_s": scenario.run.duration_s,
        "service_messages_per_meter_per_month": _r(rates.service_per_month),
        "alerts_per_meter_per_month": _r(rates.alerts_per_month),
    }


def _event(scenario: Scenario, out: Path, results: Results) -> list[str]:
    from rich.table import Table

    from hub.policies.sla import summarise
    from meters_sim.scenario import Region
    from meters_sim.simulator import SimConfig, Simulation
    from meters_sim.workload import schedule_load
    from sdk.keys import signing_keys
    from simfield.fleet import generate_fleet
    from simfield.fleet_dir import load_fleet
    from simfield.fleet_files import write_fleet
    from simfield.headend_plugins import load_head_ends
    from simfield.site import load_trust_anchors

    fleet_dir = out / "fleet"
    write_fleet(
        generate_fleet(
            scenario.fleet.sites, scenario.run.seed, scenario.run.as_of, scenario.fleet.mix
        ),
        fleet_dir,
    )
    fleet = load_fleet(fleet_dir)
    region_of = {s.cell: s.region for s in fleet.inventory.sites.values()}
    cells = sorted(region_of)
    wan = {r.value.capitalize(): scenario.wan_profile(r) for r in Region}
    start = scenario.run.start.timestamp()
    config = SimConfig(
        start=start, engine=scenario.to_engine_config(cells), wan=wan, seed=scenario.run.seed
    )
    sim = Simulation(
        fleet.users,
        fleet.registration,
        fleet.inventory,
        fleet.payment_modes,
        load_head_ends(),
        config,
        anchors=load_trust_anchors(fleet_dir),
    )
    planned = schedule_load(
        sim,
        scenario,
        fleet.users,
        fleet.registration,
        fleet.inventory,
        fleet.payment_modes,
        signing_keys=signing_keys(fleet_dir),
    )
    end = start + scenario.run.duration_s
    step = min(scenario.run.report_interval_s, scenario.run.duration_s)
    depth = results.rows["outbox_depth.csv"]
    with _progress() as progress:
        task = progress.add_task(
            f"{scenario.run.name} (event mode, simulated time)", total=scenario.run.duration_s
        )
        t = start
        while t < end:
            t = min(end, t + step)
            sim.run(until=t)
            depth.append([_r(t - start), len(sim.engine.outbox)])
            progress.update(task, completed=t - start)
    summaries = summarise(sim.sla)
    results.rows["services.csv"] = [
        [None, None, s.key[0], s.count, _r(s.p50_s), _r(s.p95_s), _r(s.p99_s), _r(s.within_target)]
        for s in summaries
    ]
    width = sim.interval_s  # INTERVAL_S, as in bulk mode
    capacity = {c: config.engine.traffic.cell_budget(c) for c in cells}
    cell_rows: list[list[Any]] = []
    regions = sorted(set(region_of.values()))
    cells_in = Counter(region_of.values())
    intervals = max(1, math.ceil(scenario.run.duration_s / width))
    used: dict[tuple[str, float], float] = {}
    peaks = dict.fromkeys(regions, 0.0)
    for (cell, i), b in sorted(sim.cell_bytes.items()):
        region, at = region_of[cell], i * width
        u = _r(b / (capacity.get(cell, 1.0) * width))
        cell_rows.append([region, cell, at, b, u])
        used[region, at] = used.get((region, at), 0.0) + u
        peaks[region] = max(peaks[region], u)
    results.rows["cell_utilisation.csv"] = cell_rows
    results.rows["wan_utilisation.csv"] = [
        [region, k * width, _r(used.get((region, k * width), 0.0) / cells_in[region])]
        for region in regions
        for k in range(intervals)
    ]
    answers = Counter(d.code for d in sim.log if d.kind == "answer")
    responses = Counter(d.code for d in sim.log if d.kind == "response")
    alerts = Counter(d.code for d in sim.log if d.kind == "device_alert")
    total = sum(answers.values())
    busy_share = answers.get("H8", 0) / total if total else 0.0
    max_depth = max((d[1] for d in depth), default=0)
    breaches = scenario.sla.breaches(
        summaries,
        max_outbox_depth=max_depth,
        expiries=sim.counters["expired"],
        busy_share=busy_share,
    )
    messages = sum(s.count for s in summaries)
    within = sum(s.count * s.within_target for s in summaries) / messages if messages else None
    results.summary.update(
        meters=len([d for d in fleet.inventory.devices.values() if d.mpxn]),
        messages=messages,
        within_target=None if within is None else _r(within),
        peak_cell_utilisation={r: _r(p) for r, p in peaks.items()},
        planned=planned,
        answers=dict(sorted(answers.items())),
        responses=dict(sorted(responses.items())),
        alerts_delivered=dict(sorted(alerts.items())),
        quarantined=answers.get("H7", 0),
        expired=sim.counters["expired"],
        max_outbox_depth=max_depth,
        commands=sim.counters["commands"],
        security_alerts=len(sim.engine.security_alerts),
        breaches=breaches,
    )
    table = Table(title=f"{scenario.run.name}: responses by service")
    for col in ("SRV", "responses", "p50 s", "p95 s", "p99 s", "within target"):
        table.add_column(col, justify="right")
    for s in summaries:
        table.add_row(
            s.key[0],
            str(s.count),
            f"{s.p50_s:.2f}",
            f"{s.p95_s:.2f}",
            f"{s.p99_s:.2f}",
            f"{s.within_target:.1%}",
        )
    console.print(table)
    return breaches


def _bulk(scenario: Scenario, out: Path, results: Results) -> list[str]:
    import numpy as np
    from rich.table import Table

    from meters_sim.bulk import run_bulk

    days = scenario.run.duration_s / 86_400.0
    rows = results.rows["services.csv"]
    util_rows = results.rows["wan_utilisation.csv"]
    cell_rows = results.rows["cell_utilisation.csv"]
    with _progress() as progress:
        task = progress.add_task(f"{scenario.run.name} (bulk mode)", total=1)
        bulk = run_bulk(scenario)
        progress.update(task, advance=1)
    interval = bulk.interval_s
    for c in bulk.flows:
        rows.append(
            [
                c.region,
                c.flow,
                c.service,
                c.count,
                _opt(c.p50_s),
                _opt(c.p95_s),
                _opt(c.p99_s),
                _r(c.within_target),
            ]
        )
    for wan in bulk.regions:
        util_rows += [[wan.region, k * interval, _r(u)] for k, u in enumerate(wan.utilisation)]
        busy_cells, busy_slots = np.nonzero(wan.cell_utilisation)
        cell_rows += [
            [
                wan.region,
                f"{wan.region[0]}-{c + 1:04d}",
                k * interval,
                None,
                _r(wan.cell_utilisation[c, k]),
            ]
            for c, k in zip(busy_cells.tolist(), busy_slots.tolist(), strict=True)
        ]
    if bulk.outboxes:
        results.rows["outbox_depth.csv"] += [
            [(k + 1) * interval, round(float(h))] for k, h in enumerate(bulk.outbox_held)
        ]
    messages = bulk.messages
    within = bulk.within_target()
    breaches = list(bulk.breaches)
    results.summary.update(
        meters=round(scenario.fleet.meters),
        messages=messages,
        within_target=None if within is None else _r(within),
        peak_cell_utilisation={w.region: _r(w.peak) for w in bulk.regions},
        # the bulk model keeps outboxes for the [[recipients]] only (others ack at once)
        expired=bulk.expiries if bulk.outboxes else None,
        max_outbox_depth=bulk.max_outbox_depth if bulk.outboxes else None,
        security_alerts=bulk.security_alerts,
        breaches=breaches,
    )
    table = Table(title=f"{scenario.run.name}: {messages:,} messages over {days:g} day(s)")
    for col in ("region", "flow", "messages", "p50 s", "p99 s", "within target"):
        table.add_column(col)
    for r in rows:
        share = f"{r[7]:.2%}" if r[3] else NO_MESSAGES
        p50, p99 = ("-" if v is None else f"{v:.2f}" for v in (r[4], r[6]))
        label = r[1] if r[2] in r[1] else f"{r[1]} {r[2]}"
        table.add_row(r[0], label, f"{r[3]:,}", p50, p99, share)
    console.print(table)
    return breaches


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
) -> None:
    """Run a scenario in simulated time; write CSV and JSON results; exit 3 on an SLA breach."""
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
    results = Results(chosen)
    results.summary.update(_scenario_values(scenario))
    breaches = (_event if chosen == "event" else _bulk)(scenario, directory, results)
    summary = results.write(directory)
    plot_outputs(directory, scenario.run.name)
    console.print(summary_table(summary))
    if as_json:
        output.document(summary)
    console.print(f"results in {directory} ({time.perf_counter() - started:.1f} s wall time)")
    if breaches:
        for b in breaches:
            sys.stderr.write(f"SLA breach: {b}\n")
        raise typer.Exit(ExitStatus.SLA_BREACH)
