"""The simulated field's memory: a versioned, typed snapshot of each site's device state, and
the port a driver keeps those snapshots behind, so simulated meters remember across a hub
restart what real meters keep in non-volatile memory (registers, balance, debt, payment mode,
tariff, firmware, used UTRNs, event and security logs, held future-dated commands).

Decides: what a device's state is (every slot of its class except the few that are rebuilt
from the fleet and the seed, ``REBUILT_FIELDS``), how it is written down (msgpack with a closed
set of tagged types: tuples, sets, the devices' enums, their settings dataclasses, record logs,
public keys; anything else is refused with ``SnapshotError``, never guessed or pickled), which
version of that format a snapshot is (``SNAPSHOT_VERSION``; another version is refused), how
a snapshot is put back into a freshly built site, how a snapshot is cut into parts (the site's
own and one per device, so a write carries only what changed), and which parts a write carries
(``SiteRecorder``: the device a command names; all when time raised alerts).
Must never: open a file or a database (a driver's ``FieldMemory`` adapter does; the live hub's
is ``actors.field_journal``), read the clock, or unpickle anything.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import msgpack
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hub.reference.standard import DeviceAlert, DeviceCommand
from hub.registers.records import PaymentMode
from hub.wire.signing import public_key_from_der
from simfield.devices import (
    BillingPeriod,
    Device,
    EmergencyCredit,
    LoadLimit,
    Premises,
    PrepayConfig,
    PublicKey,
    SupplyCause,
    SupplyState,
    SupplyTamperState,
    Tariff,
    VoltageConfig,
    make_tariff,
)
from simfield.devices.logbook import RecordLog
from simfield.devices.meter import _Logs

SNAPSHOT_VERSION = 1
"""The format of a site snapshot; a snapshot of another version is refused."""

REBUILT_FIELDS = frozenset({"device_id", "_key", "_load", "gsme", "manufacturer", "model"})
"""Device slots not kept in a snapshot: identity and the household's load follow from the
fleet and the seed, and the gas proxy's link to its gas meter is an object reference."""


class SnapshotError(ValueError):
    """A snapshot that cannot be written or put back (a value of a type the format does not
    know, another version, a device that is not at the site)."""


SITE_PART = "site"
"""The part of a site's snapshot that is not a device's (device parts are named by EUI-64s,
which are hexadecimal, so the names never clash)."""


class FieldMemory(Protocol):
    """Where a driver keeps each site's latest snapshot, part by part: one part per device and
    the site's own (the port; adapters do the storing)."""

    def recall(self, comms_hub: str) -> Mapping[str, bytes]:
        """Every part remembered for the site behind ``comms_hub`` (empty: none)."""
        ...

    def remember(self, comms_hub: str, parts: Mapping[str, bytes]) -> None:
        """Replace these parts of the site's snapshot, all or none; durable when this returns
        (the device's answer leaves only afterwards)."""
        ...


class InMemoryFieldMemory:
    """A ``FieldMemory`` in a dict, for tests."""

    def __init__(self) -> None:
        self.sites: dict[str, dict[str, bytes]] = {}
        """Comms hub id -> its site's parts."""
        self.writes = 0
        """How many times parts were remembered."""

    def recall(self, comms_hub: str) -> Mapping[str, bytes]:
        """The site's parts."""
        return dict(self.sites.get(comms_hub, {}))

    def remember(self, comms_hub: str, parts: Mapping[str, bytes]) -> None:
        """Keep the parts."""
        self.sites.setdefault(comms_hub, {}).update(parts)
        self.writes += 1


# ---- the snapshot --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceSnapshot:
    """One device's state as it stands between two commands."""

    device_type: str
    """The device type (``ESME``, ``GSME``, ...): a snapshot is put back into the same type."""
    device_id: str
    """The device's EUI-64: a snapshot is put back into the same device."""
    state: Mapping[str, Any]
    """Slot name -> value, for every slot of the class but ``REBUILT_FIELDS``."""


@dataclass(frozen=True, slots=True)
class PremisesSnapshot:
    """One simulated premises: its devices and the alerts it holds while without power."""

    site_id: str
    """The inventory's site id."""
    devices: tuple[DeviceSnapshot, ...]
    """Every device of the premises."""
    held: tuple[DeviceAlert, ...]
    """Alerts waiting for power to return."""


@dataclass(frozen=True, slots=True)
class PremisesLayout:
    """What the site's own part keeps of one premises: which devices it has, and the alerts it
    holds while without power."""

    site_id: str
    """The inventory's site id."""
    device_ids: tuple[str, ...]
    """Its devices, each a part of its own."""
    held: tuple[DeviceAlert, ...]
    """Alerts waiting for power to return."""


@dataclass(frozen=True, slots=True)
class SiteLayout:
    """The site's own part: its premises and the partial firmware images."""

    premises: tuple[PremisesLayout, ...]
    """The site's premises, the main one first."""
    images: Mapping[str, tuple[str, int]]
    """Device id -> (firmware version, next block expected) of a partial image."""


@dataclass(frozen=True, slots=True)
class SiteSnapshot:
    """Everything behind one comms hub: its premises (and an export meter's own) and the
    firmware images its devices are part way through receiving."""

    version: int
    """``SNAPSHOT_VERSION`` when it was taken."""
    premises: tuple[PremisesSnapshot, ...]
    """The site's premises, the main one first."""
    images: Mapping[str, tuple[str, int]]
    """Device id -> (firmware version, next block expected) of a partial image."""


_FIELDS: dict[type[Device], tuple[str, ...]] = {}


def state_fields(cls: type[Device]) -> tuple[str, ...]:
    """The slots of a device class that a snapshot keeps, in a stable order."""
    found = _FIELDS.get(cls)
    if found is None:
        names: set[str] = set()
        for klass in cls.__mro__:
            names.update(getattr(klass, "__slots__", ()))
        found = _FIELDS[cls] = tuple(sorted(names - REBUILT_FIELDS))
    return found


def snapshot_device(device: Device) -> DeviceSnapshot:
    """The device's state now."""
    return DeviceSnapshot(
        device.DEVICE_TYPE.value,
        device.device_id,
        {name: getattr(device, name) for name in state_fields(type(device))},
    )


def restore_device(device: Device, snapshot: DeviceSnapshot) -> None:
    """Put ``snapshot`` back into ``device`` (built afresh from the fleet); ``SnapshotError``
    if it is another device or does not hold exactly the device's state fields."""
    if (snapshot.device_type, snapshot.device_id) != (device.DEVICE_TYPE.value, device.device_id):
        raise SnapshotError(
            f"snapshot of {snapshot.device_type} {snapshot.device_id} "
            f"does not fit {device.DEVICE_TYPE.value} {device.device_id}"
        )
    fields = state_fields(type(device))
    if set(snapshot.state) != set(fields):
        missing = sorted(set(fields) - set(snapshot.state))
        extra = sorted(set(snapshot.state) - set(fields))
        raise SnapshotError(
            f"snapshot of {device.device_id} does not match its state fields "
            f"(missing {missing}, unknown {extra})"
        )
    for name in fields:
        setattr(device, name, snapshot.state[name])


def snapshot_premises(premises: Premises) -> PremisesSnapshot:
    """The premises' state now."""
    return PremisesSnapshot(
        premises.site_id,
        tuple(snapshot_device(d) for d in premises.devices),
        tuple(premises.held_alerts),
    )


def restore_premises(premises: Premises, snapshot: PremisesSnapshot) -> None:
    """Put a premises snapshot back (every device it names must be at the premises)."""
    if snapshot.site_id != premises.site_id:
        raise SnapshotError(f"snapshot of site {snapshot.site_id} does not fit {premises.site_id}")
    by_id = {d.device_id: d for d in premises.devices}
    if set(by_id) != {s.device_id for s in snapshot.devices}:
        raise SnapshotError(f"site {premises.site_id} has other devices than its snapshot")
    for snap in snapshot.devices:
        restore_device(by_id[snap.device_id], snap)
    premises.hold_alerts(snapshot.held)


# ---- the format ----------------------------------------------------------------------------
# A snapshot is one msgpack document. Scalars (None, bool, int, float, str, bytes) and maps
# with scalar keys are written as they are; every other value is an array whose first item
# says what it is (a tag below) and whose other items hold it.

_LIST, _TUPLE, _FROZENSET, _ENUM, _RECORD, _RECORD_LOG, _PUBLIC_KEY, _LOGS = range(8)

_ENUMS: Mapping[str, type[enum.Enum]] = {
    e.__name__: e
    for e in (
        BillingPeriod,
        EmergencyCredit,
        PaymentMode,
        SupplyCause,
        SupplyState,
        SupplyTamperState,
    )
}
"""The enums a device state holds, by name."""

_RECORDS: Mapping[str, type[Any]] = {
    r.__name__: r
    for r in (
        DeviceAlert,
        DeviceCommand,
        DeviceSnapshot,
        LoadLimit,
        PremisesLayout,
        PrepayConfig,
        SiteLayout,
        Tariff,
        VoltageConfig,
    )
}
"""The frozen dataclasses a snapshot holds, by name."""

_RECORD_FIELDS: Mapping[type[Any], tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls) if f.compare) for cls in _RECORDS.values()
}
"""Each record's stored fields (a tariff's half-hour table is derived, not stored)."""

_SCALARS = frozenset({type(None), bool, int, float, str, bytes})
_SETTINGS = frozenset({LoadLimit, PrepayConfig, Tariff, VoltageConfig})
"""Frozen settings values of scalars and tuples only: shared between devices and rarely
replaced, so their encodings are cached by identity."""
_CACHE_SIZE = 1024
_DER_CACHE: dict[int, tuple[PublicKey, bytes]] = {}
_SETTINGS_CACHE: dict[int, tuple[object, list[Any]]] = {}


def _der(key: PublicKey) -> bytes:
    """A public key as DER (cached: the same few parties' keys sit in every device)."""
    hit = _DER_CACHE.get(id(key))
    if hit is not None and hit[0] is key:
        return hit[1]
    der = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if len(_DER_CACHE) >= _CACHE_SIZE:
        _DER_CACHE.clear()
    _DER_CACHE[id(key)] = (key, der)  # the key is held, so its id is not reused
    return der


def _encode(value: Any) -> Any:
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict:
        return {k: v if type(v) in _SCALARS else _encode(v) for k, v in value.items()}
    if kind is list:
        return [_LIST, *(v if type(v) in _SCALARS else _encode(v) for v in value)]
    if kind is tuple:
        return [_TUPLE, *(v if type(v) in _SCALARS else _encode(v) for v in value)]
    if kind is frozenset:
        return [_FROZENSET, *map(_encode, sorted(value))]
    if kind is RecordLog:
        width, limit, data = value.contents()
        return [_RECORD_LOG, width, limit, data.tobytes()]
    if kind is _Logs:
        return [_LOGS, {k: _encode(v) for k, v in value.by_name().items()}]
    fields = _RECORD_FIELDS.get(kind)
    if fields is not None:
        if kind in _SETTINGS:
            hit = _SETTINGS_CACHE.get(id(value))
            if hit is not None and hit[0] is value:
                return hit[1]
        encoded = [_RECORD, kind.__name__, *(_encode(getattr(value, f)) for f in fields)]
        if kind in _SETTINGS:
            if len(_SETTINGS_CACHE) >= _CACHE_SIZE:
                _SETTINGS_CACHE.clear()
            _SETTINGS_CACHE[id(value)] = (value, encoded)  # held, so its id is not reused
        return encoded
    if _ENUMS.get(kind.__name__) is kind:
        return [_ENUM, kind.__name__, value.value]
    if isinstance(value, PublicKey):
        return [_PUBLIC_KEY, _der(value)]
    raise SnapshotError(
        f"a device state holds a {kind.__name__}, which the snapshot format does not know"
    )


def _decode(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return {k: _decode(v) for k, v in value.items()}
    if kind is not list:
        return value
    tag, *rest = value
    if tag == _LIST:
        return [_decode(v) for v in rest]
    if tag == _TUPLE:
        return tuple(_decode(v) for v in rest)
    if tag == _FROZENSET:
        return frozenset(_decode(v) for v in rest)
    if tag == _RECORD_LOG:
        width, limit, data = rest
        values: array[int] = array("q")
        values.frombytes(data)
        return RecordLog.from_contents(width, limit, values)
    if tag == _LOGS:
        return _Logs.from_names(_decode(rest[0]))
    if tag == _RECORD:
        name, *fields = rest
        cls = _RECORDS.get(name)
        if cls is None:
            raise SnapshotError(f"unknown record {name} in a snapshot")
        args = [_decode(v) for v in fields]
        if cls is Tariff:
            return make_tariff(*args)  # fills in the derived half-hour table
        return cls(*args)
    if tag == _ENUM:
        name, raw = rest
        return _ENUMS[name](raw)
    if tag == _PUBLIC_KEY:
        return public_key_from_der(rest[0])
    raise SnapshotError(f"unknown value tag {tag} in a snapshot")


def encode_part(part: DeviceSnapshot | SiteLayout) -> bytes:
    """One part of a site snapshot as bytes, with the format's version (``SnapshotError`` for
    a value the format does not know)."""
    return msgpack.packb([SNAPSHOT_VERSION, _encode(part)], use_bin_type=True)  # type: ignore[no-any-return]


def decode_part(data: bytes) -> DeviceSnapshot | SiteLayout:
    """Bytes of ``encode_part``; ``SnapshotError`` if they are not a part of this version."""
    try:
        version, tree = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as err:
        raise SnapshotError(f"not a snapshot part: {err}") from err
    if version != SNAPSHOT_VERSION:
        raise SnapshotError(f"snapshot of version {version}; this field reads {SNAPSHOT_VERSION}")
    try:
        part = _decode(tree)
    except SnapshotError:
        raise
    except Exception as err:
        raise SnapshotError(f"not a snapshot part: {err}") from err
    if not isinstance(part, DeviceSnapshot | SiteLayout):
        raise SnapshotError("not a snapshot part")
    return part


def _layout(snapshot: SiteSnapshot) -> SiteLayout:
    return SiteLayout(
        tuple(
            PremisesLayout(p.site_id, tuple(d.device_id for d in p.devices), p.held)
            for p in snapshot.premises
        ),
        dict(snapshot.images),
    )


def site_parts(snapshot: SiteSnapshot) -> dict[str, bytes]:
    """A site snapshot as its parts: ``SITE_PART`` and one per device."""
    parts = {SITE_PART: encode_part(_layout(snapshot))}
    for premises in snapshot.premises:
        for device in premises.devices:
            parts[device.device_id] = encode_part(device)
    return parts


def site_from_parts(parts: Mapping[str, bytes]) -> SiteSnapshot:
    """A site snapshot from its parts; ``SnapshotError`` if one is missing or not of its kind."""
    if SITE_PART not in parts:
        raise SnapshotError("the site's own part is missing")
    layout = decode_part(parts[SITE_PART])
    if not isinstance(layout, SiteLayout):
        raise SnapshotError("the site's own part is not a site layout")
    premises = []
    for p in layout.premises:
        devices = []
        for device_id in p.device_ids:
            if device_id not in parts:
                raise SnapshotError(f"the part of device {device_id} is missing")
            device = decode_part(parts[device_id])
            if not isinstance(device, DeviceSnapshot) or device.device_id != device_id:
                raise SnapshotError(f"the part of device {device_id} is not its snapshot")
            devices.append(device)
        premises.append(PremisesSnapshot(p.site_id, tuple(devices), p.held))
    return SiteSnapshot(SNAPSHOT_VERSION, tuple(premises), dict(layout.images))


def encode_site(snapshot: SiteSnapshot) -> bytes:
    """A whole site snapshot as one document: its parts in a map (``SnapshotError`` for a
    value the format does not know)."""
    return msgpack.packb(dict(sorted(site_parts(snapshot).items())), use_bin_type=True)  # type: ignore[no-any-return]


def decode_site(data: bytes) -> SiteSnapshot:
    """Bytes of ``encode_site`` as a snapshot; ``SnapshotError`` if they are not one of this
    version."""
    try:
        parts = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as err:
        raise SnapshotError(f"not a site snapshot: {err}") from err
    if not isinstance(parts, dict) or not all(
        isinstance(k, str) and isinstance(v, bytes) for k, v in parts.items()
    ):
        raise SnapshotError("not a site snapshot")
    return site_from_parts(parts)


def take_site(
    premises: Iterable[Premises], images: Mapping[str, tuple[str, int]] | None
) -> SiteSnapshot:
    """The snapshot of a site's premises and partial firmware images now."""
    return SiteSnapshot(
        SNAPSHOT_VERSION, tuple(snapshot_premises(p) for p in premises), dict(images or {})
    )


class SiteRecorder:
    """Decides which parts of one site's snapshot a write must carry: the site's own part and
    the devices that may have changed other than by the passing of time, each only if its
    bytes differ from those last written (kept as a 16-byte digest per part, so a site costs
    little memory however large its devices' state).

    A device not named keeps its last written part. That is sound because a device's changes
    by time alone (a catch-up that raised no alert, ``SiteHost``) are replayed exactly from its
    older state after a restart; whenever time raised alerts, every device is encoded again
    (``touched=None``)."""

    __slots__ = ("_digests", "_premises")

    def __init__(self, premises: tuple[Premises, ...]) -> None:
        self._premises = premises
        self._digests: dict[str, bytes] = {}

    @property
    def remembered(self) -> bool:
        """Whether the site has been written (or recalled) at all."""
        return bool(self._digests)

    def changes(
        self, images: Mapping[str, tuple[str, int]] | None, touched: str | None
    ) -> dict[str, bytes]:
        """The parts to write now: the site's own and the device ``touched`` (every device:
        None, or when nothing was written yet), those unchanged since the last write left out.
        Call ``written`` once they are durable."""
        every = touched is None or not self._digests
        layout = SiteLayout(
            tuple(
                PremisesLayout(p.site_id, tuple(d.device_id for d in p.devices), p.held_alerts)
                for p in self._premises
            ),
            dict(images or {}),
        )
        parts = {SITE_PART: encode_part(layout)}
        for premises in self._premises:
            for device in premises.devices:
                if every or device.device_id == touched:
                    parts[device.device_id] = encode_part(snapshot_device(device))
        return {
            name: data for name, data in parts.items() if self._digests.get(name) != _digest(data)
        }

    def written(self, parts: Mapping[str, bytes]) -> None:
        """These parts are now what the memory holds."""
        for name, data in parts.items():
            self._digests[name] = _digest(data)

    def forget(self) -> None:
        """What the memory holds is unknown (a write failed): the next write carries all."""
        self._digests.clear()


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()
