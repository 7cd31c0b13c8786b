"""Where an event-model run's memory goes, per site: tracemalloc over one partition-sized run
of the quickstart load on a small fleet, grouped by the package that allocated it (simulated
devices and the WAN line in ``simfield``, the engine's records in ``hub``, SimPy's events, the
driver's own measurements in ``meters_sim``), before the run starts (fleet and registers) and
at its end.

Run: .venv/bin/python benchmarks/event_memory.py [--sites 2000] [--duration 1h]
"""

from __future__ import annotations

import argparse
import re
import tempfile
import tracemalloc
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GROUPS = ("simfield", "hub", "simpy", "meters_sim", "sdk", "cryptography")


def _group(filename: str) -> str:
    parts = Path(filename).parts
    for g in GROUPS:
        if g in parts:
            return g
    return "other (python, numpy, stdlib)"


def _by_group(snapshot: tracemalloc.Snapshot) -> Counter[str]:
    out: Counter[str] = Counter()
    for stat in snapshot.statistics("filename"):
        out[_group(stat.traceback[0].filename)] += stat.size
    return out


def _by_file(snapshot: tracemalloc.Snapshot, top: int) -> list[tuple[str, int]]:
    stats = snapshot.statistics("filename")[:top]
    out = []
    for s in stats:
        name = s.traceback[0].filename
        out.append((name.removeprefix(str(ROOT) + "/"), s.size))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sites", type=int, default=2000)
    ap.add_argument("--duration", default="1h")
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()
    from meters_sim.partition import Partition, simulate_partition
    from meters_sim.scenario_files import read_scenario
    from simfield.fleet import REGIONS, generate_fleet
    from simfield.fleet_files import write_fleet

    text = (ROOT / "scenarios" / "quickstart.toml").read_text()
    text = re.sub(r"(?m)^sites = .*$", f"sites = {args.sites}", text)
    text = re.sub(r"(?m)^duration = .*$", f'duration = "{args.duration}"', text)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "memory.toml"
        path.write_text(text)
        scenario = read_scenario(path)
        arrays = generate_fleet(
            scenario.fleet.sites, scenario.run.seed, scenario.run.as_of, scenario.fleet.mix
        )
        write_fleet(arrays, Path(tmp) / "fleet")
        cells = frozenset(
            (REGIONS[r], int(c))
            for r, c in zip(arrays.site_region.tolist(), arrays.site_cell.tolist(), strict=True)
        )
        whole = Partition("whole fleet", cells, args.sites)
        tracemalloc.start(1)
        from meters_sim import partition

        partition._fleet(str(Path(tmp) / "fleet"))
        partition._keys(str(Path(tmp) / "fleet"))
        loaded = tracemalloc.take_snapshot()
        done = simulate_partition(str(Path(tmp) / "fleet"), scenario, whole)
        ended = tracemalloc.take_snapshot()
        tracemalloc.stop()
    before, after = _by_group(loaded), _by_group(ended)
    print(
        f"{args.sites:,} sites, {args.duration} simulated, {len(done.sim.sla):,} responses, {done.sim.counters['commands']:,} commands"
    )
    print("| allocated by | fleet loaded, B/site | at the end, B/site | run's own, B/site |")
    print("|---|---|---|---|")
    for g in sorted(set(before) | set(after), key=lambda g: -after[g]):
        b, a = before[g] / args.sites, after[g] / args.sites
        print(f"| {g} | {b:,.0f} | {a:,.0f} | {a - b:,.0f} |")
    total_b, total_a = sum(before.values()), sum(after.values())
    print(
        f"| total | {total_b / args.sites:,.0f} | {total_a / args.sites:,.0f} | "
        f"{(total_a - total_b) / args.sites:,.0f} |"
    )
    print()
    print("| file (at the end) | B/site |")
    print("|---|---|")
    for name, size in _by_file(ended, args.top):
        print(f"| {name} | {size / args.sites:,.0f} |")


if __name__ == "__main__":
    main()
