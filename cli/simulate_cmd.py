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
import sys
import time
from collections import Counter
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from cli import output
from cli.errors import ExitStatus

if TYPE_CHECKING:  # the simulator is imported when a scenario runs (a fast --help)
    from rich.progress import Progress

    from meters_sim.scenario import Scenario

console = Console()


class Mode(StrEnum):
    """Which model runs a scenario."""

    AUTO = "auto"
    EVENT = "event"
    BULK = "bulk"


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _r(x: float) -> float:
    return round(float(x), 6)


def _progress() -> Progress:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        console=console,
    )


def _event(scenario: Scenario, out: Path) -> tuple[dict[str, Any], list[str]]:
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
    cells = sorted({s.cell for s in fleet.inventory.sites.values()})
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
    depth: list[list[Any]] = []
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
    _write_csv(
        out / "services.csv",
        ["service", "responses", "p50_s", "p95_s", "p99_s", "within_target"],
        [
            [s.key[0], s.count, _r(s.p50_s), _r(s.p95_s), _r(s.p99_s), _r(s.within_target)]
            for s in summaries
        ],
    )
    _write_csv(out / "outbox_depth.csv", ["t_s", "held"], depth)
    capacity = {c: config.engine.traffic.cell_budget(c) for c in cells}
    _write_csv(
        out / "wan_utilisation.csv",
        ["cell", "interval_start_s", "bytes", "utilisation"],
        [
            [cell, i * sim.interval_s, b, _r(b / (capacity.get(cell, 1.0) * sim.interval_s))]
            for (cell, i), b in sorted(sim.cell_bytes.items())
        ],
    )
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
    summary = {
        "scenario": scenario.run.name,
        "mode": "event",
        "seed": scenario.run.seed,
        "sites": scenario.fleet.sites,
        "meters": len([d for d in fleet.inventory.devices.values() if d.mpxn]),
        "simulated_s": scenario.run.duration_s,
        "planned": planned,
        "answers": dict(sorted(answers.items())),
        "responses": dict(sorted(responses.items())),
        "alerts_delivered": dict(sorted(alerts.items())),
        "quarantined": answers.get("H7", 0),
        "expired": sim.counters["expired"],
        "max_outbox_depth": max_depth,
        "commands": sim.counters["commands"],
        "security_alerts": len(sim.engine.security_alerts),
        "breaches": breaches,
    }
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
    console.print(
        f"answers {dict(answers)}; alerts delivered {sum(alerts.values())}; outbox peak {max_depth}; expired {sim.counters['expired']}"
    )
    return summary, breaches


def _bulk(scenario: Scenario, out: Path) -> tuple[dict[str, Any], list[str]]:
    import numpy as np
    from rich.table import Table

    from hub.reference.uktime import to_uk_local
    from meters_sim.bulk import simulate_region
    from meters_sim.flows import flow_classes, outage_classes, region_links
    from meters_sim.scenario import Region

    classes = flow_classes(scenario)
    links = region_links(scenario)
    days = scenario.run.duration_s / 86_400.0
    start_hour = to_uk_local(scenario.run.start).hour
    rows: list[list[Any]] = []
    util_rows: list[list[Any]] = []
    cell_rows: list[list[Any]] = []
    peaks: dict[str, float] = {}
    messages = 0
    within_weighted = 0.0
    with _progress() as progress:
        task = progress.add_task(f"{scenario.run.name} (bulk mode, by region)", total=len(links))
        for i, region in enumerate(links):
            extra = outage_classes(scenario, Region(region.region.lower()))
            start = scenario.run.start.timestamp()
            down = [
                (c.start.timestamp() - start, c.end.timestamp() - start, c.share)
                for c in scenario.load.cell_outages
                if c.region.value.capitalize() == region.region
            ]
            results, util, peak, n, per_cell = simulate_region(
                region,
                classes + extra,
                scenario.run.seed * 1009 + i,
                days,
                900.0,
                start_hour,
                down,
            )
            messages += n
            peaks[region.region] = _r(peak)
            for c in results:
                rows.append(
                    [
                        c.region,
                        c.name,
                        c.count,
                        _r(c.p50_s),
                        _r(c.p95_s),
                        _r(c.p99_s),
                        _r(c.within_target),
                    ]
                )
                within_weighted += c.count * c.within_target
            util_rows += [[region.region, k * 900, _r(u)] for k, u in enumerate(util)]
            busy_cells, busy_slots = np.nonzero(per_cell)
            cell_rows += [
                [f"{region.region[0]}-{c + 1:04d}", k * 900, _r(per_cell[c, k])]
                for c, k in zip(busy_cells.tolist(), busy_slots.tolist(), strict=True)
            ]
            progress.update(task, advance=1)
    _write_csv(
        out / "flows.csv",
        ["region", "flow", "messages", "p50_s", "p95_s", "p99_s", "within_target"],
        rows,
    )
    _write_csv(
        out / "wan_utilisation.csv",
        ["region", "interval_start_s", "mean_cell_utilisation"],
        util_rows,
    )
    _write_csv(out / "cell_utilisation.csv", ["cell", "interval_start_s", "utilisation"], cell_rows)
    within = within_weighted / messages if messages else 1.0
    breaches = []
    if within < scenario.sla.min_within_target:
        breaches.append(
            f"{within:.2%} of messages within target, below the minimum {scenario.sla.min_within_target:.2%}"
        )
    rates = scenario.message_rates()
    summary = {
        "scenario": scenario.run.name,
        "mode": "bulk",
        "seed": scenario.run.seed,
        "meters": round(scenario.fleet.meters),
        "days": days,
        "messages": messages,
        "service_messages_per_meter_per_month": _r(rates.service_per_month),
        "alerts_per_meter_per_month": _r(rates.alerts_per_month),
        "within_target": _r(within),
        "peak_cell_utilisation": peaks,
        "breaches": breaches,
    }
    table = Table(title=f"{scenario.run.name}: {messages:,} messages over {days:g} day(s)")
    for col in ("region", "flow", "messages", "p50 s", "p99 s", "within target"):
        table.add_column(col)
    for r in rows:
        table.add_row(r[0], r[1], f"{r[2]:,}", f"{r[3]:.2f}", f"{r[5]:.2f}", f"{r[6]:.2%}")
    console.print(table)
    console.print(f"peak cell utilisation by region: {peaks}")
    return summary, breaches


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
    directory.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    summary, breaches = (_event if chosen == "event" else _bulk)(scenario, directory)
    (directory / "summary.json").write_text(
        json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    plot_outputs(directory, scenario.run.name)
    if as_json:
        output.document(summary)
    console.print(f"results in {directory} ({time.perf_counter() - started:.1f} s wall time)")
    if breaches:
        for b in breaches:
            sys.stderr.write(f"SLA breach: {b}\n")
        raise typer.Exit(ExitStatus.SLA_BREACH)
