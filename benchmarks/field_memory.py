"""What the simulated field's memory costs per request: one site's devices answering commands
through ``SiteHost.execute`` with no memory, with the snapshot encoded into a dict (the cost of
the snapshot alone), and with the live hub's SQLite journal at each ``synchronous`` level.

Run: .venv/bin/python benchmarks/field_memory.py [--requests N] [--dir DIR]
Two kinds of request: a read (4.1.1, not written once the site is remembered) and a top-up
(2.2, written before its answer leaves), each on a dual-fuel site with in-home devices; time
moves on 2 s per request, so the meters catch up as they would live. Prints the median
microseconds per request of each, and the extra over no memory. Put ``--dir`` on the disk the
hub's data directory uses (a tmpfs makes every sync free).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from itertools import count
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actors.field_journal import FieldJournal
from actors.store import Synchronous
from hub.reference.roles import DeviceType
from hub.reference.standard import DeviceCommand
from hub.reference.utrn import make_utrn
from simfield.devices import Premises
from simfield.memory import FieldMemory, InMemoryFieldMemory
from simfield.site import SiteHost

START = 1_767_225_600.0  # 2026-01-01
SUPPLIER = "SUPPLIER"


def _per_request(memory: FieldMemory | None, service: str, requests: int) -> float:
    """Median microseconds of ``SiteHost.execute`` over ``requests`` commands."""
    site = Premises("SITE-1", 7, START - 3_600.0, credit_pence=1_000, supplier_key_id=SUPPLIER)
    host = SiteHost(site, {"": "tlv"}, memory=memory, comms_hub="CH-1")
    esme = site.device_ids[DeviceType.ESME]
    ids = count(1)
    times: list[float] = []
    now = START
    host.execute(DeviceCommand("warm", "4.1.1", esme, {}), now)
    for _ in range(requests):
        n = next(ids)
        now += 2.0
        params = {"utrn": make_utrn(esme, 1, n, key=SUPPLIER)} if service == "2.2" else {}
        cmd = DeviceCommand(f"c{n}", service, esme, params)
        t0 = time.perf_counter()
        host.execute(cmd, now)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        journals = {
            level: FieldJournal(Path(tmp) / f"{level}.sqlite", level) for level in Synchronous
        }
        memories: dict[str, Callable[[], FieldMemory | None]] = {
            "no memory": lambda: None,
            "snapshot only (dict)": InMemoryFieldMemory,
            **{f"SQLite, synchronous={lv.name}": (lambda j=j: j) for lv, j in journals.items()},
        }
        print(f"{'memory':32} {'4.1.1 read':>12} {'2.2 top-up':>12}   (median us per request)")
        base: dict[str, float] = {}
        for name, make in memories.items():
            row = {s: _per_request(make(), s, args.requests) for s in ("4.1.1", "2.2")}
            base = base or row
            extra = "  ".join(f"+{row[s] - base[s]:.0f}" for s in row) if row is not base else ""
            print(f"{name:32} {row['4.1.1']:12.0f} {row['2.2']:12.0f}   {extra}")
        for journal in journals.values():
            journal.close()


if __name__ == "__main__":
    main()
