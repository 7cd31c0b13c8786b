"""Wall time and peak memory of ``dcc simulate`` on one simulated day of the national scenario:
the bulk model at several fleet sizes, and the event model partitioned by GB distribution area
(100,000 sites by default) on a local cluster of worker processes; each run in its own process.
Peak RSS of a partitioned run is over all its processes (the run and its workers, summed,
sampled every half second).

Run: .venv/bin/python benchmarks/simulate.py [--meters 100000 1000000 10000000 30000000]
     .venv/bin/python benchmarks/simulate.py --meters --event-sites 100000 [--workers 8]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tree_rss_kb(root: int) -> int:
    """Resident memory of a process and all its descendants, kB (0 when it is gone)."""
    parent: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            status = (entry / "status").read_text()
        except OSError:
            continue
        pid = int(entry.name)
        parent[pid] = int(stat[stat.rindex(")") + 2 :].split()[1])
        found = re.search(r"(?m)^VmRSS:\s+(\d+) kB", status)
        rss[pid] = int(found.group(1)) if found else 0
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += [child for child, p in parent.items() if p == pid]
    return total


def _run(args: list[str]) -> tuple[float, float, str]:
    """Run ``dcc`` with ``args``; wall time s, peak RSS MB over its process tree, stderr."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_kb(proc.pid))
        time.sleep(0.5)  # sampling memory, not synchronising
    wall = time.perf_counter() - started
    assert proc.stderr is not None
    return wall, peak / 1024, proc.stderr.read()


def _messages(out: Path) -> int:
    summary = (out / "summary.json").read_text() if (out / "summary.json").exists() else ""
    found = re.search(r'"messages": (\d+)', summary)
    return int(found.group(1)) if found else 0


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--meters", type=int, nargs="*", default=[100_000, 1_000_000, 10_000_000, 30_000_000]
    )
    ap.add_argument("--event-sites", type=int, nargs="*", default=[])
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--duration", default="1d", help="Simulated time of the event case.")
    args = ap.parse_args()
    text = (ROOT / "scenarios" / "national.toml").read_text()
    with tempfile.TemporaryDirectory() as tmp:
        if args.meters:
            print("| model | meters | messages | wall s | peak RSS MB |")
            print("|---|---|---|---|---|")
        for meters in args.meters:
            scenario = Path(tmp) / f"national-{meters}.toml"
            scenario.write_text(re.sub(r"(?m)^meters = .*$", f"meters = {meters}", text))
            out = Path(tmp) / f"out-{meters}"
            wall, rss, _ = _run(["simulate", str(scenario), "--mode", "bulk", "--out", str(out)])
            print(f"| bulk | {meters:,} | {_messages(out):,} | {wall:.1f} | {rss:,.0f} |")
        if args.event_sites:
            print("| model | sites | simulated | workers | messages | wall s | peak RSS MB |")
            print("|---|---|---|---|---|---|---|")
        for sites in args.event_sites:
            body = re.sub(r"(?m)^meters = .*$", f"sites = {sites}", text)
            body = re.sub(r"(?m)^duration = .*$", f'duration = "{args.duration}"', body)
            scenario = Path(tmp) / f"national-{sites}-sites.toml"
            scenario.write_text(body)
            out = Path(tmp) / f"event-{sites}"
            wall, rss, err = _run(
                [
                    "simulate",
                    str(scenario),
                    "--mode",
                    "event",
                    "--partition",
                    "area",
                    "--workers",
                    str(args.workers),
                    "--out",
                    str(out),
                ]
            )
            failed = "error:" in err
            print(
                f"| event, partitioned | {sites:,} | {args.duration} | {args.workers} | "
                f"{_messages(out):,} | {wall:.1f} | {rss:,.0f} |" + (" (failed)" if failed else "")
            )
            if failed:
                sys.stderr.write(err)


if __name__ == "__main__":
    main()
