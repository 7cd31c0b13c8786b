"""PNG plots of a simulation's time series (matplotlib, headless).

Decides: which series are drawn (mean cell utilisation per region over time, outbox depth
over time, when the run has rows for them) and how.
Must never: compute results; it draws the CSV files the simulate command wrote.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on servers and CI
import matplotlib.pyplot as plt


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def plot_outputs(directory: Path, title: str) -> list[Path]:
    """Draw every time series found in ``directory``; returns the PNG files written."""
    written = []
    util = directory / "wan_utilisation.csv"
    rows = _rows(util) if util.exists() else []
    if rows:
        series: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for r in rows:
            series[r["region"]].append(
                (float(r["interval_start_s"]) / 3600.0, float(r["mean_cell_utilisation"]))
            )
        fig, ax = plt.subplots(figsize=(9, 4))
        for name in sorted(series)[:12]:
            xs, ys = zip(*sorted(series[name]), strict=True)
            ax.step(xs, ys, where="post", label=name)
        ax.set_xlabel("hours from start")
        ax.set_ylabel("mean share of cell capacity")
        ax.set_title(f"{title}: mean cell utilisation by region")
        ax.legend(fontsize="small")
        fig.tight_layout()
        out = directory / "wan_utilisation.png"
        fig.savefig(out, dpi=100)
        plt.close(fig)
        written.append(out)
    depth = directory / "outbox_depth.csv"
    rows = _rows(depth) if depth.exists() else []
    if rows:  # bulk mode models no outbox: a header alone
        fig, ax = plt.subplots(figsize=(9, 3))
        ax.plot([float(r["t_s"]) / 3600.0 for r in rows], [int(r["held"]) for r in rows])
        ax.set_xlabel("hours from start")
        ax.set_ylabel("deliveries held")
        ax.set_title(f"{title}: outbox depth")
        fig.tight_layout()
        out = directory / "outbox_depth.png"
        fig.savefig(out, dpi=100)
        plt.close(fig)
        written.append(out)
    return written
