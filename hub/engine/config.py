"""The engine's tunables, set at start-up.

Decides: the defaults of every bound, timeout and hold time the engine applies.
Must never: hold state; drivers and scenarios pass values in, the engine only reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hub.engine.outbox import DEFAULT_HOLD_S, DEFAULT_MAX_IN_FLIGHT, DEFAULT_RETRY_S
from hub.flows.schedule_spec import DEFAULT_OFFSET_WINDOW_S
from hub.policies.anomaly import DEFAULT_QUARANTINE_HOLD_S, AnomalyConfig
from hub.policies.traffic import TrafficConfig
from hub.reference.catalogue import PriorityClass


def _default_class_room() -> dict[PriorityClass, float]:
    return {PriorityClass.ON_DEMAND: 0.75, PriorityClass.BULK: 0.5}


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Tunables of the engine (all configurable at start-up)."""

    hold_s: float = DEFAULT_HOLD_S
    """How long responses and alerts are held for an absent recipient."""
    retry_s: float = DEFAULT_RETRY_S
    """How long a pushed delivery waits for its acknowledgement before being pushed again."""
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    """Pushed-but-unacknowledged deliveries per user."""
    max_pending: int = 20_000
    """Accepted requests awaiting their device response, hub-wide: the room of the most
    urgent classes (see ``class_room``); beyond it: H8."""
    max_per_comms_hub: int = 64
    """Requests queued for one comms hub: the room of the most urgent classes (see
    ``class_room``); beyond it: H8."""
    class_room: Mapping[PriorityClass, float] = field(default_factory=_default_class_room)
    """Per lower class, the share of ``max_per_comms_hub`` and of ``max_pending`` it may fill.
    Each check counts only the work of the request's own class and the more urgent ones, so
    lower-priority work never holds room a more urgent request needs; classes not listed
    (alerts, urgent work) have the whole bound. A comms hub therefore holds at most the sum
    of the classes' rooms (64 + 48 + 32 by default), and so does the hub."""
    busy_retry_s: float = 5.0
    """The retry-after given with H8."""
    idempotency_s: float = 24 * 3600.0
    """How long a request id is remembered for idempotent resubmission."""
    idempotency_max: int = 1_000_000
    """Most request ids remembered in memory; beyond it the oldest are forgotten early (counted
    as ``forgotten_early``) so memory stays bounded at any request rate."""
    response_timeout_s: float = 120.0
    """How long a dispatched command may go unanswered before the user gets E21."""
    quarantine_hold_s: float = DEFAULT_QUARANTINE_HOLD_S
    """How long a quarantined request waits for the user to release or delete it."""
    anomaly: AnomalyConfig | None = None
    """Anomaly thresholds (None: the documented defaults for the catalogue)."""
    traffic: TrafficConfig = field(
        default_factory=lambda: TrafficConfig(capacity_per_s=10_000.0, cell_bytes_per_s=1_000_000.0)
    )
    """Traffic management: hub rate, user shares near capacity, cell budgets, queue bounds.
    The live default assumes a cellular cell carries about 1 MB/s of hub traffic and the WAN
    side can start 10,000 commands a second (both configurable)."""
    sweep_per_tick: int = 2_000
    """Schedules and held requests checked per tick in the daily change-of-supplier sweep."""
    schedule_seed: int = 1
    """Seed of the schedules' randomised offsets (keep it across restarts)."""
    schedule_window_s: float = DEFAULT_OFFSET_WINDOW_S
    """Schedule firings are spread over this window after their nominal time."""
    batch_release: bool = False
    """Leave releasing queued commands to ``release`` (called once per driver batch)."""
    clock_skew_s: float = 300.0
    """How far in the past a request's ``execute_at`` may be and still be executed now (the
    user's clock may be behind the hub's); further in the past: E12."""
    outcome_timeout_s: float = 3600.0
    """How long after its execution time a Device-pattern future-dated command may go without
    its 8F66 / 8F67 outcome alert before the user gets E30."""

    def __post_init__(self) -> None:
        shares = [self.class_room.get(p, 1.0) for p in sorted(PriorityClass)]
        if any(not 0 < s <= 1 for s in shares):
            raise ValueError("class_room shares must be in (0, 1]")
        if shares != sorted(shares, reverse=True):
            raise ValueError("class_room: a lower class must not have more room than a higher one")
        if self.max_pending < 1 or self.max_per_comms_hub < 1:
            raise ValueError("max_pending and max_per_comms_hub must be at least 1")

    def room(self, bound: int, priority: PriorityClass) -> int:
        """How much of ``bound`` (the comms hub or hub-wide one) ``priority`` may fill,
        counting its own and the more urgent classes' work."""
        return max(1, int(self.class_room.get(priority, 1.0) * bound))
