"""The ``dcc`` typer application: one sub-command per user task.

Decides: which commands exist and how they are grouped.
Must never: hold hub decisions; it calls the core and the drivers.
"""

from __future__ import annotations

import typer

from cli.catalogue_cmd import catalogue
from cli.demo_cmd import demo
from cli.fleet_cmd import fleet_app
from cli.hub_cmds import audit, health, keys, listen, send, serve
from cli.report_cmd import report_app
from cli.simulate_cmd import simulate

app = typer.Typer(
    help="dcc-hub: smart-metering communications hub and fleet simulator.",
    no_args_is_help=True,
    add_completion=False,
)
app.command("catalogue")(catalogue)
app.add_typer(fleet_app, name="fleet", help="Generate synthetic fleets.")
app.command("keys")(keys)
app.command("serve")(serve)
app.command("health")(health)
app.command("send")(send)
app.command("listen")(listen)
app.command("audit")(audit)
app.command("demo")(demo)
app.add_typer(report_app, name="report")
app.command("simulate")(simulate)


def main() -> None:
    """Console entry point."""
    app()
