"""DCC schedules: 5.1 Create Schedule, 5.2 Read Schedule, 5.3 Delete Schedule, as pure state.

Decides: whether a 5.1, 5.2 or 5.3 parameter map is valid (every problem, in words a person can
act on); on which UK day and at which UTC instant each firing of a schedule is nominally due;
when it actually runs (nominal plus a deterministic pseudo-random offset, so a million daily
reads do not start in the same second); the concrete service parameters of each firing; which
firings are due at ``now``; who may read and delete a schedule; which schedules stop on change
of supplier or of the settlement flag; and how a schedule is written to plain values and read
back after a restart.
Must never: read a clock (``now`` is always passed in), open a file or a socket, start a
thread, decide access to a device (``hub.policies.access`` does, when the schedule is created and again
for each firing at its execution time), or amend a schedule (DCC schedules cannot be amended:
delete one and create another).

5.1 parameters (``CREATE_PARAMS`` documents each; ``validate_create`` checks them):
``service`` (a code the catalogue marks schedulable, in scope), ``device_id`` (16 upper-case hex
digits), ``recurrence`` (``daily`` | ``weekly`` | ``monthly``), ``start_date`` (``YYYY-MM-DD``, a
UK civil date), ``time_of_day`` (``HH:MM``, UK local wall-clock time), ``day_of_week`` (weekly
only: ``mon`` .. ``sun``), ``day_of_month`` (monthly only: 1-31), optional ``end_date``
(``YYYY-MM-DD``, inclusive) and optional ``params`` (the scheduled service's own parameters).
5.2 takes an optional ``schedule_id`` (else all the user's schedules); 5.3 a ``schedule_id``.

Rules:

* **Occurrences.** Firing index 0, 1, 2, ... is the n-th occurrence on or after ``start_date``:
  every UK day (daily), every ``day_of_week`` (weekly), or ``day_of_month`` of every month
  (monthly), where a month without that day fires on its last day (31 fires on 28 or 29
  February and on 30 April; 30 fires on 28 or 29 February). ``end_date`` is the last UK day
  a firing may fall on.
* **Nominal instant.** ``time_of_day`` on the occurrence's UK day, turned into UTC by
  ``hub.reference.uktime.from_uk_local``. Wall-clock time is kept across clock changes: a daily 00:30
  schedule fires at 00:30 GMT in winter and 00:30 BST in summer (its UTC instant moves by an
  hour). A time in the spring gap (01:00-01:59 on the last Sunday of March does not exist)
  fires one hour later by the wall clock: 01:30 fires at 02:30 BST, which is 01:30 UTC. A time
  in the autumn overlap (01:00-01:59 on the last Sunday of October happens twice) fires once,
  at its first (BST) occurrence: 01:30 fires at 01:30 BST, which is 00:30 UTC.
* **Offset.** A firing runs at ``fire_at = nominal_at + offset(seed, schedule_id, index,
  window_s)``, uniform in ``[0, window_s)`` and the same on every run and every driver. The
  window (default ``DEFAULT_OFFSET_WINDOW_S``) is at most ``MAX_OFFSET_WINDOW_S`` (12 hours),
  less than the shortest gap between two occurrences (23 hours), so a schedule's firings run
  in index order.
* **Time ranges.** Services whose parameters are a time range (``start``, ``end``: profile
  reads 4.8.x, daily logs 4.6.x, 4.14, 4.17) are scheduled with ``params.window_s`` instead:
  each firing asks for ``[nominal_at - window_s, nominal_at)``. The range hangs on the nominal
  instant, not on ``fire_at``, so the random offset never changes what is read. ``window_s``
  is a fixed number of seconds: a lookback of 86,400 s repeats or misses an hour next to a
  clock change (those days are 23 or 25 hours long); ask for a longer window to overlap.
* **First firing.** A new schedule's first firing is the first occurrence whose nominal instant
  is strictly after the creation time; a ``start_date`` in the past simply starts from there.
  A schedule with no firing left is refused.
* **Missed firings.** ``due(now)`` fires each schedule at most once per call: the latest
  firing whose ``fire_at`` has passed; older missed ones are skipped and counted in
  ``Firing.skipped``. After an outage a daily schedule fires once on restart, not once per
  missed day. A driver that calls ``due`` at ``next_due()`` never skips.
* **Restart.** ``Schedule.to_record`` holds the next firing index. ``due`` advances it; the
  driver persists the advanced record (or deletes it when ``Firing.final``) before dispatching
  the firing, so a crash in between can lose at most that firing, never repeat it. A firing's
  ``request_id`` (``"<schedule id>:<index>"``, valid on the wire) is unique, for idempotency.
* **Ids.** ``"S"`` and a decimal counter from 1. The counter (``Scheduler.next_number``) must be
  persisted and given to ``restore`` so that ids of deleted schedules are never reused.
* **Ownership.** A user reads only its own schedules (another user's id reads as unknown);
  only the creating user may delete a schedule; ``stop_for_device`` ends the losing supplier's
  schedules for a meter on change of supplier.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TypeVar, cast

from hub.flows.schedule_calendar import (
    ScheduleSpec,
    firing_params,
    first_index_after,
    last_index,
    nominal_at,
    offset,
)
from hub.flows.schedule_spec import (
    _ROLES,
    _SCHEDULE_ID,
    DEFAULT_OFFSET_WINDOW_S,
    MAX_OFFSET_WINDOW_S,
    RECORD_VERSION,
    DeleteOutcome,
    ScheduleError,
    _as_int,
    parse_create,
)
from hub.reference.catalogue import CATALOGUE, Catalogue
from hub.reference.roles import Role
from hub.reference.standard import Instant, Value

# ---------------------------------------------------------------------------- state


@dataclass(frozen=True, slots=True)
class Schedule:
    """One live schedule: who owns it, what it runs, and which firing comes next."""

    schedule_id: str
    """Hub-assigned id, ``S`` and a decimal number."""
    owner: str
    """The user who created it; only this user may read or delete it."""
    role: Role
    """The role the owner created it in (each firing is access-checked in it)."""
    spec: ScheduleSpec
    """What to run, on which device, and when."""
    created_at: Instant
    """When it was created."""
    next_index: int
    """Index of the next firing to run; everything before it has run or was skipped."""

    def next_nominal_at(self) -> Instant | None:
        """The nominal instant of the next firing, or None if none is left."""
        last = last_index(self.spec)
        if last is not None and self.next_index > last:
            return None
        return nominal_at(self.spec, self.next_index)

    def to_record(self) -> dict[str, Value]:
        """Plain values (msgpack- and JSON-friendly) from which ``from_record`` rebuilds it."""
        return {
            "v": RECORD_VERSION,
            "schedule_id": self.schedule_id,
            "owner": self.owner,
            "role": self.role.value,
            "created_at": self.created_at,
            "next_index": self.next_index,
            "spec": self.spec.to_params(),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Value], catalogue: Catalogue = CATALOGUE) -> Schedule:
        """The schedule written by ``to_record``; ``ScheduleError`` if the record is damaged."""
        problems: list[str] = []
        if record.get("v") != RECORD_VERSION:
            problems.append(f"record version is {record.get('v')!r}, not {RECORD_VERSION}")
        schedule_id, owner, role = (
            record.get("schedule_id"),
            record.get("owner"),
            record.get("role"),
        )
        created_at, next_index, spec = (
            record.get("created_at"),
            record.get("next_index"),
            record.get("spec"),
        )
        if not isinstance(schedule_id, str) or not _SCHEDULE_ID.fullmatch(schedule_id):
            problems.append(f"schedule_id is {schedule_id!r}")
        if not isinstance(owner, str) or not owner:
            problems.append(f"owner is {owner!r}")
        if not isinstance(role, str) or role not in _ROLES:
            problems.append(f"role is {role!r}")
        if isinstance(created_at, bool) or not isinstance(created_at, int | float):
            problems.append(f"created_at is {created_at!r}")
        index = _as_int(next_index)
        if index is None or index < 0:
            problems.append(f"next_index is {next_index!r}")
        if not isinstance(spec, Mapping):
            problems.append("spec is not a map")
        if problems:
            raise ScheduleError([f"schedule record: {p}" for p in problems])
        assert isinstance(schedule_id, str)
        assert isinstance(owner, str)
        assert isinstance(role, str)
        assert isinstance(created_at, int | float)
        assert index is not None
        assert isinstance(spec, Mapping)
        return cls(
            schedule_id=schedule_id,
            owner=owner,
            role=Role(role),
            spec=parse_create(spec, catalogue),
            created_at=float(created_at),
            next_index=index,
        )


@dataclass(frozen=True, slots=True)
class Firing:
    """Decision: run the scheduled service now (after access control at ``fire_at``)."""

    schedule_id: str
    """The schedule that fired."""
    owner: str
    """The schedule's owner; the response goes to this user."""
    role: Role
    """The role the service is sent in."""
    service: str
    """The service to run."""
    device_id: str
    """The target device."""
    params: Mapping[str, Value]
    """Concrete service parameters (a time range already derived)."""
    nominal_at: Instant
    """The firing's nominal instant; targets and time ranges are measured from it."""
    fire_at: Instant
    """When it was due to run: ``nominal_at`` plus its offset."""
    index: int
    """The firing's index in the schedule (0 is the first occurrence)."""
    skipped: int = 0
    """Earlier firings missed (e.g. while the hub was down) and not run."""
    final: bool = False
    """No firing follows: the schedule has ended and is removed."""

    @property
    def request_id(self) -> str:
        """A unique, repeatable request id for this firing: ``"<schedule_id>:<index>"``."""
        return f"{self.schedule_id}:{self.index}"


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """The outcome of 5.3 Delete Schedule."""

    outcome: DeleteOutcome
    """Deleted, or why not."""
    reason: str
    """In words a person can act on."""
    schedule: Schedule | None = None
    """The deleted schedule (None when refused)."""

    @property
    def ok(self) -> bool:
        """True when the schedule was deleted."""
        return self.outcome is DeleteOutcome.DELETED


@dataclass(frozen=True, slots=True)
class Stopped:
    """A schedule ended by the hub (change of supplier), not by its owner."""

    schedule: Schedule
    """The schedule, as it stood when stopped."""
    reason: str
    """Why it stopped, for the owner and the audit."""


def _id_key(schedule_id: str) -> tuple[int, str]:
    return len(schedule_id), schedule_id  # numeric order for 'S' + decimal


_T = TypeVar("_T")
_HeapEntry = tuple[float, str, int]  # fire_at, schedule_id, index


class Scheduler:
    """All live schedules and the heap of their next firings. Pure state: ``now`` is given."""

    __slots__ = (
        "_by_device",
        "_by_id",
        "_by_owner",
        "_heap",
        "_next_number",
        "_seed",
        "_shared",
        "_stale",
        "_window_s",
    )

    def __init__(self, *, seed: int = 0, window_s: float = DEFAULT_OFFSET_WINDOW_S) -> None:
        """``seed`` and ``window_s`` fix every firing's offset; keep them across restarts."""
        if not 0 <= window_s <= MAX_OFFSET_WINDOW_S:
            raise ValueError(f"offset window must be 0-{MAX_OFFSET_WINDOW_S:g} s, got {window_s}")
        self._seed = seed
        self._window_s = float(window_s)
        self._by_id: dict[str, Schedule] = {}
        self._by_owner: dict[str, dict[str, None]] = {}  # insertion-ordered id sets
        self._by_device: dict[str, str | list[str]] = {}  # a list only for several
        self._shared: dict[object, object] = {}  # one copy of equal dates, times, params, owners
        self._heap: list[_HeapEntry] = []
        self._stale = 0  # heap entries whose schedule has gone
        self._next_number = 1

    def __len__(self) -> int:
        return len(self._by_id)

    @property
    def next_number(self) -> int:
        """The number the next schedule id will carry; persist it for ``restore``."""
        return self._next_number

    def fire_at(self, schedule: Schedule, index: int | None = None) -> Instant:
        """When firing ``index`` (default: the next) of ``schedule`` runs."""
        n = schedule.next_index if index is None else index
        return nominal_at(schedule.spec, n) + offset(
            self._seed, schedule.schedule_id, n, self._window_s
        )

    def get(self, schedule_id: str) -> Schedule | None:
        """The live schedule with this id, whoever owns it."""
        return self._by_id.get(schedule_id)

    def ids(self) -> list[str]:
        """Every live schedule's id, oldest first."""
        return sorted(self._by_id, key=_id_key)

    # ---- 5.1, 5.2, 5.3 --------------------------------------------------------------------

    def create(self, owner: str, role: Role, spec: ScheduleSpec, now: Instant) -> Schedule:
        """Add a schedule whose first firing is the first one nominally after ``now``.

        ``ScheduleError`` when no firing is left (its end date has passed).
        """
        first = first_index_after(spec, now)
        if first is None:
            raise ScheduleError(
                [f"the schedule has no firing after now (end_date {spec.end_date})"]
            )
        schedule = Schedule(f"S{self._next_number}", owner, role, spec, float(now), first)
        self._next_number += 1
        return self._add(schedule)

    def read(self, user_id: str, schedule_id: str | None = None) -> list[Schedule]:
        """The user's own schedules, oldest first, or the one asked for (an empty list when it
        is unknown or another user's: existence is not revealed)."""
        if schedule_id is not None:
            schedule = self._by_id.get(schedule_id)
            return [schedule] if schedule is not None and schedule.owner == user_id else []
        ids = sorted(self._by_owner.get(user_id, ()), key=_id_key)
        return [self._by_id[i] for i in ids]

    def delete(self, user_id: str, schedule_id: str) -> DeleteResult:
        """Delete a schedule; only its owner may."""
        schedule = self._by_id.get(schedule_id)
        if schedule is None:
            return DeleteResult(
                DeleteOutcome.UNKNOWN_SCHEDULE,
                f"no schedule {schedule_id}: it never existed, has ended or was deleted",
            )
        if schedule.owner != user_id:
            return DeleteResult(
                DeleteOutcome.NOT_OWNER,
                f"only the user who created schedule {schedule_id} may delete it",
            )
        self._remove(schedule, stale=True)
        return DeleteResult(DeleteOutcome.DELETED, f"schedule {schedule_id} deleted", schedule)

    # ---- change of supplier ----------------------------------------------------------------

    def stop_for_device(self, device_id: str, owner: str, reason: str) -> list[Stopped]:
        """End every schedule ``owner`` has on ``device_id`` (the losing supplier's, on change
        of supplier), oldest first."""
        ids = sorted(
            (i for i in self._on_device(device_id) if self._by_id[i].owner == owner),
            key=_id_key,
        )
        stopped = []
        for schedule_id in ids:
            schedule = self._by_id[schedule_id]
            self._remove(schedule, stale=True)
            stopped.append(Stopped(schedule, reason))
        return stopped

    def on_device(self, device_id: str) -> list[str]:
        """Ids of every schedule on ``device_id``, oldest first."""
        return sorted(self._on_device(device_id), key=_id_key)

    def stop_where(
        self, device_id: str, keep: Callable[[Schedule], bool], reason: str
    ) -> list[Stopped]:
        """End every schedule on ``device_id`` that ``keep`` does not keep (for example a
        supplier's settlement reads once the meter point is no longer settled half-hourly),
        oldest first."""
        stopped = []
        for schedule_id in self.on_device(device_id):
            schedule = self._by_id[schedule_id]
            if keep(schedule):
                continue
            self._remove(schedule, stale=True)
            stopped.append(Stopped(schedule, reason))
        return stopped

    # ---- time ------------------------------------------------------------------------------

    def next_due(self) -> Instant | None:
        """When ``due`` next has something to fire, or None when nothing is scheduled."""
        self._drop_stale_top()
        return self._heap[0][0] if self._heap else None

    def due(self, now: Instant) -> list[Firing]:
        """The firings due at ``now`` in ``fire_at`` order, each schedule advanced past them.

        A schedule fires at most once per call: its latest due firing; older ones are skipped
        (``Firing.skipped``). Persist each advanced schedule (``get(id).to_record()``), or
        remove it when ``Firing.final``, before dispatching the firing.
        """
        fired: list[Firing] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, schedule_id, index = heapq.heappop(heap)
            schedule = self._by_id.get(schedule_id)
            if schedule is None or schedule.next_index != index:
                self._stale -= 1
                continue
            fired.append(self._fire(schedule, now))
        fired.sort(key=lambda f: (f.fire_at, _id_key(f.schedule_id)))
        return fired

    def _latest_due_index(self, schedule: Schedule, now: Instant, last: int | None) -> int:
        """The latest index whose firing is due at ``now`` (at least the popped one)."""
        spec, index = schedule.spec, schedule.next_index
        if (last is not None and index >= last) or nominal_at(spec, index + 1) > now:
            return index  # on time: the usual case
        after = first_index_after(spec, now)
        if after is None:  # past the end date: the last firing is the latest
            assert last is not None
            latest = last
        else:
            latest = after - 1  # the latest firing nominally at or before now
        if latest > index and self.fire_at(schedule, latest) > now:
            latest -= 1  # nominally past but still inside its offset window
        return max(latest, index)

    def _fire(self, schedule: Schedule, now: Instant) -> Firing:
        spec = schedule.spec
        last = last_index(spec)
        index = self._latest_due_index(schedule, now, last)
        nominal = nominal_at(spec, index)
        final = last is not None and index + 1 > last
        if final:
            self._remove(schedule, stale=False)
        else:
            advanced = replace(schedule, next_index=index + 1)
            self._by_id[schedule.schedule_id] = advanced
            self._push(advanced)
        return Firing(
            schedule_id=schedule.schedule_id,
            owner=schedule.owner,
            role=schedule.role,
            service=spec.service,
            device_id=spec.device_id,
            params=firing_params(spec, nominal),
            nominal_at=nominal,
            fire_at=nominal + offset(self._seed, schedule.schedule_id, index, self._window_s),
            index=index,
            skipped=index - schedule.next_index,
            final=final,
        )

    # ---- restart ---------------------------------------------------------------------------

    def restore(self, schedules: Iterable[Schedule], next_number: int = 1) -> None:
        """Reload persisted schedules after a restart; ``next_number`` is the persisted
        ``Scheduler.next_number`` (ids are never reused). Firings missed while the hub was
        down run once, at the next ``due`` (module rules)."""
        for schedule in schedules:
            if schedule.schedule_id in self._by_id:
                raise ValueError(f"schedule {schedule.schedule_id} restored twice")
            number = int(schedule.schedule_id[1:])
            self._next_number = max(self._next_number, number + 1)
            last = last_index(schedule.spec)
            if last is None or schedule.next_index <= last:
                self._add(schedule)
        self._next_number = max(self._next_number, next_number)

    # ---- indexes ---------------------------------------------------------------------------

    def _share(self, value: _T) -> _T:
        # keyed with the type too: equal values of different types (1, 1.0, True) stay apart
        return cast(_T, self._shared.setdefault((type(value), value), value))

    def _compact_schedule(self, schedule: Schedule) -> Schedule:
        """The same schedule, holding one shared copy of values many schedules repeat."""
        spec = schedule.spec
        params = spec.params
        try:
            key = (dict, tuple(sorted((k, type(v), v) for k, v in params.items())))
            hash(key)
        except TypeError:  # a list or map inside: kept as it is
            pass
        else:
            params = cast(Mapping[str, Value], self._shared.setdefault(key, params))
        spec = replace(
            spec,
            start_date=self._share(spec.start_date),
            time_of_day=self._share(spec.time_of_day),
            end_date=None if spec.end_date is None else self._share(spec.end_date),
            params=params,
        )
        return replace(schedule, owner=self._share(schedule.owner), spec=spec)

    def _add(self, schedule: Schedule) -> Schedule:
        schedule = self._compact_schedule(schedule)
        schedule_id = schedule.schedule_id
        self._by_id[schedule_id] = schedule
        self._by_owner.setdefault(schedule.owner, {})[schedule_id] = None
        device_id = schedule.spec.device_id
        present = self._by_device.get(device_id)
        if present is None:
            self._by_device[device_id] = schedule_id
        elif isinstance(present, str):
            self._by_device[device_id] = [present, schedule_id]
        else:
            present.append(schedule_id)
        self._push(schedule)
        return schedule

    def _on_device(self, device_id: str) -> list[str]:
        present = self._by_device.get(device_id)
        if present is None:
            return []
        return [present] if isinstance(present, str) else list(present)

    def _push(self, schedule: Schedule) -> None:
        entry = (self.fire_at(schedule), schedule.schedule_id, schedule.next_index)
        heapq.heappush(self._heap, entry)

    def _remove(self, schedule: Schedule, *, stale: bool) -> None:
        schedule_id = schedule.schedule_id
        del self._by_id[schedule_id]
        owned = self._by_owner[schedule.owner]
        del owned[schedule_id]
        if not owned:
            del self._by_owner[schedule.owner]
        device_id = schedule.spec.device_id
        remaining = [i for i in self._on_device(device_id) if i != schedule_id]
        if not remaining:
            del self._by_device[device_id]
        else:
            self._by_device[device_id] = remaining[0] if len(remaining) == 1 else remaining
        if stale:  # its heap entry stays until popped, or until the heap is compacted
            self._stale += 1
            if self._stale > 1_024 and self._stale > len(self._by_id):
                self._compact()

    def _compact(self) -> None:
        live = self._by_id
        self._heap = [e for e in self._heap if (s := live.get(e[1])) and s.next_index == e[2]]
        heapq.heapify(self._heap)
        self._stale = 0

    def _drop_stale_top(self) -> None:
        heap, live = self._heap, self._by_id
        while heap:
            _, schedule_id, index = heap[0]
            schedule = live.get(schedule_id)
            if schedule is not None and schedule.next_index == index:
                return
            heapq.heappop(heap)
            self._stale -= 1
