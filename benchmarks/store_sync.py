"""What durability costs: the SQLite store's commits at each ``synchronous`` level.

Run: .venv/bin/python benchmarks/store_sync.py [--requests N] [--batches 1,64] [--dir DIR]
Each request goes through its real lifecycle in the engine (accepted with I99, answered by its
meter, its response acknowledged by the user), and the effects of each step are applied to a
real store file, ``--batch`` requests per commit as the front door groups them under load
(1: one request per commit, a lightly loaded hub). Only ``SqliteStore.apply`` is timed. Three
runs per level, each on a fresh file; the median is printed, with its ratio to FULL. Put
``--dir`` on the disk the hub's data directory uses (a tmpfs makes every sync free).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actors.store import SqliteStore, Synchronous
from benchmarks._support import Meter, keyed_fleet
from hub import wire
from hub.engine import Effects, EngineConfig, HubEngine
from hub.policies.access import AccessContext
from hub.reference.catalogue import CATALOGUE
from hub.reference.roles import Role
from hub.reference.service_params import example_params
from hub.reference.standard import CommandStatus, DeviceResponse
from simfield.fleet_dir import Fleet, load_fleet

RUNS = 3
"""Runs per level and batch size; the median is reported."""
READING = {"import_wh": 12_345_678, "export_wh": 0, "tariff_registers_wh": [1_234_567, 0, 0, 0]}
"""The body of a meter's answer to a register read."""


def _run(
    fleet: Fleet, meters: list[Meter], path: Path, level: Synchronous, requests: int, batch: int
) -> tuple[float, int, int]:
    """Seconds spent in ``apply``, commits made and requests accepted, on a fresh file."""
    access = AccessContext(fleet.users, CATALOGUE, fleet.registration, fleet.inventory)
    engine = HubEngine(access, EngineConfig())
    store = SqliteStore(path, synchronous=level)
    now = time.time()
    spent, commits = 0.0, 0

    def apply(effects: Effects) -> None:
        nonlocal spent, commits
        started = time.perf_counter()
        store.apply(effects, engine.next_seq, engine.next_delivery)
        spent += time.perf_counter() - started
        commits += 1

    params = example_params("4.1.1")
    try:
        for first in range(0, requests, batch):
            taken = Effects()
            for i in range(first, min(first + batch, requests)):
                meter = meters[i % len(meters)]
                req = wire.ServiceRequest(
                    request_id=f"bench-{i}",
                    role=Role.IS,
                    service="4.1.1",
                    device_id=meter.device_id,
                    params=params,
                )
                taken.extend(engine.on_frame(meter.user, wire.encode(req), now))
            apply(taken)
            answered = Effects()
            for d in taken.dispatch:
                resp = DeviceResponse(
                    d.command.command_id,
                    d.command.device_id,
                    "4.1.1",
                    CommandStatus.SUCCESS,
                    READING,
                )
                answered.extend(engine.on_device_response(resp, now))
            apply(answered)
            acked = Effects()
            for delivery in answered.add_deliveries:
                acked.extend(engine.on_ack(delivery.user_id, [delivery.delivery_id], now))
            apply(acked)
            now += 0.01
    finally:
        store.close()
    accepted = engine.counters.get("I99", 0)
    assert accepted == requests, f"only {accepted} of {requests} requests were accepted"
    return spent, commits, accepted


def main() -> None:
    """Measure every level at every batch size and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--batches", default="1,64", help="Requests per commit, comma-separated.")
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="Where the files go.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="store-sync-", dir=args.dir))
    try:
        _, meters = keyed_fleet(work, sites=400)
        fleet = load_fleet(work / "fleet")
        print(f"{args.requests} requests (3 commits each per batch), files in {work}")
        print(f"{'batch':>5} {'level':>6} {'ms/commit':>10} {'requests/s':>11} {'vs FULL':>8}")
        for batch in (int(b) for b in args.batches.split(",")):
            full_rate = 0.0
            for level in Synchronous:
                rates, per_commit = [], []
                for run in range(RUNS):
                    path = work / f"hub-{batch}-{level.value}-{run}.sqlite"
                    spent, commits, accepted = _run(
                        fleet, meters, path, level, args.requests, batch
                    )
                    rates.append(accepted / spent)
                    per_commit.append(spent / commits * 1000)
                rate = statistics.median(rates)
                full_rate = full_rate or rate
                print(
                    f"{batch:>5} {level.value:>6} {statistics.median(per_commit):>10.3f} "
                    f"{rate:>11.0f} {rate / full_rate:>7.2f}x"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
