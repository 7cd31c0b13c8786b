"""Firmware distribution (11.1 Update Firmware, 11.4 Update PPMID Firmware): the hub carries a
manufacturer's image to a device in blocks over the WAN.

Decides: whether an update request is well formed (version, image size), how an image is cut
into blocks (``BLOCK_BYTES`` each), the command parameters of each block (with the block's
bytes, so frames and the WAN budget carry the real size), and the transfer's progress (the next
block), which the drivers persist so a restart resumes where it stopped.
Must never: activate firmware (11.3 does, on the device), read a clock, or hold the image
anywhere but in the block being sent (the image content is generated from its version).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from hub.reference.standard import Value
from hub.reference.text import show

FIRMWARE_SERVICES = frozenset({"11.1", "11.4"})
"""Services answered by a block transfer from the hub."""
BLOCK_BYTES = 48 * 1024
"""Bytes of image per block command (a 1 MB image is 22 blocks)."""
MAX_IMAGE_BYTES = 4 * 1024 * 1024
"""Largest image accepted."""
_VERSION = re.compile(r"[0-9A-Za-z._-]{1,32}")


def validate_update(params: Mapping[str, Value]) -> list[str]:
    """Problems with 11.1 / 11.4 parameters: ``version`` (1-32 of 0-9 A-Z a-z . _ -) and
    ``image_size`` (bytes, 1 to 4 MiB); nothing else."""
    problems = []
    unknown = sorted((str(n) for n in set(params) - {"version", "image_size"}), key=str)
    if unknown:
        problems.append(f"unknown parameter(s): {', '.join(show(name) for name in unknown)}")
    version = params.get("version")
    if not isinstance(version, str) or _VERSION.fullmatch(version) is None:
        problems.append("version must be 1-32 characters of 0-9 A-Z a-z . _ -")
    size = params.get("image_size")
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_IMAGE_BYTES:
        problems.append(f"image_size must be an integer from 1 to {MAX_IMAGE_BYTES} bytes")
    return problems


def block_count(image_size: int) -> int:
    """Blocks needed for an image."""
    return -(-image_size // BLOCK_BYTES)


def block_bytes(version: str, image_size: int, index: int) -> bytes:
    """The bytes of block ``index`` of the image (content derived from the version)."""
    start = index * BLOCK_BYTES
    length = min(BLOCK_BYTES, image_size - start)
    seed = hashlib.sha256(f"{version}:{index}".encode()).digest()
    return (seed * (length // len(seed) + 1))[:length]


@dataclass(slots=True)
class Transfer:
    """One image on its way to one device."""

    seq: int
    """The request (11.1 / 11.4) carrying it."""
    device_id: str
    version: str
    image_size: int
    next_block: int = 0
    """The first block not yet acknowledged by the device."""

    @property
    def blocks(self) -> int:
        """Blocks in the image."""
        return block_count(self.image_size)

    @property
    def done(self) -> bool:
        """Every block acknowledged."""
        return self.next_block >= self.blocks

    def command_id(self) -> str:
        """The command id of the next block: ``<seq>-<block>``."""
        return f"{self.seq}-{self.next_block}"

    def block_params(self) -> dict[str, Value]:
        """Parameters of the next block's command."""
        return {
            "version": self.version,
            "block": self.next_block,
            "blocks": self.blocks,
            "image_size": self.image_size,
            "data": block_bytes(self.version, self.image_size, self.next_block),
        }


def parse_block_command_id(command_id: str) -> tuple[int, int] | None:
    """(seq, block) of a block command id, or None if it is not one."""
    seq, sep, block = command_id.partition("-")
    if not sep or not seq.isdigit() or not block.isdigit():
        return None
    return int(seq), int(block)
