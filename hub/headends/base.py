"""The head-end contract: what every vendor translator is, how it fails, and how one is found.

Decides: the ``HeadEnd`` protocol (a name and four pure translations between standard messages
and a vendor's frames), the limits every head-end enforces on both sides (frame size, nesting
depth, integer range), whose fault a failure is (``FrameError`` and ``IntegrityError``: the
frame's sender; ``EncodeError``: the caller), and the lookup of head-ends by name.
Must never: know any vendor format, load plugins (``simfield.headend_plugins`` does), or touch
files, sockets or clocks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Final, Protocol, runtime_checkable

from hub.reference.standard import DeviceCommand, Uplink

MAX_FRAME_BYTES: Final = 4 * 1024 * 1024
"""Largest frame any head-end writes or reads, bytes.

The largest standard message is a firmware image of about 1 MB; the text format spells bytes
in hex, doubling them, so 4 MiB leaves every format room for one image and its envelope."""

MAX_DEPTH: Final = 32
"""Deepest nesting of containers in a message's params, body or data.

The message's own mapping is level 1; each list or map inside it adds one level."""

INT64_MIN: Final = -(2**63)
"""Smallest integer a ``Value`` may hold."""

INT64_MAX: Final = 2**63 - 1
"""Largest integer a ``Value`` may hold."""


class HeadEndError(Exception):
    """A head-end could not translate a message or a frame."""

    def __init__(self, head_end: str, reason: str) -> None:
        super().__init__(head_end, reason)
        self.head_end = head_end
        """The name of the head-end that failed."""
        self.reason = reason
        """What was wrong, for a person to read."""

    def __str__(self) -> str:
        return f"{self.head_end} head-end: {self.reason}"


class FrameError(HeadEndError):
    """A received frame is malformed: the sender's fault. Nothing was decoded."""


class IntegrityError(FrameError):
    """A received frame failed its integrity check (CRC or MAC): corrupted or forged."""


class EncodeError(HeadEndError, ValueError):
    """A standard message cannot be expressed as a frame: the caller's fault.

    For instance an integer outside the int64 range, a non-finite float, a map key that is not
    a string, a string that is not valid Unicode, nesting deeper than ``MAX_DEPTH``, or a frame
    larger than ``MAX_FRAME_BYTES``.
    """


@runtime_checkable
class HeadEnd(Protocol):
    """A manufacturer's translator between standard messages and its device frames.

    Every method is pure: bytes and messages in, bytes and messages out. Decoders verify the
    frame's integrity check and raise ``FrameError`` (``IntegrityError`` for a failed check) for
    anything malformed, never another exception. Encoders raise ``EncodeError`` for a message
    they cannot express. ``decode_command(encode_command(c)) == c`` and
    ``decode_uplink(encode_uplink(m)) == m`` for every message within the limits above.
    """

    @property
    def name(self) -> str:
        """The head-end type, as recorded in the inventory (e.g. ``tlv``)."""
        ...

    def encode_command(self, cmd: DeviceCommand) -> bytes:
        """Hub side, downlink: a standard command as the device's frame."""
        ...

    def decode_command(self, frame: bytes) -> DeviceCommand:
        """Device side: the standard command carried by a downlink frame."""
        ...

    def encode_uplink(self, msg: Uplink) -> bytes:
        """Device side, uplink: a response or an alert as the device's frame."""
        ...

    def decode_uplink(self, frame: bytes) -> Uplink:
        """Hub side: the standard response or alert carried by an uplink frame."""
        ...


_HEAD_END_METHODS: Final = ("encode_command", "decode_command", "encode_uplink", "decode_uplink")


def head_end_problems(candidate: object) -> list[str]:
    """Why ``candidate`` does not satisfy ``HeadEnd``; empty when it does.

    Checks what a static type checker cannot see in a plugin: a string ``name`` that is not
    empty and the four translation methods, callable.
    """
    problems: list[str] = []
    name = getattr(candidate, "name", None)
    if not isinstance(name, str) or not name:
        problems.append(f"'name' must be a non-empty str, got {name!r}")
    for method in _HEAD_END_METHODS:
        if not callable(getattr(candidate, method, None)):
            problems.append(f"missing method '{method}'")
    return problems


class UnknownHeadEndError(KeyError):
    """No head-end of the requested type is registered."""

    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        super().__init__(name, known)
        self.name = name
        """The head-end type asked for."""
        self.known = known
        """The registered head-end types."""

    def __str__(self) -> str:
        known = ", ".join(self.known) or "none"
        return f"unknown head-end type {self.name!r} (registered: {known})"


class HeadEndRegistry(Mapping[str, HeadEnd]):
    """Head-ends by type name, built once from a mapping and never changed.

    Each entry's key must equal the head-end's ``name``: the inventory records a device's
    head-end type by that name.
    """

    def __init__(self, head_ends: Mapping[str, HeadEnd]) -> None:
        for key, head_end in head_ends.items():
            problems = head_end_problems(head_end)
            if problems:
                raise TypeError(f"head-end {key!r} is not a HeadEnd: {'; '.join(problems)}")
            if head_end.name != key:
                raise ValueError(f"head-end registered as {key!r} calls itself {head_end.name!r}")
        self._by_name: dict[str, HeadEnd] = dict(sorted(head_ends.items()))

    def __getitem__(self, name: str) -> HeadEnd:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownHeadEndError(name, tuple(self._by_name)) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def lookup(self, name: str) -> HeadEnd:
        """The head-end of type ``name``; ``UnknownHeadEndError`` names the known types."""
        return self[name]
