"""Memory that does not grow with the backlog: resident memory of an engine in a process of its
own (with its SQLite store, as the live hub applies it), per held delivery and per remembered
request, and the store's bytes per remembered request.

Cases (each run in a fresh process, three runs, the median reported):
- ``held``: N responses held for a user that is offline (never said Hello);
- ``answered``: N read requests accepted, answered by the device and their responses
  acknowledged: each remembered (completed) for idempotency, nothing held;
- ``refused``: N refused requests of about 1 MiB each, remembered for idempotency;
- ``fuzzed``: N mutated frames (random ids, junk and oversized parameters, wrong types).

bytes per item = (RSS after - RSS before) / N. Run:
    .venv/bin/python benchmarks/memory.py                 # every case, default sizes
    .venv/bin/python benchmarks/memory.py --case held --n 1000000

``--breakdown`` says where the bytes go instead, in this process and without RSS noise (the
allocator's arenas, SQLite's page cache, sockets): ``tracemalloc`` bytes still allocated after
N items, per item, by the module that allocated them (the outbox's columns and queues, the
request index's remembered ids, the driver's payload cache, the rest; the payloads the cache
keeps were made by the engine, so they count in the rest, and the last column is what the
cache counts, payloads included). Its cases:
- ``held``: N responses held for an offline user, as the front door keeps them (store applied,
  the payload cache filled), no request remembered;
- ``remembered``: N requests accepted, answered and acknowledged: remembered, nothing held;
- ``hub``: N 8.2 Read Inventory requests from a user that never said Hello, as
  ``benchmarks/live_memory.py`` sends them: each remembered and its response held.
    .venv/bin/python benchmarks/memory.py --breakdown --n 20000
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import msgpack

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actors.store import SqliteStore
from hub import wire
from hub.engine import Effects, EngineConfig, HubEngine, RequestRecord, RequestState
from hub.ports.payloads import PayloadCache
from hub.reference.codes import ResponseCode
from hub.reference.roles import Role
from hub.reference.standard import CommandStatus, DeviceResponse
from hub.wire.checks import InvalidMessageError
from tests.world import ESME, World

T0 = 1_780_000_000.0
BATCH = 512  # effects applied to the store per transaction, as the front door batches
FAILED = [0]  # fuzzed frames whose engine step raised
CASES = {
    "held": [100_000, 1_000_000],
    "answered": [100_000],
    "refused": [400],
    "fuzzed": [200_000],
}


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def _apply(
    store: SqliteStore, engine: HubEngine, batch: Effects, cache: PayloadCache | None = None
) -> None:
    if batch.needs_persisting:
        store.apply(batch, engine.next_seq, engine.next_delivery)
    if cache is not None:  # as the front door does once a batch is stored
        cache.made(batch)
        cache.removed(batch)


def _held(engine: HubEngine, store: SqliteStore, n: int, cache: PayloadCache | None = None) -> None:
    batch = Effects()
    for i in range(n):
        rec = RequestRecord(
            seq=engine.new_seq(),
            user_id="u-supa",
            request_id=f"r-{i:09d}",
            fingerprint=bytes(32),
            service="4.1.1",
            role=Role.IS,
            device_id=ESME,
            params={},
            execute_at=None,
            received_at=T0,
            state=RequestState.ACCEPTED,
            reply=b"",
        )
        step = engine.respond(rec, ResponseCode.I0, {"import_kwh": 1234.5 + i}, T0 + 1)
        step.complete_requests.clear()  # the request itself was never stored here
        step.sla.clear()
        batch.extend(step)
        if len(batch.add_deliveries) >= BATCH:
            _apply(store, engine, batch, cache)
            batch = Effects()
    _apply(store, engine, batch, cache)
    assert len(engine.outbox) == n


def _answered(
    engine: HubEngine, store: SqliteStore, n: int, cache: PayloadCache | None = None
) -> None:
    for i in range(n):
        now = T0 + i * 0.01
        frame = wire.encode(
            wire.ServiceRequest(
                request_id=f"ans-{i:09d}",
                service="4.1.1",
                role=Role.IS,
                device_id=ESME,
                params={},
            )
        )
        step = engine.on_frame("u-supa", frame, now)
        [command] = step.dispatch
        step.extend(
            engine.on_device_response(
                DeviceResponse(
                    command.command.command_id,
                    ESME,
                    "4.1.1",
                    CommandStatus.SUCCESS,
                    {"import_wh": 1234 + i},
                ),
                now,
            )
        )
        ids = tuple(d.delivery_id for d in step.add_deliveries)
        step.extend(engine.on_frame("u-supa", wire.encode(wire.DeliveryAck(delivery_ids=ids)), now))
        if i % BATCH == BATCH - 1:  # the drivers tick the engine as time passes
            step.extend(engine.tick(now))
        _apply(store, engine, step, cache)
    assert engine.index.remembered == n
    assert len(engine.outbox) == 0


def _inventory_reads(
    engine: HubEngine, store: SqliteStore, n: int, cache: PayloadCache | None = None
) -> None:
    """N 8.2 Read Inventory requests from a user that never said Hello (answered by the hub
    itself): each is remembered and its response held, as in ``live_memory.py``."""
    batch = Effects()
    for i in range(n):
        frame = wire.encode(
            wire.ServiceRequest(
                request_id=f"inv-{i:09d}", service="8.2", role=Role.IS, device_id=ESME, params={}
            )
        )
        batch.extend(engine.on_frame("u-supa", frame, T0 + i * 0.001))
        if len(batch.add_deliveries) >= BATCH:
            _apply(store, engine, batch, cache)
            batch = Effects()
    _apply(store, engine, batch, cache)
    assert engine.index.remembered == n
    assert len(engine.outbox) == n


def _refused(engine: HubEngine, store: SqliteStore, n: int) -> None:
    junk = "x" * (wire.MAX_FRAME_BYTES - 4096)
    for i in range(n):
        frame = wire.encode(
            wire.ServiceRequest(
                request_id=f"big-{i:06d}",
                service="4.1.1",
                role=Role.IS,
                device_id=ESME,
                params={"junk": junk},
            )
        )
        step = engine.on_frame("u-supa", frame, T0 + i * 0.001)
        _apply(store, engine, step)
    assert engine.index.remembered == n


def _fuzzed(engine: HubEngine, store: SqliteStore, n: int) -> None:
    rng = random.Random(7)
    bodies: list[dict[str, object]] = [
        {"params": {f"k{j}": "v" * rng.randrange(1, 200) for j in range(20)}},
        {"params": {"p" * 2000: 1}},
        {"service": "2.2", "params": {"utrn": "7" * 3000}},
        {"service": "9.99"},
        {"role": "XX"},
        {"device_id": "F" * 16},
        {"params": {"window_s": "soon"}},
        {"execute_at": "tomorrow"},
    ]
    batch = Effects()
    for i in range(n):
        body: dict[str, object] = {
            "v": 1,
            "kind": "service_request",
            "request_id": f"fz-{i:08d}-{rng.getrandbits(32):08x}",
            "service": "4.1.1",
            "role": "IS",
            "device_id": ESME,
            "params": {},
        }
        body.update(rng.choice(bodies))
        frame = _pack(body)
        try:
            batch.extend(engine.on_frame("u-supa", frame, T0 + i * 0.001))
        except InvalidMessageError:
            FAILED[0] += 1  # a step the engine fails on (issue 9 item 1): not remembered
        if i % BATCH == BATCH - 1:
            _apply(store, engine, batch)
            batch = Effects()
    _apply(store, engine, batch)


def _pack(body: dict[str, object]) -> bytes:
    packed: bytes = msgpack.packb(body, use_bin_type=True)
    return packed


_RUNS = {"held": _held, "answered": _answered, "refused": _refused, "fuzzed": _fuzzed}


_PARTS = {
    "outbox": "hub/engine/outbox.py",
    "request index": "hub/engine/lifecycle.py",
    "payload cache": "hub/ports/payloads.py",
}
"""Where allocations are counted, by the module that made them; the rest is "other"."""
_BREAKDOWN: dict[str, Callable[..., None]] = {
    "held": _held,
    "remembered": _answered,
    "hub": _inventory_reads,
}


def breakdown(case: str, n: int, cache_bytes: int | None = None) -> dict[str, float]:
    """``tracemalloc`` bytes per item still allocated after ``n`` items of ``case`` (see
    ``--breakdown``), by part, and in all. The engine, its SQLite store and the front door's
    payload cache (``cache_bytes``: its default budget when None) are built and warmed up
    before the baseline."""
    run = _BREAKDOWN[case]
    with tempfile.TemporaryDirectory() as tmp:
        warm = SqliteStore(Path(tmp) / "warm.sqlite")
        run(HubEngine(World().access, EngineConfig()), warm, 2)  # imports, caches
        warm.close()
        store = SqliteStore(Path(tmp) / "hub.sqlite")
        try:
            engine = HubEngine(World().access, EngineConfig(idempotency_max=10 * n))
            cache = PayloadCache(store) if cache_bytes is None else PayloadCache(store, cache_bytes)
            tracemalloc.start()
            try:
                before = tracemalloc.take_snapshot()
                run(engine, store, n, cache)
                after = tracemalloc.take_snapshot()
            finally:
                tracemalloc.stop()
        finally:
            store.close()
    grown = dict.fromkeys([*_PARTS, "other"], 0)
    for stat in after.compare_to(before, "filename"):
        name = stat.traceback[0].filename.replace("\\", "/")
        part = next((p for p, f in _PARTS.items() if name.endswith(f)), "other")
        grown[part] += stat.size_diff
    figures = {f"{part} bytes/item": size / n for part, size in grown.items()}
    figures["all bytes/item"] = sum(grown.values()) / n
    figures["payload cache entries"] = len(cache)
    # the payloads it keeps were allocated by the engine ("other"); this is all it counts
    figures["payload cache counted bytes/item"] = cache.bytes / n
    return figures


def child(case: str, n: int) -> dict[str, float]:
    """One run in this process: RSS and store size before and after ``n`` items."""
    engine = HubEngine(World().access, EngineConfig(idempotency_max=10 * n))
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "hub.sqlite")
        # warm up the code paths (imports, caches) before the baseline
        _RUNS[case](engine, store, 2)
        engine = HubEngine(World().access, EngineConfig(idempotency_max=10 * n))
        store.close()
        for old in Path(tmp).glob("hub.sqlite*"):
            old.unlink()
        SqliteStore(Path(tmp) / "hub.sqlite").close()
        store_before = _store_bytes(Path(tmp))
        store = SqliteStore(Path(tmp) / "hub.sqlite")
        FAILED[0] = 0
        before = _rss_bytes()
        _RUNS[case](engine, store, n)
        after = _rss_bytes()
        store.close()
        store_after = _store_bytes(Path(tmp))
        requests_bytes = _table_bytes(Path(tmp) / "hub.sqlite", "requests")
    return {
        "rss_before_mb": before / 2**20,
        "rss_after_mb": after / 2**20,
        "ram_bytes_per_item": (after - before) / n,
        "store_bytes_per_item": (store_after - store_before) / n,
        "requests_table_bytes_per_remembered": requests_bytes / max(1, engine.index.remembered),
        "remembered": engine.index.remembered,
        "steps_failed": FAILED[0],
    }


def _table_bytes(path: Path, table: str) -> int:
    """Bytes of a table's pages and its indexes' pages (SQLite's dbstat)."""
    db = sqlite3.connect(path)
    try:
        (size,) = db.execute(
            "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name IN "
            "(SELECT name FROM sqlite_master WHERE tbl_name = ?)",
            (table,),
        ).fetchone()
    finally:
        db.close()
    return int(size)


def _store_bytes(data: Path) -> int:
    return sum(p.stat().st_size for p in data.glob("hub.sqlite*"))


def main() -> None:
    """Run each case in fresh processes and print the medians as a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--case", choices=sorted(set(CASES) | set(_BREAKDOWN)), action="append", help="a case"
    )
    parser.add_argument("--n", type=int, action="append", help="items (default per case)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("CASE", "N"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--breakdown", action="store_true", help="tracemalloc bytes per item by part instead"
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]))))
        return
    cases = args.case or list(_BREAKDOWN if args.breakdown else CASES)
    unknown = set(cases) - set(_BREAKDOWN if args.breakdown else CASES)
    if unknown:
        parser.error(f"no such case{' with --breakdown' if args.breakdown else ''}: {unknown}")
    if args.breakdown:
        _print_breakdown(cases, args.n or [20_000])
        return
    print(
        "| case | N | RSS before (MB) | RSS after (MB) | RAM bytes/item | store bytes/item "
        "| requests table bytes/remembered |"
    )
    print("|---|---|---|---|---|---|---|")
    for case in cases:
        for n in args.n or CASES[case]:
            runs = [
                json.loads(
                    subprocess.run(
                        [sys.executable, __file__, "--child", case, str(n)],
                        check=True,
                        capture_output=True,
                        text=True,
                    ).stdout
                )
                for _ in range(args.runs)
            ]
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            print(
                f"| {case} | {n:,} | {med['rss_before_mb']:.0f} | {med['rss_after_mb']:.0f} | "
                f"{med['ram_bytes_per_item']:.0f} | {med['store_bytes_per_item']:.0f} | "
                f"{med['requests_table_bytes_per_remembered']:.0f} |",
                flush=True,
            )


def _print_breakdown(cases: list[str], sizes: list[int]) -> None:
    print(
        "| case | N | outbox | request index | payload cache | other | all (bytes/item) "
        "| cached payloads | payload cache with its payloads (bytes/item) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for case in cases:
        for n in sizes:
            b = breakdown(case, n)
            print(
                f"| {case} | {n:,} | {b['outbox bytes/item']:.0f} | "
                f"{b['request index bytes/item']:.0f} | {b['payload cache bytes/item']:.0f} | "
                f"{b['other bytes/item']:.0f} | {b['all bytes/item']:.0f} | "
                f"{b['payload cache entries']:,.0f} | "
                f"{b['payload cache counted bytes/item']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
