"""The event model plays every flow of a scenario through the real engine: steady alerts,
scheduled reads spread over their window, network operators who connect, receive their alarms
and send their own reads, and the comms hub's AD1 when an outage starts. Each test writes a
small scenario in the public format and counts what the users were told."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from hub.reference.roles import Role
from meters_sim.scenario import Scenario, load_scenario
from meters_sim.simulator import Decision, Simulation
from simfield.devices.chf import OUTAGE_ALERT_AFTER_S
from tests.sim_support import run_event

pytestmark = pytest.mark.timeout(300)

QUIET = """
[load.on_demand]
per_meter_per_day = 0.0
[load.daily_reads]
share = 0.0
[load.top_ups]
per_prepayment_meter_per_day = 0.0
[load.change_of_supplier]
churn_per_day = 0.0
[load.alerts]
per_meter_per_day = 0.0
"""
"""Every steady flow off, so a test switches on only the one it counts."""


def _scenario(head: str, load: str = "") -> Scenario:
    """A scenario of ``head`` ([scenario] and [fleet]) with every steady flow off except
    those ``load`` sets again (later tables of the same name replace the quiet ones)."""
    quiet = QUIET
    for section in ("[load.on_demand]", "[load.daily_reads]", "[load.alerts]"):
        if section in load:
            start = quiet.index(section)
            end = quiet.find("[", start + 1)
            quiet = quiet[:start] + (quiet[end:] if end >= 0 else "")
    return load_scenario(head + quiet + load, "flows.toml")


@dataclass
class Run:
    """A finished run: the simulation, what the workload planned and who the users are."""

    sim: Simulation
    planned: dict[str, int]
    roles: dict[str, frozenset[Role]]

    def told(self, kind: str) -> list[Decision]:
        """Everything of one kind the users were told."""
        return [d for d in self.sim.log if d.kind == kind]


def _run(scenario: Scenario, tmp_path: Path) -> Run:
    run = run_event(scenario, tmp_path)
    return Run(run.sim, run.planned, {u.user_id: u.roles for u in run.fleet.users.values()})


def test_the_steady_alerts_of_the_scenario_reach_their_users_at_the_scenario_rate(
    tmp_path: Path,
) -> None:
    head = """
[scenario]
name = "alerts"
seed = 7
start = 2025-03-03T09:00:00Z
duration = "4h"
[fleet]
sites = 120
"""
    run = _run(_scenario(head, "[load.alerts]\nper_meter_per_day = 12.0\n"), tmp_path)
    meters = run.planned["steady_alerts"]
    # 12 a meter a day over 4 hours: 2 per meter, about 200 meters
    assert 250 < meters < 700, meters
    alerts = run.told("device_alert")
    assert len(alerts) >= 0.9 * meters
    codes = Counter(d.code for d in alerts)
    assert {"8099", "8091", "8F0A", "8145"} <= set(codes)
    voltage = [d for d in alerts if d.code in ("8099", "8091")]
    assert voltage
    assert all(run.roles[d.user_id] & {Role.ED} for d in voltage)
    billing = [d for d in alerts if d.code == "8F0A"]
    assert all(run.roles[d.user_id] & {Role.IS, Role.GS} for d in billing)
    assert run.sim.counters["expired"] == 0


def test_daily_reads_fire_over_the_whole_window_even_when_the_run_starts_at_its_start(
    tmp_path: Path,
) -> None:
    head = """
[scenario]
name = "reads"
seed = 8
start = 2025-03-03T01:00:00Z
duration = "6h"
[fleet]
sites = 120
[hub]
schedule_window = "10m"
"""
    load = '[load.daily_reads]\nshare = 1.0\nwindow_start = "01:00"\nwindow = "4h"\n'
    run = _run(_scenario(head, load), tmp_path)
    start = run.sim.config.start
    fired = [d for d in run.told("response") if (d.request_id or "").startswith("S")]
    assert run.planned["schedules"] > 150
    assert len(fired) >= 0.95 * run.planned["schedules"], (len(fired), run.planned)
    hours = Counter(int((d.at - start) // 3600) for d in fired)
    # evenly over 01:00-05:00 UK time (GMT in March), plus a random offset of 10 minutes
    assert set(hours) <= {0, 1, 2, 3, 4}
    for h in range(4):
        assert hours[h] > 0.15 * len(fired), hours


def test_network_operators_connect_receive_their_alarms_and_send_their_own_reads(
    tmp_path: Path,
) -> None:
    head = """
[scenario]
name = "networks"
seed = 9
start = 2025-03-03T09:00:00Z
duration = "3h"
[fleet]
sites = 150
[hub]
hold = "1h"
"""
    load = """
[load.on_demand]
per_meter_per_day = 40.0
[load.alerts]
per_meter_per_day = 4.0
[[load.outages]]
start = 2025-03-03T09:30:00Z
region = "north"
share = 0.6
duration = "30m"
restore_over = "10m"
"""
    run = _run(_scenario(head, load), tmp_path)
    network = {u for u, roles in run.roles.items() if roles & {Role.ED, Role.GT}}
    alarms = [d for d in run.told("device_alert") if d.user_id in network]
    assert {"AD1", "8099"} <= {d.code for d in alarms}
    assert run.sim.counters["expired"] == 0  # they are connected, so nothing outlives its hold
    assert run.planned["network_operator"] > 10
    own = [d for d in run.told("response") if (d.request_id or "").startswith("no-")]
    assert len(own) >= 0.9 * run.planned["network_operator"]
    assert {d.user_id for d in own} <= network
    assert {d.service for d in own} & {"4.10", "4.16", "4.8.2", "4.12.1", "6.2.1", "4.17"}
    assert Counter(d.code for d in own)["I0"] >= 0.8 * len(own)


def test_a_comms_hub_raises_ad1_when_its_outage_starts_not_when_power_returns(
    tmp_path: Path,
) -> None:
    head = """
[scenario]
name = "gasp"
seed = 10
start = 2025-03-03T18:00:00Z
duration = "4h"
[fleet]
sites = 100
"""
    load = """
[[load.outages]]
start = 2025-03-03T18:30:00Z
region = "north"
share = 1.0
duration = "2h"
restore_over = "30m"
"""
    run = _run(_scenario(head, load), tmp_path)
    outage = run.sim.config.start + 1800
    ad1 = [d for d in run.told("device_alert") if d.code == "AD1"]
    assert len(ad1) > 10
    assert all(
        outage + OUTAGE_ALERT_AFTER_S <= d.at < outage + OUTAGE_ALERT_AFTER_S + 1 for d in ad1
    )
    restored = [d for d in run.told("device_alert") if d.code == "8F36"]
    assert restored
    assert min(d.at for d in restored) >= outage + 7200
