"""End-to-end throughput and latency of the live hub against a raw pyzmq echo, in one run.

What is measured (loopback only, everything stopped at the end):
1. baseline: a raw ZeroMQ ROUTER/DEALER msgpack echo (no CURVE), pipelined, several client
   processes: messages per second;
2. hub peak: authorised on-demand 4.1.1 reads end to end (request, I99, device round trip with
   zero WAN delay, durable SQLite store, response pushed, delivery acknowledgement) from
   several client processes over CURVE through the client SDK, pipelined: requests per second;
3. hub latency at half of that peak: each client paces its requests; p50 / p99 from submit to
   response.

Run: .venv/bin/python benchmarks/live_hub.py [--clients 4] [--seconds 10]
The hub runs in its own process (``python -m cli serve``), as in production.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import msgpack
import numpy as np
import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import keyed_fleet, start_hub, stop_hub

from hub import wire
from hub.reference.roles import Role
from sdk.client import HubClient
from sdk.keys import hub_keypair, user_keypair

WINDOW = 64


def _echo_server(endpoint: str, ready: mp.Event, stop: mp.Event) -> None:  # type: ignore[valid-type]
    ctx = zmq.Context()
    s = ctx.socket(zmq.ROUTER)
    s.linger = 0
    s.bind(endpoint)
    ready.set()  # type: ignore[attr-defined]
    poller = zmq.Poller()
    poller.register(s, zmq.POLLIN)
    while not stop.is_set():  # type: ignore[attr-defined]
        if not poller.poll(100):
            continue
        while True:
            try:
                ident, body = s.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            msg = msgpack.unpackb(body)
            s.send_multipart([ident, msgpack.packb(msg)])
    s.close()
    ctx.term()


def _echo_client(endpoint: str, seconds: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.linger = 0
    s.connect(endpoint)
    body = {
        "v": 1,
        "kind": "request",
        "request_id": "r-1",
        "role": "IS",
        "service": "4.1.1",
        "device_id": "0123456789ABCDEF",
        "params": {},
    }
    inflight = 0
    done = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        while inflight < WINDOW:
            s.send(msgpack.packb(body))
            inflight += 1
        if s.poll(1000):
            while True:
                try:
                    msgpack.unpackb(s.recv(zmq.NOBLOCK))
                except zmq.Again:
                    break
                inflight -= 1
                done += 1
    out.put(done)
    s.close()
    ctx.term()


def _hub_client(
    endpoint: str,
    fleet_dir: str,
    user: str,
    devices: list[str],
    seconds: float,
    rate: float,
    seed: int,
    out: mp.Queue,
) -> None:  # type: ignore[type-arg]
    """Send 4.1.1 reads (pipelined, or paced at ``rate`` per second); report completions and
    latencies."""
    rng = random.Random(seed)
    client = HubClient(
        endpoint,
        hub_keypair(Path(fleet_dir)).public,
        user_keypair(Path(fleet_dir), user),
        max_in_flight=10_000,
    )
    client.connect(30)
    sent: dict[str, float] = {}
    latencies: list[float] = []
    done = refused = 0
    to_ack: list[int] = []
    n = 0
    start = time.perf_counter()
    end = start + seconds
    next_send = start
    while True:
        now = time.perf_counter()
        if now >= end and not sent:
            break
        if now > end + 30:
            break
        if now < end:
            if rate > 0:
                while next_send <= now:
                    rid = f"{user}-{seed}-{rate:.0f}-{n}"
                    n += 1
                    sent[rid] = time.perf_counter()
                    client.submit(rid, Role.IS, "4.1.1", rng.choice(devices))
                    next_send += 1.0 / rate
            else:
                while len(sent) < WINDOW:
                    rid = f"{user}-{seed}-{rate:.0f}-{n}"
                    n += 1
                    sent[rid] = time.perf_counter()
                    client.submit(rid, Role.IS, "4.1.1", rng.choice(devices))
        msg = client.receive(0.002 if rate > 0 else 0.05)
        while msg is not None:
            if isinstance(msg, wire.ServiceResponse):
                t0 = sent.pop(msg.request_id, None)
                if t0 is not None:
                    latencies.append(time.perf_counter() - t0)
                    done += 1
                to_ack.append(msg.delivery_id)
            elif isinstance(msg, wire.Refusal):
                sent.pop(msg.request_id or "", None)
                refused += 1
            msg = client.receive(0)
        if len(to_ack) >= 32 or (to_ack and rate > 0):
            client.ack(to_ack)
            to_ack = []
    if to_ack:
        client.ack(to_ack)
    client.receive(0.2)
    client.close()
    out.put((done, refused, latencies, time.perf_counter() - start))


def _fleet(tmp: Path, sites: int) -> tuple[Path, dict[str, list[str]]]:
    fleet_dir, meters = keyed_fleet(tmp, sites)
    by_user: dict[str, list[str]] = {}
    for m in meters:
        by_user.setdefault(m.user, []).append(m.device_id)
    return fleet_dir, by_user


def _run_hub_clients(
    endpoint: str,
    fleet_dir: Path,
    by_user: dict[str, list[str]],
    clients: int,
    seconds: float,
    rate: float,
) -> tuple[float, list[float], int]:
    users = sorted(by_user, key=lambda u: -len(by_user[u]))
    q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    procs = []
    for i in range(clients):
        user = users[i % len(users)]
        p = mp.Process(
            target=_hub_client,
            args=(endpoint, str(fleet_dir), user, by_user[user], seconds, rate, i, q),
        )
        p.start()
        procs.append(p)
    results = [q.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    done = sum(r[0] for r in results)
    refused = sum(r[1] for r in results)
    lat = [x for r in results for x in r[2]]
    elapsed = max(r[3] for r in results)
    return done / elapsed, lat, refused


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--sites", type=int, default=2000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dcc-bench-"))
    hub_proc = None
    try:
        # 1. raw echo baseline
        endpoint = "tcp://127.0.0.1:5591"
        ready, stop = mp.Event(), mp.Event()
        server = mp.Process(target=_echo_server, args=(endpoint, ready, stop))
        server.start()
        ready.wait(10)
        q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
        cl = [
            mp.Process(target=_echo_client, args=(endpoint, args.seconds, q))
            for _ in range(args.clients)
        ]
        for p in cl:
            p.start()
        echo_total = sum(q.get(timeout=args.seconds + 60) for _ in cl)
        for p in cl:
            p.join()
        stop.set()
        server.join(timeout=10)
        echo_rate = echo_total / args.seconds

        # 2. the hub, peak
        fleet_dir, by_user = _fleet(tmp, args.sites)
        hub_endpoint = "tcp://127.0.0.1:5592"
        hub_proc = start_hub(fleet_dir, tmp / "data", hub_endpoint, "--pools", "2")
        peak, peak_lat, refused = _run_hub_clients(
            hub_endpoint, fleet_dir, by_user, args.clients, args.seconds, 0.0
        )
        print(
            f"echo {echo_rate:.0f} msg/s; hub peak {peak:.0f} req/s ({refused} refused)",
            file=sys.stderr,
        )
        # 3. latency at half of peak
        half = peak / 2
        _, lat, refused_half = _run_hub_clients(
            hub_endpoint, fleet_dir, by_user, args.clients, args.seconds, half / args.clients
        )
        lat_ms = np.array(lat) * 1000
        result = {
            "command": "python benchmarks/live_hub.py " + " ".join(sys.argv[1:]),
            "clients": args.clients,
            "seconds": args.seconds,
            "cpu_count": os.cpu_count(),
            "echo_msgs_per_s": round(echo_rate),
            "hub_requests_per_s_peak": round(peak),
            "ratio_to_echo": round(peak / echo_rate, 3),
            "refused_at_peak": refused,
            "half_peak_rate": round(half),
            "p50_ms_at_half_peak": round(float(np.percentile(lat_ms, 50)), 2),
            "p99_ms_at_half_peak": round(float(np.percentile(lat_ms, 99)), 2),
            "refused_at_half_peak": refused_half,
            "p50_ms_at_peak": round(float(np.percentile(np.array(peak_lat) * 1000, 50)), 2),
        }
        print(json.dumps(result, indent=2))
    finally:
        stop_hub(hub_proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
