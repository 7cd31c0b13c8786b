"""``dcc utrn``: issue a valid UTRN top-up code for a meter in a fleet.

Decides: which key a code for a device is minted with (the party id of the supplier registered
for the device's meter point on the fleet's date, as the simulated meter holds it) and how the
code is shown.
Must never: decide the UTRN format (``hub.reference.utrn`` does) or remember counters.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

from cli import output
from cli.errors import UserError
from cli.inputs import FLEET


def utrn(
    device: str = typer.Option(..., "--device", help="Target meter's device id (EUI-64)."),
    amount_pence: int = typer.Option(..., "--amount-pence", help="Credit to add, pence."),
    counter: int = typer.Option(..., "--counter", help="Transaction counter (each used once)."),
    fleet: Path = FLEET,
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON document."),
) -> None:
    """Issue a UTRN for a meter, minted with its registered supplier's key."""
    from hub.reference.utrn import make_utrn
    from simfield.fleet_dir import load_fleet

    loaded = load_fleet(fleet)
    device_id = device.upper()
    found = loaded.inventory.device(device_id)
    if found is None:
        raise UserError(
            f"device {device} is not in the fleet at {fleet}", "check --device and --fleet"
        )
    as_of = loaded.manifest.get("as_of")
    day = date.fromisoformat(as_of) if isinstance(as_of, str) else date.today()
    mp = loaded.registration.meter_point(found.mpxn) if found.mpxn else None
    supplier = mp.supplier_on(day) if mp is not None else None
    if supplier is None:
        raise UserError(
            f"device {device_id} has no registered supplier on {day.isoformat()}",
            "a UTRN is for a meter with a registered supplier (a meter point with a supplier)",
        )
    try:
        code = make_utrn(device_id, amount_pence, counter, key=supplier)
    except ValueError as exc:
        raise UserError(str(exc), "see docs/services.md, 'The UTRN'") from None
    if as_json:
        output.document(
            {
                "utrn": code,
                "device_id": device_id,
                "supplier": supplier,
                "amount_pence": amount_pence,
                "counter": counter,
            }
        )
        return
    print(code)
