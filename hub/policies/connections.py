"""Which of a user's connections a pushed delivery goes to.

Decides: per user, the connections that said Hello, most recent last and at most a bounded
number; a push goes to the most recent one, and when that one is gone, to the one before it,
and so on; a connection that said Hello again becomes the most recent. Answers to a frame are
not routed here: they go back to the connection the frame came from.
Must never: send anything itself, hold a socket or a timer, or tell the engine about a user
with no connection left (the driver calls ``HubEngine.on_unreachable`` when a push finds none).
Both drivers use it: the live front door with ROUTER identities, the simulator with its
simulated connections.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

MAX_CONNECTIONS_PER_USER = 4
"""Connections per user remembered for pushed deliveries, unless a driver says otherwise."""

C = TypeVar("C", bound=Hashable)


class DeliveryRoutes(Generic[C]):
    """The delivery connections of every user, newest last, bounded per user."""

    def __init__(self, max_per_user: int = MAX_CONNECTIONS_PER_USER) -> None:
        if max_per_user < 1:
            raise ValueError("a user needs room for at least one delivery connection")
        self._max = max_per_user
        self._by_user: dict[str, list[C]] = {}

    def hello(self, user_id: str, conn: C) -> None:
        """``conn`` said Hello: it becomes the user's first choice for pushes; beyond the
        bound, the user's oldest connection is forgotten."""
        stack = [c for c in self._by_user.get(user_id, ()) if c != conn]
        self._by_user[user_id] = [*stack[max(0, len(stack) - (self._max - 1)) :], conn]

    def targets(self, user_id: str) -> list[C]:
        """The user's delivery connections in the order a push tries them (newest first)."""
        return list(reversed(self._by_user.get(user_id, ())))

    def gone(self, user_id: str, conn: C) -> None:
        """``conn`` is gone (closed, or a send to it failed): pushes no longer try it."""
        stack = self._by_user.get(user_id)
        if stack is None:
            return
        if conn in stack:
            stack.remove(conn)
        if not stack:
            del self._by_user[user_id]

    def push(self, user_id: str, send: Callable[[C], bool]) -> bool:
        """Offer a push to the user's connections, newest first, until ``send`` takes it
        (returns True); each connection ``send`` refuses is forgotten. False when none took
        it: the driver then holds the delivery for the user's next Hello."""
        for conn in self.targets(user_id):
            if send(conn):
                return True
            self.gone(user_id, conn)
        return False

    def __len__(self) -> int:
        """Users with at least one delivery connection."""
        return len(self._by_user)
