"""Early-smart (SMETS1) meters of the simulated field starting to communicate via the hub.

Decides: when each early-smart candidate of a fleet first calls the hub over a span of time
(a seeded, repeatable draw: the same fleet and seed give the same contacts), as a typed event
the drivers hand to the hub (``LiveHub.early_smart_contact`` live).
Must never: decide adoption (the hub does, against its approved products list), or touch the
hub's inventory.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from hub.reference.roles import DeviceType
from hub.registers.inventory import Device

METERS = frozenset({DeviceType.ESME, DeviceType.GSME})
"""The early-smart devices that call the hub (the meters; their comms units come with them)."""


@dataclass(frozen=True, slots=True)
class EarlySmartContact:
    """An early-smart meter starts communicating via the hub."""

    at: float
    """When it first calls (seconds since the epoch, UTC)."""
    device_id: str
    """The meter."""
    site_id: str
    """Its premises."""


def contacts(
    candidates: Iterable[Device], start: float, span_s: float, seed: int
) -> list[EarlySmartContact]:
    """When each early-smart meter among ``candidates`` first calls, uniformly over
    ``[start, start + span_s)``, in time order."""
    rng = random.Random(seed)
    meters = sorted((d for d in candidates if d.device_type in METERS), key=lambda d: d.device_id)
    out = [EarlySmartContact(start + rng.random() * span_s, d.device_id, d.site_id) for d in meters]
    return sorted(out, key=lambda c: (c.at, c.device_id))
