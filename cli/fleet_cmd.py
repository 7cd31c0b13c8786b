"""``dcc fleet``: generate a synthetic fleet directory, and write register churn for one.

Decides: how the fleet commands' options and output look at a terminal.
Must never: hold fleet logic; generation is ``simfield.fleet``'s and writing is
``simfield.fleet_files``'s (churn included).
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer

from cli import output

fleet_app = typer.Typer(
    help="Synthetic fleets: generate the files of a fleet directory.", no_args_is_help=True
)


@fleet_app.callback()
def fleet() -> None:
    """Synthetic fleets: generate the files of a fleet directory (docs/fleet-files.md)."""


def _as_of(text: str | None) -> date:
    if text is None:
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a date yyyy-mm-dd", param_hint="--as-of"
        ) from None


@fleet_app.command()
def generate(
    sites: Annotated[int, typer.Option(min=1, help="Number of hub sites (premises).")],
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same bytes.")],
    out: Annotated[Path, typer.Option(help="Fleet directory to write (created if missing).")],
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Day the fleet describes, yyyy-mm-dd (default: today, UTC)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result as one JSON document.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing fleet in --out.")
    ] = False,
) -> None:
    """Generate a fleet of --sites sites into the --out directory (docs/fleet-files.md)."""
    from rich.console import Console
    from rich.table import Table

    from cli.simulate_cmd import refuse_to_overwrite
    from simfield.fleet import generate_fleet
    from simfield.fleet_files import write_fleet

    day = _as_of(as_of)
    refuse_to_overwrite(out, overwrite, "--out")
    console = Console(stderr=as_json)
    started = time.perf_counter()
    with console.status(f"generating {sites:,} sites"):
        arrays = generate_fleet(sites, seed, day)
        generated = time.perf_counter()
        counts = write_fleet(arrays, out)
    finished = time.perf_counter()
    if as_json:
        output.document(
            {
                "fleet": str(out),
                "seed": seed,
                "as_of": day.isoformat(),
                "sites": sites,
                "files": counts,
                "seconds": round(finished - started, 3),
            }
        )
        return
    table = Table(title=f"fleet in {out} (seed {seed}, as of {day.isoformat()})")
    table.add_column("file")
    table.add_column("records", justify="right")
    for name, count in counts.items():
        table.add_row(name, f"{count:,}")
    console.print(table)
    console.print(
        f"generated in {generated - started:.2f} s, written in {finished - generated:.2f} s "
        f"(total {finished - started:.2f} s)"
    )


@fleet_app.command()
def changes(
    fleet_dir: Annotated[
        Path, typer.Option("--fleet", help="Fleet directory (written by dcc fleet generate).")
    ],
    effective: Annotated[str, typer.Option(help="UK day every change takes effect, yyyy-mm-dd.")],
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same changes.")] = 1,
    supplier_changes: Annotated[
        int, typer.Option("--supplier-changes", min=0, help="Changes of supplier.")
    ] = 0,
    tenancy_changes: Annotated[
        int, typer.Option("--tenancy-changes", min=0, help="Changes of tenancy.")
    ] = 0,
    new_meter_points: Annotated[
        int, typer.Option("--new-meter-points", min=0, help="New electricity connections.")
    ] = 0,
    hh_changes: Annotated[
        int, typer.Option("--hh-changes", min=0, help="Half-hourly settlement flag changes.")
    ] = 0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result as one JSON document.")
    ] = False,
) -> None:
    """Write register change files (docs/fleet-files.md) for a fleet into <fleet>/inbox/, where
    a running hub applies them; sequence numbers continue after the files already there."""
    from rich.console import Console
    from rich.table import Table

    from hub.registers.records import RecordError
    from simfield.fleet_dir import load_fleet
    from simfield.fleet_files import Churn, churn_changes, next_seqs, write_change_files

    try:
        day = date.fromisoformat(effective)
    except ValueError:
        raise typer.BadParameter(
            f"{effective!r} is not a date yyyy-mm-dd", param_hint="--effective"
        ) from None
    try:
        fleet = load_fleet(fleet_dir)
    except (OSError, RecordError) as err:
        raise typer.BadParameter(str(err), param_hint="--fleet") from None
    inbox = fleet_dir / "inbox"
    churn = Churn(day, supplier_changes, tenancy_changes, new_meter_points, hh_changes)
    try:
        found = churn_changes(
            fleet.registration, fleet.users.values(), churn, seed, next_seqs(inbox)
        )
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    counts = write_change_files(inbox, found)
    if as_json:
        output.document({"inbox": str(inbox), "effective": day.isoformat(), "files": counts})
        return
    console = Console()
    table = Table(title=f"change files in {inbox} (effective {day.isoformat()})")
    table.add_column("file")
    table.add_column("changes", justify="right")
    for name, count in counts.items():
        table.add_row(name, f"{count:,}")
    console.print(table)
