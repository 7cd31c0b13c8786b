"""Wire codec cost: encode and decode time of a typical ServiceRequest and ServiceResponse.

Run: .venv/bin/python benchmarks/wire.py [--rounds N]
Prints the median and the best of many timed batches, in microseconds per message. The hub's
target is 10,000 requests/s on 2 cores, so decoding a request should cost a few microseconds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import msgpack  # type: ignore[import-untyped]

from hub import wire
from hub.reference.codes import ResponseCode
from hub.reference.roles import Role

REQUEST = wire.ServiceRequest(
    request_id="sup-7f3a9c21-000042",
    role=Role.IS,
    service="4.1.1",
    device_id="00DB1234567890AB",
    params={"read": "instantaneous", "registers": ["import", "export"]},
)
RESPONSE = wire.ServiceResponse(
    delivery_id=1_000_042,
    request_id="sup-7f3a9c21-000042",
    service="4.1.1",
    device_id="00DB1234567890AB",
    code=ResponseCode.I0,
    body={
        "import_wh": 12_345_678,
        "export_wh": 0,
        "tariff_registers_wh": [1_234_567, 2_345_678, 3_456_789, 0],
        "read_at": 1_750_000_000.0,
    },
    responded_at=1_750_000_002.5,
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


def main() -> None:
    """Time each operation and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50, help="timed batches per operation")
    parser.add_argument("--batch", type=int, default=2000, help="calls per batch")
    args = parser.parse_args()

    request_frame = wire.encode(REQUEST)
    response_frame = wire.encode(RESPONSE)
    assert wire.decode(request_frame) == REQUEST
    assert wire.decode(response_frame) == RESPONSE
    cases: list[tuple[str, Callable[[], object]]] = [
        ("msgpack unpackb alone (floor)", lambda: msgpack.unpackb(request_frame)),
        ("ServiceRequest encode", lambda: wire.encode(REQUEST)),
        ("ServiceRequest decode", lambda: wire.decode_from_user(request_frame)),
        ("ServiceRequest encode+decode", lambda: wire.decode(wire.encode(REQUEST))),
        ("request_fingerprint", lambda: wire.request_fingerprint(REQUEST)),
        ("ServiceResponse encode", lambda: wire.encode(RESPONSE)),
        ("ServiceResponse decode", lambda: wire.decode_from_hub(response_frame)),
        ("ServiceResponse encode+decode", lambda: wire.decode(wire.encode(RESPONSE))),
    ]
    print(f"frames: request {len(request_frame)} bytes, response {len(response_frame)} bytes")
    print(f"{'operation':32} {'median us':>10} {'best us':>10}")
    # The machine's speed right now, to compare runs on noisy or shared machines.
    cases.insert(0, ("type(x) is int (machine speed)", lambda: type(REQUEST) is int))
    for name, fn in cases:
        per_call_us(fn, 3, args.batch)  # warm up
        samples = per_call_us(fn, args.rounds, args.batch)
        print(f"{name:32} {statistics.median(samples):10.2f} {min(samples):10.2f}")


if __name__ == "__main__":
    main()
