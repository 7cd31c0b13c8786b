"""Scheduler throughput and on-demand latency with and without a bulk schedule burst.

What is measured (loopback only; the hub runs in its own process, as in production):
1. N daily 4.8.1 profile-read schedules are written to the hub's store (as 5.1 would), all due
   at the same minute, spread by the hub's randomised offsets over a window of W seconds;
2. quiet: on-demand 4.1.1 reads paced at R requests/s from several client processes;
   p50 / p99 from submit to response;
3. burst: the same paced on-demand load while the N firings run (as bulk traffic);
   p50 / p99 again, and the firings completed per second (from the hub's SLA records).

Run: .venv/bin/python benchmarks/scheduling.py [--schedules 20000] [--window 20] [--rate 200]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import live_hub  # noqa: E402

from actors.store import open_store  # noqa: E402
from hub.engine import Effects  # noqa: E402
from hub.flows.schedule_spec import parse_create  # noqa: E402
from hub.flows.schedules import Scheduler  # noqa: E402
from hub.reference.roles import Role  # noqa: E402
from hub.reference.uktime import to_uk_local, uk_date  # noqa: E402


def _seed_schedules(data_dir: Path, by_user: dict[str, list[str]], count: int) -> float:
    """Write ``count`` schedules due at the next whole minute at least 60 s away; return that
    minute's instant."""
    now = time.time()
    minute = math.ceil((now + 60) / 60) * 60
    local = to_uk_local(datetime.fromtimestamp(minute, UTC))
    scheduler = Scheduler()
    pairs = [(u, d) for u, ds in sorted(by_user.items()) for d in ds]
    made = []
    for n in range(count):
        user, device = pairs[n % len(pairs)]
        spec = parse_create(
            {
                "service": "4.8.1",
                "device_id": device,
                "recurrence": "daily",
                "start_date": uk_date(datetime.fromtimestamp(minute, UTC)).isoformat(),
                "time_of_day": local.strftime("%H:%M"),
                "params": {"window_s": 86400},
            }
        )
        made.append(scheduler.create(user, Role.IS, spec, now))
    with closing(open_store(data_dir)) as store:
        store.apply(Effects(save_schedules=made), 1, 1, scheduler.next_number)
    return float(minute)


def _latency(lat: list[float]) -> tuple[float, float]:
    ms = np.array(lat) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--schedules", type=int, default=20_000)
    ap.add_argument("--window", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=200.0, help="on-demand requests/s, all clients")
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--sites", type=int, default=4000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dcc-sched-"))
    hub = None
    try:
        fleet_dir, by_user = live_hub._fleet(tmp, args.sites)
        data = tmp / "data"
        due = _seed_schedules(data, by_user, args.schedules)
        endpoint = "tcp://127.0.0.1:5594"
        hub = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cli",
                "serve",
                "--fleet",
                str(fleet_dir),
                "--data",
                str(data),
                "--endpoint",
                endpoint,
                "--pools",
                "2",
                "--schedule-window",
                str(args.window),
            ],
            stdout=subprocess.DEVNULL,
            cwd=ROOT,
        )
        per_client = args.rate / args.clients
        quiet_s = max(5.0, min(10.0, due - time.time() - 15))
        _, quiet, _ = live_hub._run_hub_clients(
            endpoint, fleet_dir, by_user, args.clients, quiet_s, per_client
        )
        wait = due - time.time()
        if wait > 0:
            time.sleep(wait)  # a benchmark may wait for the wall clock; tests never do
        _, burst, refused = live_hub._run_hub_clients(
            endpoint, fleet_dir, by_user, args.clients, args.window + 5, per_client
        )
        time.sleep(5)
        with closing(open_store(data, read_only=True)) as store:
            firings = store.sla_records(service="4.8.1")
        fired = len(firings)
        first = min((r.responded_at for r in firings), default=None)
        last = max((r.responded_at for r in firings), default=None)
        ok = sum(r.code == "I0" for r in firings) if firings else None
        q50, q99 = _latency(quiet)
        b50, b99 = _latency(burst)
        span = (last - first) if fired and last > first else float("nan")
        print(
            json.dumps(
                {
                    "command": "python benchmarks/scheduling.py " + " ".join(sys.argv[1:]),
                    "schedules": args.schedules,
                    "offset_window_s": args.window,
                    "on_demand_rate": args.rate,
                    "firings_answered": fired,
                    "firings_i0": ok,
                    "firings_per_s": round(fired / span, 1) if fired else 0,
                    "firing_span_s": round(span, 1) if fired else None,
                    "on_demand_p50_ms_quiet": round(q50, 2),
                    "on_demand_p99_ms_quiet": round(q99, 2),
                    "on_demand_p50_ms_burst": round(b50, 2),
                    "on_demand_p99_ms_burst": round(b99, 2),
                    "on_demand_refused_in_burst": refused,
                    "due_at": datetime.fromtimestamp(due, UTC).isoformat(),
                },
                indent=2,
            )
        )
    finally:
        if hub is not None:
            hub.terminate()
            try:
                hub.wait(timeout=30)
            except subprocess.TimeoutExpired:
                hub.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
