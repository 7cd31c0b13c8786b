"""The inventory lifecycle through the DUIS services and the operator's inventory commands.

Decides: what each inventory-changing service does to the hub's inventory and election, and
when it is refused: 12.2 Device Pre-notification (a device enters, Pending; with a comms
hub, its site enters), 8.14.1-8.14.4 Communications Hub Status Update, 8.3 Decommission,
8.4 Update Inventory and 8.6 Service Opt In, carried out by the hub itself; and the inventory
effect of the device services that change it once the device has done its part (8.1.1
Commission Device, 8.5 Service Opt Out, 8.7.x Join, 8.8.x Unjoin, 8.11 Update HAN Device Log
adding a device). Every change goes through the status table (``Inventory.transition``),
is applied to the engine's inventory at once and handed to the driver as
``Effects.inventory_changes`` (persisted with the response in one batch, so a restart
neither loses nor repeats one) and audited. Operator commands (adopt an early-smart meter,
approve or suspend a model) come as typed ``OperatorCommand`` messages.
Must never: touch a device (device services reach it through the engine's pipeline), or
change the inventory other than by applying an ``InventoryChange``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from hub.engine.effects import AuditKind, AuditRecord, Direction, Effects
from hub.engine.lifecycle import RequestRecord
from hub.flows.inventory_operator import OperatorCommand, operator_changes
from hub.flows.inventory_records import (
    OPERATOR,
    ChangeRefusedError,
    Snapshot,
    describe,
    moves,
    path_to,
    refusal_of,
    replay,
)
from hub.flows.service_flow import FlowHost, ServiceFlow
from hub.reference.catalogue import Service
from hub.reference.codes import ResponseCode
from hub.reference.roles import DeviceType, Fuel, Role
from hub.reference.service_params import INVENTORY_SCHEMAS, validate_inventory_params
from hub.reference.standard import Value
from hub.reference.text import bounded, join_reasons
from hub.reference.uktime import uk_date
from hub.registers.election import ELECTION_KINDS
from hub.registers.inventory import (
    ChangeKind,
    Device,
    DeviceStatus,
    InventoryChange,
    InventoryError,
    Site,
)
from hub.wire import ServiceRequest

__all__ = ["DEVICE_EFFECTS", "INVENTORY_SERVICES", "InventoryChangeFlow", "replay"]

_S = DeviceStatus
_NOT_YET_COMMISSIONED = frozenset({_S.PENDING, _S.WHITELISTED, _S.INSTALLED_NOT_COMMISSIONED})
_IN_SERVICE = frozenset({_S.COMMISSIONED, _S.RECOVERED})
_METER_FUEL = {DeviceType.ESME: Fuel.ELECTRICITY, DeviceType.GSME: Fuel.GAS}


def _supplier_role(fuel: Fuel, export: bool) -> Role:
    """The supplier role that acts for a meter point of this fuel (and direction)."""
    if fuel is Fuel.GAS:
        return Role.GS
    return Role.ES if export else Role.IS


INVENTORY_SERVICES = frozenset(INVENTORY_SCHEMAS)
"""The non-device inventory services this flow carries out."""


def _today(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC)


class InventoryChangeFlow(ServiceFlow):
    """12.2, 8.3, 8.4, 8.6 and 8.14.1-8.14.4, carried out by the hub at once; the inventory
    effects of device services on their success; operator commands."""

    def __init__(self, host: FlowHost) -> None:
        super().__init__(host)
        self._refs: set[str] = set()  # operator commands already carried out

    # ---- the services -------------------------------------------------------------------

    def check(
        self, user_id: str, req: ServiceRequest, service: Service, now: float
    ) -> tuple[ResponseCode, str] | None:
        """Parameters, then what the service needs of its target (or of the device
        pre-notified); the status table's refusals are E5."""
        problems = validate_inventory_params(service.code, req.params)
        if problems:
            return ResponseCode.E12, join_reasons(problems)
        if req.execute_at is not None and req.execute_at > now:
            return ResponseCode.E12, f"{service.code} cannot be future dated"
        if service.code == "12.2":
            return self._check_prenotification(user_id, req.role, req, now)
        if req.device_id is None:
            return ResponseCode.E12, f"{service.code} needs a target device"
        try:
            self._changes(service.code, req.device_id, req.params, user_id, "", now)
        except ChangeRefusedError as refused:
            return refused.code, refused.reason
        return None

    def execute(self, rec: RequestRecord, now: float, admitted: bool) -> Effects:
        """Make the change (checked again: a restart may have come between) and answer I0
        with the device's inventory entry."""
        ref = f"{rec.user_id}/{rec.request_id}"
        try:
            if rec.service == "12.2":
                changes = self._prenotification(rec.user_id, rec.role, rec.params, ref, now)
            else:
                assert rec.device_id is not None
                changes = self._changes(
                    rec.service, rec.device_id, rec.params, rec.user_id, ref, now
                )
            effects = self.record(changes, now)
        except ChangeRefusedError as refused:
            return self.host.respond(rec, refused.code, {"reason": refused.reason}, now)
        device_id = rec.device_id or str(rec.params.get("device_id", ""))
        effects.extend(self.host.respond(rec, ResponseCode.I0, self._answer(device_id), now))
        return effects

    def _answer(self, device_id: str) -> dict[str, Value]:
        device = self.host.access.inventory.device(device_id)
        if device is None:
            return {}
        body: dict[str, Value] = {
            "device_id": device.device_id,
            "device_type": device.device_type.value,
            "status": device.status.value,
            "site_id": device.site_id,
            "mpxn": device.mpxn or None,
        }
        if device.mpxn:
            mp = self.host.access.registration.meter_point(device.mpxn)
            if mp is not None:
                body["served_by_hub"] = self.host.access.election.served(mp)
        return body

    # ---- 12.2 -----------------------------------------------------------------------------

    def _check_prenotification(
        self, user_id: str, role: Role, req: ServiceRequest, now: float
    ) -> tuple[ResponseCode, str] | None:
        try:
            self._prenotification(user_id, role, req.params, "", now)
        except ChangeRefusedError as refused:
            return refused.code, refused.reason
        return None

    def _prenotification(
        self, user_id: str, role: Role, params: Mapping[str, Value], ref: str, now: float
    ) -> list[InventoryChange]:
        """12.2: the device enters Pending, for a meter point the sender supplies today; a
        comms hub for a premises the inventory lacks brings its site in with it."""
        access = self.host.access
        inventory = access.inventory
        device_id, type_text = str(params["device_id"]), str(params["device_type"])
        device_type = DeviceType(type_text)
        mpxn, site_id = str(params["mpxn"]), str(params["site_id"])
        manufacturer, model = str(params["manufacturer"]), str(params["model"])
        if inventory.device(device_id) is not None:
            raise ChangeRefusedError(
                ResponseCode.E12, f"device {device_id} is already in the inventory"
            )
        product = inventory.approved(manufacturer, model)
        if product is None:
            raise ChangeRefusedError(
                ResponseCode.E12,
                f"model {manufacturer}/{model} is not on the approved products list",
            )
        if product.device_type is not device_type:
            raise ChangeRefusedError(
                ResponseCode.E11,
                f"model {manufacturer}/{model} is a {product.device_type.value}, not a {type_text}",
            )
        mp = access.registration.meter_point(mpxn)
        user = access.users[user_id]
        if mp is None:
            raise ChangeRefusedError(ResponseCode.E4, f"meter point {mpxn} is in no register")
        if not access.election.served(mp):
            raise ChangeRefusedError(
                ResponseCode.H6, f"meter point {mpxn} is not served by the hub (data collector)"
            )
        fuel = _METER_FUEL.get(device_type)
        if fuel is not None and mp.fuel is not fuel:
            raise ChangeRefusedError(
                ResponseCode.E11, f"a {type_text} cannot meter {mp.fuel.value} meter point {mpxn}"
            )
        supplier = mp.supplier_on(uk_date(_today(now)))
        if supplier != user.party_id or role is not _supplier_role(mp.fuel, mp.export):
            raise ChangeRefusedError(
                ResponseCode.E4,
                f"{user_id} as {role.value} is not the registered supplier of meter point "
                f"{mpxn} today",
            )
        changes: list[InventoryChange] = []
        site = inventory.sites.get(site_id)
        if site is None:
            region, cell = params.get("region"), params.get("cell")
            if device_type is not DeviceType.CHF or not region or not cell:
                raise ChangeRefusedError(
                    ResponseCode.E12,
                    f"site {site_id} is not in the inventory: pre-notify its comms hub (CHF) "
                    "first, with region and cell",
                )
            site = Site(site_id, device_id, user.party_id, str(region), str(cell))
            changes.append(
                InventoryChange(
                    ChangeKind.SITE_ADDED, now, user_id, ref, site_id=site_id, mpxn=mpxn, site=site
                )
            )
        elif device_type is DeviceType.CHF:
            raise ChangeRefusedError(
                ResponseCode.E12, f"site {site_id} already has comms hub {site.comms_hub}"
            )
        device = Device(
            device_id=device_id,
            device_type=device_type,
            site_id=site_id,
            manufacturer=manufacturer,
            model=model,
            firmware=str(params["firmware"]),
            head_end=product.head_end,
            status=DeviceStatus.PENDING,
            mpxn=mpxn if fuel is not None else "",
        )
        changes.append(
            InventoryChange(
                ChangeKind.DEVICE_ADDED,
                now,
                user_id,
                ref,
                device_id=device_id,
                site_id=site_id,
                mpxn=mpxn,
                model=f"{manufacturer}/{model}",
                device=device,
                reason="pre-notified",
            )
        )
        return changes

    # ---- services on a device already in the inventory -------------------------------------

    def _changes(
        self,
        code: str,
        device_id: str,
        params: Mapping[str, Value],
        user_id: str,
        ref: str,
        now: float,
    ) -> list[InventoryChange]:
        inventory = self.host.access.inventory
        device = inventory.device(device_id)
        if device is None:
            raise ChangeRefusedError(
                ResponseCode.E19, f"device {device_id} is not in the inventory"
            )

        def along(
            *path: DeviceStatus, target: Device = device, why: str = ""
        ) -> list[InventoryChange]:
            return moves(target, path, user_id, ref, now, why or code)

        if code == "8.3":
            return along(DeviceStatus.DECOMMISSIONED, why="8.3 decommissioned")
        if code == "8.4":
            details = {k: str(v) for k, v in params.items()}
            manufacturer = details.get("manufacturer", device.manufacturer)
            model = details.get("model", device.model)
            if (manufacturer, model) != (device.manufacturer, device.model):
                product = inventory.approved(manufacturer, model)
                if product is None or product.device_type is not device.device_type:
                    raise ChangeRefusedError(
                        ResponseCode.E12,
                        f"model {manufacturer}/{model} is not on the approved products list "
                        f"as a {device.device_type.value}",
                    )
                details["head_end"] = product.head_end  # the new model's translator
            change = InventoryChange(
                ChangeKind.DEVICE_UPDATED,
                now,
                user_id,
                ref,
                device_id=device_id,
                site_id=device.site_id,
                mpxn=device.mpxn,
                details=details,
                reason="8.4 " + ", ".join(f"{k}={v}" for k, v in sorted(details.items())),
            )
            return [change]
        if code == "8.6":
            return self._election(device, ChangeKind.OPTED_IN, user_id, ref, now)
        # 8.14.x: the comms hub function and the gas proxy on it
        if device.device_type is not DeviceType.CHF:
            raise ChangeRefusedError(
                ResponseCode.E11,
                f"{code} applies to a comms hub (CHF), not a {device.device_type.value}",
            )
        on_hub = [device] + [
            d for d in inventory.site_devices(device.site_id) if d.device_type is DeviceType.GPF
        ]
        changes: list[InventoryChange] = []
        for target in on_hub:
            if code in ("8.14.1", "8.14.2"):
                if target.status not in _NOT_YET_COMMISSIONED:
                    if target is device:
                        raise ChangeRefusedError(
                            ResponseCode.E5,
                            f"comms hub {device_id} is {device.status.value}: already installed",
                        )
                    continue
                path = path_to(target.status, DeviceStatus.INSTALLED_NOT_COMMISSIONED)
                if code == "8.14.1":
                    path.append(DeviceStatus.COMMISSIONED)
            else:
                if target.status in (DeviceStatus.DECOMMISSIONED, DeviceStatus.WITHDRAWN):
                    if target is device:
                        raise ChangeRefusedError(
                            ResponseCode.E5,
                            f"comms hub {device_id} is already {device.status.value}",
                        )
                    continue
                end = (
                    DeviceStatus.DECOMMISSIONED
                    if target.status in _IN_SERVICE
                    else DeviceStatus.WITHDRAWN
                )
                path = [end]
            why = {
                "8.14.1": "8.14.1 install success",
                "8.14.2": "8.14.2 installed, no SM WAN",
                "8.14.3": "8.14.3 fault return",
                "8.14.4": "8.14.4 no fault return",
            }[code]
            changes += along(*path, target=target, why=why)
        return changes

    def _election(
        self, device: Device, kind: ChangeKind, user_id: str, ref: str, now: float
    ) -> list[InventoryChange]:
        access = self.host.access
        mp = access.registration.meter_point(device.mpxn) if device.mpxn else None
        if mp is None:
            raise ChangeRefusedError(
                ResponseCode.E11, f"device {device.device_id} meters no meter point"
            )
        opted_in = kind is ChangeKind.OPTED_IN
        if access.election.served(mp) is opted_in:
            state = "served by" if opted_in else "opted out of"
            raise ChangeRefusedError(
                ResponseCode.E12, f"meter point {mp.mpxn} is already {state} the hub"
            )
        return [
            InventoryChange(
                kind,
                now,
                user_id,
                ref,
                device_id=device.device_id,
                site_id=device.site_id,
                mpxn=mp.mpxn,
                reason="8.6 service opt in" if opted_in else "8.5 service opt out",
            )
        ]

    # ---- device services with an inventory effect -------------------------------------------

    def after_device_success(
        self, rec: RequestRecord, body: dict[str, Value], now: float
    ) -> Effects | None:
        """The device carried out a service with an inventory effect: make the change and
        answer I0 (the device's body, with the device's status now); if the inventory no
        longer allows the change (it moved since the request was accepted) the answer says
        so with the status table's code. None: the service has no inventory effect."""
        effect = DEVICE_EFFECTS.get(rec.service)
        if effect is None or rec.device_id is None:
            return None
        ref = f"{rec.user_id}/{rec.request_id}"
        try:
            changes = effect(self, rec, ref, now)
            effects = self.record(changes, now)
        except ChangeRefusedError as refused:
            reason = f"the device answered, but the inventory was not changed: {refused.reason}"
            return self.host.respond(rec, refused.code, {**body, "reason": reason}, now)
        device = self.host.access.inventory.device(rec.device_id)
        answer = dict(body)
        if device is not None:
            answer["inventory_status"] = device.status.value
        effects.extend(self.host.respond(rec, ResponseCode.I0, answer, now))
        return effects

    def _commissioned(self, rec: RequestRecord, ref: str, now: float) -> list[InventoryChange]:
        device = self._device(rec.device_id)
        return moves(
            device, [DeviceStatus.COMMISSIONED], rec.user_id, ref, now, "8.1.1 commissioned"
        )

    def _opted_out(self, rec: RequestRecord, ref: str, now: float) -> list[InventoryChange]:
        return self._election(
            self._device(rec.device_id), ChangeKind.OPTED_OUT, rec.user_id, ref, now
        )

    def _joined(self, rec: RequestRecord, ref: str, now: float) -> list[InventoryChange]:
        device = self._device(rec.device_id)
        other = str(rec.params.get("other_device_id", ""))
        join = rec.service.startswith("8.7.")
        if self.host.access.inventory.device(other) is None:
            raise ChangeRefusedError(ResponseCode.E19, f"device {other} is not in the inventory")
        if (other in device.joined) is join:
            return []  # already as asked: nothing to record
        kind = ChangeKind.JOINED if join else ChangeKind.UNJOINED
        return [
            InventoryChange(
                kind,
                now,
                rec.user_id,
                ref,
                device_id=device.device_id,
                site_id=device.site_id,
                mpxn=device.mpxn,
                other_device_id=other,
                reason=f"{rec.service} {'joined to' if join else 'unjoined from'} {other}",
            )
        ]

    def _han_log(self, rec: RequestRecord, ref: str, now: float) -> list[InventoryChange]:
        """8.11 adding a pre-notified device to its comms hub's HAN device log: the device,
        installed, joins the HAN (Pending or Whitelisted -> Installed Not Commissioned)."""
        if rec.params.get("action") != "add":
            return []
        other = self.host.access.inventory.device(str(rec.params.get("other_device_id", "")))
        hub = self._device(rec.device_id)
        if other is None or other.site_id != hub.site_id:
            return []  # not a device of this site in the inventory: the log only
        if other.status not in (DeviceStatus.PENDING, DeviceStatus.WHITELISTED):
            return []
        path = path_to(other.status, DeviceStatus.INSTALLED_NOT_COMMISSIONED)
        return moves(other, path, rec.user_id, ref, now, "8.11 joined the comms hub's HAN")

    def _device(self, device_id: str | None) -> Device:
        device = self.host.access.inventory.device(device_id or "")
        if device is None:
            raise ChangeRefusedError(
                ResponseCode.E19, f"device {device_id} is not in the inventory"
            )
        return device

    # ---- operator commands -------------------------------------------------------------------

    def operator(self, command: OperatorCommand, now: float) -> Effects:
        """Carry out an operator's inventory command once (one whose id is already in the
        history does nothing): every outcome, a refusal too, is recorded and audited; an
        early-smart meter not adopted is reported to its registered supplier."""
        if command.command_id in self._refs:
            return Effects()
        changes, effects = operator_changes(self.host, command, now)
        try:
            effects.extend(self.record(changes, now))
        except ChangeRefusedError as refused:  # not expected for these kinds; recorded anyway
            effects.extend(self.record([refusal_of(changes[0], refused.reason)], now))
        return effects

    # ---- applying and recording ------------------------------------------------------------

    def record(self, changes: list[InventoryChange], now: float) -> Effects:
        """Apply changes in order to the engine's inventory and election (all of them, or on
        a refusal none: ``ChangeRefusedError``), and return them to persist, with their audit."""
        access = self.host.access
        inventory = access.inventory
        before = Snapshot.of(inventory, changes)
        try:
            for change in changes:
                inventory.apply(change)  # elections change nothing here
        except InventoryError as err:
            before.restore(inventory)  # all or nothing
            raise ChangeRefusedError(ResponseCode.E5, str(err)) from None
        for change in changes:
            if change.kind in ELECTION_KINDS:
                access.election.apply(change)
            if change.by == OPERATOR and change.ref:
                self._refs.add(change.ref)
        return Effects(
            inventory_changes=list(changes),
            audit=[
                AuditRecord(
                    now,
                    Direction.IN,
                    None if c.by == OPERATOR else c.by,
                    AuditKind.INVENTORY_CHANGE,
                    c.ref.partition("/")[2] or c.ref or None,
                    device_id=c.device_id or None,
                    code=c.kind.value,
                    reason=bounded(describe(c)),
                )
                for c in changes
            ],
        )

    def apply(self, change: InventoryChange) -> None:
        """Apply one recorded change (at once, or replayed at a restart)."""
        access = self.host.access
        if change.kind in ELECTION_KINDS:
            access.election.apply(change)
        else:
            access.inventory.apply(change)
        if change.by == OPERATOR and change.ref:
            self._refs.add(change.ref)

    def restore_changes(self, changes: list[InventoryChange]) -> None:
        """Replay the changes a store holds, in order, over the inventory the engine was
        built with (the fleet's initial one)."""
        for change in changes:
            self.apply(change)


DEVICE_EFFECTS: dict[
    str, Callable[[InventoryChangeFlow, RequestRecord, str, float], list[InventoryChange]]
] = {
    "8.1.1": InventoryChangeFlow._commissioned,
    "8.5": InventoryChangeFlow._opted_out,
    "8.7.1": InventoryChangeFlow._joined,
    "8.7.2": InventoryChangeFlow._joined,
    "8.8.1": InventoryChangeFlow._joined,
    "8.8.2": InventoryChangeFlow._joined,
    "8.11": InventoryChangeFlow._han_log,
}
"""Device services whose success changes the inventory, and the change each makes."""
