"""Quarantine: the requests held because anomaly detection said QUARANTINE.

Decides: whether a request is held or refused because the quarantine is full, which held
requests a user may release or delete, which were held too long, and when to tell a user that
requests were quarantined (gathered into batches, within ``NOTIFY_TARGET_S``); and when the
next notice or expiry falls (``next_due``).
Must never: execute or answer a request (the engine does, with the entries returned here); read
a clock; hold more than its caps per user and hub-wide.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    pass

from hub.policies.anomaly.thresholds import (
    NoticeKind,
    Notification,
)

T = TypeVar("T")


NOTIFY_TARGET_S = 30 * 60.0
"""The service target: a user is told about quarantined requests within 30 minutes."""

DEFAULT_NOTIFY_AFTER_S = 60.0
"""How long holds for one (user, service) are gathered into one notification (well inside the
30-minute target)."""

DEFAULT_QUARANTINE_HOLD_S = 2 * 24 * 3600.0
"""A suggested hold time for quarantined requests (2 days, like the outbox; configurable by the
caller of ``Quarantine.expire``). Assumed: the facts do not state one."""

DEFAULT_MAX_PER_USER = 10_000
"""Quarantined requests held per user; beyond it a request over threshold is refused, not held."""

DEFAULT_MAX_TOTAL = 100_000
"""Quarantined requests held hub-wide; beyond it a request over threshold is refused, not held."""


class HoldOutcome(StrEnum):
    """What became of a request the detector said to hold."""

    HELD = "held"
    ALREADY_HELD = "already held"
    """The same user's request id is already in quarantine; nothing changed."""
    REFUSED_USER_FULL = "refused: the user's quarantine is full"
    REFUSED_HUB_FULL = "refused: the hub's quarantine is full"


@dataclass(slots=True)
class QuarantineEntry(Generic[T]):
    """One held request. (Generic value classes here are not frozen: Python 3.11 cannot build
    a frozen, slotted, generic dataclass through a subscripted type such as ``Entry[int](...)``.)"""

    user_id: str
    """The user who sent it; only this user may release or delete it."""
    request_id: str
    """The user's request id."""
    service: str
    """Its service reference variant."""
    held_at: float
    """When it was quarantined."""
    reason: str
    """Why: the threshold crossed and the counts, as the detector said."""
    item: T
    """The held request itself (the engine's record); the caller serialises it."""

    def to_record(self) -> dict[str, str | float]:
        """The metadata as plain values, for the store (the item is stored by the caller)."""
        return {
            "user_id": self.user_id,
            "request_id": self.request_id,
            "service": self.service,
            "held_at": self.held_at,
            "reason": self.reason,
        }

    @staticmethod
    def from_record(record: Mapping[str, object], item: T) -> QuarantineEntry[T]:
        """Rebuild an entry from ``to_record``'s output and its item; ValueError if malformed."""
        texts: dict[str, str] = {}
        for name in ("user_id", "request_id", "service", "reason"):
            value = record.get(name)
            if not isinstance(value, str):
                raise ValueError(f"quarantine record: {name} must be a string, got {value!r}")
            texts[name] = value
        held_at = record.get("held_at")
        if (
            isinstance(held_at, bool)
            or not isinstance(held_at, int | float)
            or not math.isfinite(held_at)
        ):
            raise ValueError(f"quarantine record: held_at must be a number, got {held_at!r}")
        unknown = set(record) - {"user_id", "request_id", "service", "reason", "held_at"}
        if unknown:
            raise ValueError(f"quarantine record: unknown fields {sorted(unknown)}")
        return QuarantineEntry(
            texts["user_id"],
            texts["request_id"],
            texts["service"],
            float(held_at),
            texts["reason"],
            item,
        )


@dataclass(slots=True)
class HoldDecision(Generic[T]):
    """Decision: the request is held (HELD, ALREADY_HELD) or refused because the quarantine is
    full (the engine answers it as busy rather than growing)."""

    outcome: HoldOutcome
    """Held, already held, or refused and why."""
    entry: QuarantineEntry[T] | None
    """The entry in quarantine (None when refused)."""
    reason: str
    """One line for the answer and the audit."""

    @property
    def held(self) -> bool:
        """True when the request is in quarantine (now or already)."""
        return self.entry is not None


@dataclass(slots=True)
class Removal(Generic[T]):
    """The result of a release or a delete."""

    removed: list[QuarantineEntry[T]]
    """Entries taken out of quarantine, in the order asked."""
    unknown: list[str]
    """Request ids not held for this user (never held, already gone, or another user's)."""


@dataclass(slots=True)
class _Batch:
    opened_at: float
    count: int
    restored: bool


@dataclass(frozen=True, slots=True)
class QuarantineConfig:
    """Tunables of the quarantine (all configurable at start-up)."""

    max_per_user: int = DEFAULT_MAX_PER_USER
    """Held requests per user; beyond it, refuse instead of holding."""
    max_total: int = DEFAULT_MAX_TOTAL
    """Held requests hub-wide; beyond it, refuse instead of holding."""
    notify_after_s: float = DEFAULT_NOTIFY_AFTER_S
    """Holds for one (user, service) within this time of the first are told in one
    notification. 0: one notification per engine step (call ``due_notifications`` at its end).
    At most the 30-minute target."""

    def __post_init__(self) -> None:
        if self.max_per_user < 1 or self.max_total < 1:
            raise ValueError("quarantine caps must be positive")
        if not 0 <= self.notify_after_s <= NOTIFY_TARGET_S:
            raise ValueError(
                f"notify_after_s must be between 0 and {NOTIFY_TARGET_S:g} s "
                f"(the notification target), got {self.notify_after_s!r}"
            )


class Quarantine(Generic[T]):
    """Held requests, per user, in hold order, with caps, expiry and batch notifications."""

    def __init__(self, config: QuarantineConfig | None = None) -> None:
        self.config = config or QuarantineConfig()
        self._order: OrderedDict[tuple[str, str], QuarantineEntry[T]] = OrderedDict()
        self._by_user: dict[str, OrderedDict[str, QuarantineEntry[T]]] = {}
        self._batches: OrderedDict[tuple[str, str], _Batch] = OrderedDict()

    def __len__(self) -> int:
        return len(self._order)

    def count(self, user_id: str) -> int:
        """How many requests of this user are held."""
        return len(self._by_user.get(user_id, ()))

    def held(self, user_id: str) -> list[QuarantineEntry[T]]:
        """This user's held requests, oldest first."""
        return list(self._by_user.get(user_id, {}).values())

    def hold(
        self,
        user_id: str,
        request_id: str,
        item: T,
        now: float,
        *,
        service: str,
        reason: str = "",
    ) -> HoldDecision[T]:
        """Quarantine a request the detector said to hold, or refuse it when full."""
        mine = self._by_user.get(user_id)
        if mine is not None and request_id in mine:
            return HoldDecision(
                HoldOutcome.ALREADY_HELD, mine[request_id], f"request {request_id} already held"
            )
        if len(mine or ()) >= self.config.max_per_user:
            return HoldDecision(
                HoldOutcome.REFUSED_USER_FULL,
                None,
                f"quarantine full for user {user_id} ({self.config.max_per_user} held): "
                "release or delete held requests",
            )
        if len(self._order) >= self.config.max_total:
            return HoldDecision(
                HoldOutcome.REFUSED_HUB_FULL,
                None,
                f"hub quarantine full ({self.config.max_total} held)",
            )
        entry = QuarantineEntry(user_id, request_id, service, now, reason, item)
        self._insert(entry)
        self._note_batch(user_id, service, now, restored=False)
        return HoldDecision(HoldOutcome.HELD, entry, reason or "quarantined")

    def _insert(self, entry: QuarantineEntry[T]) -> None:
        self._order[(entry.user_id, entry.request_id)] = entry
        self._by_user.setdefault(entry.user_id, OrderedDict())[entry.request_id] = entry

    def _note_batch(self, user_id: str, service: str, now: float, *, restored: bool) -> None:
        batch = self._batches.get((user_id, service))
        if batch is None:
            self._batches[(user_id, service)] = _Batch(now, 1, restored)
        else:
            batch.count += 1

    def _take(self, user_id: str, request_ids: Iterable[str]) -> Removal[T]:
        mine = self._by_user.get(user_id)
        removed: list[QuarantineEntry[T]] = []
        unknown: list[str] = []
        for rid in dict.fromkeys(request_ids):
            entry = mine.pop(rid, None) if mine is not None else None
            if entry is None:
                unknown.append(rid)
                continue
            del self._order[(user_id, rid)]
            removed.append(entry)
        if mine is not None and not mine:
            del self._by_user[user_id]
        return Removal(removed, unknown)

    def release(self, user_id: str, request_ids: Iterable[str]) -> Removal[T]:
        """Take the user's own held requests out of quarantine, to be executed. Ids the user
        does not hold (including other users' ids) are reported as unknown."""
        return self._take(user_id, request_ids)

    def delete(self, user_id: str, request_ids: Iterable[str]) -> Removal[T]:
        """Discard the user's own held requests. Ids it does not hold are reported unknown."""
        return self._take(user_id, request_ids)

    def expire(self, now: float, hold_s: float) -> list[QuarantineEntry[T]]:
        """Remove and return every entry held ``hold_s`` seconds or more (to be refused with a
        clear code). Entries expire in hold order."""
        expired: list[QuarantineEntry[T]] = []
        while self._order:
            entry = next(iter(self._order.values()))
            if entry.held_at + hold_s > now:
                break
            self._take(entry.user_id, (entry.request_id,))
            expired.append(entry)
        return expired

    def due_notifications(self, now: float) -> list[Notification]:
        """Notifications whose gathering time has ended: one per batch of holds for a
        (user, service), saying how many were quarantined. Each batch is told once."""
        due: list[Notification] = []
        while self._batches:
            (user_id, service), batch = next(iter(self._batches.items()))
            if batch.opened_at + self.config.notify_after_s > now:
                break
            del self._batches[(user_id, service)]
            noun = "request" if batch.count == 1 else "requests"
            text = (
                f"{batch.count} {noun} held in quarantine for service {service} "
                "(after a hub restart): release or delete them"
                if batch.restored
                else f"{batch.count} {noun} quarantined for service {service}: "
                "release or delete them"
            )
            due.append(
                Notification(
                    NoticeKind.QUARANTINED, user_id, service, batch.count, text, batch.opened_at
                )
            )
        return due

    def next_due(self, hold_s: float) -> float | None:
        """When ``due_notifications`` or ``expire(..., hold_s)`` next has something to return
        (None: nothing held and nothing to tell). Costs the heads of two ordered maps: entries
        are kept in hold order and batches in the order they opened."""
        due: float | None = None
        for batch in self._batches.values():
            due = batch.opened_at + self.config.notify_after_s
            break
        for entry in self._order.values():
            expiry = entry.held_at + hold_s
            if due is None or expiry < due:
                due = expiry
            break
        return due

    def restore(
        self, entries: Iterable[QuarantineEntry[T]], now: float, *, renotify: bool = True
    ) -> None:
        """Rebuild the quarantine after a restart (caps are not applied: nothing held is
        dropped). With ``renotify``, users are told again what is held (at least once), since a
        notification may have been lost with the previous process."""
        merged = [*self._order.values(), *entries]
        merged.sort(key=lambda e: e.held_at)
        known = set(self._order)
        self._order = OrderedDict()
        self._by_user = {}
        for entry in merged:
            self._insert(entry)
            if renotify and (entry.user_id, entry.request_id) not in known:
                self._note_batch(entry.user_id, entry.service, now, restored=True)
