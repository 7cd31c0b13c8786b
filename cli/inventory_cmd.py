"""``dcc inventory``: a site, a device or a meter point as the running hub knows it, and the
operator's inventory actions (adopt an early-smart meter, suspend or approve a model).

Decides: what is shown (status, devices, head-end, lead supplier, meter point, election and
the history of changes: the fleet's initial inventory with the hub store's changes replayed
over it, as the hub does at a start), and how an operator action reaches a running hub (a
command file dropped into the fleet's ``operator/inbox/``, which the hub takes at its next
housekeeping turn, carries out once, audits and records in the history; see docs/cli.md).
Must never: write the hub's store (it is read-only here), or change the inventory itself.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from cli import output
from cli.errors import ExitStatus, UserError
from cli.inputs import DATA, FLEET

console = Console()

inventory_app = typer.Typer(
    help="The hub's inventory: alone, show a site, a device or a meter point (with its history "
    "of changes); 'adopt', 'suspend-model' and 'approve-model' are the operator's actions, "
    "taken by a running hub without a restart."
)


@inventory_app.callback(invoke_without_command=True)
def inventory(
    ctx: typer.Context,
    device: str | None = typer.Option(None, help="Show this device (EUI-64)."),
    site: str | None = typer.Option(None, help="Show this site."),
    mpxn: str | None = typer.Option(None, help="Show this meter point (MPAN or MPRN)."),
    fleet: Path = FLEET,
    data: Path = DATA,
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON document."),
) -> None:
    """Show one site, device or meter point: the fleet's inventory with every change the hub
    at --data made replayed over it (the hub need not be running; without a store, the
    fleet alone)."""
    if ctx.invoked_subcommand is not None:
        return
    chosen = [x for x in (device, site, mpxn) if x]
    if len(chosen) != 1:
        raise UserError("give exactly one of --device, --site or --mpxn", "e.g. --site S00000001")
    view = _view(fleet, data, device, site, mpxn)
    if as_json:
        output.document(view)
        return
    _print(view)


def _state(fleet_dir: Path, data: Path) -> tuple[Any, Any, Any, list[Any], bool]:
    from actors.store import open_store
    from hub.flows.inventory_changes import replay
    from hub.registers.election import Election
    from simfield.fleet_dir import load_fleet

    try:
        fleet = load_fleet(fleet_dir)
    except (FileNotFoundError, ValueError) as err:
        raise UserError(
            str(err), "point --fleet at a directory from 'dcc fleet generate'"
        ) from None
    inventory = fleet.inventory.copy()
    election = Election()
    try:
        with closing(open_store(data, read_only=True)) as store:
            changes = store.inventory_history()
    except FileNotFoundError:
        return fleet, inventory, election, [], False
    replay(inventory, election, changes)
    return fleet, inventory, election, changes, True


def _device(d: Any) -> dict[str, Any]:
    return {
        "device_id": d.device_id,
        "device_type": d.device_type.value,
        "status": d.status.value,
        "site_id": d.site_id,
        "manufacturer": d.manufacturer,
        "model": d.model,
        "firmware": d.firmware,
        "head_end": d.head_end,
        "mpxn": d.mpxn or None,
        "early_smart": d.early_smart,
        "joined": list(d.joined),
    }


def _change(c: Any) -> dict[str, Any]:
    return {
        "at": output.iso(c.at),
        "kind": c.kind.value,
        "by": c.by,
        "ref": c.ref,
        "device_id": c.device_id or None,
        "status": c.status.value if c.status else None,
        "reason": c.reason,
    }


def _meter_point(mp: Any, election: Any) -> dict[str, Any]:
    from datetime import UTC, datetime

    from hub.reference.uktime import uk_date

    return {
        "mpxn": mp.mpxn,
        "fuel": mp.fuel.value,
        "registered_supplier": mp.supplier_on(uk_date(datetime.now(UTC))),
        "data_collector": mp.data_collector,
        "domestic": mp.domestic,
        "elected": election.elected.get(mp.mpxn),
        "served_by_hub": election.served(mp),
    }


def _view(
    fleet_dir: Path, data: Path, device_id: str | None, site_id: str | None, mpxn: str | None
) -> dict[str, Any]:
    fleet, inventory, election, changes, has_store = _state(fleet_dir, data)
    view: dict[str, Any] = {"store": str(data) if has_store else None}
    if device_id is not None:
        device = inventory.device(device_id)
        if device is None:
            raise UserError(
                f"device {device_id} is not in the inventory",
                "an early-smart meter enters when adopted ('dcc inventory adopt')",
                ExitStatus.FAILURE,
            )
        site_id = device.site_id
        view["device"] = _device(device)
        history = [c for c in changes if device_id in (c.device_id, c.other_device_id)]
    elif mpxn is not None:
        mp = fleet.registration.meter_point(mpxn)
        if mp is None:
            raise UserError(f"meter point {mpxn} is in no register", "", ExitStatus.FAILURE)
        view["meter_point"] = _meter_point(mp, election)
        devices = [d for d in inventory.devices.values() if d.mpxn == mpxn]
        view["devices"] = [_device(d) for d in devices]
        ids = {d.device_id for d in devices}
        history = [c for c in changes if c.mpxn == mpxn or c.device_id in ids]
        site_id = devices[0].site_id if devices else None
    else:
        history = [c for c in changes if c.site_id == site_id]
    if site_id is not None:
        site = inventory.sites.get(site_id)
        if site is None:
            raise UserError(f"site {site_id} is not in the inventory", "", ExitStatus.FAILURE)
        view["site"] = {
            "site_id": site.site_id,
            "comms_hub": site.comms_hub,
            "lead_supplier": site.lead_supplier,
            "region": site.region,
            "cell": site.cell,
        }
        if device_id is None and mpxn is None:
            view["devices"] = [_device(d) for d in inventory.site_devices(site_id)]
    view["history"] = [_change(c) for c in history]
    return view


def _print(view: dict[str, Any]) -> None:
    from rich.table import Table

    for key in ("device", "meter_point", "site"):
        if key in view:
            console.print(f"[bold]{key.replace('_', ' ')}[/bold]")
            for name, value in view[key].items():
                console.print(f"  {name}: {value}")
    if view.get("devices"):
        table = Table(title="devices")
        for col in ("device", "type", "status", "model", "head-end", "meter point"):
            table.add_column(col)
        for d in view["devices"]:
            table.add_row(
                d["device_id"],
                d["device_type"],
                d["status"],
                f"{d['manufacturer']}/{d['model']}",
                d["head_end"],
                d["mpxn"] or "-",
            )
        console.print(table)
    table = Table(title=f"history: {len(view['history'])} changes")
    for col in ("time (UTC)", "kind", "by", "device", "status", "reason"):
        table.add_column(col, overflow="fold")
    for c in view["history"]:
        table.add_row(
            c["at"], c["kind"], c["by"], c["device_id"] or "-", c["status"] or "-", c["reason"]
        )
    console.print(table)
    if view["store"] is None:
        console.print("no hub store at --data: the fleet's inventory only")


def _drop(fleet: Path, body: dict[str, object], as_json: bool, what: str) -> None:
    from actors.operator_inbox import write_command

    if not fleet.is_dir():
        raise UserError(f"no fleet directory {fleet}", "check --fleet (or DCC_FLEET)")
    path = write_command(fleet, body)
    command_id = path.stem
    if as_json:
        output.document({"command_id": command_id, "file": str(path), **body})
        return
    console.print(
        f"{what}: command {command_id} queued in {path.parent}; a running hub carries it out at "
        "its next turn, audits it and records it in the history ('dcc inventory')"
    )


@inventory_app.command("adopt")
def adopt(
    device: str = typer.Argument(..., help="The early-smart meter (EUI-64)."),
    fleet: Path = FLEET,
    reason: str = typer.Option("", help="Why, for the audit."),
    as_json: bool = typer.Option(False, "--json", help="Print the command as one JSON document."),
) -> None:
    """Adopt an early-smart meter that has started communicating via the hub: adopted only if
    its model is on the approved products list as compliant; otherwise refused (recorded) and
    its registered supplier alerted."""
    from simfield.fleet_dir import load_fleet

    candidates = {d.device_id for d in load_fleet(fleet).early_smart_candidates}
    if device not in candidates:
        raise UserError(
            f"{device} is not an early-smart meter of the fleet",
            "list them in the fleet's early_smart_candidates.csv",
        )
    _drop(fleet, {"action": "adopt", "device_id": device, "reason": reason}, as_json, "adopt")


@inventory_app.command("suspend-model")
def suspend_model(
    manufacturer: str = typer.Argument(...),
    model: str = typer.Argument(...),
    fleet: Path = FLEET,
    reason: str = typer.Option("", help="Why, for the audit."),
    as_json: bool = typer.Option(False, "--json", help="Print the command as one JSON document."),
) -> None:
    """Take a model off the approved products list: its commissioned devices become
    Suspended, and it is no longer commissioned or adopted."""
    body: dict[str, object] = {
        "action": "suspend_model",
        "manufacturer": manufacturer,
        "model": model,
        "reason": reason,
    }
    _drop(fleet, body, as_json, "suspend model")


@inventory_app.command("approve-model")
def approve_model(
    manufacturer: str = typer.Argument(...),
    model: str = typer.Argument(...),
    device_type: str = typer.Option(..., help="ESME, GSME, CHF, GPF, PPMID or IHD."),
    head_end: str = typer.Option(..., help="The head-end type that translates for it."),
    early_smart: bool = typer.Option(False, help="An early-smart model approved for adoption."),
    fleet: Path = FLEET,
    reason: str = typer.Option("", help="Why, for the audit."),
    as_json: bool = typer.Option(False, "--json", help="Print the command as one JSON document."),
) -> None:
    """Put a model on the approved products list (or replace its entry)."""
    from hub.reference.roles import DeviceType

    if device_type not in {t.value for t in DeviceType}:
        raise UserError(
            f"unknown device type {device_type!r}", "ESME, GSME, CHF, GPF, PPMID or IHD"
        )
    body: dict[str, object] = {
        "action": "approve_model",
        "manufacturer": manufacturer,
        "model": model,
        "device_type": device_type,
        "head_end": head_end,
        "early_smart": early_smart,
        "reason": reason,
    }
    _drop(fleet, body, as_json, "approve model")
