"""The ``dcc`` typer application: one sub-command per user task.

Decides: how commands, options and output look to a person at a terminal.
Must never: hold hub decisions; it calls the core and the drivers.
"""

from __future__ import annotations

import typer

app = typer.Typer(help="dcc-hub: smart-metering communications hub and fleet simulator.", no_args_is_help=True)


def main() -> None:
    """Console entry point."""
    app()
