"""``dcc demo`` (what ``make run`` runs): the command and its options.

Decides: the demo's options.
Must never: import the demo's machinery at module level (``cli.demo_run`` is imported when
the demo runs, so ``dcc --help`` does not pay for the hub and the fleet generator).
"""

from __future__ import annotations

from pathlib import Path

import typer


def demo(
    directory: Path = typer.Option(
        Path("data/demo"), "--dir", help="Where the demo's fleet and store go."
    ),
    sites: int = typer.Option(400, min=50, help="Sites in the demo fleet."),
    seed: int = typer.Option(7, help="Fleet and workload seed."),
    per_user: int = typer.Option(150, min=1, help="Requests per supplier user."),
    wan_latency: float = typer.Option(0.05, min=0.0, help="WAN round trip per command, seconds."),
) -> None:
    """Generate a small fleet, explain some access decisions, run a live hub under a mixed
    workload from several users, and show what happened."""
    from cli.demo_run import run

    run(directory, sites, seed, per_user, wan_latency)
