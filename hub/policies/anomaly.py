"""Anomaly detection and quarantine: how many requests a user may send per service.

Decides: for each service request (counted per user and service type over a rolling period),
whether it is ordinary (OK), over a warning threshold (WARNING, reported once per period) or over
a quarantine threshold (QUARANTINE: to be held, not executed), judged against the user's own
thresholds (or the documented defaults when it set none) and against hub-wide thresholds across
all users; which held requests a user may release or delete, which were held too long, when the
quarantine is full (the request is then refused rather than held), and when to tell a user that
requests were quarantined.
Must never: execute, refuse or answer a request itself (the engine does, with the decisions
returned here); read a clock (``now`` is given); open files or sockets; grow without bound
(counters use fixed buckets and idle ones are forgotten; the quarantine has caps).

Counting model: every observed request counts, including those that end up held, so a user who
keeps flooding stays over its threshold. Counts are kept in ``RollingCounter``s of
``DEFAULT_BUCKETS`` fixed time buckets per period, so an event is counted for between
``period_s - period_s / buckets`` and ``period_s`` seconds (see ``RollingCounter``).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from hub.reference.catalogue import Service

T = TypeVar("T")

DEFAULT_BUCKETS = 60
"""Buckets per period of a rolling counter (granularity: one sixtieth of the period)."""

DEFAULT_PERIOD_S = 3600.0
"""The default counting period: one hour."""

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

DEFAULT_MAX_TRACKED = 1_000_000
"""(user, service) counters kept at most; beyond it the least recently active one is forgotten.
Idle counters are forgotten long before this in practice (users are registered, services are
the catalogue's)."""


# ---- thresholds -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Thresholds:
    """A warning tier and a quarantine tier over a counting period.

    A request is over a tier when the count in the period, this request included, exceeds the
    tier's number: with ``quarantine=100`` the 100th request in the period is executed and the
    101st is held.
    """

    warning: int
    """More requests than this in the period: WARNING (the request still proceeds)."""
    quarantine: int
    """More requests than this in the period: QUARANTINE (the request is held)."""
    period_s: float
    """Length of the rolling counting period, seconds."""

    def __post_init__(self) -> None:
        for name in ("warning", "quarantine"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} threshold must be a positive integer, got {value!r}")
        if self.warning > self.quarantine:
            raise ValueError(
                f"warning threshold {self.warning} is above quarantine threshold {self.quarantine}"
            )
        if (
            isinstance(self.period_s, bool)
            or not isinstance(self.period_s, int | float)
            or not math.isfinite(self.period_s)
            or self.period_s <= 0
        ):
            raise ValueError(f"period must be a positive number of seconds, got {self.period_s!r}")


DEFAULT_THRESHOLDS = Thresholds(warning=80_000, quarantine=100_000, period_s=DEFAULT_PERIOD_S)
"""For a user that set none, per service: generous, so ordinary bulk traffic is never held."""

DEFAULT_CRITICAL_THRESHOLDS = Thresholds(
    warning=40_000, quarantine=50_000, period_s=DEFAULT_PERIOD_S
)
"""For a user that set none, per critical service (tariffs, supply, credit): half the above."""


class ThresholdSource(StrEnum):
    """Whose threshold a count was compared with."""

    USER = "set by the user"
    DEFAULT = "default (the user set none)"
    HUB_WIDE = "hub-wide, across all users"


class Verdict(StrEnum):
    """What anomaly detection says about one request."""

    OK = "ok"
    WARNING = "warning"
    QUARANTINE = "quarantine"

    @property
    def severity(self) -> int:
        """0 for OK, 1 for WARNING, 2 for QUARANTINE."""
        return _SEVERITY[self]


_SEVERITY = {Verdict.OK: 0, Verdict.WARNING: 1, Verdict.QUARANTINE: 2}


class NoticeKind(StrEnum):
    """What a notification tells."""

    WARNING = "warning"
    """A warning threshold was crossed (reported once per period)."""
    QUARANTINED = "quarantined"
    """Requests were quarantined (reported once per batch)."""


@dataclass(frozen=True, slots=True)
class Notification:
    """Decision: tell a user (or, for hub-wide thresholds, the hub's operator) about anomalies.

    The engine delivers a user's notification as a hub alert through the outbox."""

    kind: NoticeKind
    """Warning or quarantined."""
    user_id: str | None
    """The user to tell; None for a hub-wide warning, which is for the operator (audit)."""
    service: str
    """The service reference variant concerned."""
    count: int
    """Requests counted (WARNING) or quarantined in the batch (QUARANTINED)."""
    text: str
    """One human-readable line, ready for the alert or the audit."""
    since: float
    """When the batch opened (QUARANTINED) or the threshold was crossed (WARNING)."""


@dataclass(frozen=True, slots=True)
class Assessment:
    """The detector's answer for one request."""

    verdict: Verdict
    """OK, WARNING (proceed) or QUARANTINE (hold)."""
    reason: str
    """Names the threshold crossed (whose, which tier) and the counts; empty when OK."""
    crossed: tuple[ThresholdSource, ...]
    """The thresholds at the verdict's tier: the user's (or default) first, then hub-wide."""
    user_count: int
    """This user's requests for the service in its period, this one included."""
    hub_count: int | None
    """All users' requests for the service in the hub-wide period; None without hub thresholds."""
    notices: tuple[Notification, ...] = ()
    """Warnings to report now (each at most once per period per user and service, or per
    service hub-wide)."""

    @property
    def hold(self) -> bool:
        """True when the request must be quarantined."""
        return self.verdict is Verdict.QUARANTINE


# ---- rolling counter ---------------------------------------------------------------------------


class RollingCounter:
    """Events counted over a rolling period in a fixed number of time buckets.

    The time line is cut into buckets of ``period_s / buckets`` seconds aligned on multiples of
    that width (from time 0). The count at ``now`` is the sum of the bucket holding ``now`` and
    the ``buckets - 1`` before it. So an event at ``t`` stops counting exactly when the period
    rolls past its bucket, at ``(floor(t / width) + buckets) * width``: between
    ``period_s - width`` and ``period_s`` seconds after it (granularity one bucket width).
    Memory is ``buckets`` integers whatever the rate. Time that steps back is counted in the
    newest bucket.
    """

    __slots__ = ("_counts", "_n", "_newest", "_period", "_total")

    def __init__(self, period_s: float, buckets: int = DEFAULT_BUCKETS) -> None:
        if not math.isfinite(period_s) or period_s <= 0:
            raise ValueError(f"period must be a positive number of seconds, got {period_s!r}")
        if buckets < 1:
            raise ValueError(f"need at least one bucket, got {buckets}")
        self._period = float(period_s)
        self._n = buckets
        self._counts = [0] * buckets
        self._newest: int | None = None
        self._total = 0

    @property
    def period_s(self) -> float:
        """Length of the rolling period, seconds."""
        return self._period

    @property
    def granularity_s(self) -> float:
        """Width of one bucket: how early, at most, an event may stop counting."""
        return self._period / self._n

    def _advance(self, now: float) -> int:
        index = math.floor(now * self._n / self._period)
        newest = self._newest
        if newest is None:
            self._newest = index
            return index
        if index <= newest:
            return newest
        if index - newest >= self._n:
            self._counts = [0] * self._n
            self._total = 0
        else:
            counts = self._counts
            for i in range(newest + 1, index + 1):
                j = i % self._n
                self._total -= counts[j]
                counts[j] = 0
        self._newest = index
        return index

    def add(self, now: float, n: int = 1) -> int:
        """Count ``n`` events at ``now``; returns the count in the period, these included."""
        index = self._advance(now)
        self._counts[index % self._n] += n
        self._total += n
        return self._total

    def total(self, now: float) -> int:
        """The count in the period ending at ``now``."""
        self._advance(now)
        return self._total


# ---- detector ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnomalyConfig:
    """Tunables of anomaly detection (all configurable at start-up)."""

    default: Thresholds = DEFAULT_THRESHOLDS
    """Thresholds for a user that set none, for services not in ``per_service``."""
    per_service: Mapping[str, Thresholds] = field(default_factory=dict)
    """Default thresholds by service reference variant, for users that set none."""
    hub_wide: Mapping[str, Thresholds] = field(default_factory=dict)
    """Initial hub-wide thresholds by service; services not listed have none."""
    buckets: int = DEFAULT_BUCKETS
    """Buckets per counting period (the counting granularity is period / buckets)."""
    max_tracked: int = DEFAULT_MAX_TRACKED
    """(user, service) counters kept at most."""

    def __post_init__(self) -> None:
        if self.buckets < 1:
            raise ValueError(f"need at least one bucket, got {self.buckets}")
        if self.max_tracked < 1:
            raise ValueError(f"max_tracked must be positive, got {self.max_tracked}")

    @classmethod
    def for_services(
        cls,
        services: Iterable[Service],
        ordinary: Thresholds = DEFAULT_THRESHOLDS,
        critical: Thresholds = DEFAULT_CRITICAL_THRESHOLDS,
    ) -> AnomalyConfig:
        """Defaults per service from a catalogue: ``critical`` for critical services (the ones
        the user signs), ``ordinary`` for the rest."""
        return cls(
            default=ordinary,
            per_service={s.code: critical if s.critical else ordinary for s in services},
        )


@dataclass(slots=True)
class _Track:
    counter: RollingCounter
    last_seen: float
    warned_until: float = -math.inf


def _over(count: int, t: Thresholds) -> Verdict:
    if count > t.quarantine:
        return Verdict.QUARANTINE
    if count > t.warning:
        return Verdict.WARNING
    return Verdict.OK


def _tier(verdict: Verdict, t: Thresholds) -> int:
    return t.quarantine if verdict is Verdict.QUARANTINE else t.warning


class AnomalyDetector:
    """Counts requests per (user, service) and per service hub-wide, and judges each one."""

    def __init__(self, config: AnomalyConfig | None = None) -> None:
        self.config = config or AnomalyConfig()
        self._user_thresholds: dict[tuple[str, str], Thresholds] = {}
        self._hub_thresholds: dict[str, Thresholds] = dict(self.config.hub_wide)
        self._tracks: OrderedDict[tuple[str, str], _Track] = OrderedDict()
        self._hub_tracks: dict[str, _Track] = {}
        self.evicted = 0
        """Active counters forgotten because ``max_tracked`` was reached (should stay 0)."""

    # ---- configuration -------------------------------------------------------------------

    def set_user_thresholds(self, user_id: str, service: str, thresholds: Thresholds) -> None:
        """The user's own thresholds for one service. A different period restarts its count."""
        self._user_thresholds[(user_id, service)] = thresholds

    def clear_user_thresholds(self, user_id: str, service: str) -> None:
        """Back to the defaults for this user and service."""
        self._user_thresholds.pop((user_id, service), None)

    def set_hub_thresholds(self, service: str, thresholds: Thresholds | None) -> None:
        """Hub-wide thresholds for a service across all users (None removes them). A different
        period restarts the hub-wide count."""
        if thresholds is None:
            self._hub_thresholds.pop(service, None)
            self._hub_tracks.pop(service, None)
        else:
            self._hub_thresholds[service] = thresholds

    def user_thresholds(self, user_id: str, service: str) -> tuple[Thresholds, ThresholdSource]:
        """The thresholds that apply to this user and service, and whose they are."""
        own = self._user_thresholds.get((user_id, service))
        if own is not None:
            return own, ThresholdSource.USER
        return self.config.per_service.get(service, self.config.default), ThresholdSource.DEFAULT

    def hub_thresholds(self, service: str) -> Thresholds | None:
        """The hub-wide thresholds for a service, if any."""
        return self._hub_thresholds.get(service)

    # ---- judging -------------------------------------------------------------------------

    @property
    def tracked(self) -> int:
        """(user, service) counters currently kept."""
        return len(self._tracks)

    def _track(self, key: tuple[str, str], period_s: float, now: float) -> _Track:
        tracks = self._tracks
        track = tracks.get(key)
        if track is not None:
            tracks.move_to_end(key)
            if track.counter.period_s != period_s:
                track.counter = RollingCounter(period_s, self.config.buckets)
            return track
        self._forget_idle_front(now)
        if len(tracks) >= self.config.max_tracked:
            tracks.popitem(last=False)
            self.evicted += 1
        track = _Track(RollingCounter(period_s, self.config.buckets), now)
        tracks[key] = track
        return track

    def _forget_idle_front(self, now: float) -> None:
        tracks = self._tracks
        while tracks:
            track = next(iter(tracks.values()))
            if track.last_seen + track.counter.period_s > now:
                return
            tracks.popitem(last=False)

    def forget_idle(self, now: float) -> int:
        """Forget every counter with nothing left in its period; returns how many. (Counters
        are also forgotten in passing, oldest first, as requests are observed.)"""
        idle = [
            key
            for key, track in self._tracks.items()
            if track.last_seen + track.counter.period_s <= now
        ]
        for key in idle:
            del self._tracks[key]
        return len(idle)

    def observe(self, user_id: str, service: str, now: float) -> Assessment:
        """Count one request and judge it against the user's and the hub-wide thresholds."""
        own, source = self.user_thresholds(user_id, service)
        track = self._track((user_id, service), own.period_s, now)
        track.last_seen = max(track.last_seen, now)
        user_count = track.counter.add(now)
        user_verdict = _over(user_count, own)
        notices: list[Notification] = []
        if user_verdict is Verdict.WARNING and now >= track.warned_until:
            track.warned_until = now + own.period_s
            notices.append(
                Notification(
                    NoticeKind.WARNING,
                    user_id,
                    service,
                    user_count,
                    f"warning: user {user_id} sent {user_count} requests for service {service} "
                    f"in {own.period_s:g} s, over its warning threshold of {own.warning} "
                    f"({source.value})",
                    now,
                )
            )

        hub = self._hub_thresholds.get(service)
        hub_count: int | None = None
        hub_verdict = Verdict.OK
        if hub is not None:
            hub_track = self._hub_tracks.get(service)
            if hub_track is None or hub_track.counter.period_s != hub.period_s:
                hub_track = _Track(RollingCounter(hub.period_s, self.config.buckets), now)
                self._hub_tracks[service] = hub_track
            hub_count = hub_track.counter.add(now)
            hub_verdict = _over(hub_count, hub)
            if hub_verdict is Verdict.WARNING and now >= hub_track.warned_until:
                hub_track.warned_until = now + hub.period_s
                notices.append(
                    Notification(
                        NoticeKind.WARNING,
                        None,
                        service,
                        hub_count,
                        f"warning: all users sent {hub_count} requests for service {service} "
                        f"in {hub.period_s:g} s, over the hub-wide warning threshold of "
                        f"{hub.warning}",
                        now,
                    )
                )

        verdict = user_verdict if user_verdict.severity >= hub_verdict.severity else hub_verdict
        crossed: list[ThresholdSource] = []
        reasons: list[str] = []
        if verdict is not Verdict.OK:
            if user_verdict is verdict:
                crossed.append(source)
                reasons.append(
                    f"{user_count} requests by user {user_id} for service {service} in "
                    f"{own.period_s:g} s exceed its {verdict.value} threshold of "
                    f"{_tier(verdict, own)} ({source.value})"
                )
            if hub is not None and hub_verdict is verdict:
                crossed.append(ThresholdSource.HUB_WIDE)
                reasons.append(
                    f"{hub_count} requests by all users for service {service} in "
                    f"{hub.period_s:g} s exceed the hub-wide {verdict.value} threshold of "
                    f"{_tier(verdict, hub)}"
                )
        return Assessment(
            verdict, "; ".join(reasons), tuple(crossed), user_count, hub_count, tuple(notices)
        )


# ---- quarantine -------------------------------------------------------------------------------


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
        deadline = now - hold_s
        while self._order:
            entry = next(iter(self._order.values()))
            if entry.held_at > deadline:
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
