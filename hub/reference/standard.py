"""Standard (vendor-neutral) device messages: what the hub sends to a device and what comes back.

Decides: the shape of a command, a device response and a device alert as the hub core sees
them, before a head-end turns them into a vendor's frame and after it turns a frame back.
Must never: know any vendor format; head-ends (``hub.headends``) do the translation.

Times are seconds since the Unix epoch, UTC, as floats (``Instant``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeAlias

Instant: TypeAlias = float
"""Seconds since the Unix epoch, UTC."""

Value: TypeAlias = "bool | int | float | str | bytes | list[Value] | dict[str, Value] | None"
"""A msgpack-representable value: scalars, lists, and maps with string keys."""


class CommandStatus(StrEnum):
    """What the device did with a command."""

    SUCCESS = "success"
    REJECTED = "rejected"  # the device refused it (e.g. top-up to a meter in credit mode)
    SCHEDULED = "scheduled"  # accepted for future execution (Device future-dated pattern)


@dataclass(frozen=True, slots=True)
class DeviceCommand:
    """A standard command addressed to one device."""

    command_id: str
    """Hub-assigned id, unique per command, echoed in the response."""
    service: str
    """DUIS service reference variant, e.g. ``4.1.1``."""
    device_id: str
    """Target device EUI-64 (16 upper-case hex digits)."""
    params: Mapping[str, Value] = field(default_factory=dict)
    """Service parameters, validated against ``hub.reference.service_params`` before sending."""
    execute_at: Instant | None = None
    """For the Device future-dated pattern: when the device must act; None acts now."""
    signature: bytes = b""
    """The user's signature over a critical command (empty for non-critical ones)."""


@dataclass(frozen=True, slots=True)
class DeviceResponse:
    """A device's standard response to one command."""

    command_id: str
    """The id of the command answered."""
    device_id: str
    """The responding device."""
    service: str
    """The service answered."""
    status: CommandStatus
    """Whether the device carried the command out."""
    body: Mapping[str, Value] = field(default_factory=dict)
    """Service-specific data (readings, configuration, log entries, ...)."""
    reason: str = ""
    """Why the device rejected the command (empty on success)."""


@dataclass(frozen=True, slots=True)
class DeviceAlert:
    """An alert raised by a device or by the comms hub."""

    device_id: str
    """The device that raised it."""
    alert_code: str
    """Domain spelling: four hex digits for device alerts (``8F35``), ``AD1`` for power outage."""
    raised_at: Instant
    """When the device raised it."""
    data: Mapping[str, Value] = field(default_factory=dict)
    """Alert-specific data (e.g. the voltage measured, the command id for 8F66/8F67)."""


Uplink: TypeAlias = DeviceResponse | DeviceAlert
"""Anything a device sends towards the hub."""
