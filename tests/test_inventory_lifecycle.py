"""The inventory lifecycle through the DUIS services, on the engine with a fake clock: each
service changes the inventory through the status table, each refusal has the domain's code,
and the recorded changes rebuild the inventory after a restart."""

from __future__ import annotations

from datetime import date, timedelta

from hub import wire
from hub.engine import Effects, EngineConfig, HubEngine
from hub.flows.inventory_operator import EARLY_SMART_REFUSED, OperatorAction, OperatorCommand
from hub.ports.memory_store import MemoryStore
from hub.reference.codes import ResponseCode
from hub.reference.mpxn import make_mpan
from hub.reference.roles import DeviceType, Fuel, Role
from hub.reference.service_params import example_params
from hub.reference.standard import CommandStatus, DeviceResponse, Value
from hub.registers.inventory import ChangeKind, Device, DeviceStatus, InventoryChange, Site
from hub.registers.registration import MeterPoint, SupplierRegistration
from tests.world import CHF, COS_DAY, ESME, IHD, ND_ESME, ND_MPAN, PPMID, World, at

T0 = at(COS_DAY - timedelta(days=10)).timestamp()
SIGNATURE = b"\x5a" * 64
NEW_MPAN = make_mpan("12", 9)
NEW_CHF, NEW_ESME = "00000000000000C1", "00000000000000C2"


def _world() -> World:
    world = World()
    world.registration.meter_points[NEW_MPAN] = MeterPoint(
        NEW_MPAN, Fuel.ELECTRICITY, "12", "UKPN", (SupplierRegistration("SUPA", date(2020, 1, 1)),)
    )
    return world


class _Hub:
    """An engine over the hand-built world, with a memory store that keeps what it decides."""

    def __init__(self, world: World | None = None) -> None:
        self.world = world or _world()
        self.engine = HubEngine(self.world.access, EngineConfig())
        self.store = MemoryStore()
        self.now = T0
        self._n = 0

    def step(self, effects: Effects) -> Effects:
        self.store.apply(effects, self.engine.next_seq, self.engine.next_delivery)
        return effects

    def send(
        self,
        service: str,
        device: str | None,
        params: dict[str, Value] | None = None,
        user: str = "u-supa",
        role: Role = Role.IS,
        later_s: float | None = None,
    ) -> tuple[wire.Message, Effects]:
        self._n += 1
        self.now += 1
        req = wire.ServiceRequest(
            execute_at=None if later_s is None else self.now + later_s,
            request_id=f"r{self._n}",
            role=role,
            service=service,
            device_id=device,
            params=params if params is not None else {},
            signature=SIGNATURE if service in ("8.1.1", "8.7.1", "8.8.1") else b"",
        )
        eff = self.step(self.engine.on_frame(user, wire.encode(req), self.now))
        return wire.decode(eff.send[0].payload), eff

    def answered(self, eff: Effects) -> wire.ServiceResponse:
        [delivery] = [d for d in eff.add_deliveries if d.request_id is not None]
        resp = wire.decode(delivery.payload)
        assert isinstance(resp, wire.ServiceResponse)
        return resp

    def run(
        self,
        service: str,
        device: str | None,
        params: dict[str, Value] | None = None,
        user: str = "u-supa",
        role: Role = Role.IS,
        later_s: float | None = None,
    ) -> wire.ServiceResponse:
        """Send a request (executed ``later_s`` from now if given); a device service is
        answered by the device with success."""
        first, eff = self.send(service, device, params, user, role, later_s)
        assert isinstance(first, wire.Acknowledgement), first
        if later_s is not None:  # held by the hub until its time
            assert eff.dispatch == []
            self.now += later_s + 1
            eff = self.step(self.engine.tick(self.now))
        if not eff.dispatch:
            return self.answered(eff)
        cmd = eff.dispatch[0].command
        self.now += 1
        done = self.step(
            self.engine.on_device_response(
                DeviceResponse(cmd.command_id, cmd.device_id, service, CommandStatus.SUCCESS),
                self.now,
            )
        )
        return self.answered(done)

    def refused(
        self,
        service: str,
        device: str | None,
        params: dict[str, Value] | None = None,
        later_s: float | None = None,
    ) -> wire.Refusal:
        first, _ = self.send(service, device, params, later_s=later_s)
        assert isinstance(first, wire.Refusal), first
        return first

    def status(self, device_id: str) -> DeviceStatus:
        return self.engine.access.inventory.devices[device_id].status


def _prenotify(
    device_id: str, device_type: str, model: str, site: str = "S9", **extra: Value
) -> dict[str, Value]:
    return {
        "device_id": device_id,
        "device_type": device_type,
        "manufacturer": "Acme",
        "model": model,
        "firmware": "1.0",
        "mpxn": NEW_MPAN,
        "site_id": site,
        **extra,
    }


def _new_connection(hub: _Hub) -> None:
    chf = _prenotify(NEW_CHF, "CHF", "C1", region="South", cell="S-0009")
    assert hub.run("12.2", None, chf).code is ResponseCode.I0
    assert hub.run("12.2", None, _prenotify(NEW_ESME, "ESME", "E1")).code is ResponseCode.I0


def test_a_pre_notified_device_enters_the_inventory_pending_with_its_new_site() -> None:
    hub = _Hub()
    _new_connection(hub)
    inventory = hub.engine.access.inventory
    assert hub.status(NEW_CHF) is DeviceStatus.PENDING
    assert hub.status(NEW_ESME) is DeviceStatus.PENDING
    assert inventory.sites["S9"].comms_hub == NEW_CHF
    assert inventory.sites["S9"].lead_supplier == "SUPA"
    assert inventory.devices[NEW_ESME].mpxn == NEW_MPAN


def test_only_the_registered_supplier_may_pre_notify_a_device_for_a_meter_point() -> None:
    hub = _Hub()
    chf = _prenotify(NEW_CHF, "CHF", "C1", region="South", cell="S-0009")
    first, _ = hub.send("12.2", None, chf, user="u-supb")
    assert isinstance(first, wire.Refusal)
    assert first.code is ResponseCode.E4
    as_gas, _ = hub.send("12.2", None, chf, role=Role.GS)  # the right party, the wrong role
    assert isinstance(as_gas, wire.Refusal)
    assert as_gas.code is ResponseCode.E4
    assert hub.engine.access.inventory.device(NEW_CHF) is None


def test_a_pre_notification_of_an_unapproved_model_or_a_known_device_is_refused() -> None:
    hub = _Hub()
    bad_model = _prenotify(NEW_CHF, "CHF", "NOPE", region="South", cell="S-0009")
    assert hub.refused("12.2", None, bad_model).code is ResponseCode.E12
    _new_connection(hub)
    again = hub.refused("12.2", None, _prenotify(NEW_ESME, "ESME", "E1"))
    assert again.code is ResponseCode.E12
    assert "already" in again.reason


def test_a_meter_cannot_be_pre_notified_for_a_premises_the_inventory_lacks() -> None:
    hub = _Hub()
    refusal = hub.refused("12.2", None, _prenotify(NEW_ESME, "ESME", "E1", site="S404"))
    assert refusal.code is ResponseCode.E12
    assert "comms hub" in refusal.reason


def test_install_success_commissions_the_comms_hub_once() -> None:
    hub = _Hub()
    _new_connection(hub)
    assert hub.run("8.14.1", NEW_CHF).code is ResponseCode.I0
    assert hub.status(NEW_CHF) is DeviceStatus.COMMISSIONED
    assert hub.refused("8.14.1", NEW_CHF).code is ResponseCode.E5


def test_a_comms_hub_installed_without_wan_waits_installed_not_commissioned() -> None:
    hub = _Hub()
    _new_connection(hub)
    hub.run("8.14.2", NEW_CHF)
    assert hub.status(NEW_CHF) is DeviceStatus.INSTALLED_NOT_COMMISSIONED


def test_a_returned_comms_hub_is_withdrawn_or_decommissioned_by_where_it_stood() -> None:
    hub = _Hub()
    _new_connection(hub)
    hub.run("8.14.3", NEW_CHF)
    assert hub.status(NEW_CHF) is DeviceStatus.WITHDRAWN
    hub.run("8.14.4", CHF)
    assert hub.status(CHF) is DeviceStatus.DECOMMISSIONED
    assert hub.refused("8.14.4", CHF).code is ResponseCode.E5


def test_comms_hub_status_updates_apply_to_comms_hubs_only() -> None:
    hub = _Hub()
    assert hub.refused("8.14.1", ESME).code is ResponseCode.E11


def test_a_new_connection_goes_from_pre_notification_to_a_served_read() -> None:
    hub = _Hub()
    _new_connection(hub)
    hub.run("8.14.1", NEW_CHF)
    assert hub.refused("4.1.1", NEW_ESME).code is ResponseCode.E5  # Pending
    add = {"action": "add", "other_device_id": NEW_ESME}
    assert hub.run("8.11", NEW_CHF, add).code is ResponseCode.I0
    assert hub.status(NEW_ESME) is DeviceStatus.INSTALLED_NOT_COMMISSIONED
    commissioned = hub.run("8.1.1", NEW_ESME, {"device_id": NEW_ESME})
    assert commissioned.code is ResponseCode.I0
    assert commissioned.body["inventory_status"] == "Commissioned"
    assert hub.status(NEW_ESME) is DeviceStatus.COMMISSIONED
    assert hub.run("4.1.1", NEW_ESME).code is ResponseCode.I0


def test_commissioning_makes_a_device_serveable_and_decommissioning_makes_it_refused() -> None:
    world = _world()
    world.set_status(ESME, DeviceStatus.INSTALLED_NOT_COMMISSIONED)
    hub = _Hub(world)
    assert hub.refused("4.1.1", ESME).code is ResponseCode.E5
    hub.run("8.1.1", ESME, {"device_id": ESME})
    assert hub.status(ESME) is DeviceStatus.COMMISSIONED
    assert hub.run("4.1.1", ESME).code is ResponseCode.I0
    assert hub.run("8.3", ESME).code is ResponseCode.I0
    assert hub.status(ESME) is DeviceStatus.DECOMMISSIONED
    assert hub.refused("4.1.1", ESME).code is ResponseCode.E5
    assert hub.refused("8.3", ESME).code is ResponseCode.E5
    assert hub.refused("8.1.1", ESME, {"device_id": ESME}).code is ResponseCode.E5


def test_a_device_decommissioned_while_its_commissioning_was_in_flight_is_not_commissioned() -> (
    None
):
    world = _world()
    world.set_status(ESME, DeviceStatus.INSTALLED_NOT_COMMISSIONED)
    hub = _Hub(world)
    first, eff = hub.send("8.1.1", ESME, {"device_id": ESME})
    assert isinstance(first, wire.Acknowledgement)
    hub.run("8.3", ESME)
    cmd = eff.dispatch[0].command
    done = hub.engine.on_device_response(
        DeviceResponse(cmd.command_id, ESME, "8.1.1", CommandStatus.SUCCESS), hub.now + 1
    )
    assert hub.answered(done).code is ResponseCode.E5
    assert hub.status(ESME) is DeviceStatus.DECOMMISSIONED


def test_update_inventory_corrects_firmware_and_refuses_an_unapproved_model() -> None:
    hub = _Hub()
    assert hub.run("8.4", ESME, {"firmware": "2.0"}).code is ResponseCode.I0
    assert hub.engine.access.inventory.devices[ESME].firmware == "2.0"
    assert hub.refused("8.4", ESME, {"model": "NOPE"}).code is ResponseCode.E12
    assert hub.refused("8.4", ESME, {}).code is ResponseCode.E12


def test_opt_in_and_opt_out_change_what_the_hub_serves() -> None:
    hub = _Hub()
    assert hub.refused("4.1.1", ND_ESME).code is ResponseCode.H6
    assert hub.run("8.6", ND_ESME).code is ResponseCode.I0
    assert hub.run("4.1.1", ND_ESME).code is ResponseCode.I0
    assert hub.refused("8.6", ND_ESME).code is ResponseCode.E12  # already served
    assert hub.run("8.5", ND_ESME, later_s=60).code is ResponseCode.I0
    after = hub.refused("4.1.1", ND_ESME)
    assert after.code is ResponseCode.H6
    assert "opted out" in after.reason
    assert hub.refused("8.5", ND_ESME, later_s=60).code is ResponseCode.H6


def test_a_domestic_meter_point_cannot_opt_in_or_out() -> None:
    hub = _Hub()
    assert hub.refused("8.6", ESME).code is ResponseCode.E12
    assert hub.refused("8.5", ESME, later_s=60).code is ResponseCode.E12


def test_joins_and_unjoins_are_recorded_in_the_inventory() -> None:
    hub = _Hub()
    join = {"other_device_id": PPMID}
    assert hub.run("8.7.2", ESME, join).code is ResponseCode.I0
    assert hub.engine.access.inventory.devices[ESME].joined == (PPMID,)
    assert hub.run("8.7.2", ESME, join).code is ResponseCode.I0  # already joined: no change
    hub.run("8.8.2", ESME, join)
    assert hub.engine.access.inventory.devices[ESME].joined == ()
    unknown = hub.run("8.7.2", IHD, {"other_device_id": "00000000000000FF"})
    assert unknown.code is ResponseCode.E19


EARLY = Device(
    "00000000000000D1", DeviceType.ESME, "S7", "Oldco", "S1", "1.0", "", DeviceStatus.PENDING,
    NEW_MPAN,
)  # fmt: skip
EARLY_SITE = Site("S7", "00000000000000D0", "SUPA", "North", "N-0001")


def test_an_early_smart_meter_of_an_approved_model_is_adopted_once() -> None:
    hub = _Hub()
    cmd = OperatorCommand("c1", OperatorAction.ADOPT, device=EARLY, site=EARLY_SITE)
    eff = hub.step(hub.engine.on_operator_command(cmd, T0))
    assert [c.kind for c in eff.inventory_changes] == [ChangeKind.ADOPTED]
    device = hub.engine.access.inventory.devices[EARLY.device_id]
    assert device.status is DeviceStatus.COMMISSIONED
    assert device.early_smart
    assert device.head_end == "text"
    assert hub.engine.access.inventory.sites["S7"] == EARLY_SITE
    assert eff.audit
    assert eff.audit[0].kind == "inventory_change"
    again = hub.engine.on_operator_command(cmd, T0 + 1)
    assert again.inventory_changes == []


def test_an_early_smart_meter_of_an_unapproved_model_is_refused_and_its_supplier_told() -> None:
    hub = _Hub()
    stray = Device(
        "00000000000000D2", DeviceType.ESME, "S7", "Strayco", "X9", "1.0", "",
        DeviceStatus.PENDING, NEW_MPAN,
    )  # fmt: skip
    cmd = OperatorCommand("c2", OperatorAction.ADOPT, device=stray, site=EARLY_SITE)
    eff = hub.step(hub.engine.on_operator_command(cmd, T0))
    assert [c.kind for c in eff.inventory_changes] == [ChangeKind.ADOPTION_REFUSED]
    assert hub.engine.access.inventory.device(stray.device_id) is None
    alerts = [wire.decode(d.payload) for d in eff.add_deliveries]
    assert [(d.user_id) for d in eff.add_deliveries] == ["u-supa"]
    assert isinstance(alerts[0], wire.HubAlert)
    assert alerts[0].alert_code == EARLY_SMART_REFUSED


def test_a_suspended_model_takes_effect_at_once_and_an_approved_one_can_be_adopted() -> None:
    hub = _Hub()
    suspend = OperatorCommand("c3", OperatorAction.SUSPEND_MODEL, model="Acme/E1")
    eff = hub.step(hub.engine.on_operator_command(suspend, T0))
    assert hub.status(ESME) is DeviceStatus.SUSPENDED
    assert eff.audit[0].code == "model_suspended"
    assert hub.refused("4.1.1", ESME).code is ResponseCode.E5
    product = hub.world.inventory.products[("Oldco", "S1")]
    stray = EARLY.__class__(**{**_fields(EARLY), "manufacturer": "Newco"})
    approve = OperatorCommand(
        "c4",
        OperatorAction.APPROVE_MODEL,
        product=product.__class__("Newco", "S1", DeviceType.ESME, "text", True),
    )
    hub.step(hub.engine.on_operator_command(approve, T0 + 1))
    adopt = OperatorCommand("c5", OperatorAction.ADOPT, device=stray, site=EARLY_SITE)
    eff = hub.step(hub.engine.on_operator_command(adopt, T0 + 2))
    assert [c.kind for c in eff.inventory_changes] == [ChangeKind.ADOPTED]


def _fields(device: Device) -> dict[str, object]:
    return {name: getattr(device, name) for name in device.__dataclass_fields__}


def test_recorded_changes_replayed_at_a_restart_rebuild_the_inventory_and_election() -> None:
    world = _world()
    world.set_status(ESME, DeviceStatus.INSTALLED_NOT_COMMISSIONED)
    hub = _Hub(world)
    _new_connection(hub)
    hub.run("8.14.1", NEW_CHF)
    hub.run("8.1.1", ESME, {"device_id": ESME})
    hub.run("8.6", ND_ESME)
    hub.step(
        hub.engine.on_operator_command(
            OperatorCommand("c1", OperatorAction.ADOPT, device=EARLY, site=EARLY_SITE), T0
        )
    )
    restored = hub.store.load(since=0)
    # a new engine over the initial inventory, as at a restart
    fresh_world = _world()
    fresh_world.set_status(ESME, DeviceStatus.INSTALLED_NOT_COMMISSIONED)
    engine = HubEngine(fresh_world.access, EngineConfig())
    engine.restore(
        restored.requests,
        restored.deliveries,
        restored.next_seq,
        restored.next_delivery,
        hub.now,
        restored.schedules,
        restored.next_schedule,
        restored.transfers,
        inventory_changes=restored.inventory_changes,
    )
    assert engine.access.inventory.devices == hub.engine.access.inventory.devices
    assert engine.access.inventory.sites == hub.engine.access.inventory.sites
    assert engine.access.election.elected == {ND_MPAN: True}
    # the adoption is not run again by the same command
    again = engine.on_operator_command(
        OperatorCommand("c1", OperatorAction.ADOPT, device=EARLY, site=EARLY_SITE), hub.now
    )
    assert again.inventory_changes == []


def test_an_inventory_change_survives_its_record_round_trip() -> None:
    change = InventoryChange(
        ChangeKind.ADOPTED, T0, "operator", "c1", device_id=EARLY.device_id, site_id="S7",
        mpxn=NEW_MPAN, model="Oldco/S1", device=EARLY, site=EARLY_SITE, reason="r",
    )  # fmt: skip
    assert InventoryChange.from_record(change.to_record()) == change
    status = InventoryChange(
        ChangeKind.STATUS, T0, "u", "u/r", device_id=ESME, status=DeviceStatus.COMMISSIONED
    )
    assert InventoryChange.from_record(status.to_record()) == status


def test_the_inventory_services_examples_are_valid() -> None:
    from hub.reference.service_docs import example
    from hub.reference.service_params import INVENTORY_SCHEMAS, validate_inventory_params

    for code in INVENTORY_SCHEMAS:
        assert validate_inventory_params(code, example(code)) == [], code
    assert example_params("8.1.1")  # the device services keep their own examples


def test_the_fields_early_smart_contacts_are_repeatable_meters_only_and_inside_the_span() -> None:
    from simfield.early_smart import contacts

    chf = Device(
        "00000000000000D0", DeviceType.CHF, "S7", "Oldco", "C", "1.0", "", DeviceStatus.PENDING
    )
    meters = [EARLY, Device(**{**_fields(EARLY), "device_id": "00000000000000D3"})]  # type: ignore[arg-type]
    first = contacts([chf, *meters], T0, 3600.0, seed=5)
    assert first == contacts([*reversed(meters), chf], T0, 3600.0, seed=5)
    assert sorted(c.device_id for c in first) == sorted(m.device_id for m in meters)
    assert all(T0 <= c.at < T0 + 3600.0 for c in first)
    assert [c.at for c in first] == sorted(c.at for c in first)
