"""Anomaly detector: whether one request is ordinary, over a warning or over a quarantine tier.

Decides: for each service request (counted per user and service type over a rolling period,
every observed request included, held ones too), its verdict against the user's own thresholds
(or the documented defaults when it set none) and against hub-wide thresholds across all users,
and which warnings to report (once per period).
Must never: execute, refuse or hold a request itself (the engine and the quarantine do); read a
clock; keep more than ``max_tracked`` counters (idle ones are forgotten).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.reference.catalogue import Service

from hub.policies.anomaly.counters import DEFAULT_BUCKETS, RollingCounter
from hub.policies.anomaly.thresholds import (
    DEFAULT_CRITICAL_THRESHOLDS,
    DEFAULT_THRESHOLDS,
    Assessment,
    NoticeKind,
    Notification,
    Thresholds,
    ThresholdSource,
    Verdict,
)

DEFAULT_MAX_TRACKED = 1_000_000
"""(user, service) counters kept at most; beyond it the least recently active one is forgotten.
Idle counters are forgotten long before this in practice (users are registered, services are
the catalogue's)."""


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
