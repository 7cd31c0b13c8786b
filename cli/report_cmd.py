"""``dcc report sla``: response times against their targets, from the hub's store.

Decides: how SLA figures are shown (table or JSON) and the exit code (non-zero when a
service is below the service level minimum, for pipelines).
Must never: compute SLA rules itself; ``hub.policies.sla`` does.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import typer

from cli import output
from cli.errors import ExitStatus, UserError
from cli.hub_cmds import NO_STORE_HINT
from cli.inputs import DATA, SINCE, UNTIL, parse_instant

report_app = typer.Typer(help="Reports from the hub's store.", no_args_is_help=True)


@report_app.command("sla")
def sla(
    data: Path = DATA,
    by_user: bool = typer.Option(False, "--by-user", help="One row per service and user."),
    since: str | None = SINCE,
    until: str | None = UNTIL,
    as_json: bool = typer.Option(
        False, "--json", help="One JSON document instead of a table (keys in docs/cli.md)."
    ),
) -> None:
    """Per service (and user): responses, p50/p95/p99 response time, share within target."""
    from rich.console import Console
    from rich.table import Table

    from actors.store import open_store
    from hub.policies.sla import SERVICE_LEVEL_MINIMUM, SERVICE_LEVEL_TARGET, summarise
    from hub.reference.catalogue import CATALOGUE

    start, end = parse_instant(since), parse_instant(until)
    try:
        with closing(open_store(data, read_only=True)) as store:
            records = store.sla_records(start, end)
    except FileNotFoundError as err:
        raise UserError(str(err), NO_STORE_HINT, ExitStatus.FAILURE) from None
    rows = summarise(records, by_user=by_user)
    if as_json:
        output.document(
            {
                "since": output.iso(parse_instant(since)),
                "until": output.iso(parse_instant(until)),
                "responses": len(records),
                "service_level_target": SERVICE_LEVEL_TARGET,
                "service_level_minimum": SERVICE_LEVEL_MINIMUM,
                "rows": [
                    {
                        "service": r.key[0],
                        "name": CATALOGUE[r.key[0]].name,
                        **({"user": r.key[1]} if by_user else {}),
                        "count": r.count,
                        "p50_s": r.p50_s,
                        "p95_s": r.p95_s,
                        "p99_s": r.p99_s,
                        "target_s": CATALOGUE[r.key[0]].target_response_s,
                        "within_target": r.within_target,
                        "meets_target": r.meets_target,
                        "breached": r.breached,
                    }
                    for r in rows
                ],
            }
        )
    else:
        table = Table(
            title=f"SLA: {len(records)} responses (target {SERVICE_LEVEL_TARGET:.0%}, minimum {SERVICE_LEVEL_MINIMUM:.0%})"
        )
        for col in (
            "SRV",
            "name",
            *(["user"] if by_user else []),
            "responses",
            "p50 s",
            "p95 s",
            "p99 s",
            "target s",
            "within",
        ):
            table.add_column(col, justify="right" if col.endswith(("s", "within")) else "left")
        for r in rows:
            service = CATALOGUE[r.key[0]]
            colour = "green" if r.meets_target else "red" if r.breached else "yellow"
            table.add_row(
                r.key[0],
                service.name[:40],
                *([r.key[1]] if by_user else []),
                str(r.count),
                f"{r.p50_s:.3f}",
                f"{r.p95_s:.3f}",
                f"{r.p99_s:.3f}",
                f"{service.target_response_s:.0f}",
                f"[{colour}]{r.within_target:.1%}[/{colour}]",
            )
        Console().print(table)
    if any(r.breached for r in rows):
        raise typer.Exit(ExitStatus.SLA_BREACH)
