"""Traffic management: who may queue a command, and which queued commands may start now.

Re-exports only. The manager (admission, shedding, the priority queues and shaping, with the
protocol the engine follows) lives in ``manager``, its settings in ``config``, its answers and
figures in ``decisions``, the per-cell queues in ``queues`` and the rate budgets (token bucket,
sliding window) in ``budgets``.
"""

from hub.policies.traffic.budgets import TokenBucket
from hub.policies.traffic.config import TrafficConfig, TrafficError, UserAllocation
from hub.policies.traffic.decisions import Admitted, Busy, BusyReason, TrafficStats
from hub.policies.traffic.manager import TrafficManager

__all__ = [
    "Admitted",
    "Busy",
    "BusyReason",
    "TokenBucket",
    "TrafficConfig",
    "TrafficError",
    "TrafficManager",
    "TrafficStats",
    "UserAllocation",
]
