"""``dcc catalogue``: the service catalogue as a table or as JSON.

Decides: how the catalogue is shown.
Must never: change what a service is; that is ``hub.reference.catalogue``'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from cli import output
from hub.reference.roles import Role

if TYPE_CHECKING:
    from hub.reference.catalogue import Service


def _yn(flag: bool) -> str:
    return "Y" if flag else "-"


def _status(service: Service) -> str:
    from hub.flows.services import executable

    if not service.in_scope:
        return "[red]out of scope (H5)[/red]"
    if not executable(service):
        return "[yellow]not yet (H9)[/yellow]"
    return "[green]executes[/green]"


def _one(code: str, as_json: bool) -> None:
    """One service's reference, as docs/services.md gives it."""
    from rich.console import Console
    from rich.markdown import Markdown

    from cli.errors import UserError
    from hub.reference.catalogue import CATALOGUE
    from hub.reference.service_docs import reference, service_markdown

    found = CATALOGUE.get(code)
    if found is None:
        raise UserError(f"unknown service {code!r}", "'dcc catalogue' lists every service")
    if as_json:
        output.document(reference(found))
        return
    Console().print(Markdown("\n".join(service_markdown(found))))


def catalogue(
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON document: an array of one object per service."
    ),
    role: Role | None = typer.Option(None, help="Only services this role may send."),
    service: str | None = typer.Option(
        None, "--service", help="One service's reference: parameters, example, refusals."
    ),
) -> None:
    """Show every service request: flags, eligible roles, priority, target and charge class."""
    from rich.console import Console
    from rich.table import Table

    from hub.flows.services import executable
    from hub.reference.catalogue import CATALOGUE, FutureDated

    if service is not None:
        _one(service, as_json)
        return
    services = CATALOGUE.services()
    if role is not None:
        services = tuple(s for s in services if role in s.roles)
    if as_json:
        output.document([{**s.to_json(), "executes": executable(s)} for s in services])
        return
    runs = sum(1 for s in services if executable(s))
    table = Table(
        title=f"Service catalogue ({len(services)} services, {runs} executable by this release)"
    )
    for col in (
        "SRV",
        "Name",
        "Crit",
        "OD",
        "FD",
        "Sched",
        "ND",
        "Roles",
        "Devices",
        "Prio",
        "Status",
    ):
        table.add_column(col, overflow="fold")
    for s in services:
        table.add_row(
            s.code,
            s.name,
            _yn(s.critical),
            _yn(s.on_demand),
            "-" if s.future_dated is FutureDated.NONE else s.future_dated.value,
            _yn(s.schedulable),
            _yn(s.non_device),
            " ".join(sorted(r.value for r in s.roles)) or "-",
            " ".join(sorted(d.value for d in s.device_types)) or "-",
            s.priority.name.lower(),
            _status(s),
        )
    Console().print(table)
