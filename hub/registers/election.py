"""The hub's own record of non-domestic elections: which non-domestic meter points' suppliers
opted out of the hub (8.5 Service Opt Out) or back in (8.6 Service Opt In).

Decides: whether the hub serves a meter point, from the election the hub recorded last for it,
or, where it recorded none, from the register's data collector field (the hub serves the
meter point when the register names it as data collector).
Must never: change the registers (the data collector field is the register's; the election
is the hub's own durable state beside it), or hold anything but the last election per meter
point.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hub.registers.inventory import ChangeKind, InventoryChange
from hub.registers.registration import MeterPoint

ELECTION_KINDS = frozenset({ChangeKind.OPTED_IN, ChangeKind.OPTED_OUT})
"""The inventory changes that are elections (applied here, not to the inventory)."""


@dataclass(slots=True)
class Election:
    """Opted in (True) or out (False), per meter point, as last elected through the hub."""

    elected: dict[str, bool] = field(default_factory=dict)

    def served(self, mp: MeterPoint) -> bool:
        """Whether the hub serves this meter point: its last election, else the register's
        data collector field."""
        return self.elected.get(mp.mpxn, mp.served_by_hub)

    def apply(self, change: InventoryChange) -> None:
        """Record an opt-out or opt-in (other changes are not elections: ignored)."""
        if change.kind in ELECTION_KINDS:
            self.elected[change.mpxn] = change.kind is ChangeKind.OPTED_IN

    def copy(self) -> Election:
        """An independent copy."""
        return Election(dict(self.elected))
