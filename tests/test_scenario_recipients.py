"""The scenario format's recipients, SLA targets, service-time laws and WAN integrity events:
parsed into typed settings, every bad value refused with its dotted key."""

from __future__ import annotations

import math
from datetime import UTC, datetime, time

import pytest

from meters_sim.scenario import (
    DailyWindow,
    Period,
    RecipientScope,
    Region,
    RequestClass,
    Scenario,
    ScenarioError,
    ServiceLaw,
    load_scenario,
)

BASE = """
[scenario]
name = "t"
start = 2025-06-03T00:00:00Z
duration = "2d"

[fleet]
sites = 100
"""


def load(extra: str) -> Scenario:
    return load_scenario(BASE + "\n" + extra, "test.toml")


def problems(extra: str) -> dict[str, str]:
    with pytest.raises(ScenarioError) as caught:
        load(extra)
    return {p.key: p.reason for p in caught.value.problems}


# ---- recipients


def test_a_supplier_role_offline_every_evening_is_parsed_into_a_daily_window() -> None:
    s = load(
        """
[[recipients]]
role = "IS"
ack_delay = "2s"
max_in_flight = 100
push_rate = 50
[[recipients.offline]]
start = "18:00"
end = "00:00"
"""
    )
    (r,) = s.recipients
    assert (r.scope, r.name) == (RecipientScope.ROLE, "IS")
    assert r.offline == (DailyWindow(time(18), time(0)),)
    assert (r.ack_delay_s, r.max_in_flight, r.push_rate_per_s) == (2.0, 100, 50.0)
    assert r.drain_rate_per_s() == 50.0  # the window allows 100 / 2 s = 50 a second too


def test_a_daily_window_follows_uk_summer_time() -> None:
    s = load('[[recipients]]\nrole = "ED"\noffline = [{ start = "18:00", end = "00:00" }]')
    # 3 June is in BST: 18:00-00:00 UK time is 17:00-23:00 UTC, on both days of the run
    assert s.recipients[0].offline_intervals(s.run) == [
        (17 * 3600.0, 23 * 3600.0),
        (41 * 3600.0, 47 * 3600.0),
    ]


def test_a_once_only_outage_with_a_reconnection_delay_ends_when_the_user_says_hello() -> None:
    s = load(
        """
[[recipients]]
user = "u-supa"
reconnect_after = "5m"
offline = [{ start = 2025-06-03T10:00:00Z, end = 2025-06-03T12:00:00Z }]
"""
    )
    r = s.recipients[0]
    assert r.offline == (
        Period(datetime(2025, 6, 3, 10, tzinfo=UTC), datetime(2025, 6, 3, 12, tzinfo=UTC)),
    )
    assert r.offline_intervals(s.run) == [(36_000.0, 43_500.0)]


def test_online_windows_make_the_rest_of_the_run_offline() -> None:
    s = load(
        '[[recipients]]\nrole = "GS"\n'
        "online = [{ start = 2025-06-03T06:00:00Z, end = 2025-06-04T06:00:00Z }]"
    )
    assert s.recipients[0].offline_intervals(s.run) == [
        (0.0, 6 * 3600.0),
        (30 * 3600.0, 48 * 3600.0),
    ]


def test_an_entry_naming_the_user_wins_over_one_naming_its_role() -> None:
    s = load(
        '[[recipients]]\nrole = "IS"\nack_delay = "3s"\n'
        '[[recipients]]\nuser = "u-supa"\nack_delay = "1s"'
    )
    supa = s.recipient("u-supa", ["IS", "GS"])
    other = s.recipient("u-supb", ["IS", "GS"])
    assert supa is not None
    assert supa.ack_delay_s == 1.0
    assert other is not None
    assert other.ack_delay_s == 3.0
    assert s.recipient("u-ukpn", ["ED"]) is None


def test_a_user_with_no_entry_acknowledges_at_once_and_drains_without_limit() -> None:
    s = load('[[recipients]]\nrole = "IS"')
    assert s.recipients[0].drain_rate_per_s() == math.inf
    assert s.recipients[0].offline_intervals(s.run) == []


def test_bad_recipients_are_refused_with_their_dotted_keys() -> None:
    found = problems(
        """
[[recipients]]
user = "u-nobody"
[[recipients]]
role = "IS"
user = "u-supa"
[[recipients]]
role = "XX"
max_in_flight = 0
[[recipients]]
role = "ED"
colour = "red"
offline = [{ start = "18:00", end = 2025-06-03T10:00:00Z }, { start = "10:00" }]
"""
    )
    assert "not a user of the fleet" in found["recipients[0].user"]
    assert "exactly one" in found["recipients[1].user"]
    assert "must be one of" in found["recipients[2].role"]
    assert "at least 1" in found["recipients[2].max_in_flight"]
    assert "unknown key" in found["recipients[3].colour"]
    assert "both as UK local times" in found["recipients[3].offline[0].end"]
    assert "required" in found["recipients[3].offline[1].end"]


def test_the_same_role_named_twice_is_refused() -> None:
    found = problems('[[recipients]]\nrole = "IS"\n[[recipients]]\nrole = "IS"')
    assert "earlier" in found["recipients[1].role"]


# ---- SLA targets


def test_sla_targets_default_to_the_real_systems_and_can_be_overridden() -> None:
    default = load("").sla.targets
    assert default.target_s(RequestClass.ON_DEMAND) == 30.0
    assert default.target_s(RequestClass.FIRMWARE) == 86_400.0
    custom = load('[sla.targets]\nalerts = "2m"\nscheduled = "1h"').sla.targets
    assert (custom.alerts, custom.scheduled, custom.on_demand) == (120.0, 3600.0, 30.0)


def test_an_unknown_request_class_or_a_zero_target_is_refused() -> None:
    found = problems('[sla.targets]\nreads = "1m"\non_demand = 0')
    assert "unknown key" in found["sla.targets.reads"]
    assert "more than 0" in found["sla.targets.on_demand"]


# ---- service-time laws and channels


@pytest.mark.parametrize(
    ("table", "law", "scv"),
    [
        ('{ law = "deterministic" }', ServiceLaw.DETERMINISTIC, 0.0),
        ('{ law = "exponential" }', ServiceLaw.EXPONENTIAL, 1.0),
        ('{ law = "lognormal", sigma = 1.0 }', ServiceLaw.LOGNORMAL, math.e - 1.0),
        ('{ law = "empirical", samples = [1, 3] }', ServiceLaw.EMPIRICAL, 0.25),
    ],
)
def test_each_service_law_is_parsed_with_its_squared_coefficient_of_variation(
    table: str, law: ServiceLaw, scv: float
) -> None:
    s = load(f"[wan.south]\nservice_time = {table}\nchannels = 4")
    st = s.wan[Region.SOUTH].service_time
    assert st.law is law
    assert st.scv == pytest.approx(scv)
    assert s.wan[Region.SOUTH].channels == 4
    assert s.wan[Region.NORTH].channels == 1


def test_empirical_samples_are_scaled_to_mean_one() -> None:
    st = load('[wan.north]\nservice_time = { law = "empirical", samples = [1, 2, 3] }')
    assert st.wan[Region.NORTH].service_time.samples == (0.5, 1.0, 1.5)


def test_a_law_with_parameters_that_do_not_fit_it_is_refused() -> None:
    found = problems(
        '[wan.north]\nservice_time = { law = "exponential", sigma = 1 }\nchannels = 0\n'
        '[wan.south]\nservice_time = { law = "empirical" }\n'
        '[wan.central]\nservice_time = { law = "erlang" }'
    )
    assert "lognormal" in found["wan.north.service_time.sigma"]
    assert "from 1 to 1,000" in found["wan.north.channels"]
    assert "needs its samples" in found["wan.south.service_time.samples"]
    assert "must be one of" in found["wan.central.service_time.law"]


# ---- WAN integrity


def test_an_integrity_event_on_one_cell_is_parsed() -> None:
    s = load(
        '[[load.integrity]]\nstart = 2025-06-03T10:00:00Z\nregion = "north"\nshare = 0.1\n'
        'duration = "1h"\ncell = "N-0003"'
    )
    (e,) = s.load.integrity
    assert (e.region, e.cell, e.duration_s) == (Region.NORTH, "N-0003", 3600.0)
    assert e.command_share == pytest.approx(0.19)


def test_bad_integrity_events_are_refused() -> None:
    found = problems(
        '[[load.integrity]]\nstart = 2025-07-03T10:00:00Z\nregion = "north"\nshare = 0\n'
        'duration = "1h"\ncell = "S-0003"\n'
        '[[load.integrity]]\nstart = 2025-06-03T10:00:00Z\nregion = "north"\nshare = 0.5'
    )
    assert "outside the run" in found["load.integrity[0].start"]
    assert "more than 0" in found["load.integrity[0].share"]
    assert "not a cell of north" in found["load.integrity[0].cell"]
    assert "required" in found["load.integrity[1].duration"]
