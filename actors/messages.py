"""Typed messages passed between the live actors.

Decides: the shape of what actors tell each other.
Must never: carry behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.engine import Dispatch
from hub.reference.codes import ResponseCode
from hub.reference.standard import Uplink


@dataclass(frozen=True, slots=True)
class Encode:
    """Front door -> head-end: send this command on to its comms hub's pool."""

    dispatch: Dispatch
    """The engine's decision: command, head-end type, comms hub and priority."""


@dataclass(frozen=True, slots=True)
class Offer:
    """Head-end -> comms hub pool: carry this command to its device (the pool's line encodes
    it, crosses the WAN and brings the answer back)."""

    dispatch: Dispatch
    """The engine's decision: command, head-end type, comms hub and priority."""


@dataclass(frozen=True, slots=True)
class UplinkFrame:
    """Comms hub pool -> head-end: a vendor frame received from a device, to decode."""

    frame: bytes
    """The vendor frame."""
    comms_hub: str
    """The comms hub it came from (integrity failures name it)."""


@dataclass(frozen=True, slots=True)
class Decoded:
    """Head-end -> front door: a standard response or alert decoded from a device frame."""

    uplink: Uplink


@dataclass(frozen=True, slots=True)
class DeviceFailure:
    """Comms hub pool -> front door: the command could not be completed."""

    command_id: str
    code: ResponseCode
    """E20 (could not communicate) or E21 (no response)."""
    reason: str


@dataclass(frozen=True, slots=True)
class IntegrityFailure:
    """Head-end -> front door: a frame from a comms hub failed its integrity check."""

    comms_hub: str
    head_end: str
    reason: str
