"""The ``dcc`` typer application: one sub-command per user task.

Decides: which commands exist and how they are grouped.
Must never: hold hub decisions; it calls the core and the drivers.
"""

from __future__ import annotations

import typer

from cli.catalogue_cmd import catalogue

app = typer.Typer(
    help="dcc-hub: smart-metering communications hub and fleet simulator.",
    no_args_is_help=True,
    add_completion=False,
)
app.command("catalogue")(catalogue)


@app.callback()
def _root() -> None:
    """dcc-hub: smart-metering communications hub and fleet simulator."""


def main() -> None:
    """Console entry point."""
    app()
