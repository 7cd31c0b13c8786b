"""The event model (SimPy driving the real hub) and the bulk model agree on a medium scenario
with every flow, an outage storm and an offline supplier (``scenarios/agreement.toml``), run
both ways through ``dcc simulate``: counts per flow, percentiles, within-target shares, the
outbox peak and the SLA verdict, within the tolerances docs/scenarios.md states ("The two
models side by side")."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.app import app

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "agreement.toml"

COUNT_TOLERANCE = {500: 0.10, 100: 0.20}
"""Relative tolerance of a flow's count by the bulk count it reaches (at least 500: 10%, at
least 100: 20%; smaller flows are not compared)."""
PERCENTILE_TOLERANCE = 0.30
"""Relative tolerance of a service flow's p50 and p95 (or 1 s, whichever is larger)."""
WITHIN_TOLERANCE = 0.02
"""Absolute tolerance of a service flow's within-target share, and of the summary's."""
OUTBOX_TOLERANCE = 0.25
"""Relative tolerance of the outbox's true peak."""
SERVICE_FLOWS = ("on demand", "top-ups 2.2", "daily reads 4.6.1", "settlement reads 4.8.1")
"""The flows whose response times both models measure the same way (WAN round trips)."""
TARIFF_FLOW = "tariff change 1.1.1"
"""The Device-pattern tariff change: both models answer it on the device's acknowledgement,
before the execution time its SLA clock starts from (0 s), failures (E20, E21) included. A
region-less row would hold E30s (no 8F66 within ``outcome_timeout``): every device taking
the command raises its outcome here, so neither model has one."""


def flow_class(flow: str) -> str:
    """A flow's name as both models share it: the bulk model's labels carry the event's time
    and device type, and its future-dated outcomes (8F66) are device alerts in the event
    model; the network operators' own reads are part of the on-demand load."""
    name = flow.split(" at ")[0]
    name = re.sub(r"^firmware (\S+) \S+$", r"firmware \1", name)
    if name.startswith("future-dated outcome"):
        return "device alerts"
    return "on demand" if name == "network operator" else name


def per_flow(out: Path, *, regional: bool = False) -> dict[str, dict[str, float]]:
    """Each flow class over every region: messages, and message-weighted p50, p95 and
    within-target share (``regional``: of the rows with a region only)."""
    acc: dict[str, dict[str, float]] = {}
    with (out / "services.csv").open() as f:
        for r in csv.DictReader(f):
            if regional and not r["region"]:
                continue
            n = int(r["messages"])
            a = acc.setdefault(flow_class(r["flow"]), {"n": 0, "p50": 0, "p95": 0, "within": 0})
            a["n"] += n
            if n:
                a["p50"] += n * float(r["p50_s"])
                a["p95"] += n * float(r["p95_s"])
                a["within"] += n * float(r["within_target"])
    for a in acc.values():
        for k in ("p50", "p95", "within"):
            a[k] = a[k] / a["n"] if a["n"] else 0.0
    return acc


def run(mode: str, out: Path) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(app, ["simulate", str(SCENARIO), "--mode", mode, "--out", str(out)])
    assert result.exit_code in (0, 3), result.output
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return result.exit_code, summary


def test_the_event_and_bulk_models_agree_on_a_medium_scenario_with_every_flow(
    tmp_path: Path,
) -> None:
    event_exit, event = run("event", tmp_path / "event")
    bulk_exit, bulk = run("bulk", tmp_path / "bulk")
    e, b = per_flow(tmp_path / "event"), per_flow(tmp_path / "bulk")
    compared = 0
    for flow, fb in b.items():
        tolerance = next((t for n, t in COUNT_TOLERANCE.items() if fb["n"] >= n), None)
        if tolerance is None:
            continue
        fe = e.get(flow, {"n": 0})
        assert abs(fe["n"] - fb["n"]) <= tolerance * fb["n"], (flow, fe["n"], fb["n"])
        compared += 1
    assert compared >= 8  # every flow of the scenario with a sample worth comparing
    for flow in SERVICE_FLOWS:
        for k in ("p50", "p95"):
            allowed = max(1.0, PERCENTILE_TOLERANCE * b[flow][k])
            assert abs(e[flow][k] - b[flow][k]) <= allowed, (flow, k, e[flow][k], b[flow][k])
        assert abs(e[flow]["within"] - b[flow]["within"]) <= WITHIN_TOLERANCE, flow
    er, br = per_flow(tmp_path / "event", regional=True), per_flow(tmp_path / "bulk")
    tariff_e, tariff_b = er[TARIFF_FLOW], br[TARIFF_FLOW]
    assert tariff_b["n"] >= 500
    assert abs(tariff_e["n"] - tariff_b["n"]) <= COUNT_TOLERANCE[500] * tariff_b["n"]
    for k in ("p50", "p95"):
        allowed = max(1.0, PERCENTILE_TOLERANCE * tariff_b[k])
        assert abs(tariff_e[k] - tariff_b[k]) <= allowed, (k, tariff_e[k], tariff_b[k])
    assert abs(tariff_e["within"] - tariff_b["within"]) <= WITHIN_TOLERANCE
    # no E30: a command that failed (E20, E21) awaits no outcome, and every other one got its 8F66
    assert e[TARIFF_FLOW]["n"] == tariff_e["n"]
    assert abs(event["within_target"] - bulk["within_target"]) <= WITHIN_TOLERANCE
    # the offline supplier's backlog: its true peak, nothing expired in either
    assert bulk["max_outbox_depth"] > 100
    peak_e, peak_b = event["max_outbox_depth"], bulk["max_outbox_depth"]
    assert abs(peak_e - peak_b) <= OUTBOX_TOLERANCE * peak_b, (peak_e, peak_b)
    assert event["expired"] == bulk["expired"] == 0
    # and how long it took to drain once the supplier was back
    [drain_e] = event["outbox_drain_s"]["user u-supa"]
    [drain_b] = bulk["outbox_drain_s"]["user u-supa"]
    assert drain_b > 10
    assert abs(drain_e - drain_b) <= max(5.0, OUTBOX_TOLERANCE * drain_b), (drain_e, drain_b)
    # the same verdict, for the same reasons (top-ups to premises without power in the storm)
    assert event_exit == bulk_exit == 3
    assert breached(event) == breached(bulk) == {"service 2.2"}


def breached(summary: dict[str, Any]) -> set[str]:
    """Which thresholds a run breached (``service 2.2``, ``outbox``, ``expiries``, ``busy``,
    ``minimum``), without the figures."""
    kinds = {"outbox held": "outbox", "expired": "expiries", "busy": "busy"}
    out = set()
    for text in summary["breaches"]:
        if text.startswith("service "):
            out.add(text.split(":")[0])
        else:
            out.add(next((k for w, k in kinds.items() if w in text), "minimum"))
    return out
