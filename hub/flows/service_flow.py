"""The shape of a service the hub carries out itself, and what the engine offers it.

Decides: the questions the engine asks a service flow (check a request, carry it out, take
a device response to one of its commands, run its timers, sweep on change of supplier,
restore after a restart), with the answer of a flow that has nothing to add for one of them.
Must never: touch a device or the outbox directly; a flow asks its ``FlowHost`` (the engine)
to respond, alert, queue a command or run a request, and returns the effects.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Protocol

from hub.engine.effects import Effects

if TYPE_CHECKING:
    from hub.engine.config import EngineConfig
    from hub.engine.effects import Dispatch
    from hub.engine.lifecycle import RequestIndex, RequestRecord
    from hub.flows.schedules import Schedule
    from hub.policies.access import AccessContext
    from hub.policies.traffic import Admitted, Busy, TrafficManager
    from hub.reference.catalogue import PriorityClass, Service
    from hub.reference.codes import ResponseCode
    from hub.reference.standard import DeviceCommand, DeviceResponse, Value
    from hub.wire import ServiceRequest


class FlowHost(Protocol):
    """What the engine offers a service flow."""

    access: AccessContext
    config: EngineConfig
    index: RequestIndex
    traffic: TrafficManager[Dispatch]

    def admit(self, user_id: str, priority: PriorityClass, now: float) -> Admitted | Busy:
        """Ask traffic management for a place (noted, so a failed step gives it back)."""
        ...

    def new_seq(self) -> int:
        """Take the next request sequence number."""
        ...

    def respond(
        self, rec: RequestRecord, code: ResponseCode, body: dict[str, Value], now: float
    ) -> Effects:
        """Answer a request (its response goes to the outbox)."""
        ...

    def hub_alert(
        self, user_id: str, alert_code: str, data: dict[str, Value], now: float
    ) -> Effects:
        """Deliver a hub alert to a user."""
        ...

    def execute(self, rec: RequestRecord, now: float, admitted: bool = False) -> Effects:
        """Carry out an accepted request as if it had just been accepted."""
        ...

    def offer(
        self,
        rec: RequestRecord,
        command: DeviceCommand,
        priority: PriorityClass,
        size: int,
        now: float,
        admitted: bool,
    ) -> Effects:
        """Queue one command of a request with traffic management (``admitted``: its place
        was reserved by admission)."""
        ...


class ServiceFlow(ABC):
    """A service (or family of services) the hub carries out itself. The defaults are the
    answers of a flow without timers, device commands or persisted state."""

    uses_device = False
    """Carried out by commands to a device (queued per comms hub, through traffic management)."""

    def __init__(self, host: FlowHost) -> None:
        self.host = host

    def check(
        self, user_id: str, req: ServiceRequest, service: Service, now: float
    ) -> tuple[ResponseCode, str] | None:
        """A refusal (or the acceptance text) for a request access control accepted; None
        leaves access control's decision standing."""
        return None

    @abstractmethod
    def execute(self, rec: RequestRecord, now: float, admitted: bool) -> Effects:
        """Carry out an accepted request."""

    def on_device_response(
        self, rec: RequestRecord, resp: DeviceResponse, now: float
    ) -> Effects | None:
        """A device answered a command of one of this flow's requests in flight; None: the
        flow keeps nothing for it, so it is answered as any device response is."""
        return None

    def tick(self, now: float) -> Effects:
        """Run what is due at ``now``."""
        return Effects()

    def next_due(self) -> float | None:
        """When ``tick`` next has work (None: never by itself)."""
        return None

    def sweep_items(self) -> list[str]:
        """What the daily change-of-supplier sweep checks for this flow."""
        return []

    def sweep(self, item: str, now: float) -> Effects:
        """Check one sweep item against the registers now."""
        return Effects()

    def restore(
        self, schedules: Iterable[Schedule], next_schedule: int, transfers: Mapping[int, int]
    ) -> None:
        """Take back this flow's persisted state after a restart."""
        return

    def forget(self, seq: int) -> None:
        """A request of this flow was answered: drop what the flow keeps for it."""
        return
