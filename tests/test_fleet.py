"""Generated fleets: written, read back through the file adapter, realistic in their shares,
deterministic, and usable by the hub's access control."""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.fleet_cmd import fleet_app
from hub.policies.access import AccessContext, AccessRequest
from hub.reference.catalogue import CATALOGUE
from hub.reference.codes import ResponseCode
from hub.reference.mpxn import mpan_problem
from hub.reference.roles import DeviceType, Fuel, Role
from hub.registers import records
from hub.registers.inventory import Device, DeviceStatus, Inventory, InventoryError
from hub.registers.records import PaymentMode
from hub.registers.registration import MeterPoint
from simfield.fleet import generate_fleet
from simfield.fleet_dir import FileRegisters, Fleet, load_fleet
from simfield.fleet_files import write_fleet

SITES = 3000
SEED = 11
AS_OF = date(2025, 3, 1)
NOON = datetime(2025, 3, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fleet")
    write_fleet(generate_fleet(SITES, SEED, AS_OF), out)
    return out


@pytest.fixture(scope="module")
def fleet(fleet_dir: Path) -> Fleet:
    return load_fleet(fleet_dir)


def meters(fleet: Fleet) -> list[Device]:
    return [
        d
        for d in fleet.inventory.devices.values()
        if d.device_type in (DeviceType.ESME, DeviceType.GSME)
    ]


def fresh_inventory(fleet: Fleet) -> Inventory:
    """A copy of the fleet's inventory (the module fixture stays untouched)."""
    inv = fleet.inventory
    return Inventory.build(inv.products.values(), inv.sites.values(), inv.devices.values())


def meter_point_of(fleet: Fleet, device: Device) -> MeterPoint:
    mp = fleet.registration.meter_point(device.mpxn)
    assert mp is not None
    return mp


def test_a_generated_fleet_loads_back_with_every_file_counted(
    fleet_dir: Path, fleet: Fleet
) -> None:
    counts = fleet.manifest["counts"]
    assert isinstance(counts, dict)
    assert counts[records.SITES_FILE] == len(fleet.inventory.sites) == SITES
    assert counts[records.DEVICES_FILE] == len(fleet.inventory.devices)
    assert counts[records.CANDIDATES_FILE] == len(fleet.early_smart_candidates)
    assert counts[records.CANDIDATE_SITES_FILE] == len(fleet.early_smart_sites)
    assert counts[records.USERS_FILE] == len(fleet.users)
    elec = sum(mp.fuel is Fuel.ELECTRICITY for mp in fleet.registration.meter_points.values())
    assert counts[records.ELECTRICITY_REGISTER_FILE] == elec
    assert fleet.manifest["seed"] == SEED
    assert fleet.manifest["as_of"] == AS_OF.isoformat()
    for name, count in counts.items():
        text = (fleet_dir / name).read_text(encoding="utf-8")
        assert text.count("\n") == count + 1, name


def test_site_mix_prepayment_and_early_smart_shares_are_roughly_right(fleet: Fleet) -> None:
    kinds: Counter[str] = Counter()
    for site_id in fleet.inventory.sites:
        types = {d.device_type for d in fleet.inventory.site_devices(site_id)}
        kinds[
            "dual"
            if {DeviceType.ESME, DeviceType.GSME} <= types
            else "electricity"
            if DeviceType.ESME in types
            else "gas"
        ] += 1
    assert kinds["dual"] / SITES == pytest.approx(0.70, abs=0.04)
    assert kinds["electricity"] / SITES == pytest.approx(0.22, abs=0.04)
    assert kinds["gas"] / SITES == pytest.approx(0.08, abs=0.03)

    devices = meters(fleet)
    prepay = sum(fleet.payment_modes[d.device_id] is PaymentMode.PREPAYMENT for d in devices)
    assert prepay / len(devices) == pytest.approx(0.15, abs=0.03)
    early = {d.site_id for d in fleet.inventory.devices.values() if d.early_smart}
    assert len(early) / SITES == pytest.approx(0.35, abs=0.04)
    assert len(fleet.early_smart_sites) == round(SITES * 0.02)


def test_register_shares_are_roughly_right(fleet: Fleet) -> None:
    mps = list(fleet.registration.meter_points.values())
    non_domestic = [mp for mp in mps if not mp.domestic]
    assert len(non_domestic) / len(mps) == pytest.approx(0.05, abs=0.02)
    opted_in = sum(mp.served_by_hub for mp in non_domestic) / len(non_domestic)
    assert opted_in == pytest.approx(0.60, abs=0.15)
    assert all(mp.served_by_hub for mp in mps if mp.domestic)

    imports = [mp for mp in mps if not mp.export]
    past = sum(any(r.effective_from <= AS_OF for r in mp.registrations[1:]) for mp in imports)
    future = [mp for mp in imports if mp.registrations[-1].effective_from > AS_OF]
    assert past / len(imports) == pytest.approx(0.05, abs=0.02)
    assert future
    assert len(future) / len(imports) == pytest.approx(0.01, abs=0.01)
    assert all((mp.registrations[-1].effective_from - AS_OF).days <= 60 for mp in future)
    moved = sum(bool(mp.tenancy_changes) for mp in mps) / len(mps)
    assert moved == pytest.approx(0.10, abs=0.03)

    exports = [mp for mp in mps if mp.export]
    electricity_sites = {
        d.site_id for d in fleet.inventory.devices.values() if d.device_type is DeviceType.ESME
    }
    assert len(exports) / len(electricity_sites) == pytest.approx(0.03, abs=0.015)
    assert {mp.supplier_on(AS_OF) for mp in exports} == {"SUPH"}
    assert Role.ES in fleet.users["u-suph"].roles


def test_every_meter_point_number_is_valid_and_every_device_sits_at_a_known_site(
    fleet: Fleet,
) -> None:
    for mp in fleet.registration.meter_points.values():
        if mp.fuel is Fuel.ELECTRICITY:
            assert mpan_problem(mp.mpxn) is None
            assert mp.area == mp.mpxn[:2]
        else:
            assert len(mp.mpxn) == 10
            assert mp.mpxn[0] != "0"
    inventory = fleet.inventory
    assert all(d.site_id in inventory.sites for d in inventory.devices.values())
    for site in inventory.sites.values():
        hub = inventory.device(site.comms_hub)
        assert hub is not None
        assert hub.device_type is DeviceType.CHF
        assert hub.site_id == site.site_id
    ids = list(inventory.devices) + [d.device_id for d in fleet.early_smart_candidates]
    assert len(ids) == len(set(ids))


def test_networks_regions_and_head_ends_follow_the_gb_layout(fleet: Fleet) -> None:
    operators = {
        mp.area: mp.network_operator
        for mp in fleet.registration.meter_points.values()
        if mp.fuel is Fuel.ELECTRICITY
    }
    assert len(operators) == 14
    assert {operators[a] for a in ("10", "12", "19")} == {"UKPN"}
    assert {operators[a] for a in ("11", "14", "21", "22")} == {"NGED"}
    zones = {
        mp.area: mp.network_operator
        for mp in fleet.registration.meter_points.values()
        if mp.fuel is Fuel.GAS
    }
    assert len(zones) == 13
    assert (zones["SC"], zones["WS"], zones["NO"], zones["NT"]) == ("SGN", "WWU", "NGN", "CADENT")
    assert {s.region for s in fleet.inventory.sites.values()} == {"North", "Central", "South"}
    assert all(s.cell[0] == s.region[0] for s in fleet.inventory.sites.values())
    assert {p.head_end for p in fleet.inventory.products.values()} == {"tlv", "cosem", "text"}
    assert len({p.manufacturer for p in fleet.inventory.products.values()}) >= 4
    network_users = [u for u in fleet.users.values() if u.roles & {Role.ED, Role.GT}]
    assert len(network_users) == 10
    assert sum(u.status.value == "suspended" for u in fleet.users.values()) == 1


def test_statuses_are_mostly_commissioned_and_suspended_models_are_off_the_list(
    fleet: Fleet,
) -> None:
    statuses = Counter(d.status for d in fleet.inventory.devices.values())
    total = sum(statuses.values())
    assert statuses[DeviceStatus.COMMISSIONED] / total > 0.95
    for status in (
        DeviceStatus.INSTALLED_NOT_COMMISSIONED,
        DeviceStatus.SUSPENDED,
        DeviceStatus.DECOMMISSIONED,
    ):
        assert 0 < statuses[status] / total < 0.02, status
    for d in fleet.inventory.devices.values():
        approved = fleet.inventory.approved(d.manufacturer, d.model)
        assert (d.status is DeviceStatus.SUSPENDED) == (approved is None)


def test_compliant_candidates_are_adopted_and_non_compliant_ones_refused(fleet: Fleet) -> None:
    inventory = fresh_inventory(fleet)
    for site in fleet.early_smart_sites.values():
        inventory.add_site(site)
    adopted = refused = 0
    for device in fleet.early_smart_candidates:
        product = inventory.approved(device.manufacturer, device.model)
        if product is not None and product.early_smart:
            inventory.adopt_early_smart(device)
            assert inventory.devices[device.device_id].status is DeviceStatus.COMMISSIONED
            adopted += 1
        else:
            assert device.device_type in (DeviceType.ESME, DeviceType.GSME)
            with pytest.raises(InventoryError, match="does not comply"):
                inventory.adopt_early_smart(device)
            refused += 1
    non_compliant_sites = {
        d.site_id
        for d in fleet.early_smart_candidates
        if fleet.inventory.approved(d.manufacturer, d.model) is None
    }
    assert adopted > refused > 0
    assert len(non_compliant_sites) == round(len(fleet.early_smart_sites) / 3)


def test_a_registered_supplier_is_accepted_on_its_own_meter_and_another_supplier_refused(
    fleet: Fleet,
) -> None:
    context = AccessContext(fleet.users, CATALOGUE, fleet.registration, fleet.inventory)
    device = next(
        d
        for d in meters(fleet)
        if d.device_type is DeviceType.ESME
        and d.status is DeviceStatus.COMMISSIONED
        and meter_point_of(fleet, d).served_by_hub
        and not meter_point_of(fleet, d).export
    )
    supplier = meter_point_of(fleet, device).supplier_on(AS_OF)
    owner = next(u for u in fleet.users.values() if u.party_id == supplier)
    other = next(
        u
        for u in fleet.users.values()
        if Role.IS in u.roles and u.party_id != supplier and u.status.value == "active"
    )
    accepted = context.decide(
        AccessRequest(owner.user_id, Role.IS, "4.1.1", device.device_id, NOON)
    )
    assert accepted.code is ResponseCode.I99, accepted.reason
    refused = context.decide(AccessRequest(other.user_id, Role.IS, "4.1.1", device.device_id, NOON))
    assert refused.code is ResponseCode.E4, refused.reason


def test_the_export_supplier_reaches_an_export_meter_and_the_distributor_its_area(
    fleet: Fleet,
) -> None:
    context = AccessContext(fleet.users, CATALOGUE, fleet.registration, fleet.inventory)
    export = next(
        d
        for d in meters(fleet)
        if d.status is DeviceStatus.COMMISSIONED and meter_point_of(fleet, d).export
    )
    decision = context.decide(AccessRequest("u-suph", Role.ES, "4.2", export.device_id, NOON))
    assert decision.code is ResponseCode.I99, decision.reason
    operator = meter_point_of(fleet, export).network_operator
    decision = context.decide(
        AccessRequest(f"u-{operator.lower()}", Role.ED, "4.2", export.device_id, NOON)
    )
    assert decision.code is ResponseCode.I99, decision.reason


def test_the_same_seed_gives_the_same_bytes_and_another_seed_other_bytes(tmp_path: Path) -> None:
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        write_fleet(generate_fleet(300, seed, AS_OF), tmp_path / name)
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert {records.MANIFEST_FILE, records.DEVICES_FILE} <= set(files)
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    for name in (records.DEVICES_FILE, records.ELECTRICITY_REGISTER_FILE, records.SITES_FILE):
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes(), name


def test_a_missing_fleet_file_or_directory_is_refused_naming_it(
    fleet_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(FileNotFoundError, match=r"fleet directory .*nowhere does not exist"):
        load_fleet(tmp_path / "nowhere")
    copy = tmp_path / "copy"
    shutil.copytree(fleet_dir, copy)
    (copy / records.CONSENTS_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=r"fleet file .*consents\.csv is missing"):
        FileRegisters(copy).load()


def test_a_bad_record_in_a_fleet_file_is_refused_naming_the_file_and_line(
    fleet_dir: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(fleet_dir, copy)
    path = copy / records.SITES_FILE
    text = path.read_text(encoding="utf-8").splitlines(keepends=True)
    text[4] = text[4].replace(",North,", ",Nowhere,").replace(",South,", ",Nowhere,")
    text[4] = text[4].replace(",Central,", ",Nowhere,")
    path.write_text("".join(text), encoding="utf-8")
    with pytest.raises(records.RecordError) as caught:
        load_fleet(copy)
    assert (caught.value.file, caught.value.line) == (str(path), 5)
    assert "region 'Nowhere'" in caught.value.reason


def test_the_generate_command_writes_a_fleet_and_prints_its_counts(tmp_path: Path) -> None:
    out = tmp_path / "fleet"
    args = ["generate", "--sites", "50", "--seed", "3", "--out", str(out), "--as-of", "2025-03-01"]
    result = CliRunner().invoke(fleet_app, args)
    assert result.exit_code == 0, result.output
    assert "devices.csv" in result.output
    assert load_fleet(out).manifest["sites"] == 50


def test_the_generate_command_refuses_a_bad_date(tmp_path: Path) -> None:
    args = ["generate", "--sites", "5", "--seed", "1", "--out", str(tmp_path), "--as-of", "2025-13"]
    result = CliRunner().invoke(fleet_app, args)
    assert result.exit_code == 2
    assert "is not a date yyyy-mm-dd" in result.output
    assert not (tmp_path / records.MANIFEST_FILE).exists()


def test_agents_and_escos_hold_live_expired_and_tenancy_ended_rights(fleet: Fleet) -> None:
    reg = fleet.registration
    appointed = [ap for aps in reg.appointments.values() for ap in aps if ap.covers(AS_OF)]
    assert {ap.agent for ap in appointed} == {"AGTA", "AGTB"}
    assert all(reg.agent_appointed(ap.agent, ap.mpxn, AS_OF) for ap in appointed)
    outcome: Counter[str] = Counter()
    for mpxn, consents in reg.consents.items():
        mp = reg.meter_points[mpxn]
        for c in consents:
            if reg.consent_live(c.esco, mpxn, AS_OF):
                outcome["live"] += 1
            elif c.expires is not None and c.expires <= AS_OF:
                outcome["expired"] += 1
            else:
                assert any(c.granted < t <= AS_OF for t in mp.tenancy_changes)
                outcome["new tenant"] += 1
    assert min(outcome["live"], outcome["expired"], outcome["new tenant"]) > 0, outcome
    escos = {c.esco for cs in reg.consents.values() for c in cs}
    assert {fleet.users[f"u-{e.lower()}"].roles for e in escos} == {frozenset({Role.OU})}
