"""The event model against queueing theory, through the public scenario format: each region
one cell of ``channels`` channels with a ``service_time`` law, fed by Poisson on-demand reads
through the real engine; the mean response time must match M/M/1, M/D/1, M/G/1
(Pollaczek-Khinchine) and M/M/c (Erlang C). And the pieces by hand: a comms-hub line with
several channels, a cell link, frames corrupted on the WAN."""

from __future__ import annotations

import math
import random
import statistics
from collections import defaultdict
from pathlib import Path

import pytest

from hub.engine import Dispatch
from hub.headends.tlv import TlvHeadEnd
from hub.reference.standard import CommandStatus, DeviceAlert, DeviceCommand, DeviceResponse
from meters_sim.queueing import md1_wait, mm1_wait, mmc_wait
from meters_sim.scenario import load_scenario
from simfield.line import Carried, Deliver, Fail, Integrity, Line, LineState, Wait
from simfield.wan import MESSAGE_BYTES, CellLink, ServiceKind, WanProfile, corrupt
from tests.sim_support import run_event

pytestmark = pytest.mark.timeout(300)

HOURS = 3
"""Simulated hours per case: 4,000 to 6,000 messages per region."""
TOLERANCE = 0.08
"""Relative error allowed on a region's mean response time against theory, with the arrival
rate taken from the messages the run carried: a few thousand messages at utilisation
0.35-0.6 give a mean within a few per cent of its limit (the runs show up to 6%, M/M/1 in
the Central region, whose mean converges slowest; about 1% for M/D/1)."""
LOGNORMAL_SIGMA = 0.6


def _scenario(law: str, channels: int, capacity: float, per_meter_per_day: float) -> str:
    extra = f", sigma = {LOGNORMAL_SIGMA}" if law == "lognormal" else ""
    wan = "".join(
        f"""
[wan.{region}]
cells = 1
coverage = 1.0
loss = 0.0
latency = {{ kind = "zero" }}
cell_capacity_bytes_per_s = {capacity}
channels = {channels}
line_channels = 4
service_time = {{ law = "{law}"{extra} }}
"""
        for region in ("north", "central", "south")
    )
    return f"""
[scenario]
name = "event-theory"
seed = 17
start = 2025-03-04T00:00:00Z
duration = "{HOURS}h"
[fleet]
sites = 150
dual_fuel = 0.0
electricity_only = 1.0
export = 0.0
prepayment = 0.0
{wan}
[load.on_demand]
per_meter_per_day = {per_meter_per_day}
hour_profile = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
services = {{ "4.1.1" = 1.0 }}
[load.daily_reads]
share = 0.0
[load.top_ups]
per_prepayment_meter_per_day = 0.0
[load.change_of_supplier]
churn_per_day = 0.0
[load.alerts]
per_meter_per_day = 0.0
hub_per_meter_per_day = 0.0
"""


def _response_times(text: str, tmp_path: Path) -> dict[str, list[float]]:
    """Run the scenario in the event model: each region's response times (all I0)."""
    run = run_event(load_scenario(text, "event-theory.toml"), tmp_path)
    sim, sites = run.sim, run.fleet.inventory.sites
    out: dict[str, list[float]] = defaultdict(list)
    for a in sim.answered:
        assert a.sla.code == "I0"
        assert a.device_id is not None
        out[sites[run.fleet.inventory.devices[a.device_id].site_id].region].append(a.sla.elapsed_s)
    return out


CASES = {
    # name: (law, channels, cell bytes a second, reads per meter a day)
    "M/M/1": ("exponential", 1, 400.0, 800.0),
    "M/D/1": ("deterministic", 1, 400.0, 800.0),
    "M/G/1": ("lognormal", 1, 400.0, 800.0),
    "M/M/3": ("exponential", 3, 600.0, 1000.0),
}


@pytest.mark.parametrize("name", list(CASES))
def test_the_event_models_mean_response_time_in_each_region_matches_queueing_theory(
    name: str, tmp_path: Path
) -> None:
    law, channels, capacity, rate = CASES[name]
    times = _response_times(_scenario(law, channels, capacity, rate), tmp_path)
    assert set(times) == {"North", "Central", "South"}
    mu = capacity / channels / MESSAGE_BYTES  # one channel's service rate
    for region, xs in times.items():
        assert len(xs) > 3_000, region
        lam = len(xs) / (HOURS * 3600.0)
        if channels > 1:
            wait = mmc_wait(lam, mu, channels)
        elif law == "exponential":
            wait = mm1_wait(lam, mu)
        elif law == "deterministic":
            wait = md1_wait(lam, mu)
        else:  # Pollaczek-Khinchine with the lognormal's squared coefficient of variation
            rho = lam / mu
            scv = math.expm1(LOGNORMAL_SIGMA**2)
            wait = rho * (1.0 + scv) / (2.0 * mu * (1.0 - rho))
        theory = wait + 1.0 / mu
        assert statistics.fmean(xs) == pytest.approx(theory, rel=TOLERANCE), (region, theory)


# ---- the pieces by hand -------------------------------------------------------------------------

T0 = 1_800_000_000.0


class _Devices:
    """Devices that answer every command at once."""

    def execute(self, cmd: DeviceCommand, now: float) -> tuple[DeviceResponse, list[DeviceAlert]]:
        return DeviceResponse(cmd.command_id, cmd.device_id, cmd.service, CommandStatus.SUCCESS), []

    def advance(self, now: float) -> list[DeviceAlert]:
        return []

    def head_end_of(self, device_id: str) -> str:
        return "tlv"


def _dispatch(command_id: str) -> Dispatch:
    return Dispatch(DeviceCommand(command_id, "4.1.1", "00000000000000A1"), "tlv", "CH-1", 5)


def _line(wan: WanProfile, cell: CellLink | None = None) -> Line:
    return Line("CH-1", _Devices(), {"tlv": TlvHeadEnd()}, wan, random.Random(3), cell=cell)


def test_a_line_with_two_channels_carries_two_commands_at_once_and_queues_the_third() -> None:
    line = _line(WanProfile(line_channels=2))
    waits = [a for i in range(3) for a in line.offer(_dispatch(f"c{i}"), T0)]
    assert [type(a) for a in waits] == [Wait, Wait]
    assert len(line) == 1
    assert line.state is LineState.CARRYING
    first, second = waits
    assert isinstance(first, Wait)
    assert isinstance(second, Wait)
    after_second = line.arrived(second.token, T0)  # the second ends first: the third starts
    assert any(isinstance(a, Deliver) for a in after_second)
    assert any(isinstance(a, Wait) for a in after_second)
    assert line.state is LineState.CARRYING


def test_a_cell_link_queues_messages_fifo_over_its_channels() -> None:
    profile = WanProfile(cell_bytes_per_s=2 * MESSAGE_BYTES, cell_channels=2)
    cell = CellLink(profile, random.Random(1))
    # each channel carries 400 B/s: one message a second on each
    assert [cell.carry(T0) for _ in range(3)] == [1.0, 1.0, 2.0]
    assert cell.carry(T0 + 5.0) == 1.0


def test_a_line_that_crosses_a_cell_waits_for_the_cell() -> None:
    profile = WanProfile(cell_bytes_per_s=MESSAGE_BYTES)
    cell = CellLink(profile, random.Random(1))
    other = _line(profile, cell)
    mine = _line(profile, cell)
    (busy,) = other.offer(_dispatch("a"), T0)
    (wait,) = mine.offer(_dispatch("b"), T0)
    assert isinstance(busy, Wait)
    assert isinstance(wait, Wait)
    assert (busy.delay_s, wait.delay_s) == (1.0, 2.0)


def test_a_service_law_keeps_its_mean_of_one_service_time() -> None:
    for kind in (ServiceKind.EXPONENTIAL, ServiceKind.LOGNORMAL):
        cell = CellLink(WanProfile(cell_bytes_per_s=MESSAGE_BYTES, service=kind), random.Random(2))
        spaced = [cell.carry(T0 + 1000.0 * i) for i in range(20_000)]  # never a queue
        assert statistics.fmean(spaced) == pytest.approx(1.0, rel=0.03), kind
        assert statistics.pstdev(spaced) > 0.3


def test_a_corrupted_response_frame_fails_the_head_ends_check_and_is_reported() -> None:
    line = _line(WanProfile())
    line.set_corruption(1.0)
    (wait,) = line.offer(_dispatch("a"), T0)
    assert isinstance(wait, Wait)
    # the command frame is corrupted too: the device refuses it and nothing comes back
    assert [type(a) for a in line.arrived(wait.token, T0)] == [Carried]
    line.set_corruption(0.0)
    (wait,) = line.offer(_dispatch("b"), T0)
    assert isinstance(wait, Wait)
    assert [type(a) for a in line.arrived(wait.token, T0)] == [Carried, Deliver]


def test_corrupted_uplinks_come_back_as_integrity_failures_with_the_comms_hub() -> None:
    line = _line(WanProfile(corrupt_share=0.5))
    kinds: list[type] = []
    for i in range(200):
        (wait,) = line.offer(_dispatch(f"c{i}"), T0)
        assert isinstance(wait, Wait)
        kinds += [type(a) for a in line.arrived(wait.token, T0) if not isinstance(a, Carried)]
    # of 200 commands about 100 lose the command frame (nothing back), 50 the response
    assert 30 < kinds.count(Integrity) < 70
    assert 30 < kinds.count(Deliver) < 70
    assert Fail not in kinds  # the hub's response timeout answers them, as any unanswered one


def test_one_corrupted_byte_is_one_flipped_byte() -> None:
    frame = bytes(range(32))
    damaged = corrupt(frame, random.Random(4))
    assert len(damaged) == len(frame)
    assert sum(a != b for a, b in zip(frame, damaged, strict=True)) == 1
