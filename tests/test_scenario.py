"""Scenario files: the bundled ones load, every kind of bad input is refused with the file and
the dotted key, defaults fill in, and a scenario maps onto the hub's and the WAN's settings."""

from __future__ import annotations

import pickle
from dataclasses import replace
from datetime import UTC, datetime, time
from pathlib import Path

import pytest

from hub.engine.outbox import DEFAULT_HOLD_S
from hub.policies.anomaly import DEFAULT_THRESHOLDS
from hub.policies.sla import SERVICE_LEVEL_MINIMUM, SlaSummary
from hub.reference.roles import DeviceType
from meters_sim.scenario import (
    EVENING_PEAK,
    WORKING_DAY,
    Region,
    Scenario,
    ScenarioError,
    Technology,
    load_scenario,
    parse_duration,
    region_of_cell,
)
from meters_sim.scenario_files import read_scenario, scenario_paths
from simfield.fleet import FleetMix
from simfield.wan import LatencyKind, WanProfile

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
BUNDLED = (
    "agreement",
    "cos-churn",
    "daily-reads",
    "firmware-rollout",
    "installations-day",
    "national",
    "outage-storm",
    "payg-evening-peak",
    "quickstart",
    "supplier-offline",
    "tariff-change-day",
    "theory-md1",
    "theory-mg1",
    "theory-mm1",
    "theory-mmc",
)
MINIMAL = """
[scenario]
name = "t"
start = 2025-03-03T00:00:00Z
duration = "1d"

[fleet]
sites = 100
"""


def load(extra: str = "", base: str = MINIMAL) -> Scenario:
    return load_scenario(base + "\n" + extra, "test.toml")


def refusal(extra: str = "", base: str = MINIMAL) -> ScenarioError:
    with pytest.raises(ScenarioError) as caught:
        load(extra, base)
    return caught.value


def keys(error: ScenarioError) -> list[str]:
    return [p.key for p in error.problems]


# ---- the bundled scenarios


def test_the_scenarios_directory_holds_every_bundled_scenario() -> None:
    assert [p.stem for p in scenario_paths(SCENARIOS)] == list(BUNDLED)


@pytest.mark.parametrize("name", BUNDLED)
def test_every_bundled_scenario_loads_without_errors(name: str) -> None:
    scenario = read_scenario(SCENARIOS / f"{name}.toml")
    assert scenario.run.name == name
    assert scenario.run.duration_s > 0
    assert scenario.file.endswith(f"{name}.toml")


def test_the_quickstart_is_a_few_hundred_meters_for_one_hour() -> None:
    scenario = read_scenario(SCENARIOS / "quickstart.toml")
    assert 100 <= scenario.fleet.meters <= 1000
    assert scenario.run.duration_s == 3600


def test_the_national_scenario_is_shaped_like_the_real_system() -> None:
    scenario = read_scenario(SCENARIOS / "national.toml")
    rates = scenario.message_rates()
    assert scenario.fleet.requested_meters == 30_000_000
    assert scenario.fleet.meters == pytest.approx(30_000_000, rel=1e-6)
    assert 20 <= rates.service_per_month <= 40
    assert rates.daily_burst_share == pytest.approx(0.6, abs=0.05)
    assert rates.alerts_per_month > rates.service_per_month


def test_the_defaults_alone_give_the_national_shape() -> None:
    rates = load().message_rates()
    assert rates.service_per_month == pytest.approx(28, abs=1)
    assert rates.daily_burst_share == pytest.approx(0.6, abs=0.02)
    assert rates.device_alerts / rates.service_per_day == pytest.approx(1.6, abs=0.1)


# ---- defaults


def test_a_minimal_scenario_gets_every_default() -> None:
    s = load()
    assert s.run.seed == 1
    assert s.run.step_s == 1.0
    assert s.run.report_interval_s == 3600.0
    assert s.run.description == ""
    assert s.fleet.mix == FleetMix()
    assert s.wan[Region.NORTH].technology is Technology.LONG_RANGE_RADIO
    assert s.wan[Region.CENTRAL].technology is Technology.CELLULAR_MESH
    assert s.wan[Region.SOUTH].technology is Technology.CELLULAR_MESH
    assert all(w.coverage == 0.9925 for w in s.wan.values())
    assert all(w.sites_per_cell == FleetMix().sites_per_cell for w in s.wan.values())
    assert s.load.on_demand.hour_profile == WORKING_DAY
    assert s.load.top_ups.hour_profile == EVENING_PEAK
    assert s.load.daily_reads.window_start == time(1, 0)
    assert s.load.tariff_changes == ()
    assert s.load.outages == ()
    assert s.hub.hold_s == DEFAULT_HOLD_S
    assert s.hub.anomaly is None
    assert s.sla.min_within_target == SERVICE_LEVEL_MINIMUM
    assert s.sla.max_expiries == 0


def test_a_region_switched_to_cellular_takes_the_cellular_defaults() -> None:
    s = load('[wan.north]\ntechnology = "cellular_mesh"')
    assert replace(s.wan[Region.NORTH], region=Region.CENTRAL) == s.wan[Region.CENTRAL]


def test_a_fleet_given_in_meters_is_converted_to_sites_with_the_mix() -> None:
    s = load(base=MINIMAL.replace("sites = 100", "meters = 1730\ndual_fuel = 0.5"))
    per_site = s.fleet.meters_per_site
    assert s.fleet.mix.dual_fuel == 0.5
    assert s.fleet.sites == round(1730 / per_site)


def test_a_date_means_midnight_uk_local_time() -> None:
    base = MINIMAL.replace("2025-03-03T00:00:00Z", "2025-03-31T00:00:00Z")
    s = load("[[load.tariff_changes]]\nat = 2025-04-01\nshare = 0.5", base)
    assert s.load.tariff_changes[0].at == datetime(2025, 3, 31, 23, 0, tzinfo=UTC)


def test_an_offset_date_time_is_turned_into_utc() -> None:
    s = load(base=MINIMAL.replace("2025-03-03T00:00:00Z", '"2025-06-01T09:00:00+01:00"'))
    assert s.run.start == datetime(2025, 6, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(90, 90.0), (1.5, 1.5), ("90", 90.0), ("90s", 90.0), ("15m", 900.0), ("6h", 21_600.0),
     ("1d", 86_400.0), ("2w", 1_209_600.0), ("1h30m", 5_400.0), ("1.5h", 5_400.0),
     ("1d 6h", 108_000.0)],
)  # fmt: skip
def test_durations_are_seconds_or_unit_strings(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1 fortnight", "6x", "30m1h", "1h1h", "-5", -5, True, "h"])
def test_anything_else_is_not_a_duration(text: object) -> None:
    assert parse_duration(text) is None


# ---- bad input


def test_an_unknown_key_is_refused_with_its_file_and_dotted_path() -> None:
    error = refusal("[wan.north]\ncolour = 'red'")
    assert error.file == "test.toml"
    assert error.key == "wan.north.colour"
    assert "unknown key" in error.reason
    assert "loss" in error.reason
    assert str(error).startswith("test.toml: wan.north.colour: ")


def test_an_unknown_section_and_an_unknown_region_are_refused() -> None:
    assert keys(refusal("[weather]\nrain = 1")) == ["weather"]
    assert keys(refusal("[wan.east]\nloss = 0.1")) == ["wan.east"]


def test_a_value_of_the_wrong_type_is_refused() -> None:
    error = refusal("[wan.north]\nloss = 'high'")
    assert (error.key, error.reason) == ("wan.north.loss", "must be a number, got a string")
    assert keys(refusal(base=MINIMAL.replace("sites = 100", "sites = 10.5"))) == ["fleet.sites"]


def test_a_value_out_of_range_is_refused_with_the_allowed_range() -> None:
    error = refusal("[wan.north]\nloss = 1.5")
    assert error.key == "wan.north.loss"
    assert "from 0 to 1" in error.reason
    assert "1.5" in error.reason
    assert keys(refusal("[hub]\nschedule_window = '13h'")) == ["hub.schedule_window"]
    assert keys(refusal("prepayment = 0.99")) == ["fleet.prepayment"]


def test_a_missing_required_key_is_refused() -> None:
    error = refusal(base=MINIMAL.replace("start = 2025-03-03T00:00:00Z", ""))
    assert (error.key, error.reason) == ("scenario.start", "missing: this key is required")
    assert keys(refusal(base=MINIMAL.replace("sites = 100", ""))) == ["fleet.sites"]
    storm = "[[load.outages]]\nstart = 2025-03-03T06:00:00Z\nregion = 'north'\nshare = 0.1"
    assert keys(refusal(storm)) == ["load.outages[0].duration"]


def test_a_bad_duration_is_refused_with_the_accepted_forms() -> None:
    error = refusal(base=MINIMAL.replace('duration = "1d"', 'duration = "1 fortnight"'))
    assert error.key == "scenario.duration"
    assert "'1h30m'" in error.reason


@pytest.mark.parametrize(
    "start",
    ['"2025-02-30T00:00:00Z"', "2025-03-03T00:00:00", '"next tuesday"', "12"],
)
def test_a_bad_date_is_refused(start: str) -> None:
    error = refusal(base=MINIMAL.replace("2025-03-03T00:00:00Z", start))
    assert (error.file, error.key) == ("test.toml", "scenario.start")


def test_an_hour_profile_needs_24_weights() -> None:
    error = refusal("[load.top_ups]\nhour_profile = [1, 2, 3]")
    assert error.key == "load.top_ups.hour_profile"
    assert "24 weights" in error.reason
    assert "got 3" in error.reason
    zero = refusal("[load.alerts]\nhour_profile = " + str([0] * 24))
    assert zero.key == "load.alerts.hour_profile"


def test_a_toml_syntax_error_is_refused_with_its_line() -> None:
    error = refusal("[wan.north\nloss = 0.1")
    assert error.file == "test.toml"
    assert error.key == ""
    assert "not valid TOML" in error.reason
    assert "line" in error.reason


def test_an_event_outside_the_run_is_refused() -> None:
    error = refusal("[[load.tariff_changes]]\nat = 2025-05-01T00:00:00Z\nshare = 0.5")
    assert error.key == "load.tariff_changes[0].at"
    assert "outside the run" in error.reason


def test_services_must_exist_and_suit_their_use() -> None:
    error = refusal("[load.on_demand]\nservices = { '99.9' = 1.0, '5.1' = 1.0 }")
    assert keys(error) == ['load.on_demand.services."99.9"', 'load.on_demand.services."5.1"']
    future = refusal(
        "[[load.tariff_changes]]\nat = 2025-03-03T12:00:00Z\nshare = 1\nservice = '2.2'"
    )
    assert future.key == "load.tariff_changes[0].service"
    assert keys(refusal("[load.daily_reads]\nservice = '4.1.1'")) == ["load.daily_reads.service"]


def test_sites_and_meters_together_are_refused() -> None:
    assert keys(refusal("", base=MINIMAL.replace("sites = 100", "sites = 100\nmeters = 100"))) == [
        "fleet.meters"
    ]


def test_every_problem_is_listed_at_once() -> None:
    error = refusal(
        "colour = 1\n[wan.south]\nretries = -1\n[load.on_demand]\nper_meter_per_day = 'lots'\n"
        "[hub.anomaly]\nwarning = 10\nquarantine = 5",
        base=MINIMAL.replace('name = "t"', ""),
    )
    assert keys(error) == [
        "scenario.name",
        "fleet.colour",
        "wan.south.retries",
        "load.on_demand.per_meter_per_day",
        "hub.anomaly.warning",
    ]
    assert str(error).count("test.toml: ") == 5


def test_a_scenario_error_survives_pickling() -> None:
    error = refusal("[wan.north]\nloss = 2")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.file, copy.key, copy.problems) == (error.file, error.key, error.problems)


def test_a_file_that_is_not_utf8_is_refused_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "latin.toml"
    path.write_bytes(MINIMAL.replace('"t"', '"caf\xe9"').encode("latin-1"))
    with pytest.raises(ScenarioError) as caught:
        read_scenario(path)
    assert caught.value.file == str(path)
    assert "UTF-8" in caught.value.reason


# ---- mapping onto the hub and the WAN


def test_to_engine_config_maps_the_hub_settings() -> None:
    s = load(
        "[hub]\nhold = '1d'\nschedule_window = '2h'\ncapacity_per_s = 500\nmax_pending = 42\n"
        "response_timeout = 60\nuser_share = 0.2\n"
        "[hub.anomaly]\nwarning = 10\nquarantine = 20\ncritical_warning = 1\n"
        "critical_quarantine = 2\nperiod = '1h'",
        base=MINIMAL.replace('name = "t"', 'name = "t"\nseed = 99'),
    )
    config = s.to_engine_config()
    assert config.hold_s == 86_400
    assert config.schedule_window_s == 7_200
    assert config.max_pending == 42
    assert config.response_timeout_s == 60
    assert config.schedule_seed == 99
    assert config.traffic.capacity_per_s == 500
    assert config.traffic.user_share == 0.2
    assert config.anomaly is not None
    assert config.anomaly.per_service["4.1.1"].quarantine == 20
    assert config.anomaly.per_service["1.1.1"].quarantine == 2  # a tariff update is critical


def test_cells_get_their_regions_capacity_and_unknown_cells_the_smallest() -> None:
    s = load(
        "[wan.north]\ncell_capacity_bytes_per_s = 5000\n[wan.south]\ncell_capacity_bytes_per_s = 9e5"
    )
    traffic = s.to_engine_config(["N-0001", "C-0002", "S-0003", "X9"]).traffic
    assert traffic.cell_bytes_overrides == {"N-0001": 5000, "C-0002": 1e6, "S-0003": 9e5}
    assert traffic.cell_budget("X9") == 5000
    one = load("[hub]\ncell_bytes_per_s = 7000").to_engine_config(["N-0001"]).traffic
    assert one.cell_bytes_overrides == {}
    assert one.cell_budget("N-0001") == 7000


def test_a_default_scenario_leaves_the_engine_anomaly_thresholds_to_the_hub() -> None:
    assert load().to_engine_config().anomaly is None
    assert DEFAULT_THRESHOLDS.quarantine == 100_000  # what the hub then applies


def test_wan_profile_maps_a_regions_settings() -> None:
    s = load(
        "[wan.central]\nloss = 0.05\nretries = 3\nretry_timeout_s = '8s'\n"
        "latency = { kind = 'uniform', median_s = 1.5, spread = 0.5 }"
    )
    assert s.wan_profile("central") == WanProfile(
        LatencyKind.UNIFORM, 1.5, 0.5, 0.05, 3, 8.0, cell_bytes_per_s=1_000_000.0
    )
    assert s.wan_profile(Region.NORTH).latency is LatencyKind.LOGNORMAL


def test_cell_ids_name_their_region_by_letter() -> None:
    assert region_of_cell("N-0001") is Region.NORTH
    assert region_of_cell("S-12") is Region.SOUTH
    assert region_of_cell("north") is None


def test_firmware_to_ppmids_uses_the_ppmid_service() -> None:
    s = load(
        "[[load.firmware_rollouts]]\nat = 2025-03-03T01:00:00Z\nshare = 0.5\ndevice_type = 'PPMID'"
    )
    assert s.load.firmware_rollouts[0].device_type is DeviceType.PPMID
    assert s.load.firmware_rollouts[0].service == "11.4"
    assert keys(
        refusal(
            "[[load.firmware_rollouts]]\nat = 2025-03-03T01:00:00Z\nshare = 0.5\ndevice_type = 'IHD'"
        )
    ) == ["load.firmware_rollouts[0].device_type"]


# ---- SLA thresholds


def _summary(service: str, count: int, within: float) -> SlaSummary:
    return SlaSummary((service,), count, 1.0, 2.0, 3.0, within)


def test_a_run_within_its_thresholds_has_no_breaches() -> None:
    sla = load("[sla]\nservices = { '2.2' = 0.99 }").sla
    assert sla.breaches([_summary("2.2", 100, 1.0), _summary("4.1.1", 100, 0.97)]) == []


def test_each_broken_threshold_is_a_breach() -> None:
    sla = load(
        "[sla]\nmin_within_target = 0.99\nservices = { '4.8' = 0.99 }\nmax_outbox_depth = 10\n"
        "max_busy_share = 0.01"
    ).sla
    breaches = sla.breaches(
        [_summary("4.8.1", 50, 0.9), _summary("4.8.2", 50, 1.0), _summary("4.1.1", 100, 1.0)],
        max_outbox_depth=11,
        expiries=1,
        busy_share=0.02,
    )
    assert len(breaches) == 5
    assert any(b.startswith("service 4.8: 95.00%") for b in breaches)


# ---- the documentation


def test_the_annotated_example_in_the_docs_loads_and_sets_what_it_says() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "scenarios.md").read_text()
    example = doc.split("```toml\n")[-1].split("```")[0]
    s = load_scenario(example, "docs/scenarios.md")
    assert s.run.seed == 42
    assert s.load.tariff_changes[0].at == datetime(2025, 3, 4, tzinfo=UTC)
    assert s.load.firmware_rollouts[0].activate_after_s == 6 * 3600
    assert s.sla.services == {"2.2": 0.99, "4.8": 0.96}
    assert s.hub.anomaly is not None


def test_the_fleet_cell_size_is_every_regions_default() -> None:
    s = load("sites_per_cell = 1000\n[wan.south]\ncells = 4")
    assert s.wan[Region.NORTH].sites_per_cell == 1000
    assert s.wan[Region.SOUTH].cell_count(10_000) == 4
    assert s.wan[Region.CENTRAL].cell_count(10_000) == 10
