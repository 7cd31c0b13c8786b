"""The bulk model through the public scenario format: counts, determinism, the hub's capacity
and admission, one-off events at their real minute (once, with their own shapes), outage
storms, WAN integrity, the recipients' outboxes, every SLA threshold and common random
numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.app import app
from meters_sim.bulk import (
    BulkRun,
    FlowResult,
    IntegrityFailures,
    outbox,
    run_bulk,
    security_alerts,
)
from meters_sim.scenario import Scenario, load_scenario

QUIET = """
[scenario]
name = "t"
seed = 5
start = 2025-03-04T00:00:00Z
duration = "1d"
report_interval = "1h"

[fleet]
sites = 14_000

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
hub_per_meter_per_day = 0.0
"""
"""A fleet that sends nothing unless a test says so (each test adds its own flows)."""


def scenario(extra: str, base: str = QUIET) -> Scenario:
    text = base
    for line in extra.strip().splitlines():
        text += line + "\n"
    return load_scenario(text, "test.toml")


def with_load(load: str, rest: str = "") -> Scenario:
    """QUIET with some [load] tables replaced by ``load`` and other sections added."""
    base = QUIET
    for table in ("on_demand", "daily_reads", "top_ups", "alerts"):
        if f"[load.{table}]" in load:
            start = base.index(f"[load.{table}]")
            end = base.find("[", start + 1)
            end = len(base) if end < 0 else end
            base = base[:start] + base[end:]
    return load_scenario(base + load + "\n" + rest, "test.toml")


def flow(run: BulkRun, name: str, region: str | None = None) -> list[FlowResult]:
    return [f for f in run.flows if f.flow.startswith(name) and region in (None, f.region)]


def total(run: BulkRun, name: str, region: str | None = None) -> int:
    return sum(f.count for f in flow(run, name, region))


# ---- counts and determinism


def test_message_counts_follow_the_per_meter_rates() -> None:
    s = with_load('[load.on_demand]\nper_meter_per_day = 2.0\nservices = { "4.1.1" = 1.0 }')
    run = run_bulk(s)
    expected = 2.0 * s.fleet.meters
    assert abs(total(run, "on demand") - expected) < 5 * np.sqrt(expected)


def test_the_same_scenario_and_seed_give_the_same_run() -> None:
    s = with_load('[load.on_demand]\nper_meter_per_day = 2.0\nservices = { "4.1.1" = 1.0 }')
    a, b = run_bulk(s), run_bulk(s)
    assert a.flows == b.flows
    assert all(
        np.array_equal(x.cell_utilisation, y.cell_utilisation)
        for x, y in zip(a.regions, b.regions, strict=True)
    )


def test_report_interval_sets_the_utilisation_intervals() -> None:
    s = with_load('[load.on_demand]\nper_meter_per_day = 1.0\nservices = { "4.1.1" = 1.0 }')
    assert all(r.utilisation.size == 24 for r in run_bulk(s).regions)


# ---- the hub


def test_a_hub_with_little_capacity_answers_busy_and_breaches_max_busy_share() -> None:
    load = '[load.on_demand]\nper_meter_per_day = 4.0\nservices = { "4.1.1" = 1.0 }'
    roomy = run_bulk(with_load(load, "[sla]\nmax_busy_share = 0.01"))
    tight = run_bulk(
        with_load(
            load, "[hub]\ncapacity_per_s = 0.5\nmax_pending = 20\n[sla]\nmax_busy_share = 0.01"
        )
    )
    assert roomy.busy_answers == 0
    assert roomy.breaches == ()
    assert tight.busy_answers > 0
    assert any("refused as busy" in b for b in tight.breaches)
    p50 = lambda run: np.mean([f.p50_s for f in flow(run, "on demand")])  # noqa: E731
    assert p50(tight) > p50(roomy)


def test_top_ups_are_started_before_on_demand_work_when_the_hub_is_saturated() -> None:
    load = (
        '[load.on_demand]\nper_meter_per_day = 3.0\nservices = { "4.1.1" = 1.0 }\n'
        "[load.top_ups]\nper_prepayment_meter_per_day = 3.0"
    )
    run = run_bulk(with_load(load, "[hub]\ncapacity_per_s = 0.75\nmax_pending = 1_000_000"))
    top_ups = np.mean([f.mean_s for f in flow(run, "top-ups")])
    reads = np.mean([f.mean_s for f in flow(run, "on demand")])
    assert top_ups < reads / 2


# ---- events: at their real minute, once, with their own shapes


STORM = """
[[load.outages]]
start = 2025-03-04T18:20:00Z
region = "north"
share = 0.3
duration = "2h"
restore_over = "1h"
"""


def test_an_outage_storm_raises_one_ad1_per_comms_hub_once_at_its_minute() -> None:
    base = QUIET.replace('duration = "1d"', 'duration = "2d"')
    run = run_bulk(load_scenario(base + STORM, "t.toml"))
    north_sites = 14_000 * 5 / 14
    ad1 = total(run, "outage AD1")
    assert abs(ad1 - 0.3 * north_sites) < 5 * np.sqrt(0.3 * north_sites)  # not 2 days' worth
    assert total(run, "outage AD1", "Central") == 0
    north = next(r for r in run.regions if r.region == "North")
    busy_hours = np.flatnonzero(north.utilisation)
    assert busy_hours.min() == 18  # AD1 at 18:23
    assert busy_hours.max() <= 21  # restorations 20:20-21:20, not repeated the next day


def test_premises_without_power_do_not_answer_top_ups_and_the_service_minimum_is_breached() -> None:
    load = "[load.top_ups]\nper_prepayment_meter_per_day = 2.0\n" + STORM
    run = run_bulk(with_load(load, '[sla]\nservices = { "2.2" = 0.99 }'))
    north = flow(run, "top-ups", "North")[0]
    central = flow(run, "top-ups", "Central")[0]
    assert north.failed > 10 * max(1, central.failed)
    assert any(b.startswith("service 2.2") for b in run.breaches)


def test_the_overall_minimum_is_judged_on_service_responses_alone_as_the_hub_judges_it() -> None:
    # top-ups failing in the storm, and many alerts (always "within target") beside them
    load = (
        "[load.top_ups]\nper_prepayment_meter_per_day = 2.0\n"
        "[load.alerts]\nper_meter_per_day = 20.0\nhub_per_meter_per_day = 0.0\n" + STORM
    )
    run = run_bulk(with_load(load, "[sla]\nmin_within_target = 0.99"))
    answered = [f for f in run.flows if f.flow.startswith("top-ups")]
    share = sum(f.within_target * f.count for f in answered) / sum(f.count for f in answered)
    with_alerts = sum(f.within_target * f.count for f in run.flows) / run.messages
    assert share < 0.99 < with_alerts  # judged with the alerts, it would pass
    assert any(
        b.endswith("of responses within target, below the minimum 99.00%") for b in run.breaches
    )


def test_a_firmware_share_is_taken_of_the_named_device_type_over_its_spread() -> None:
    load = (
        "[[load.firmware_rollouts]]\nat = 2025-03-04T08:00:00Z\nshare = 0.5\n"
        'device_type = "CHF"\nimage_bytes = 1000\nover = "2h"'
    )
    run = run_bulk(with_load(load))
    n = total(run, "firmware 11.1 CHF")
    assert abs(n - 0.5 * 14_000) < 5 * np.sqrt(7_000)  # one CHF per site, not per meter
    for r in run.regions:
        assert set(np.flatnonzero(r.utilisation).tolist()) == {8, 9}


def test_a_device_pattern_tariff_change_raises_its_outcomes_at_the_execution_time() -> None:
    load = '[[load.tariff_changes]]\nat = 2025-03-04T12:00:00Z\nshare = 0.5\nnotice = "6h"'
    s = with_load(load)
    run = run_bulk(s)
    expected = 0.5 * s.fleet.meters
    assert abs(total(run, "future-dated outcome 8F66") - expected) < 5 * np.sqrt(expected)
    assert abs(total(run, "tariff change") - expected) < 5 * np.sqrt(expected)
    for r in run.regions:  # requests over 06:00-12:00, outcomes at 12:00
        assert set(np.flatnonzero(r.utilisation).tolist()) == set(range(6, 13))


def test_daily_reads_follow_uk_summer_time() -> None:
    summer = QUIET.replace("2025-03-04", "2025-07-01").replace(
        "[load.daily_reads]\nshare = 0.0",
        '[load.daily_reads]\nshare = 0.5\nwindow_start = "02:00"\nwindow = "2h"',
    )
    run = run_bulk(load_scenario(summer + "[hub]\nschedule_window = 0", "t.toml"))
    for r in run.regions:  # 02:00-04:00 BST is 01:00-03:00 UTC
        assert set(np.flatnonzero(r.utilisation).tolist()) == {1, 2}


def test_corrupted_frames_are_answered_e21_and_raise_security_alerts() -> None:
    load = (
        '[load.on_demand]\nper_meter_per_day = 5.0\nservices = { "4.1.1" = 1.0 }\n'
        '[[load.integrity]]\nstart = 2025-03-04T09:00:00Z\nregion = "south"\nshare = 0.5\n'
        'duration = "2h"'
    )
    run = run_bulk(with_load(load))
    south = flow(run, "on demand", "South")[0]
    central = flow(run, "on demand", "Central")[0]  # the same WAN technology, untouched
    assert south.failed > 10 * max(1, central.failed)
    assert run.integrity_failures > 0
    assert run.security_alerts > 0


# ---- the outbox


def test_an_outbox_grows_while_its_recipient_is_away_and_drains_at_its_rate() -> None:
    arrivals = np.zeros(100)
    arrivals[:50] = 2.0  # two deliveries a step for 50 steps
    held, expired, redelivered, drains = outbox(
        arrivals, [(10.0, 30.0)], step=1.0, drain_per_s=4.0, ack_delay_s=0.0,
        hold_s=1000.0, push_retry_s=60.0,
    )  # fmt: skip
    assert held[9] == 0
    assert held[29] == 40  # 20 steps away: 40 held
    assert held.max() == 40
    # back at step 30: 2 in, 4 out a step, so the 40 drain in 20 steps
    assert held[49] == 0
    assert drains == (19.0,)
    assert (expired, redelivered) == (0, 0)


def test_deliveries_held_past_their_hold_time_expire_and_late_acks_are_redelivered() -> None:
    arrivals = np.ones(100)
    held, expired, redelivered, _ = outbox(
        arrivals, [(0.0, 60.0)], step=1.0, drain_per_s=100.0, ack_delay_s=3.0,
        hold_s=20.0, push_retry_s=2.0,
    )  # fmt: skip
    assert expired == 40  # ready at steps 0-39, still held 20 steps later
    assert redelivered == 100  # every push outlived the 2 s retry once
    assert held.max() >= 60


OFFLINE_SUPPLIER = """
[[recipients]]
user = "u-supa"
push_rate = 5
[[recipients.offline]]
start = "18:00"
end = "21:00"
"""


def test_an_offline_supplier_gets_a_backlog_with_a_true_peak_and_drain_time() -> None:
    load = '[load.on_demand]\nper_meter_per_day = 3.0\nservices = { "4.1.1" = 1.0 }'
    run = run_bulk(with_load(load, OFFLINE_SUPPLIER + "[sla]\nmax_outbox_depth = 100"))
    (box,) = run.outboxes
    assert box.recipient == "user u-supa"
    assert box.deliveries > 0
    assert 18 * 3600 < box.peak_at_s <= 21 * 3600 + 1
    assert box.peak_held > box.held.max() * 0.9
    (drain,) = box.drain_s
    assert drain is not None
    assert drain > 0
    assert box.expired == 0
    assert any("outbox held" in b for b in run.breaches)


def test_a_short_hold_makes_deliveries_to_an_absent_supplier_expire_and_breach() -> None:
    load = '[load.on_demand]\nper_meter_per_day = 3.0\nservices = { "4.1.1" = 1.0 }'
    run = run_bulk(with_load(load, OFFLINE_SUPPLIER + '[hub]\nhold = "1h"'))
    assert run.expiries > 0
    assert any("expired" in b for b in run.breaches)


# ---- common random numbers


def test_adding_a_storm_leaves_every_draw_it_cannot_reach_unchanged() -> None:
    load = (
        '[load.on_demand]\nper_meter_per_day = 1.0\nservices = { "4.1.1" = 1.0 }\n'
        "[load.daily_reads]\nshare = 0.5\n"
        "[load.alerts]\nper_meter_per_day = 1.0\nhub_per_meter_per_day = 0.0"
    )
    without = run_bulk(with_load(load))
    with_storm = run_bulk(with_load(load + STORM))
    for region in ("Central", "South"):
        assert flow(without, "", region) == flow(with_storm, "", region)
    assert flow(without, "", "North") != flow(with_storm, "", "North")
    # and in the North, what happened before the storm is the same too
    before = next(f for f in without.regions if f.region == "North").cell_utilisation[:, :18]
    after = next(f for f in with_storm.regions if f.region == "North").cell_utilisation[:, :18]
    assert np.array_equal(before, after)


# ---- the command line


def test_dcc_simulate_in_bulk_mode_exits_3_on_a_breach_of_any_threshold(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        QUIET.replace("per_prepayment_meter_per_day = 0.0", "per_prepayment_meter_per_day = 2.0")
        + STORM
        + '[sla]\nservices = { "2.2" = 0.99 }\n'
    )
    result = CliRunner().invoke(
        app, ["simulate", str(path), "--mode", "bulk", "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 3, result.output
    assert (tmp_path / "out" / "services.csv").exists()


@pytest.mark.parametrize("capacity", [1, 10_000])
def test_the_hub_capacity_changes_the_bulk_results(capacity: int, tmp_path: Path) -> None:
    load = '[load.on_demand]\nper_meter_per_day = 4.0\nservices = { "4.1.1" = 1.0 }'
    run = run_bulk(with_load(load, f"[hub]\ncapacity_per_s = {capacity}"))
    p99 = max(f.p99_s for f in flow(run, "on demand"))
    assert (p99 > 60) if capacity == 1 else (p99 < 60)


def test_security_alerts_come_from_the_hubs_own_monitor_per_comms_hub_and_window() -> None:
    def failures(region: str, times: list[float], sites: list[int]) -> IntegrityFailures:
        return IntegrityFailures(region, np.array(times), np.array(sites, dtype=np.int32))

    # one comms hub: 3 failures raise an alert, a 4th in the quiet time none, 3 more after
    # the window another; a second hub with 2 failures none; the same site number in another
    # region is another comms hub
    north = failures("North", [0.0, 10.0, 20.0, 30.0, 700.0, 710.0, 720.0], [4] * 7)
    south = failures("South", [5.0, 15.0], [4, 4])
    assert security_alerts([south, north]) == 2
    # 100 failures across the hub within the window: the hub-wide alert too
    spread = failures("Central", [float(i) for i in range(100)], list(range(100)))
    assert security_alerts([spread]) == 1
