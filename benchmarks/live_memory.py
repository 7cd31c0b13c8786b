"""Resident memory of a live hub process per held delivery, and after the load is delivered.

A real ``dcc serve`` process (its own process, durable SQLite store, CURVE on loopback) and
one supplier user that never says Hello: it sends N 8.2 Read Inventory requests (answered by
the hub itself, no device round trip) with at most ``--window`` unanswered at a time, and each
response is held for it. The hub's ``--json`` status lines tell when all N are held. Then the
user connects for deliveries, acknowledges each, and the hub's RSS is read once nothing is
held any more, and again after ``--settle`` seconds. Before the baseline, ``--warmup``
deliveries are held and delivered the same way (imports, caches, SQLite's page cache).

Each held response also leaves its request remembered for idempotency, so (held - idle) / N
mixes both costs. To tell them apart, a first phase (skipped with ``--skip-remembered``) has a
user that did say Hello send N requests and acknowledge each response as it comes: N request
ids remembered, nothing held. Its RSS growth per request is the cost of a remembered id; the
held phase's growth per delivery less that is the cost of a held delivery alone (which
includes the front door's payload cache filling up to its budget, 32 MiB: at small N that fill
dominates; ``benchmarks/memory.py --breakdown`` shows it without the RSS noise).

Reported (one Markdown row): RSS idle, RSS with N remembered, bytes of RSS per remembered
request, RSS with N held, bytes of RSS per held delivery ((held - idle) / N, as before, and
net of the remembered request), RSS once delivered and after settling, store file bytes per
held delivery. Run on a quiet machine for figures:
    .venv/bin/python benchmarks/live_memory.py --n 1000000
    .venv/bin/python benchmarks/live_memory.py --n 2000 --sites 20      # a smoke run
"""

from __future__ import annotations

import argparse
import json
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import ROOT, keyed_fleet, rss_mb, stop_hub, wait_idle_rss

from hub import wire
from hub.reference.codes import ResponseCode
from hub.reference.roles import Role
from sdk.client import HubClient
from sdk.keys import hub_keypair, user_keypair

SERVICE = "8.2"
"""Read Inventory: answered by the hub from its own data, so the response is made at once."""


class _Status:
    """The hub's ``--json`` lines, read by a thread of their own; the latest status kept."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.latest: dict[str, Any] = {}
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            doc = json.loads(raw)
            if doc.get("event") == "status":
                self.latest = doc
            self._lines.put(doc)

    def listening(self, timeout_s: float) -> dict[str, Any]:
        """The start line (the hub listens once it is printed)."""
        while True:
            doc = self._lines.get(timeout=timeout_s)
            if doc.get("event") == "listening":
                return doc

    def wait_held(self, done: Any, timeout_s: float) -> None:
        """Until ``done(held)`` holds for the latest status line's ``held``."""
        deadline = time.monotonic() + timeout_s
        while not done(self.latest.get("held", -1)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"held is {self.latest.get('held')} after {timeout_s} s")
            time.sleep(0.2)


def _hold(client: HubClient, device_id: str, n: int, window: int) -> dict[str, int]:
    """Send ``n`` requests, at most ``window`` unanswered; H8 ones are sent again (same id,
    as the protocol allows). Returns the answers by code."""
    codes: dict[str, int] = {}
    to_send = [client.next_request_id("held") for _ in range(n)]
    to_send.reverse()
    waiting = 0
    accepted = 0
    while accepted < n:
        while to_send and waiting < window:
            client.submit(to_send.pop(), Role.IS, SERVICE, device_id)
            waiting += 1
        msg = client.receive(60)
        if msg is None:
            raise TimeoutError(f"no answer in 60 s ({accepted} of {n} accepted)")
        if not isinstance(msg, (wire.Acknowledgement, wire.Refusal)):
            continue
        waiting -= 1
        codes[msg.code.value] = codes.get(msg.code.value, 0) + 1
        if msg.code is ResponseCode.I99:
            accepted += 1
        elif msg.code is ResponseCode.H8 and msg.request_id is not None:
            to_send.append(msg.request_id)
        else:
            raise RuntimeError(f"{SERVICE} refused: {msg.code.value} {msg.reason}")
    return codes


def _answered(client: HubClient, device_id: str, n: int, window: int, status: _Status) -> None:
    """Send ``n`` requests from a user that said Hello, at most ``window`` unanswered, and
    acknowledge each response as it arrives, until every one is answered and none is held:
    ``n`` request ids remembered, no delivery held."""
    to_send = [client.next_request_id("ans") for _ in range(n)]
    to_send.reverse()
    waiting = accepted = acked = 0
    while accepted < n or acked < n:
        while to_send and waiting < window:
            client.submit(to_send.pop(), Role.IS, SERVICE, device_id)
            waiting += 1
        msg = client.receive(60)
        if msg is None:
            raise TimeoutError(f"no message in 60 s ({accepted} accepted, {acked} acked of {n})")
        if isinstance(msg, wire.ServiceResponse):
            client.ack([msg.delivery_id])
            acked += 1
        elif isinstance(msg, (wire.Acknowledgement, wire.Refusal)):
            waiting -= 1
            if msg.code is ResponseCode.I99:
                accepted += 1
            elif msg.code is ResponseCode.H8 and msg.request_id is not None:
                to_send.append(msg.request_id)
            else:
                raise RuntimeError(f"{SERVICE} refused: {msg.code.value} {msg.reason}")
    status.wait_held(lambda held: held == 0, 600)


def _deliver(client: HubClient, status: _Status, timeout_s: float) -> int:
    """Receive and acknowledge deliveries until the hub holds none."""
    got = 0
    deadline = time.monotonic() + timeout_s
    while status.latest.get("held", -1) != 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"still {status.latest.get('held')} held after {timeout_s} s")
        msg = client.receive(0.5)
        if isinstance(msg, wire.ServiceResponse):
            client.ack([msg.delivery_id])
            got += 1
    return got


def _store_bytes(data: Path) -> int:
    return sum(p.stat().st_size for p in data.glob("hub.sqlite*"))


def _median(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2]


def run(
    n: int, sites: int, window: int, settle: float, warmup: int, remembered: bool = True
) -> dict[str, float]:
    """One run: the figures of the table row (``remembered``: with the remembered-only phase
    first; without it its figures are NaN)."""
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        fleet_dir, meters = keyed_fleet(tmp, sites)
        user, device_id = meters[0].user, meters[0].device_id
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cli",
                "serve",
                "--fleet",
                str(fleet_dir),
                "--data",
                str(tmp / "data"),
                "--endpoint",
                "tcp://127.0.0.1:0",
                "--pools",
                "1",
                "--json",
                "--status-every",
                "0.5",
            ],
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        client = listener = None
        try:
            status = _Status(proc)
            endpoint = status.listening(120)["endpoint"]
            keys = (endpoint, hub_keypair(fleet_dir).public, user_keypair(fleet_dir, user))
            client = HubClient(*keys, auto_hello=False)  # never says Hello: everything is held
            if warmup:  # the code paths and caches of holding and delivering, before the baseline
                _hold(client, device_id, warmup, window)
                status.wait_held(lambda held: held >= warmup, 600)
                listener = HubClient(*keys)
                _deliver(listener, status, 600)
                listener.close()
                listener = None
            idle = _median(wait_idle_rss(proc.pid, settle))
            with_remembered = per_remembered = float("nan")
            if remembered:  # N request ids remembered, nothing held
                listener = HubClient(*keys)
                _answered(listener, device_id, n, window, status)
                listener.close()
                listener = None
                with_remembered = _median(wait_idle_rss(proc.pid, settle))
                per_remembered = (with_remembered - idle) * 2**20 / n
            before_held = idle if not remembered else with_remembered
            store_before = _store_bytes(tmp / "data")
            began = time.monotonic()
            codes = _hold(client, device_id, n, window)
            status.wait_held(lambda held: held >= n, 600)
            held_s = time.monotonic() - began
            with_held = rss_mb(proc.pid)
            store = _store_bytes(tmp / "data") - store_before
            listener = HubClient(*keys)  # says Hello: the held deliveries are pushed to it
            delivered = _deliver(listener, status, 600)
            after = rss_mb(proc.pid)
            return {
                "n": n,
                "rss_idle_mb": idle,
                "rss_remembered_mb": with_remembered,
                "ram_bytes_per_remembered": per_remembered,
                "rss_held_mb": with_held,
                "ram_bytes_per_held": (with_held - before_held) * 2**20 / n,
                "ram_bytes_per_held_net": (with_held - before_held) * 2**20 / n - per_remembered,
                "rss_delivered_mb": after,
                "rss_settled_mb": _median(wait_idle_rss(proc.pid, settle)),
                "store_bytes_per_held": store / n,
                "delivered": delivered,
                "busy_answers": codes.get("H8", 0),
                "seconds_to_hold": held_s,
            }
        finally:
            for c in (client, listener):
                if c is not None:
                    c.close()
            stop_hub(proc)
            if proc.stdout is not None:
                proc.stdout.close()


def main() -> None:
    """Run once and print the figures as a Markdown table (and as JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="held deliveries")
    parser.add_argument("--sites", type=int, default=200, help="fleet size")
    parser.add_argument("--window", type=int, default=256, help="requests unanswered at once")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds of RSS sampling (>= 1)")
    parser.add_argument(
        "--warmup", type=int, default=1000, help="deliveries held and delivered before the baseline"
    )
    parser.add_argument(
        "--skip-remembered",
        action="store_true",
        help="no remembered-only phase before the held one",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    if args.n < 1 or args.window < 1 or args.settle < 1 or args.warmup < 0:
        parser.error("--n and --window must be at least 1, --settle at least 1 s, --warmup 0+")
    r = run(args.n, args.sites, args.window, args.settle, args.warmup, not args.skip_remembered)
    print(
        "| N | RSS idle (MB) | RSS with N remembered (MB) | RAM bytes/remembered "
        "| RSS with N held too (MB) | RAM bytes/held | RAM bytes/held net of its request "
        "| RSS delivered (MB) | RSS settled (MB) | store bytes/held | H8 answers | s to hold |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {r['n']:,} | {r['rss_idle_mb']:.0f} | {r['rss_remembered_mb']:.0f} | "
        f"{r['ram_bytes_per_remembered']:.0f} | {r['rss_held_mb']:.0f} | "
        f"{r['ram_bytes_per_held']:.0f} | {r['ram_bytes_per_held_net']:.0f} | "
        f"{r['rss_delivered_mb']:.0f} | "
        f"{r['rss_settled_mb']:.0f} | {r['store_bytes_per_held']:.0f} | "
        f"{r['busy_answers']:,} | {r['seconds_to_hold']:.1f} |"
    )
    if args.json:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
