"""Traffic management settings: queue bounds, shed levels, user shares, rates and byte budgets.

Decides: what a valid traffic configuration is (refused on construction otherwise), how much
room the unsheddable classes have set aside, where each class is shed, each user's
allocation, each cell's byte budget, how much of a user's allocation and of a cell's budget
each class keeps back for more urgent work, and each service's command size.
Must never: hold state that changes; it is a frozen value the manager reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hub.reference.catalogue import PriorityClass

CLASSES: tuple[PriorityClass, ...] = tuple(sorted(PriorityClass))
"""The priority classes in order; a class's value indexes the per-class lists."""
assert [int(p) for p in CLASSES] == list(range(len(CLASSES))), "priorities index lists"


class TrafficError(Exception):
    """The caller broke the admission protocol (e.g. ``offer`` without a reserved place)."""


@dataclass(frozen=True, slots=True)
class UserAllocation:
    """One user's share while the hub is near capacity, as a token bucket."""

    rate_per_s: float
    """Requests per second the user may have admitted, sustained."""
    burst: float
    """Requests the user may have admitted at once."""


def _default_command_bytes() -> dict[str, int]:
    # Placeholders to be calibrated against the WAN model: a firmware image block is large,
    # profile and log reads are middling, everything else is a few hundred bytes.
    return {
        "11.1": 100_000,  # Update Firmware: one image block
        "11.4": 100_000,  # Update PPMID Firmware
        "4.8": 4_096,  # profile data reads (4.8.1 to 4.8.3)
        "4.6": 2_048,  # daily read logs
        "4.4": 2_048,  # billing data logs
        "4.17": 2_048,  # daily consumption log
    }


def _default_queue_bounds() -> dict[PriorityClass, int]:
    return {
        PriorityClass.ALERT: 50_000,
        PriorityClass.URGENT: 10_000,
        PriorityClass.ON_DEMAND: 50_000,
        PriorityClass.BULK: 200_000,
    }


def _default_cell_reserve() -> dict[PriorityClass, float]:
    return {PriorityClass.BULK: 0.1}


def _default_user_reserve() -> dict[PriorityClass, float]:
    return {PriorityClass.BULK: 0.2}


def _default_shed_at() -> dict[PriorityClass, float]:
    return {PriorityClass.ON_DEMAND: 1.0, PriorityClass.BULK: 0.8}


@dataclass(frozen=True, slots=True)
class TrafficConfig:
    """Tunables of traffic management (all configurable at start-up)."""

    capacity_per_s: float = 1_000.0
    """Hub capacity: commands per second the WAN side can start."""
    capacity_burst: float | None = None
    """Commands that may start at once after a pause; None: one second of capacity."""
    near_capacity_share: float = 0.8
    """The hub is near capacity when its load reaches this share of capacity."""
    load_window_s: float = 10.0
    """Sliding window over which load (requests offered, commands started) is measured."""
    window_slots: int = 10
    """Slots per sliding window (load and cell utilisation); more slots, finer windows."""
    user_rate_per_s: float | None = None
    """Each user's sustained allocation near capacity; None: ``user_share`` of capacity."""
    user_share: float = 0.1
    """Each user's allocation near capacity as a share of capacity (if no rate is set)."""
    user_burst: float = 100.0
    """Requests a user may have admitted at once near capacity."""
    user_allocations: Mapping[str, UserAllocation] = field(default_factory=dict)
    """Allocations for particular users, overriding the defaults above."""
    user_exempt: frozenset[PriorityClass] = frozenset({PriorityClass.ALERT, PriorityClass.URGENT})
    """Classes never limited by user allocation (top-ups and supply operations go through)."""
    user_reserve: Mapping[PriorityClass, float] = field(default_factory=_default_user_reserve)
    """Per class, the share of a user's burst it must leave in the user's bucket for the
    user's more urgent requests (classes not listed: none)."""
    max_tracked_users: int = 100_000
    """Most user buckets kept; beyond it the least recently used is forgotten (reset)."""
    cell_bytes_per_s: float = 20_000.0
    """WAN cell budget: bytes per second of commands started towards one cell."""
    cell_budget_window_s: float = 10.0
    """A cell may spend up to this many seconds of its budget at once (and utilisation is
    reported over this window)."""
    cell_reserve: Mapping[PriorityClass, float] = field(default_factory=_default_cell_reserve)
    """Per class, the share of a cell's budget window it must leave unspent for more urgent
    commands, so a burst of lower-priority commands never makes an urgent one wait for
    budget (classes not listed, alerts and urgent work: none)."""
    cell_bytes_overrides: Mapping[str, float] = field(default_factory=dict)
    """Bytes per second for particular cells (e.g. long-range radio), overriding the default."""
    command_bytes: Mapping[str, int] = field(default_factory=_default_command_bytes)
    """Size estimate per service reference; a prefix (``4.8``) covers its variants."""
    default_command_bytes: int = 256
    """Size estimate for services not listed in ``command_bytes``."""
    queue_bounds: Mapping[PriorityClass, int] = field(default_factory=_default_queue_bounds)
    """Most items queued or reserved per priority class (every class must have one)."""
    hub_bound: int = 310_000
    """Most items queued or reserved over all classes."""
    shed_at: Mapping[PriorityClass, float] = field(default_factory=_default_shed_at)
    """Per sheddable class, the share of the shared room (hub bound less the bounds of the
    classes not listed) at which its requests are refused. Unlisted classes are refused only
    at their own bound; lower priorities must not shed later than higher ones."""
    min_retry_after_s: float = 1.0
    """Floor under every retry-after (the default when the estimate is shorter)."""
    max_retry_after_s: float = 86_400.0
    """Ceiling on every retry-after (the wire protocol's limit)."""

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise ValueError("invalid traffic configuration: " + "; ".join(problems))

    def _problems(self) -> list[str]:
        out: list[str] = []
        if not self.capacity_per_s > 0:
            out.append("capacity_per_s must be positive")
        if self.capacity_burst is not None and not self.capacity_burst >= 1:
            out.append("capacity_burst must be at least 1")
        if not 0 < self.near_capacity_share <= 1:
            out.append("near_capacity_share must be in (0, 1]")
        if not (self.load_window_s > 0 and self.cell_budget_window_s > 0):
            out.append("windows must be positive")
        if self.window_slots < 1:
            out.append("window_slots must be at least 1")
        if self.user_rate_per_s is not None and not self.user_rate_per_s > 0:
            out.append("user_rate_per_s must be positive")
        if not 0 < self.user_share <= 1:
            out.append("user_share must be in (0, 1]")
        if not self.user_burst > 0:
            out.append("user_burst must be positive")
        if self.max_tracked_users < 1:
            out.append("max_tracked_users must be at least 1")
        if not self.cell_bytes_per_s > 0 or any(
            not v > 0 for v in self.cell_bytes_overrides.values()
        ):
            out.append("cell budgets must be positive")
        if self.default_command_bytes < 1 or any(v < 1 for v in self.command_bytes.values()):
            out.append("command size estimates must be at least 1 byte")
        missing = [p.name for p in CLASSES if p not in self.queue_bounds]
        if missing:
            out.append(f"queue_bounds lacks {', '.join(missing)}")
        elif any(b < 1 for b in self.queue_bounds.values()):
            out.append("queue bounds must be at least 1")
        elif self.hub_bound - self.protected_room() < 1:
            out.append("hub_bound must exceed the bounds of the classes without a shed level")
        if any(not 0 < s <= 1 for s in self.shed_at.values()):
            out.append("shed_at shares must be in (0, 1]")
        sheddable = sorted(self.shed_at)
        if sheddable and any(p not in self.shed_at for p in CLASSES if p > sheddable[0]):
            out.append("a class without a shed level is below one with a shed level")
        levels = [self.shed_at[p] for p in sheddable]
        if levels != sorted(levels, reverse=True):
            out.append("a lower priority must not shed at a higher share than a higher one")
        for name, reserve in (
            ("cell_reserve", self.cell_reserve),
            ("user_reserve", self.user_reserve),
        ):
            shares = [reserve.get(p, 0.0) for p in CLASSES]
            if any(not 0 <= r < 1 for r in shares):
                out.append(f"{name} shares must be in [0, 1)")
            elif shares != sorted(shares):
                out.append(f"{name}: a lower priority must not keep back less than a higher one")
        if not 0 < self.min_retry_after_s <= self.max_retry_after_s:
            out.append("retry-after floor must be positive and not above the ceiling")
        return out

    def protected_room(self) -> int:
        """Places set aside inside the hub bound for the classes without a shed level."""
        return sum(b for p, b in self.queue_bounds.items() if p not in self.shed_at)

    def shed_level(self, priority: PriorityClass) -> int | None:
        """Hub-wide occupancy at which this class is refused (None: only its own bound)."""
        share = self.shed_at.get(priority)
        if share is None:
            return None
        return max(1, int(share * (self.hub_bound - self.protected_room())))

    def allocation_for(self, user_id: str) -> UserAllocation:
        """The user's token bucket while the hub is near capacity."""
        special = self.user_allocations.get(user_id)
        if special is not None:
            return special
        rate = self.user_rate_per_s
        if rate is None:
            rate = self.user_share * self.capacity_per_s
        return UserAllocation(rate, self.user_burst)

    def cell_budget(self, cell: str) -> float:
        """Bytes per second of commands that may start towards this cell."""
        return self.cell_bytes_overrides.get(cell, self.cell_bytes_per_s)

    def size_of(self, service: str) -> int:
        """Estimated bytes a command for this service puts on the WAN (longest prefix wins)."""
        code = service
        while True:
            size = self.command_bytes.get(code)
            if size is not None:
                return size
            cut = code.rfind(".")
            if cut < 0:
                return self.default_command_bytes
            code = code[:cut]
