"""Traffic decisions and figures: what admission answers and what the manager reports.

Decides: the shape of an admission answer (``Admitted`` or ``Busy`` with its reason and
retry-after) and of the statistics the manager reports.
Must never: decide anything itself; the manager fills these in.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hub.reference.catalogue import PriorityClass


class BusyReason(StrEnum):
    """Why a request was refused as busy."""

    QUEUE_FULL = "queue_full"  # the queue of its priority class is at its bound
    HUB_FULL = "hub_full"  # the hub-wide occupancy reached the shed level of its class
    USER_ALLOCATION = "user_allocation"  # near capacity, and the user's share is used up


@dataclass(frozen=True, slots=True)
class Admitted:
    """Decision: accept; one place in the queue of this class is reserved for the item."""

    priority: PriorityClass
    """The class whose queue holds the reserved place (``offer`` or ``release`` it)."""


@dataclass(frozen=True, slots=True)
class Busy:
    """Decision: refuse with H8; nothing was reserved or done."""

    retry_after_s: float
    """Seconds the user should wait before resubmitting: time for a token of its share,
    or the time the hub needs to drain enough queued work at capacity."""
    reason: BusyReason
    """Which limit refused it."""
    detail: str
    """A sentence for the refusal's reason text."""


@dataclass(frozen=True, slots=True)
class TrafficStats:
    """A snapshot for reports and dashboards (cumulative counts since start)."""

    at: float
    """The instant of the snapshot."""
    offered_per_s: float
    """Requests offered to ``admit`` per second over the load window."""
    started_per_s: float
    """Commands started per second over the load window."""
    load: float
    """The larger of the two rates as a share of capacity."""
    near_capacity: bool
    """Whether user allocations apply now."""
    depth: dict[PriorityClass, int]
    """Items queued per class."""
    reserved: dict[PriorityClass, int]
    """Places admitted but not yet offered or released, per class."""
    max_depth: dict[PriorityClass, int]
    """Highest queued + reserved count seen per class."""
    admitted: dict[PriorityClass, int]
    """Requests admitted per class."""
    shed: dict[PriorityClass, int]
    """Requests refused as busy per class."""
    shed_by_reason: dict[BusyReason, int]
    """Requests refused as busy per reason."""
    displaced: dict[PriorityClass, int]
    """Queued items pushed out per class to make room for more urgent ones."""
    started: dict[PriorityClass, int]
    """Commands started per class."""
    cell_utilisation: dict[str, float]
    """Per cell used within the budget window: bytes started over the window as a share of
    the cell's budget for the window (cells not listed used nothing)."""
    cells_waiting: int
    """Cells whose next command waits for byte budget."""
    tracked_users: int
    """User buckets held."""
    tracked_cells: int
    """Cells with state held."""
