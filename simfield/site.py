"""The simulated field: builds each site's simulated devices from a fleet, for both drivers
(the live hub's comms hub pools and the SimPy simulator).

Decides: how a fleet site becomes a simulated ``Premises`` (its inventory device ids, payment
mode, its suppliers' and network operators' party ids and the public signing keys its devices
hold as trust anchors, a per-site seed), where those keys come from (the fleet's
``keys/signing/<party id>.pub.pem`` files), and
how device exceptions become device answers (a device not at the site is rejected; a site
without power does not answer, so the hub sees no response), and, given a ``FieldMemory``
(the live hub's), when a site's snapshot is written and that a site is put back from it when
it is built (``simfield.memory`` decides what a snapshot is).
Must never: decide anything for the hub (it stands in for the real devices behind a comms
hub), or let a device's answer leave before the site's memory holds what the device did.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.serialization import load_pem_public_key

from hub.flows.firmware import FIRMWARE_SERVICES
from hub.reference.catalogue import CATALOGUE
from hub.reference.roles import DeviceType
from hub.reference.standard import CommandStatus, DeviceAlert, DeviceCommand, DeviceResponse, Value
from hub.reference.uktime import uk_date
from hub.registers.inventory import Inventory
from hub.registers.records import PaymentMode
from hub.registers.registration import RegistrationData
from hub.wire.signing import PUBLIC_KEY_SUFFIX, SIGNING_KEYS_DIR
from simfield.devices import (
    DeviceUnreachableError,
    Layout,
    Premises,
    PublicKey,
    UnknownDeviceError,
)
from simfield.memory import (
    FieldMemory,
    SiteRecorder,
    SiteSnapshot,
    SnapshotError,
    restore_premises,
    site_from_parts,
    take_site,
)

log = logging.getLogger(__name__)

INSTALL_LOOKBACK = timedelta(minutes=30)
"""How far before the first command a simulated site's history starts."""


def load_trust_anchors(fleet_dir: Path) -> dict[str, PublicKey]:
    """Every party's public signing key in a fleet directory (``keys/signing/*.pub.pem``), by
    party id; empty when the fleet has none. A file that holds no P-256 public key is an
    error (``ValueError``), not a key silently left out."""
    anchors: dict[str, PublicKey] = {}
    for path in sorted((fleet_dir / "keys" / SIGNING_KEYS_DIR).glob(f"*{PUBLIC_KEY_SUFFIX}")):
        key = load_pem_public_key(path.read_bytes())
        if not isinstance(key, PublicKey):
            raise ValueError(f"{path} does not hold an ECDSA public key")
        anchors[path.name.removesuffix(PUBLIC_KEY_SUFFIX)] = key
    return anchors


class NoAnswerError(Exception):
    """The devices behind a comms hub cannot answer (no power at the site)."""


class SiteHost:
    """One site's simulated devices, as the comms hub pool sees them: the premises, plus a
    separate simulated meter for an export MPAN's ESME where the fleet has one.

    With a ``FieldMemory`` the site remembers, as meters keep non-volatile memory: its
    snapshot is written after every command that may change a device, before the answer
    leaves the devices, and after every change of time that raised alerts. A quiet catch-up,
    and a read that raised no alert, are not written: the registers and credit follow from the
    last snapshot and the time alone, so a catch-up from it after a restart replays them
    exactly."""

    __slots__ = (
        "_head_ends",
        "_images",
        "_memory",
        "_recorder",
        "_route",
        "comms_hub",
        "extra",
        "premises",
    )

    def __init__(
        self,
        premises: Premises,
        head_ends: dict[str, str],
        extra: tuple[Premises, ...] = (),
        *,
        memory: FieldMemory | None = None,
        comms_hub: str = "",
    ) -> None:
        self.premises = premises
        self.extra = extra
        self.comms_hub = comms_hub
        """The comms hub the site is behind (its snapshot's key in the memory)."""
        self._head_ends = head_ends
        self._route = {p.esme.device_id: p for p in extra if p.esme is not None}
        self._images: dict[str, tuple[str, int]] | None = None  # device -> (version, next block)
        self._memory = memory
        self._recorder = SiteRecorder((premises, *extra)) if memory is not None else None

    # ---- memory ------------------------------------------------------------------------

    def snapshot(self) -> SiteSnapshot:
        """The site's state now."""
        return take_site((self.premises, *self.extra), self._images)

    def restore(self, snapshot: SiteSnapshot) -> None:
        """Put the site back as ``snapshot`` left it (``SnapshotError`` if it is another
        site's)."""
        sites = (self.premises, *self.extra)
        if len(snapshot.premises) != len(sites):
            raise SnapshotError(f"site {self.premises.site_id} has other meters than its snapshot")
        for premises, snap in zip(sites, snapshot.premises, strict=True):
            restore_premises(premises, snap)
        self._images = dict(snapshot.images) or None

    def persist(self, touched: str | None = None) -> None:
        """Write what changed of the site's snapshot to its memory now (nothing without one);
        with ``touched``, only that device may have changed other than by time passing."""
        memory, recorder = self._memory, self._recorder
        if memory is None or recorder is None:
            return
        parts = recorder.changes(self._images, touched)
        if not parts:
            return
        try:
            memory.remember(self.comms_hub, parts)
        except BaseException:
            recorder.forget()
            raise
        recorder.written(parts)

    def recall(self) -> bool:
        """Put the site back as its memory last saw it; False when it has no snapshot."""
        memory, recorder = self._memory, self._recorder
        if memory is None or recorder is None:
            return False
        parts = memory.recall(self.comms_hub)
        if not parts:
            return False
        self.restore(site_from_parts(parts))
        recorder.written(parts)
        return True

    # ---- driving -----------------------------------------------------------------------

    def execute(self, cmd: DeviceCommand, now: float) -> tuple[DeviceResponse, list[DeviceAlert]]:
        """Run a command on the device it names; the site's memory is written before the
        answer is returned, unless the command was a read that raised no alert on a site
        already remembered (a read changes nothing a catch-up from the last snapshot does not
        replay exactly, so most traffic costs no write)."""
        response, alerts = self._execute(cmd, now)
        recorder = self._recorder
        if recorder is None:  # no memory (the simulator)
            return response, alerts
        service = CATALOGUE.get(cmd.service)
        if alerts or not recorder.remembered:
            self.persist()
        elif service is None or not service.read_only:
            self.persist(touched=cmd.device_id)
        return response, alerts

    def _execute(self, cmd: DeviceCommand, now: float) -> tuple[DeviceResponse, list[DeviceAlert]]:
        if cmd.service in FIRMWARE_SERVICES:
            return self._image_block(cmd, now)
        try:
            return self._route.get(cmd.device_id, self.premises).execute(cmd, now)
        except DeviceUnreachableError as err:
            raise NoAnswerError(str(err)) from err
        except UnknownDeviceError as err:
            return DeviceResponse(
                cmd.command_id, cmd.device_id, cmd.service, CommandStatus.REJECTED, reason=str(err)
            ), []

    def _image_block(
        self, cmd: DeviceCommand, now: float
    ) -> tuple[DeviceResponse, list[DeviceAlert]]:
        """A block of a firmware image: blocks must arrive in order; the last one completes
        the image on the device (8F8A); a gap fails it (8F89)."""
        p = cmd.params
        version, block, blocks, size, data = (
            p.get("version"),
            p.get("block"),
            p.get("blocks"),
            p.get("image_size"),
            p.get("data"),
        )
        premises = self._route.get(cmd.device_id, self.premises)

        def answer(status: CommandStatus, reason: str = "", **body: Value) -> DeviceResponse:
            return DeviceResponse(
                cmd.command_id, cmd.device_id, cmd.service, status, dict(body), reason
            )

        if not (
            isinstance(version, str)
            and isinstance(block, int)
            and isinstance(blocks, int)
            and isinstance(size, int)
            and isinstance(data, bytes)
        ):
            return answer(CommandStatus.REJECTED, "malformed image block"), []
        if cmd.device_id not in {d.device_id for d in premises.devices}:
            return answer(
                CommandStatus.REJECTED, f"no device {cmd.device_id} at site {premises.site_id}"
            ), []
        images = self._images if self._images is not None else {}
        # a device keeps a partial image in its own memory (the site's snapshot holds it), so a
        # transfer the hub resumes after its own restart continues where it stopped; a field
        # that remembers nothing takes the block it is sent as the one expected
        expected = images.get(cmd.device_id, (version, block))
        if block == 0:
            expected = (version, 0)
        if expected == (version, block + 1):
            # the block just received, sent again (the hub resumed a transfer after a restart
            # before it recorded this block's answer): acknowledged again, nothing changes
            return answer(CommandStatus.SUCCESS, block=block, received=len(data), repeated=True), []
        if expected != (version, block):
            images.pop(cmd.device_id, None)
            alerts = premises.deliver_firmware(cmd.device_id, version, now, ok=False)
            return answer(
                CommandStatus.REJECTED, f"block {block} out of order (expected {expected[1]})"
            ), alerts
        if block + 1 < blocks:
            images[cmd.device_id] = (version, block + 1)
            self._images = images
            return answer(CommandStatus.SUCCESS, block=block, received=len(data)), []
        images.pop(cmd.device_id, None)
        self._images = images or None
        alerts = premises.deliver_firmware(cmd.device_id, version, now, ok=True)
        return answer(CommandStatus.SUCCESS, block=block, received=len(data), complete=True), alerts

    def advance(self, now: float) -> list[DeviceAlert]:
        """Let the site's time pass to ``now``; the memory is written if alerts were raised
        (they leave the devices only once it is)."""
        alerts = self.premises.advance(now)
        for p in self.extra:
            alerts += [a for a in p.advance(now) if a.device_id in self._route]
        if alerts:
            self.persist()
        return alerts

    def head_end_of(self, device_id: str) -> str:
        """The head-end type of a device at the site (the CHF's for anything unknown)."""
        return self._head_ends.get(device_id) or self._head_ends[""]


class FieldBuilder:
    """Builds a ``SiteHost`` for any comms hub of a fleet, on first use."""

    def __init__(
        self,
        inventory: Inventory,
        registration: RegistrationData,
        payment_modes: dict[str, PaymentMode],
        seed: int,
        clock_now: float,
        *,
        anchors: Mapping[str, PublicKey],
        memory: FieldMemory | None = None,
    ) -> None:
        """``anchors`` maps party ids to public signing keys (``load_trust_anchors``): each
        device holds its supplier's and network operator's. With ``memory`` each site is put
        back as its last snapshot left it and remembers from then on (the live hub's field
        across restarts); without it (the simulator) every site starts as the fleet says."""
        self._anchors = anchors
        self._memory = memory
        self._inventory = inventory
        self._registration = registration
        self._payment_modes = payment_modes
        self._seed = seed
        self._site_of = {site.comms_hub: site.site_id for site in inventory.sites.values()}
        self._installed_at = (datetime.fromtimestamp(clock_now, UTC) - INSTALL_LOOKBACK).timestamp()

    def __call__(self, comms_hub: str) -> SiteHost:
        host = self._build(comms_hub)
        try:
            host.recall()
        except SnapshotError as err:  # as if its meters were replaced: it starts afresh
            log.error(
                "the snapshot of the site behind %s is not restored (%s); it starts afresh",
                comms_hub,
                err,
            )
            host = self._build(comms_hub)
        return host

    def _build(self, comms_hub: str) -> SiteHost:
        reg = self._registration
        site_id = self._site_of.get(comms_hub)
        if site_id is None:  # a premises fitted since the builder was made (a new connection)
            sites = list(self._inventory.sites.values())  # one copy: the field may grow meanwhile
            self._site_of = {s.comms_hub: s.site_id for s in sites}
            site_id = self._site_of[comms_hub]
        devices = self._inventory.site_devices(site_id)
        day = uk_date(datetime.fromtimestamp(self._installed_at, UTC))
        esme = next(
            (d for d in devices if d.device_type is DeviceType.ESME and not _export(reg, d.mpxn)),
            None,
        )
        exports = [d for d in devices if d.device_type is DeviceType.ESME and _export(reg, d.mpxn)]
        ids = {d.device_type: d.device_id for d in devices if d not in exports}
        gsme = next((d for d in devices if d.device_type is DeviceType.GSME), None)
        meter = esme or gsme
        mode = (
            self._payment_modes.get(meter.device_id, PaymentMode.CREDIT)
            if meter
            else PaymentMode.CREDIT
        )
        electricity_supplier = _supplier(reg, esme.mpxn if esme else None, day)
        gas_supplier = _supplier(reg, gsme.mpxn if gsme else None, day)
        premises = Premises(
            site_id,
            zlib.crc32(site_id.encode()) ^ self._seed,
            self._installed_at,
            layout=Layout.DUAL_FUEL if gsme else Layout.ELECTRICITY_ONLY,
            payment_mode=mode,
            supplier_key_id=electricity_supplier or gas_supplier or "UNREGISTERED",
            gas_supplier_key_id=gas_supplier,
            network_key_id=_network(reg, esme.mpxn if esme else None)
            or _network(reg, gsme.mpxn if gsme else None)
            or "UNKNOWN",
            gas_network_key_id=_network(reg, gsme.mpxn if gsme else None),
            mpan=esme.mpxn if esme else None,
            mprn=gsme.mpxn if gsme else None,
            device_ids=ids,
            in_home_devices=DeviceType.IHD in ids or DeviceType.PPMID in ids,
            keys=self._anchors,
        )
        extra = tuple(
            Premises(
                site_id,
                zlib.crc32(d.device_id.encode()) ^ self._seed,
                self._installed_at,
                layout=Layout.ELECTRICITY_ONLY,
                payment_mode=PaymentMode.CREDIT,
                supplier_key_id=_supplier(reg, d.mpxn, day) or "UNREGISTERED",
                network_key_id=_network(reg, d.mpxn) or "UNKNOWN",
                mpan=d.mpxn,
                device_ids={DeviceType.ESME: d.device_id},
                in_home_devices=False,
                keys=self._anchors,
            )
            for d in exports
        )
        head_ends = {d.device_id: d.head_end for d in devices}
        chf = ids.get(DeviceType.CHF)
        head_ends[""] = head_ends.get(chf, "") if chf else next(iter(head_ends.values()), "tlv")
        return SiteHost(premises, head_ends, extra, memory=self._memory, comms_hub=comms_hub)


def _export(reg: RegistrationData, mpxn: str) -> bool:
    mp = reg.meter_point(mpxn)
    return mp is not None and mp.export


def _supplier(reg: RegistrationData, mpxn: str | None, day: date) -> str | None:
    """The supplier whose key the meter holds: the one registered on ``day`` (when the site's
    history starts), else, for a meter point that entered the register since (a new
    connection fitted during the run), its first supplier."""
    if not mpxn:
        return None
    mp = reg.meter_point(mpxn)
    if mp is None:
        return None
    later = [r for r in mp.registrations if r.effective_from > day]
    return mp.supplier_on(day) or (later[0].supplier if later else None)


def _network(reg: RegistrationData, mpxn: str | None) -> str | None:
    if not mpxn:
        return None
    mp = reg.meter_point(mpxn)
    return mp.network_operator if mp else None
