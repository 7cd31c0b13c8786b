"""The engine's tunables, set at start-up.

Decides: the defaults of every bound, timeout and hold time the engine applies.
Must never: hold state; drivers and scenarios pass values in, the engine only reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hub.engine.outbox import DEFAULT_HOLD_S, DEFAULT_MAX_IN_FLIGHT, DEFAULT_RETRY_S
from hub.flows.schedule_spec import DEFAULT_OFFSET_WINDOW_S
from hub.policies.anomaly import DEFAULT_QUARANTINE_HOLD_S, AnomalyConfig
from hub.policies.traffic import TrafficConfig


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
    """Accepted requests awaiting their device response, hub-wide; beyond it: H8."""
    max_per_comms_hub: int = 64
    """Requests queued for one comms hub; beyond it: H8."""
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
    outcome_timeout_s: float = 3600.0
    """How long after its execution time a Device-pattern future-dated command may go without
    its 8F66 / 8F67 outcome alert before the user gets E30."""
