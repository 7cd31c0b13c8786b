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
    """Front door -> head-end: translate this command and send it to its comms hub."""

    dispatch: Dispatch


@dataclass(frozen=True, slots=True)
class Transmit:
    """Head-end -> comms hub pool: carry this vendor frame to the device over the WAN."""

    frame: bytes
    """The vendor-format command frame."""
    command_id: str
    device_id: str
    comms_hub: str
    head_end: str
    priority: int


@dataclass(frozen=True, slots=True)
class UplinkFrame:
    """Comms hub pool -> head-end: a vendor frame received from a device."""

    frame: bytes
    comms_hub: str
    head_end: str


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
