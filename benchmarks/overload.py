"""The live hub offered far more than it can carry: who is refused busy, how fast every frame is
answered, whether deliveries keep flowing, and what happens to memory.

Several client processes send, open loop at a fixed rate each, a mix of urgent top-ups (2.2,
valid UTRNs) and on-demand reads (4.1.1) to the same prepayment meters, with a fixed WAN round
trip, so the comms hubs (one command at a time each) are the bottleneck. Each client
acknowledges every delivery it receives. Reported, per priority class: requests sent, answered
I99 / H8 / otherwise, unanswered; p50 / p99 time from send to answer (I99 or a refusal); device
responses received per second; and the hub's RSS over the run and after it.

Run: .venv/bin/python benchmarks/overload.py [--clients 3] [--seconds 20] [--rate 150]
     [--meters 40] [--wan-latency 1.0] [--answer-within 1.0] [--send-window N]
With ``--send-window N`` each client uses the SDK's send window: a request it would send while
N of its requests are unanswered is held back locally (counted as ``held_back``, not sent), as
a client that follows the protocol's advice does; times are then send to answer of the frames
that did leave the client.
The sustainable rate is about ``meters / wan_latency`` requests per second (one command per
comms hub in flight); the default offers about ten times that. With ``--wan-latency 0`` the
front door itself is the bottleneck (saturation run, e.g. ``--rate 3000``). Loopback only,
on a free port.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import Meter, keyed_fleet, rss_mb, start_hub, stop_hub

from hub import wire
from hub.reference.roles import Role
from hub.reference.utrn import make_utrn
from sdk.client import HubClient, SendWindowFullError
from sdk.keys import hub_keypair, user_keypair

TOP_UP_SHARE = 0.15
CLASSES = ("urgent", "on_demand")


def _client(
    endpoint: str,
    fleet_dir: str,
    user: str,
    meters: list[Meter],
    seconds: float,
    rate: float,
    seed: int,
    window: int | None,
    out: mp.Queue,  # type: ignore[type-arg]
) -> None:
    rng = random.Random(seed)
    client = HubClient(
        endpoint,
        hub_keypair(Path(fleet_dir)).public,
        user_keypair(Path(fleet_dir), user),
        max_in_flight=10_000,
        send_window=window,
    )
    client.connect(30)
    sent: dict[str, tuple[str, float]] = {}
    counts = {c: {"sent": 0} for c in CLASSES}
    answer_s: dict[str, list[float]] = {c: [] for c in CLASSES}
    responses = 0
    counter = seed * 100_000
    n = 0
    start = time.perf_counter()
    end = start + seconds
    next_send = start
    to_ack: list[int] = []
    while True:
        now = time.perf_counter()
        if (now >= end and not sent) or now > end + 60:
            break
        while now < end and next_send <= now:
            m = rng.choice(meters)
            rid = f"{user}-{seed}-{n}"
            n += 1
            next_send += 1.0 / rate
            try:
                if rng.random() < TOP_UP_SHARE:
                    counter += 1
                    utrn = make_utrn(m.device_id, 500, counter % 999_999, key=m.party)
                    cls = "urgent"
                    client.submit(rid, Role.IS, "2.2", m.device_id, {"utrn": utrn})
                else:
                    cls = "on_demand"
                    client.submit(rid, Role.IS, "4.1.1", m.device_id)
            except SendWindowFullError:
                counts[cls]["held_back"] = counts[cls].get("held_back", 0) + 1
                continue
            sent[rid] = (cls, time.perf_counter())
            counts[cls]["sent"] += 1
        msg = client.receive(0.002)
        while msg is not None:
            if isinstance(msg, wire.Acknowledgement | wire.Refusal):
                entry = sent.pop(msg.request_id or "", None)
                if entry is not None:
                    cls, t0 = entry
                    answer_s[cls].append(time.perf_counter() - t0)
                    counts[cls][msg.code.value] = counts[cls].get(msg.code.value, 0) + 1
            elif isinstance(msg, wire.ServiceResponse | wire.DeviceAlertNotice | wire.HubAlert):
                if isinstance(msg, wire.ServiceResponse):
                    responses += 1
                to_ack.append(msg.delivery_id)
            msg = client.receive(0)
        if to_ack:
            client.ack(to_ack)
            to_ack = []
    for cls, _ in sent.values():
        counts[cls]["unanswered"] = counts[cls].get("unanswered", 0) + 1
    client.close()
    out.put((counts, answer_s, responses, time.perf_counter() - start))


def _sampler(pid: int, samples: list[tuple[float, float]], stop: threading.Event) -> None:
    t0 = time.monotonic()
    while not stop.wait(0.5):
        samples.append((round(time.monotonic() - t0, 1), round(rss_mb(pid), 1)))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--clients", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=150.0, help="requests/s per client")
    ap.add_argument("--meters", type=int, default=40, help="prepayment meters targeted")
    ap.add_argument("--wan-latency", type=float, default=1.0)
    ap.add_argument("--sites", type=int, default=1500)
    ap.add_argument("--after", type=float, default=15.0, help="seconds of RSS after the load")
    ap.add_argument(
        "--answer-within", type=float, default=None, help="dcc serve --answer-within (seconds)"
    )
    ap.add_argument(
        "--send-window",
        type=int,
        default=None,
        help="each client's SDK send window (requests unanswered before it holds back)",
    )
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dcc-overload-"))
    hub = None
    try:
        fleet_dir, meters = keyed_fleet(tmp, args.sites)
        by_user: dict[str, list[Meter]] = {}
        for m in meters:
            if m.prepayment:
                by_user.setdefault(m.user, []).append(m)
        users = sorted(by_user, key=lambda u: -len(by_user[u]))[: args.clients]
        per_user = max(1, args.meters // len(users))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            endpoint = f"tcp://127.0.0.1:{s.getsockname()[1]}"
        extra = ["--pools", "2", "--wan-latency", str(args.wan_latency)]
        if args.answer_within is not None:
            extra += ["--answer-within", str(args.answer_within)]
        hub = start_hub(fleet_dir, tmp / "data", endpoint, *extra)
        samples: list[tuple[float, float]] = []
        stop = threading.Event()
        sampler = threading.Thread(target=_sampler, args=(hub.pid, samples, stop), daemon=True)
        sampler.start()
        q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
        procs = [
            mp.Process(
                target=_client,
                args=(
                    endpoint,
                    str(fleet_dir),
                    users[i % len(users)],
                    by_user[users[i % len(users)]][:per_user],
                    args.seconds,
                    args.rate,
                    i,
                    args.send_window,
                    q,
                ),
            )
            for i in range(args.clients)
        ]
        probe = HubClient(
            endpoint, hub_keypair(fleet_dir).public, user_keypair(fleet_dir, users[0])
        )
        probe.connect(120)  # the hub has loaded its fleet and is serving
        probe.close()
        idle_rss = rss_mb(hub.pid)
        for p in procs:
            p.start()
        results = [q.get(timeout=args.seconds + 180) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        load_end = len(samples)
        time.sleep(args.after)  # the hub settling after the load, sampled meanwhile
        stop.set()
        sampler.join(timeout=5)
        classes: dict[str, dict[str, object]] = {}
        for cls in CLASSES:
            merged: dict[str, int] = {}
            for counts, _, _, _ in results:
                for k, v in counts[cls].items():
                    merged[k] = merged.get(k, 0) + v
            lat = np.array([x for _, a, _, _ in results for x in a[cls]] or [float("nan")]) * 1000
            sent = merged.get("sent", 0)
            classes[cls] = {
                **merged,
                "H8_share": round(merged.get("H8", 0) / sent, 4) if sent else None,
                "p50_answer_ms": round(float(np.nanpercentile(lat, 50)), 1),
                "p99_answer_ms": round(float(np.nanpercentile(lat, 99)), 1),
            }
        elapsed = max(r[3] for r in results)
        rss = [r for _, r in samples]
        result = {
            "command": "python benchmarks/overload.py " + " ".join(sys.argv[1:]),
            "offered_per_s": args.clients * args.rate,
            "sustainable_per_s": (
                round(args.meters / args.wan_latency, 1) if args.wan_latency > 0 else None
            ),
            "classes": classes,
            "responses_per_s": round(sum(r[2] for r in results) / elapsed, 1),
            "rss_mb": {
                "idle_before": round(idle_rss, 1),
                "peak_during": max(rss[:load_end] or [0.0]),
                "at_end": rss[-1] if rss else None,
            },
            "rss_over_time": " ".join(
                f"{t:.0f}s:{r:.0f}" for t, r in samples[:: max(1, len(samples) // 30)]
            ),
        }
        print(json.dumps(result, indent=2))
    finally:
        stop_hub(hub)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
