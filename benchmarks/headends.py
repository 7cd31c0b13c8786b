"""Head-end cost: encode + decode time of one message through each vendor format.

Run: .venv/bin/python benchmarks/headends.py [--rounds N] [--batch N]
Prints, per head-end, the frame size and the median (and best) microseconds per round trip
(encode then decode) for a typical read response (4.1.1), a typical command and an alert, and
milliseconds per round trip for a 1 MB firmware image (11.1). Integrity checks included.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial

from hub.headends import CosemHeadEnd, HeadEnd, TextHeadEnd, TlvHeadEnd
from hub.reference.standard import CommandStatus, DeviceAlert, DeviceCommand, DeviceResponse

READ_RESPONSE = DeviceResponse(
    command_id="sup-7f3a9c21-000042",
    device_id="00DB1234567890AB",
    service="4.1.1",
    status=CommandStatus.SUCCESS,
    body={
        "import_wh": 12_345_678,
        "export_wh": 0,
        "tariff_registers_wh": [1_234_567, 2_345_678, 3_456_789, 0],
        "read_at": 1_750_000_000.0,
    },
)
READ_COMMAND = DeviceCommand(
    command_id="sup-7f3a9c21-000042",
    service="4.1.1",
    device_id="00DB1234567890AB",
    params={"read": "instantaneous", "registers": ["import", "export"]},
)
ALERT = DeviceAlert(
    device_id="00DB1234567890AB",
    alert_code="8095",
    raised_at=1_750_000_123.25,
    data={"voltage_v": 183.5, "phase": 1},
)
FIRMWARE = DeviceCommand(
    command_id="fw-000001",
    service="11.1",
    device_id="00DB1234567890AB",
    params={"image": bytes(range(256)) * 4096, "version": "2.1.0"},
    signature=b"\x5a" * 64,
)


def per_call_us(fn: Callable[[], object], rounds: int, batch: int) -> list[float]:
    """Microseconds per call for each of ``rounds`` batches of ``batch`` calls."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for _ in range(batch):
            fn()
        samples.append((time.perf_counter_ns() - start) / batch / 1000)
    return samples


def round_trip(head_end: HeadEnd, message: DeviceCommand | DeviceResponse | DeviceAlert) -> object:
    """Encode ``message`` and decode the frame, as the two ends of a link would."""
    if isinstance(message, DeviceCommand):
        return head_end.decode_command(head_end.encode_command(message))
    return head_end.decode_uplink(head_end.encode_uplink(message))


def frame_size(head_end: HeadEnd, message: DeviceCommand | DeviceResponse | DeviceAlert) -> int:
    """Bytes in the frame of ``message``."""
    if isinstance(message, DeviceCommand):
        return len(head_end.encode_command(message))
    return len(head_end.encode_uplink(message))


def main() -> None:
    """Time each head-end on each message and print a table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="timed batches per message")
    parser.add_argument("--batch", type=int, default=1000, help="round trips per batch")
    parser.add_argument("--firmware-rounds", type=int, default=3, help="firmware round trips")
    args = parser.parse_args()

    head_ends: list[HeadEnd] = [TlvHeadEnd(), CosemHeadEnd(), TextHeadEnd()]
    small: dict[str, DeviceCommand | DeviceResponse | DeviceAlert] = {
        "read response": READ_RESPONSE,
        "read command": READ_COMMAND,
        "alert": ALERT,
    }
    print(f"{'head-end':<8} {'message':<14} {'bytes':>8} {'median':>12} {'best':>12}")
    for head_end in head_ends:
        for label, message in small.items():
            assert round_trip(head_end, message) == message
            samples = per_call_us(partial(round_trip, head_end, message), args.rounds, args.batch)
            print(
                f"{head_end.name:<8} {label:<14} {frame_size(head_end, message):>8} "
                f"{statistics.median(samples):>9.1f} us {min(samples):>9.1f} us"
            )
    for head_end in head_ends:
        samples = per_call_us(partial(round_trip, head_end, FIRMWARE), args.firmware_rounds, 1)
        print(
            f"{head_end.name:<8} {'firmware 1 MB':<14} {frame_size(head_end, FIRMWARE):>8} "
            f"{statistics.median(samples) / 1000:>9.1f} ms {min(samples) / 1000:>9.1f} ms"
        )


if __name__ == "__main__":
    main()
