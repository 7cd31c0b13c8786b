"""The simulated field remembers: a site put back from its snapshot is the site that was
snapshotted, the format refuses what it does not know, the live field's SQLite memory keeps
snapshots across a reopen, and every critical command sent again after a restart is either
idempotent at the device or refused by it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgpack
import pytest

from actors.field_journal import FieldJournal, FieldJournalError, field_file
from hub.reference.catalogue import CATALOGUE
from hub.reference.roles import DeviceType
from hub.reference.standard import CommandStatus, DeviceCommand
from hub.reference.utrn import make_utrn
from hub.registers.records import PaymentMode
from simfield.devices import CHF, ESME, GPF, GSME, IHD, PPMID, Device, Premises
from simfield.fleet_dir import load_fleet
from simfield.memory import (
    REBUILT_FIELDS,
    SITE_PART,
    SNAPSHOT_VERSION,
    DeviceSnapshot,
    InMemoryFieldMemory,
    PremisesSnapshot,
    SiteRecorder,
    SiteSnapshot,
    SnapshotError,
    decode_part,
    decode_site,
    encode_site,
    restore_premises,
    site_from_parts,
    site_parts,
    snapshot_device,
    state_fields,
    take_site,
)
from simfield.site import FieldBuilder, SiteHost, load_trust_anchors
from tests.live_support import make_fleet
from tests.test_devices import (
    DAY,
    HOUR,
    NOW,
    PREPARE,
    SUPPLIER,
    _nothing,
    _params,
    command,
    make_site,
    ok,
)

E, G = DeviceType.ESME, DeviceType.GSME
TYPE_ORDER = (E, G, DeviceType.CHF, DeviceType.GPF, DeviceType.PPMID, DeviceType.IHD)


def _busy_site() -> Premises:
    """A site whose devices have been through much: top-ups, tariff, mode, debt, a held
    future-dated command, a muted alert, a partial HAN change, a firmware image, logs."""
    site = make_site()
    site.advance(NOW)
    ok(site, E, "2.2", {"utrn": make_utrn(site.device_ids[E], 1_500, 3, key=SUPPLIER)})
    ok(site, G, "2.2", {"utrn": make_utrn(site.device_ids[G], 700, 9, key=SUPPLIER)})
    ok(site, E, "1.1.1", None)
    ok(site, E, "2.3", None)
    ok(site, G, "1.6", {"payment_mode": PaymentMode.CREDIT.value})
    ok(site, E, "6.22", {"alert_code": "810D", "enabled": False})
    ok(site, E, "6.5", None)
    ok(site, E, "6.17", {"usage": "digital_signing"})
    ok(site, DeviceType.CHF, "8.11", {"action": "add", "other_device_id": "00DB12000000FFFF"})
    ok(site, DeviceType.CHF, "6.28", {"preferred_channel": (site.chf.channel + 3) % 27})
    later = command(site, E, "1.1.1", None, execute_at=NOW + 6 * HOUR)
    assert site.execute(later, NOW)[0].status is CommandStatus.SCHEDULED
    site.deliver_firmware(site.device_ids[E], "3.0.0", NOW)
    site.set_voltage(200.0, NOW + 60)
    site.power_outage(NOW + 120)
    site.advance(NOW + 2 * HOUR)  # alerts held while the comms hub has no power
    return site


def _round_trip(site: Premises) -> Premises:
    data = encode_site(take_site([site], {"X": ("1.0.1", 2)}))
    fresh = make_site()
    restore_premises(fresh, decode_site(data).premises[0])
    return fresh


def test_a_site_put_back_from_its_snapshot_is_the_site_that_was_snapshotted() -> None:
    site = _busy_site()
    back = _round_trip(site)
    assert encode_site(take_site([back], None)) == encode_site(take_site([site], None))
    # and it goes on exactly as the original would: a day later, the same alerts and reads
    at = NOW + DAY
    assert back.power_restored(at) == site.power_restored(at)
    for device_type, service in [
        (E, "4.18"),
        (E, "4.11.1"),
        (E, "6.13"),
        (G, "6.2.9"),
        (E, "11.2"),
    ]:
        a = command(site, device_type, service, None, now=at)
        assert back.execute(a, at) == site.execute(a, at)


def test_every_device_slot_is_remembered_or_rebuilt_from_the_fleet() -> None:
    for cls in (ESME, GSME, CHF, GPF, PPMID, IHD):
        slots = {s for k in cls.__mro__ for s in getattr(k, "__slots__", ())}
        assert set(state_fields(cls)) == slots - REBUILT_FIELDS
        assert {"firmware_version", "_recent", "_pending"} <= set(state_fields(cls))
    for name in ("_balance", "_utrn_seen", "mode", "tariff", "_logs", "_time_debt"):
        assert name in state_fields(ESME)


def test_a_restored_meter_refuses_a_utrn_it_accepted_before_the_restart() -> None:
    site = make_site()
    code = make_utrn(site.device_ids[E], 1_000, 4, key=SUPPLIER)
    before = ok(site, E, "4.18", None)["meter_balance_pence"]
    ok(site, E, "2.2", {"utrn": code})
    back = _round_trip(site)
    again = command(back, E, "2.2", {"utrn": code})
    response, alerts = back.execute(again, NOW + 60)
    assert response.status is CommandStatus.REJECTED
    assert "already been used" in response.reason
    assert "8F51" in [a.alert_code for a in alerts]
    after = ok(back, E, "4.18", None, now=NOW + 60)["meter_balance_pence"]
    assert isinstance(before, float)
    assert isinstance(after, float)
    assert after - before == 1_000  # credited once


def test_a_snapshot_of_another_version_or_not_a_snapshot_is_refused() -> None:
    site = make_site()
    parts = site_parts(take_site([site], None))
    for name in (SITE_PART, site.device_ids[E]):
        version, tree = msgpack.unpackb(parts[name], raw=False, strict_map_key=False)
        assert version == SNAPSHOT_VERSION
        other = {**parts, name: msgpack.packb([SNAPSHOT_VERSION + 1, tree], use_bin_type=True)}
        with pytest.raises(SnapshotError, match="version"):
            site_from_parts(other)
    without = {k: v for k, v in parts.items() if k != site.device_ids[G]}
    with pytest.raises(SnapshotError, match="missing"):
        site_from_parts(without)
    swapped = {**parts, site.device_ids[E]: parts[site.device_ids[G]]}
    with pytest.raises(SnapshotError, match="not its snapshot"):
        site_from_parts(swapped)
    for junk in (b"", b"\xc1", msgpack.packb([99, 1]), msgpack.packb({"a": 1})):
        with pytest.raises(SnapshotError):
            decode_site(junk)
        with pytest.raises(SnapshotError):
            decode_part(junk)


def test_a_value_the_format_does_not_know_is_refused_not_guessed() -> None:
    site = make_site()
    site.esme._message = object()  # type: ignore[assignment,union-attr]
    with pytest.raises(SnapshotError, match="object"):
        encode_site(take_site([site], None))


def test_a_snapshot_of_another_site_or_device_does_not_fit() -> None:
    snap = take_site([make_site(seed=7)], None).premises[0]
    other = Premises("SITE-2", 7, NOW)
    with pytest.raises(SnapshotError):
        restore_premises(other, snap)
    device = snap.devices[0]
    wrong = DeviceSnapshot(device.device_type, "0000000000000000", device.state)
    with pytest.raises(SnapshotError):
        restore_premises(make_site(), PremisesSnapshot(snap.site_id, (wrong,), ()))


# ---- the live field's memory -------------------------------------------------------------


def test_the_field_journal_keeps_each_sites_latest_snapshot_across_a_reopen(
    tmp_path: Path,
) -> None:
    journal = FieldJournal(field_file(tmp_path))
    journal.remember("CH-1", {SITE_PART: b"one", "00AA": b"meter"})
    journal.remember("CH-2", {SITE_PART: b"two"})
    journal.remember("CH-1", {SITE_PART: b"uno"})  # a write replaces only its parts
    journal.close()
    again = FieldJournal(field_file(tmp_path))
    try:
        assert again.recall("CH-1") == {SITE_PART: b"uno", "00AA": b"meter"}
        assert again.recall("CH-2") == {SITE_PART: b"two"}
        assert again.recall("CH-3") == {}
        assert again.sites() == 2
    finally:
        again.close()


def test_a_file_that_is_not_a_field_journal_is_refused_with_its_name(tmp_path: Path) -> None:
    path = field_file(tmp_path)
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(FieldJournalError, match=str(path)):
        FieldJournal(path)


def test_a_site_writes_its_memory_before_its_answer_leaves() -> None:
    memory = InMemoryFieldMemory()
    site = make_site()
    host = SiteHost(site, {"": "tlv"}, memory=memory, comms_hub="CH-1")
    code = make_utrn(site.device_ids[E], 2_000, 1, key=SUPPLIER)
    response, _ = host.execute(command(site, E, "2.2", {"utrn": code}), NOW)
    assert response.status is CommandStatus.SUCCESS
    remembered = site_from_parts(memory.sites["CH-1"])
    esme = next(d for d in remembered.premises[0].devices if d.device_type == "ESME")
    assert 1 in esme.state["_utrn_seen"]
    # a read that changes nothing writes nothing more
    writes = memory.writes
    host.execute(command(site, E, "6.2.9", None), NOW)
    assert memory.writes == writes


def test_a_quiet_catch_up_is_not_written_and_an_alerting_one_is() -> None:
    memory = InMemoryFieldMemory()
    site = make_site()
    host = SiteHost(site, {"": "tlv"}, memory=memory, comms_hub="CH-1")
    host.advance(NOW)  # the billing date passed: 8F0A
    assert memory.writes == 1
    host.advance(NOW + 60)  # nothing to say
    assert memory.writes == 1


# ---- every critical command, sent again after a restart ------------------------------------

DETECTED = {"1.5", "1.7", "2.3", "2.5", "6.11", "6.15.1", "6.15.2", "11.3"}
"""Critical services whose repeat the device refuses (docs/design.md, the simulated field's
memory); every other one leaves the device as the first left it."""
CRITICAL = sorted(
    (s.code, next(t for t in TYPE_ORDER if t in s.device_types))
    for s in CATALOGUE.values()
    if s.critical and s.in_scope and not s.non_device
)
_NOT_STATE = frozenset({"_log", "_seclog", "_logs", "_draws", "_recent"})
"""Logs and counters a repeat may add to without changing what the device does."""


def _state(site: Premises) -> bytes:
    def keep(d: Device) -> DeviceSnapshot:
        snap = snapshot_device(d)
        state: Mapping[str, Any] = {k: v for k, v in snap.state.items() if k not in _NOT_STATE}
        return DeviceSnapshot(snap.device_type, snap.device_id, state)

    premises = PremisesSnapshot(site.site_id, tuple(keep(d) for d in site.devices), ())
    return encode_site(SiteSnapshot(SNAPSHOT_VERSION, (premises,), {}))


def _restart(site: Premises) -> Premises:
    fresh = make_site()
    restore_premises(fresh, decode_site(encode_site(take_site([site], None))).premises[0])
    return fresh


@pytest.mark.parametrize(("service", "device_type"), CRITICAL)
def test_a_critical_command_sent_again_after_a_restart_is_idempotent_or_refused(
    service: str, device_type: DeviceType
) -> None:
    site = make_site()
    site.advance(NOW)
    PREPARE.get(service, _nothing)(site, device_type)
    cmd: DeviceCommand = command(site, device_type, service, _params(site, device_type, service))
    first, _ = site.execute(cmd, NOW)
    assert first.status is CommandStatus.SUCCESS, first.reason
    later = NOW + 60
    resent, untouched = _restart(site), _restart(site)
    again, _ = resent.execute(cmd, later)  # the hub redispatches the same command
    untouched.advance(later)
    if service in DETECTED:
        assert again.status is CommandStatus.REJECTED
    else:
        assert again.status is CommandStatus.SUCCESS, again.reason
    assert _state(resent) == _state(untouched)


def test_a_future_dated_command_sent_again_is_held_once_and_refused_once_it_ran() -> None:
    site = make_site()
    site.advance(NOW)
    cmd = command(site, E, "1.1.1", None, execute_at=NOW + HOUR)
    assert site.execute(cmd, NOW)[0].status is CommandStatus.SCHEDULED
    back = _restart(site)
    again, _ = back.execute(cmd, NOW + 60)
    assert again.status is CommandStatus.SCHEDULED
    assert again.body["pending_commands"] == 1
    back.advance(NOW + 2 * HOUR)
    late, _ = _restart(back).execute(cmd, NOW + 3 * HOUR)
    assert late.status is CommandStatus.REJECTED
    assert "already carried out" in late.reason


READ_ONLY = sorted(
    (s.code, t)
    for s in CATALOGUE.values()
    if s.read_only and s.in_scope and not s.non_device
    for t in s.device_types & set(TYPE_ORDER)
)


@pytest.mark.parametrize(("service", "device_type"), READ_ONLY)
def test_a_read_changes_nothing_a_site_remembers(service: str, device_type: DeviceType) -> None:
    # reads are not written to the field's memory, so none may change a device
    site = make_site()
    site.advance(NOW)
    PREPARE.get(service, _nothing)(site, device_type)
    before = encode_site(take_site([site], None))
    response, alerts = site.execute(
        command(site, device_type, service, _params(site, device_type, service)), NOW
    )
    assert response.status is CommandStatus.SUCCESS, response.reason
    assert alerts == []
    assert encode_site(take_site([site], None)) == before


def test_a_site_remembered_once_writes_nothing_for_a_read() -> None:
    memory = InMemoryFieldMemory()
    site = make_site()
    host = SiteHost(site, {"": "tlv"}, memory=memory, comms_hub="CH-1")
    host.execute(command(site, E, "4.1.1", None), NOW)  # first sight: remembered
    assert memory.writes == 1
    host.execute(command(site, E, "4.1.1", None, now=NOW + DAY), NOW + DAY)
    assert memory.writes == 1  # the day's catch-up replays from the snapshot
    host.execute(command(site, E, "1.5", {"adjustment_pence": 100}), NOW + DAY)
    assert memory.writes == 2


def test_the_recorder_writes_the_parts_that_changed_and_no_others() -> None:
    site = _busy_site()
    recorder = SiteRecorder((site,))
    images = {"X": ("1.0.1", 2)}
    first = recorder.changes(images, None)
    assert first == site_parts(take_site([site], images))  # nothing written yet: every part
    recorder.written(first)
    assert recorder.changes(images, None) == {}
    # a command to one device: its part (and the site's, which changed too) and no other
    site.power_restored(NOW + 3 * HOUR)
    recorder.written(recorder.changes(images, None))
    ok(site, E, "1.5", {"adjustment_pence": 300}, now=NOW + 3 * HOUR)
    changed = recorder.changes(images, site.device_ids[E])
    assert set(changed) == {site.device_ids[E]}
    assert changed[site.device_ids[E]] == site_parts(take_site([site], images))[site.device_ids[E]]
    recorder.forget()  # a write failed: the next one carries everything
    assert set(recorder.changes(images, site.device_ids[E])) == set(first)


def _builder(fleet_dir: Path, memory: InMemoryFieldMemory, clock_now: float) -> FieldBuilder:
    fleet = load_fleet(fleet_dir)
    return FieldBuilder(
        fleet.inventory,
        fleet.registration,
        fleet.payment_modes,
        3,
        clock_now,
        anchors=load_trust_anchors(fleet_dir),
        memory=memory,
    )


def test_a_site_built_again_after_a_restart_is_put_back_from_its_memory(tmp_path: Path) -> None:
    fleet = make_fleet(tmp_path, sites=6)
    comms_hub = next(iter(fleet.inventory.sites.values())).comms_hub
    memory = InMemoryFieldMemory()
    first = _builder(tmp_path, memory, NOW)(comms_hub)
    esme = first.premises.esme
    assert esme is not None
    cmd = DeviceCommand("c-1", "3.1", esme.device_id, {"text": "remember me"})
    assert first.execute(cmd, NOW)[0].status is CommandStatus.SUCCESS
    again = _builder(tmp_path, memory, NOW + DAY)(comms_hub)  # a later start
    assert again.premises.esme is not None
    assert again.premises.esme.installed_at == esme.installed_at
    assert encode_site(again.snapshot()) == encode_site(first.snapshot())


def test_a_snapshot_that_does_not_fit_is_not_restored_and_the_site_starts_afresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fleet = make_fleet(tmp_path, sites=6)
    comms_hub = next(iter(fleet.inventory.sites.values())).comms_hub
    memory = InMemoryFieldMemory()
    memory.remember(comms_hub, {SITE_PART: b"\x92\x63\x01"})  # not a site snapshot
    with caplog.at_level(logging.ERROR, logger="simfield.site"):
        host = _builder(tmp_path, memory, NOW)(comms_hub)
    assert "starts afresh" in caplog.text
    fresh = _builder(tmp_path, InMemoryFieldMemory(), NOW)(comms_hub)
    assert encode_site(host.snapshot()) == encode_site(fresh.snapshot())
