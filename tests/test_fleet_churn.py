"""Register churn written for a generated fleet (``dcc fleet changes``): the files parse, apply
cleanly through the engine, continue their sequence numbers, and a half-hourly flag change
through them changes which settlement reads the simulator schedules."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from actors.register_feed import read_batch
from cli.app import app
from hub.engine import AuditKind, HubEngine
from hub.policies.access import AccessContext
from hub.reference.catalogue import CATALOGUE
from hub.reference.roles import Fuel
from hub.registers.changes import ChangeId, Register, SettlementChange
from hub.registers.registration import Settlement
from meters_sim.scenario import Region, load_scenario
from meters_sim.simulator import SimConfig, Simulation
from meters_sim.workload import schedule_load
from sdk.keys import create_keys, signing_keys
from simfield.fleet import generate_fleet
from simfield.fleet_dir import Fleet, load_fleet
from simfield.fleet_files import (
    Churn,
    churn_changes,
    next_seqs,
    write_change_files,
    write_fleet,
)
from simfield.headend_plugins import load_head_ends
from simfield.site import load_trust_anchors

pytestmark = pytest.mark.timeout(300)

AS_OF = date(2025, 10, 1)
EFFECTIVE = date(2025, 10, 2)


@pytest.fixture
def fleet_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "fleet"
    write_fleet(generate_fleet(60, 4, AS_OF), directory)
    return directory


def _engine(fleet: Fleet) -> HubEngine:
    return HubEngine(AccessContext(fleet.users, CATALOGUE, fleet.registration, fleet.inventory))


def test_written_churn_parses_and_applies_cleanly_through_the_engine(fleet_dir: Path) -> None:
    fleet = load_fleet(fleet_dir)
    churn = Churn(
        EFFECTIVE, supplier_changes=8, tenancy_changes=3, new_meter_points=2, settlement_changes=4
    )
    changes = churn_changes(fleet.registration, fleet.users.values(), churn, seed=9)
    counts = write_change_files(fleet_dir / "inbox", changes)
    assert sum(counts.values()) == 17
    engine = _engine(fleet)
    for name in sorted(counts):
        batch = read_batch(fleet_dir / "inbox" / name)
        assert batch.problem is None, batch.problem
        effects = engine.on_register_changes(batch, 0.0)
        outcome = engine.registers.outcome(name)
        assert outcome is not None
        assert outcome.refused is None, outcome.refused
        assert outcome.applied == counts[name]
        assert [a.kind for a in effects.audit].count(AuditKind.REGISTER_CHANGE) == counts[name]
    new = [c for c in changes[Register.ELECTRICITY] if type(c).__name__ == "NewMeterPoint"]
    assert len(new) == 2
    assert all(c.mpxn in fleet.registration.meter_points for c in new)


def test_the_same_seed_writes_the_same_churn_and_later_files_continue_the_sequence(
    fleet_dir: Path,
) -> None:
    fleet = load_fleet(fleet_dir)
    churn = Churn(EFFECTIVE, supplier_changes=5, tenancy_changes=2)
    first = churn_changes(fleet.registration, fleet.users.values(), churn, seed=3)
    assert first == churn_changes(fleet.registration, fleet.users.values(), churn, seed=3)
    inbox = fleet_dir / "inbox"
    write_change_files(inbox, first)
    seqs = next_seqs(inbox)
    taken = {r: max(c.change_id.seq for c in cs) for r, cs in first.items()}
    assert all(seqs[r] == taken[r] + 1 for r in taken)
    later = churn_changes(fleet.registration, fleet.users.values(), churn, seed=4, first_seq=seqs)
    ids = {c.change_id for cs in first.values() for c in cs}
    assert not ids & {c.change_id for cs in later.values() for c in cs}


def test_asking_for_more_churn_than_the_fleet_holds_is_refused(fleet_dir: Path) -> None:
    fleet = load_fleet(fleet_dir)
    with pytest.raises(ValueError, match="tenancy changes: 100000 asked"):
        churn_changes(
            fleet.registration, fleet.users.values(), Churn(EFFECTIVE, tenancy_changes=100_000), 1
        )


def test_dcc_fleet_changes_writes_change_files_into_the_inbox(fleet_dir: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "fleet",
            "changes",
            "--fleet",
            str(fleet_dir),
            "--effective",
            EFFECTIVE.isoformat(),
            "--supplier-changes",
            "4",
            "--hh-changes",
            "2",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    files = json.loads(result.stdout)["files"]
    assert sum(files.values()) >= 6
    for name in files:
        assert read_batch(fleet_dir / "inbox" / name).problem is None
    bad = CliRunner().invoke(
        app, ["fleet", "changes", "--fleet", str(fleet_dir), "--effective", "2025-13-01"]
    )
    assert bad.exit_code != 0
    assert "not a date" in bad.output


SETTLEMENT = """
[scenario]
name = "settlement"
seed = 5
start = 2025-10-02T12:00:00Z
duration = "1h"
[fleet]
sites = 60
[load.daily_reads]
share = 0.0
[load.settlement]
share = 1.0
"""


def _settlement_schedules(fleet_dir: Path, fleet: Fleet) -> int:
    scenario = load_scenario(SETTLEMENT, "settlement.toml")
    wan = {r.value.capitalize(): scenario.wan_profile(r) for r in Region}
    config = SimConfig(
        start=scenario.run.start.timestamp(), engine=scenario.to_engine_config(), wan=wan, seed=5
    )
    sim = Simulation(
        fleet.users,
        fleet.registration,
        fleet.inventory,
        fleet.payment_modes,
        load_head_ends(),
        config,
        anchors=load_trust_anchors(fleet_dir),
    )
    planned = schedule_load(
        sim,
        scenario,
        fleet.users,
        fleet.registration,
        fleet.inventory,
        fleet.payment_modes,
        signing_keys=signing_keys(fleet_dir),
    )
    return planned["schedules"]


def test_a_half_hourly_flag_change_through_a_change_file_changes_the_settlement_reads_scheduled(
    fleet_dir: Path,
) -> None:
    create_keys(fleet_dir, [])
    before = _settlement_schedules(fleet_dir, load_fleet(fleet_dir))
    assert before > 0
    fleet = load_fleet(fleet_dir)
    half_hourly = [
        mp
        for mp in fleet.registration.meter_points.values()
        if mp.fuel is Fuel.ELECTRICITY and mp.settlement_on(EFFECTIVE) is Settlement.HALF_HOURLY
    ]
    changes = [
        SettlementChange(
            change_id=ChangeId(Register.ELECTRICITY, i),
            effective=EFFECTIVE,
            mpxn=mp.mpxn,
            settlement=Settlement.NON_HALF_HOURLY,
        )
        for i, mp in enumerate(sorted(half_hourly, key=lambda m: m.mpxn), start=1)
    ]
    [name] = write_change_files(fleet_dir / "inbox", {Register.ELECTRICITY: changes})
    engine = _engine(fleet)
    engine.on_register_changes(read_batch(fleet_dir / "inbox" / name), 0.0)
    assert _settlement_schedules(fleet_dir, fleet) == 0
