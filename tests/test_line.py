"""The comms-hub line driven by hand, with fake time: no threads, no timers, no SimPy."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TypeVar

import pytest

from hub.engine import Dispatch
from hub.headends.base import EncodeError, FrameError, IntegrityError
from hub.headends.tlv import TlvHeadEnd
from hub.reference.codes import ResponseCode
from hub.reference.standard import (
    CommandStatus,
    DeviceAlert,
    DeviceCommand,
    DeviceResponse,
    Uplink,
)
from simfield.line import (
    MAX_QUEUE_PER_HUB,
    Action,
    Carried,
    Decode,
    Deliver,
    Fail,
    Integrity,
    Line,
    LineState,
    LineUsageError,
    Lost,
    Wait,
    WakeAt,
    decode,
)
from simfield.site import NoAnswerError
from simfield.wan import LatencyKind, WanProfile

DEVICE = "00000000000000A1"
HUB = "CH-0001"
T = TypeVar("T")
T0 = 1_800_000_000.0


class ScriptedHeadEnd:
    """The TLV format, with faults switched on per test."""

    name = "tlv"

    def __init__(self) -> None:
        self.inner = TlvHeadEnd()
        self.cannot_encode: set[str] = set()
        self.device_cannot_read = False
        self.tampered = False
        self.garbled = False
        self.cannot_frame_uplinks = False

    def encode_command(self, cmd: DeviceCommand) -> bytes:
        if cmd.command_id in self.cannot_encode:
            raise EncodeError("tlv", "value out of range")
        return self.inner.encode_command(cmd)

    def decode_command(self, frame: bytes) -> DeviceCommand:
        if self.device_cannot_read:
            raise FrameError("tlv", "unknown tag 0x7f")
        return self.inner.decode_command(frame)

    def encode_uplink(self, msg: Uplink) -> bytes:
        if self.cannot_frame_uplinks:
            raise EncodeError("tlv", "non-finite float")
        return self.inner.encode_uplink(msg)

    def decode_uplink(self, frame: bytes) -> Uplink:
        if self.tampered:
            raise IntegrityError("tlv", "CRC mismatch")
        if self.garbled:
            raise FrameError("tlv", "truncated frame")
        return self.inner.decode_uplink(frame)


@dataclass
class FakeDevices:
    """Devices that answer every command, record what ran, and fail on request."""

    ran: list[str] = field(default_factory=list)
    advanced_to: list[float] = field(default_factory=list)
    pending_alerts: list[DeviceAlert] = field(default_factory=list)
    raised: list[DeviceAlert] = field(default_factory=list)
    fault: Exception | None = None

    def execute(self, cmd: DeviceCommand, now: float) -> tuple[DeviceResponse, list[DeviceAlert]]:
        if self.fault is not None:
            raise self.fault
        self.ran.append(cmd.command_id)
        response = DeviceResponse(cmd.command_id, cmd.device_id, cmd.service, CommandStatus.SUCCESS)
        return response, list(self.raised)

    def advance(self, now: float) -> list[DeviceAlert]:
        self.advanced_to.append(now)
        alerts, self.pending_alerts = self.pending_alerts, []
        return alerts

    def head_end_of(self, device_id: str) -> str:
        return "tlv"


def _dispatch(command_id: str, priority: int = 5, execute_at: float | None = None) -> Dispatch:
    return Dispatch(
        DeviceCommand(command_id, "4.1.1", DEVICE, execute_at=execute_at), "tlv", HUB, priority
    )


def _line(
    wan: WanProfile | None = None, max_queue: int = MAX_QUEUE_PER_HUB, decode_uplinks: bool = True
) -> tuple[Line, FakeDevices, ScriptedHeadEnd]:
    devices = FakeDevices()
    codec = ScriptedHeadEnd()
    line = Line(
        HUB,
        devices,
        {"tlv": codec},
        wan or WanProfile(),
        random.Random(1),
        max_queue,
        decode_uplinks,
    )
    return line, devices, codec


def _only(actions: list[Action], kind: type[T]) -> list[T]:
    return [a for a in actions if isinstance(a, kind)]


def _carry_all(line: Line, actions: list[Action], now: float) -> list[Action]:
    """Play the driver's part: every Wait ends at once, in fake time; returns every action."""
    seen: list[Action] = []
    todo = list(actions)
    while todo:
        a = todo.pop(0)
        seen.append(a)
        if isinstance(a, Wait):
            todo += line.arrived(a.token, now + a.delay_s)
    return seen


def test_an_offered_command_waits_its_wan_trip_then_the_device_answers_through_the_head_end() -> (
    None
):
    line, devices, _ = _line(WanProfile(latency=LatencyKind.FIXED, median_s=2.0))
    actions = line.offer(_dispatch("c-1"), T0)
    assert actions == [Wait(HUB, 2.0, actions[0].token)]  # type: ignore[union-attr]
    assert line.state is LineState.CARRYING
    assert devices.ran == []
    out = line.arrived(actions[0].token, T0 + 2.0)  # type: ignore[union-attr]
    assert devices.ran == ["c-1"]
    assert devices.advanced_to == [T0 + 2.0]
    carried = _only(out, Carried)
    assert len(carried) == 1
    assert carried[0].command_id == "c-1"
    assert carried[0].frame_bytes > 0
    [deliver] = _only(out, Deliver)
    assert isinstance(deliver.uplink, DeviceResponse)
    assert deliver.uplink.command_id == "c-1"
    assert deliver.uplink.status is CommandStatus.SUCCESS
    assert line.state is LineState.IDLE


def test_one_command_at_a_time_then_highest_priority_first_then_first_come() -> None:
    line, devices, _ = _line()
    first = line.offer(_dispatch("busy", priority=9), T0)
    assert len(_only(first, Wait)) == 1
    for cid, priority in [("low-a", 7), ("urgent-a", 1), ("low-b", 7), ("urgent-b", 1), ("mid", 4)]:
        assert line.offer(_dispatch(cid, priority), T0) == []  # queued behind the one in flight
    assert len(line) == 5
    _carry_all(line, first, T0)
    assert devices.ran == ["busy", "urgent-a", "urgent-b", "mid", "low-a", "low-b"]
    assert line.state is LineState.IDLE
    assert len(line) == 0


def test_a_full_queue_answers_e20_and_keeps_what_it_holds() -> None:
    line, devices, _ = _line(max_queue=2)
    first = line.offer(_dispatch("c-0"), T0)
    assert line.offer(_dispatch("c-1"), T0) == []
    assert line.offer(_dispatch("c-2"), T0) == []
    assert line.offer(_dispatch("c-3", priority=0), T0) == [
        Fail("c-3", ResponseCode.E20, f"comms hub {HUB} queue full")
    ]
    _carry_all(line, first, T0)
    assert devices.ran == ["c-0", "c-1", "c-2"]


def test_a_head_end_that_cannot_encode_answers_e20_at_once_and_the_line_stays_free() -> None:
    line, devices, codec = _line()
    codec.cannot_encode.add("bad")
    [fail] = line.offer(_dispatch("bad"), T0)
    assert isinstance(fail, Fail)
    assert fail.command_id == "bad"
    assert fail.code is ResponseCode.E20
    assert "head-end tlv cannot encode" in fail.reason
    assert line.state is LineState.IDLE
    assert len(_only(_carry_all(line, line.offer(_dispatch("good"), T0), T0), Deliver)) == 1
    assert devices.ran == ["good"]


def test_a_comms_hub_off_the_wan_answers_e20_after_the_retry_timeout() -> None:
    line, devices, _ = _line(WanProfile(retry_timeout_s=10.0))
    line.set_online(False)
    [wait] = line.offer(_dispatch("c-1"), T0)
    assert isinstance(wait, Wait)
    assert wait.delay_s == 10.0
    assert line.arrived(wait.token, T0 + 10) == [
        Fail("c-1", ResponseCode.E20, f"comms hub {HUB} unreachable on the WAN")
    ]
    assert devices.ran == []
    line.set_online(True)
    assert devices.ran == []
    assert line.state is LineState.IDLE
    _carry_all(line, line.offer(_dispatch("c-2"), T0 + 20), T0 + 20)
    assert devices.ran == ["c-2"]


def test_every_attempt_lost_answers_e21_no_response() -> None:
    line, devices, _ = _line(WanProfile(loss=1.0, retries=2, retry_timeout_s=5.0))
    [wait] = line.offer(_dispatch("c-1"), T0)
    assert isinstance(wait, Wait)
    assert wait.delay_s == 15.0
    assert line.arrived(wait.token, T0 + 15) == [
        Fail("c-1", ResponseCode.E21, "no response after 3 attempts")
    ]
    assert devices.ran == []


def test_a_device_that_cannot_read_the_frame_answers_e21() -> None:
    line, devices, codec = _line()
    codec.device_cannot_read = True
    out = _carry_all(line, line.offer(_dispatch("c-1"), T0), T0)
    [fail] = _only(out, Fail)
    assert fail.code is ResponseCode.E21
    assert fail.reason.startswith("device could not read the command")
    assert devices.ran == []
    assert _only(out, Deliver) == []


def test_a_site_without_power_answers_e21_no_response() -> None:
    line, devices, _ = _line()
    devices.fault = NoAnswerError("no power at site S-1")
    out = _carry_all(line, line.offer(_dispatch("c-1"), T0), T0)
    assert _only(out, Fail) == [Fail("c-1", ResponseCode.E21, "no response: no power at site S-1")]


def test_a_faulty_device_answers_e21_and_the_next_command_still_runs() -> None:
    line, devices, _ = _line()
    devices.fault = RuntimeError("register map corrupt")
    first = line.offer(_dispatch("c-1"), T0)
    line.offer(_dispatch("c-2"), T0)
    [wait] = first
    assert isinstance(wait, Wait)
    out = line.arrived(wait.token, T0)
    assert _only(out, Fail) == [Fail("c-1", ResponseCode.E21, "device fault: register map corrupt")]
    devices.fault = None
    [next_wait] = _only(out, Wait)
    delivered = _only(_carry_all(line, [next_wait], T0), Deliver)
    assert [d.uplink.command_id for d in delivered] == ["c-2"]  # type: ignore[union-attr]


def test_a_tampered_uplink_is_reported_with_the_comms_hub_id_and_not_passed_on() -> None:
    line, _, codec = _line()
    codec.tampered = True
    out = _carry_all(line, line.offer(_dispatch("c-1"), T0), T0)
    assert _only(out, Deliver) == []
    assert _only(out, Integrity) == [
        Integrity(HUB, "tlv", "integrity check failed: tlv head-end: CRC mismatch")
    ]


def test_a_malformed_uplink_is_reported_as_a_malformed_frame() -> None:
    line, _, codec = _line()
    codec.garbled = True
    out = _carry_all(line, line.offer(_dispatch("c-1"), T0), T0)
    assert _only(out, Integrity) == [
        Integrity(HUB, "tlv", "malformed frame: tlv head-end: truncated frame")
    ]


def test_a_response_the_device_cannot_frame_answers_e21_and_an_alert_is_lost() -> None:
    line, devices, codec = _line()
    codec.cannot_frame_uplinks = True
    devices.raised = [DeviceAlert(DEVICE, "8F35", T0)]
    out = _carry_all(line, line.offer(_dispatch("c-1"), T0), T0)
    [fail] = _only(out, Fail)
    assert fail.code is ResponseCode.E21
    assert "cannot frame its response" in fail.reason
    assert _only(out, Lost) == [Lost(HUB, "tlv", "tlv head-end: non-finite float")]


def test_alerts_raised_before_and_by_a_command_follow_its_response() -> None:
    line, devices, _ = _line()
    devices.pending_alerts = [DeviceAlert(DEVICE, "8F01", T0 - 5)]
    devices.raised = [DeviceAlert(DEVICE, "8F35", T0)]
    out = _carry_all(line, line.offer(_dispatch("c-1"), T0), T0)
    uplinks = [d.uplink for d in _only(out, Deliver)]
    assert isinstance(uplinks[0], DeviceResponse)
    assert [u.alert_code for u in uplinks[1:]] == ["8F01", "8F35"]  # type: ignore[union-attr]


def test_a_future_dated_command_asks_to_be_woken_at_its_time_and_waking_uplinks_alerts() -> None:
    line, devices, _ = _line()
    out = _carry_all(line, line.offer(_dispatch("c-1", execute_at=T0 + 3600), T0), T0)
    [wake] = _only(out, WakeAt)
    assert wake.comms_hub == HUB
    assert T0 + 3600 < wake.at < T0 + 3601
    devices.pending_alerts = [DeviceAlert(DEVICE, "8F66", T0 + 3600)]
    woken = line.wake(wake.at)
    assert devices.advanced_to[-1] == wake.at
    assert [d.uplink.alert_code for d in _only(woken, Deliver)] == ["8F66"]  # type: ignore[union-attr]


def test_a_command_for_now_asks_for_no_wake_up() -> None:
    line, _, _ = _line()
    assert _only(_carry_all(line, line.offer(_dispatch("c-1"), T0), T0), WakeAt) == []


def test_an_injected_event_uplinks_the_alerts_it_raised() -> None:
    line, _, _ = _line()
    out = line.inject(lambda host, now: [DeviceAlert(DEVICE, "AD1", now)], T0)
    assert [d.uplink for d in _only(out, Deliver)] == [DeviceAlert(DEVICE, "AD1", T0)]


def test_an_arrival_out_of_turn_is_the_drivers_mistake() -> None:
    line, _, _ = _line()
    with pytest.raises(LineUsageError):
        line.arrived(1, T0)
    [wait] = line.offer(_dispatch("c-1"), T0)
    assert isinstance(wait, Wait)
    with pytest.raises(LineUsageError):
        line.arrived(wait.token + 1, T0)
    line.arrived(wait.token, T0)
    with pytest.raises(LineUsageError):
        line.arrived(wait.token, T0)  # the same trip cannot end twice


def test_a_line_that_leaves_decoding_to_its_driver_hands_back_frames_that_decode_the_same() -> None:
    here, here_devices, _ = _line()
    there, devices, codec = _line(decode_uplinks=False)
    here_devices.raised = devices.raised = [DeviceAlert(DEVICE, "8F35", T0)]
    expected = _only(_carry_all(here, here.offer(_dispatch("c-1"), T0), T0), Deliver)
    frames = _only(_carry_all(there, there.offer(_dispatch("c-1"), T0), T0), Decode)
    assert _only(frames, Deliver) == []
    assert [f.comms_hub for f in frames] == [HUB, HUB]
    assert [decode(codec, f.comms_hub, f.frame) for f in frames] == expected
    codec.tampered = True
    assert decode(codec, HUB, frames[0].frame) == Integrity(
        HUB, "tlv", "integrity check failed: tlv head-end: CRC mismatch"
    )
