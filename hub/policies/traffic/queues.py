"""Traffic queues of one WAN cell: its items per priority class in arrival order, and its budget.

Decides: what the manager keeps per cell (queues, byte budget, utilisation, wait-for-budget
state) and that an item's size is at least one byte.
Must never: choose what starts (the manager does) or hold an item outside its queues.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from hub.policies.traffic.budgets import SlidingCounter, TokenBucket

T = TypeVar("T")


Entry = tuple[int, T, int]  # (arrival sequence, item, size in bytes)


@dataclass(slots=True, eq=False)
class Cell(Generic[T]):
    """Queues and budget of one WAN cell."""

    cell_id: str
    """The cell's name."""
    budget: TokenBucket
    """Byte budget; burst is one budget window's worth."""
    used: SlidingCounter
    """Bytes started over the budget window (utilisation)."""
    queues: list[deque[Entry[T]] | None]
    """Per priority class, this cell's items in arrival order (None when empty)."""
    queued: int = 0
    """Items queued over all classes."""
    parked: int = 0
    """Id of the pending wake-up while the next command waits for budget; 0: not waiting."""
    blocked_priority: int = 0
    """While waiting: the class of the command that waits."""
    suspended: list[int] = field(default_factory=list)
    """While waiting: the classes whose scheduling entry is held back until the wake-up."""
    last_used: float = 0.0
    """When the cell last had a command started or became empty."""


def check_size(size_bytes: int) -> None:
    """Refuse an item size below one byte."""
    if size_bytes < 1:
        raise ValueError(f"size_bytes must be at least 1, got {size_bytes}")
