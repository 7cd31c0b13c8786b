"""The comms-hub line: carrying commands to the devices behind one comms hub and back, as a
sans-IO state machine that the live pool actors and the SimPy simulator both drive.

Decides: the order commands reach the devices (highest priority first, then first come; as
many commands at a time as the line has channels, one by default; a bounded queue that answers
E20 when full), and the fate of each command: head-end encode (a plugin that cannot encode
answers E20), the cell it crosses when the driver models one (``simfield.wan.CellLink``: its
queue and service time), the WAN outcome (unreachable E20, no response E21), frames the WAN
corrupts meanwhile (``corrupt_share``: a corrupted command frame fails the device's check and
is dropped, so the hub answers it as any unanswered command, E21 at its response timeout; a
corrupted uplink fails the head-end's check), the device's reading of the frame (a frame it
cannot read answers E21), the
devices' answer (no power: E21; any other fault of a simulated device: E21, and the line goes
on), the uplink of the response and of every alert through the head-end's format (a frame that
fails its integrity check is reported with the comms hub id, never passed on), and the wake-up
that lets a future-dated command run on the device at its time. A driver that spreads the hub's
side of decoding over other threads builds its lines with ``decode_uplinks=False`` and calls
``decode`` itself, the same function the line calls otherwise.
Must never: wait, sleep, read a clock, start a thread or timer, or touch a socket: time comes in
as ``now``, and waiting is an action the driver performs (``Wait``, ``WakeAt``), so the live
actor waits with timers and the simulator with ``env.timeout``.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol, TypeAlias

from hub.engine import Dispatch
from hub.headends.base import FrameError, HeadEnd, HeadEndError, IntegrityError
from hub.reference.codes import ResponseCode
from hub.reference.standard import (
    DeviceAlert,
    DeviceCommand,
    DeviceResponse,
    Uplink,
)
from simfield.site import NoAnswerError
from simfield.wan import CellLink, Outcome, Transit, WanProfile, corrupt, transit

log = logging.getLogger(__name__)

MAX_QUEUE_PER_HUB = 256
"""Commands waiting per comms hub; the engine's own cap is lower, so this is a safety net."""
WAKE_MARGIN_S = 0.001
"""How long after a future-dated command's time the devices are woken to run it."""


class DeviceHost(Protocol):
    """The devices behind one comms hub (a simulated premises)."""

    def execute(self, cmd: DeviceCommand, now: float) -> tuple[DeviceResponse, list[DeviceAlert]]:
        """Run one command; return the response and any alerts it raised."""
        ...

    def advance(self, now: float) -> list[DeviceAlert]:
        """Let time pass; return alerts raised meanwhile."""
        ...

    def head_end_of(self, device_id: str) -> str:
        """The head-end type of a device at this premises (alerts use its format)."""
        ...


# ---- actions: what the driver must do ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Wait:
    """Wait ``delay_s``, then call ``arrived(token, now)`` on the comms hub's line."""

    comms_hub: str
    """The line to call back."""
    delay_s: float
    """How long the command's WAN trip takes (zero: call back at once)."""
    token: int
    """Names the command in flight; pass it back unchanged."""


@dataclass(frozen=True, slots=True)
class Carried:
    """A command frame crossed the WAN and reached the devices (for byte and command counts)."""

    comms_hub: str
    """The comms hub it reached."""
    command_id: str
    """The command carried."""
    frame_bytes: int
    """Size of the vendor frame on the WAN."""


@dataclass(frozen=True, slots=True)
class Deliver:
    """Hand a decoded device message to the hub engine."""

    uplink: Uplink
    """The standard response or alert, as the head-end decoded it."""
    frame_bytes: int = 0
    """Size of the vendor frame it came in on the WAN (for byte counts)."""


@dataclass(frozen=True, slots=True)
class Fail:
    """Tell the hub engine that a command could not be completed."""

    command_id: str
    """The command that failed."""
    code: ResponseCode
    """E20 (could not communicate) or E21 (no response)."""
    reason: str
    """What happened, for the user and the audit."""


@dataclass(frozen=True, slots=True)
class Integrity:
    """Tell the hub engine that a frame from a comms hub failed its head-end's check."""

    comms_hub: str
    """The comms hub the frame came from."""
    head_end: str
    """The head-end type whose check failed."""
    reason: str
    """What the check found."""


@dataclass(frozen=True, slots=True)
class Lost:
    """A device alert the devices could not put into their head-end's format: nothing
    reaches the hub (a driver logs or counts it)."""

    comms_hub: str
    """The comms hub whose devices raised the alert."""
    head_end: str
    """The head-end format that refused it."""
    reason: str
    """Why the frame could not be built."""


@dataclass(frozen=True, slots=True)
class Decode:
    """Decode a device frame with its head-end on whichever thread the driver spreads that cost
    to: ``decode(codec, comms_hub, frame)`` gives the ``Deliver`` or ``Integrity`` to perform.
    Only lines built with ``decode_uplinks=False`` ask for it."""

    comms_hub: str
    """The comms hub the frame came from."""
    head_end: str
    """The head-end type that decodes it."""
    frame: bytes
    """The vendor frame, as the devices sent it."""


@dataclass(frozen=True, slots=True)
class WakeAt:
    """At time ``at``, call ``wake(now)`` on the comms hub's line."""

    comms_hub: str
    """The line to wake."""
    at: float
    """When, epoch seconds (in the driver's time)."""


Action: TypeAlias = Wait | Carried | Deliver | Fail | Integrity | Lost | Decode | WakeAt
"""Everything a line asks of its driver."""


# ---- the state machine ----------------------------------------------------------------------


def decode(codec: HeadEnd, comms_hub: str, frame: bytes) -> Deliver | Integrity:
    """The hub's side of an uplink: the decoded message, or the integrity failure to report
    (with the comms hub id); a frame that fails its check is never passed on."""
    try:
        return Deliver(codec.decode_uplink(frame), len(frame))
    except IntegrityError as err:
        return Integrity(comms_hub, codec.name, f"integrity check failed: {err}")
    except FrameError as err:
        return Integrity(comms_hub, codec.name, f"malformed frame: {err}")


class LineState(Enum):
    """Where a comms hub's line is."""

    IDLE = "idle"
    """Nothing in flight; an offered command starts at once."""
    CARRYING = "carrying"
    """Commands are on their way (at most one per channel); others wait in the queue."""


class LineEvent(Enum):
    """What moves a line."""

    START = "start"
    """A queued command takes a free channel."""
    ARRIVE = "arrive"
    """A command's trip is over; others are still in flight."""
    LAST_ARRIVES = "last arrives"
    """The only command in flight has its trip over."""


TRANSITIONS: dict[LineState, dict[LineEvent, LineState]] = {
    LineState.IDLE: {LineEvent.START: LineState.CARRYING},
    LineState.CARRYING: {
        LineEvent.START: LineState.CARRYING,  # only while a channel is free
        LineEvent.ARRIVE: LineState.CARRYING,
        LineEvent.LAST_ARRIVES: LineState.IDLE,
    },
}
"""The legal moves of a line; anything else is a driver's mistake."""


class LineUsageError(Exception):
    """The driver called the line out of turn (the driver's fault, not the field's)."""


@dataclass(frozen=True, slots=True)
class _Queued:
    dispatch: Dispatch
    frame: bytes


@dataclass(frozen=True, slots=True)
class _InFlight:
    token: int
    queued: _Queued
    trip: Transit


class Line:
    """One comms hub's line: a bounded priority queue and a command in flight per channel."""

    __slots__ = (
        "_cell",
        "_codecs",
        "_decode",
        "_flights",
        "_max_queue",
        "_order",
        "_queue",
        "_rng",
        "_tokens",
        "_wan",
        "comms_hub",
        "corrupt_share",
        "host",
        "online",
        "state",
    )

    def __init__(
        self,
        comms_hub: str,
        host: DeviceHost,
        codecs: Mapping[str, HeadEnd],
        wan: WanProfile,
        rng: random.Random,
        max_queue: int = MAX_QUEUE_PER_HUB,
        decode_uplinks: bool = True,
        cell: CellLink | None = None,
    ) -> None:
        """``wan.line_channels`` commands are carried at once; ``cell``: the cell the comms
        hub's commands cross (shared by the lines of one cell), or None where the cell is not
        modelled."""
        self.comms_hub = comms_hub
        """The comms hub this line serves (integrity failures are reported with it)."""
        self.host = host
        """The devices behind the comms hub."""
        self.online = True
        """Whether the comms hub is on the WAN (off: commands end E20 unreachable)."""
        self.state = LineState.IDLE
        """Whether a command is in flight."""
        self.corrupt_share = wan.corrupt_share
        """Share of this comms hub's frames the WAN corrupts now (each direction)."""
        self._cell = cell
        self._codecs = codecs
        self._wan = wan
        self._rng = rng
        self._max_queue = max_queue
        self._decode = decode_uplinks
        self._queue: list[tuple[int, int, _Queued]] = []
        self._order = itertools.count()
        self._tokens = itertools.count(1)
        self._flights: dict[int, _InFlight] = {}

    def __len__(self) -> int:
        """Commands waiting (those in flight not counted)."""
        return len(self._queue)

    # ---- inputs ---------------------------------------------------------------------------

    def offer(self, dispatch: Dispatch, now: float) -> list[Action]:
        """A command for a device behind this comms hub: encode it, queue it, and start it if
        a channel of the line is free."""
        cmd = dispatch.command  # encoding and queueing take no time
        codec = self._codecs[dispatch.head_end]
        try:
            frame = codec.encode_command(cmd)
        except HeadEndError as err:
            # the engine validated the command; a head-end that cannot encode it is a fault of
            # the plugin: answer the request rather than lose it
            return [
                Fail(
                    cmd.command_id,
                    ResponseCode.E20,
                    f"head-end {dispatch.head_end} cannot encode: {err}",
                )
            ]
        if len(self._queue) >= self._max_queue:
            return [
                Fail(cmd.command_id, ResponseCode.E20, f"comms hub {self.comms_hub} queue full")
            ]
        heapq.heappush(
            self._queue, (dispatch.priority, next(self._order), _Queued(dispatch, frame))
        )
        return self._start(now)

    def arrived(self, token: int, now: float) -> list[Action]:
        """The WAN trip of the command in flight (``token``) is over: play out its outcome,
        then start the next command."""
        flight = self._flights.get(token)
        if flight is None:
            raise LineUsageError(f"comms hub {self.comms_hub}: no command in flight as {token}")
        self._move(LineEvent.LAST_ARRIVES if len(self._flights) == 1 else LineEvent.ARRIVE)
        del self._flights[token]
        out = self._outcome(flight, now)
        out += self._start(now)
        return out

    def wake(self, now: float) -> list[Action]:
        """Let the devices' time pass to ``now`` (future-dated commands run): uplink the alerts."""
        try:
            alerts = self.host.advance(now)
        except Exception:  # a fault in one simulated device must not stop its driver
            log.exception("simulated devices behind %s failed to advance", self.comms_hub)
            return []
        return self._alerts(alerts)

    def inject(self, action: Callable[[Any, float], list[DeviceAlert]], now: float) -> list[Action]:
        """Apply an event (outage, voltage excursion, tamper) to the devices: uplink the alerts
        it raised."""
        return self._alerts(action(self.host, now))

    def set_online(self, online: bool) -> list[Action]:
        """Take the comms hub off the WAN (False) or bring it back (True); commands that start
        while it is off end E20."""
        self.online = online
        return []

    def set_corruption(self, share: float) -> list[Action]:
        """Let the WAN corrupt ``share`` of this comms hub's frames from now on, each
        direction (0: clean again)."""
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"corrupt share {share} is not a probability")
        self.corrupt_share = share
        return []

    # ---- the carrying ---------------------------------------------------------------------

    def _move(self, event: LineEvent) -> None:
        try:
            self.state = TRANSITIONS[self.state][event]
        except KeyError:
            raise LineUsageError(
                f"comms hub {self.comms_hub}: cannot {event.value} while {self.state.value}"
            ) from None

    def _start(self, now: float) -> list[Action]:
        out: list[Action] = []
        while self._queue and len(self._flights) < self._wan.line_channels:
            _, _, queued = heapq.heappop(self._queue)
            self._move(LineEvent.START)
            trip = transit(self._wan, self._rng, reachable=self.online)
            delay = trip.delay_s
            if self._cell is not None and trip.outcome is not Outcome.UNREACHABLE:
                delay += self._cell.carry(now, len(queued.frame))
            token = next(self._tokens)
            self._flights[token] = _InFlight(token, queued, trip)
            out.append(Wait(self.comms_hub, delay, token))
        return out

    def _damaged(self) -> bool:
        """Whether the WAN corrupts the next frame (no draw while it corrupts none)."""
        return self.corrupt_share > 0.0 and self._rng.random() < self.corrupt_share

    def _outcome(self, flight: _InFlight, now: float) -> list[Action]:
        d = flight.queued.dispatch
        cmd_id = d.command.command_id
        trip = flight.trip
        if trip.outcome is Outcome.UNREACHABLE:
            return [
                Fail(cmd_id, ResponseCode.E20, f"comms hub {self.comms_hub} unreachable on the WAN")
            ]
        if trip.outcome is Outcome.NO_RESPONSE:
            return [Fail(cmd_id, ResponseCode.E21, f"no response after {trip.attempts} attempts")]
        frame = flight.queued.frame
        out: list[Action] = [Carried(self.comms_hub, cmd_id, len(frame))]
        damaged = self._damaged()
        if damaged:
            frame = corrupt(frame, self._rng)
        try:
            cmd = self._codecs[d.head_end].decode_command(frame)  # the device's side
        except FrameError as err:
            if damaged:
                # the device's check refuses the corrupted frame and drops it: nothing comes
                # back, and the hub answers the command at its response timeout (E21)
                return out
            out.append(Fail(cmd_id, ResponseCode.E21, f"device could not read the command: {err}"))
            return out
        try:
            alerts = self.host.advance(now)
            response, raised = self.host.execute(cmd, now)
        except NoAnswerError as err:
            out.append(Fail(cmd_id, ResponseCode.E21, f"no response: {err}"))
            return out
        except Exception as err:  # a fault in one simulated device must not stop its driver
            log.exception("simulated device failed on command %s", cmd_id)
            out.append(Fail(cmd_id, ResponseCode.E21, f"device fault: {err}"))
            return out
        out += self._uplink(d.head_end, response)
        out += self._alerts(alerts + raised)
        if cmd.execute_at is not None and cmd.execute_at > now:
            out.append(WakeAt(self.comms_hub, cmd.execute_at + WAKE_MARGIN_S))
        return out

    def _alerts(self, alerts: list[DeviceAlert]) -> list[Action]:
        out: list[Action] = []
        for alert in alerts:
            out += self._uplink(self.host.head_end_of(alert.device_id), alert)
        return out

    def _uplink(self, head_end: str, msg: Uplink) -> list[Action]:
        codec = self._codecs[head_end]
        try:
            frame = codec.encode_uplink(msg)
        except HeadEndError as err:
            if isinstance(msg, DeviceResponse):
                return [
                    Fail(
                        msg.command_id,
                        ResponseCode.E21,
                        f"device fault: cannot frame its response: {err}",
                    )
                ]
            return [Lost(self.comms_hub, head_end, str(err))]
        if self._damaged():
            frame = corrupt(frame, self._rng)
        if self._decode:
            return [decode(codec, self.comms_hub, frame)]
        return [Decode(self.comms_hub, head_end, frame)]
