"""Wall time and peak memory of ``dcc simulate`` on one simulated day of the national scenario
at several fleet sizes (bulk mode), each run in its own process.

Run: .venv/bin/python benchmarks/simulate.py [--meters 100000 1000000 10000000 30000000]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--meters", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000, 30_000_000]
    )
    args = ap.parse_args()
    text = (ROOT / "scenarios" / "national.toml").read_text()
    print("| meters | messages | wall s | peak RSS MB |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for meters in args.meters:
            scenario = Path(tmp) / f"national-{meters}.toml"
            scenario.write_text(re.sub(r"(?m)^meters = .*$", f"meters = {meters}", text))
            out = Path(tmp) / f"out-{meters}"
            started = time.perf_counter()
            run = subprocess.run(
                [
                    "/usr/bin/time",
                    "-f",
                    "%M",
                    sys.executable,
                    "-m",
                    "cli",
                    "simulate",
                    str(scenario),
                    "--out",
                    str(out),
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
            )
            wall = time.perf_counter() - started
            rss_mb = int(run.stderr.strip().splitlines()[-1]) / 1024
            summary = (out / "summary.json").read_text() if (out / "summary.json").exists() else ""
            messages = re.search(r'"messages": (\d+)', summary)
            print(
                f"| {meters:,} | {int(messages.group(1)) if messages else 0:,} | {wall:.1f} | {rss_mb:,.0f} |"
            )


if __name__ == "__main__":
    main()
