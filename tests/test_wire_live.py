"""What a client written from docs/protocol.md sees on the wire in the cases the protocol
spells out, against a live hub with raw ZeroMQ sockets (no SDK): a message of more than one
frame, and a suspended user's key at the CURVE handshake."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import msgpack
import pytest
import zmq
from zmq.utils.monitor import recv_monitor_message

from actors.live import HubSettings, LiveHub
from hub.reference.parties import UserStatus
from sdk.keys import KeyPair, hub_keypair, user_keypair
from simfield.fleet_dir import Fleet, load_fleet
from tests.live_support import make_fleet, supplier_meter, wait_until

pytestmark = pytest.mark.timeout(120)
POLL_MS = 20_000
"""A generous bound on waiting for an answer (polled, never slept)."""


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("fleet")
    make_fleet(directory, sites=20, seed=4)
    return directory


@pytest.fixture(scope="module")
def hub(fleet_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveHub]:
    settings = HubSettings(
        fleet_dir=fleet_dir,
        data_dir=tmp_path_factory.mktemp("data"),
        endpoint="tcp://127.0.0.1:0",
        pools=1,
    )
    running = LiveHub(settings, load_fleet(fleet_dir)).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def ctx() -> Iterator[zmq.Context[zmq.Socket[bytes]]]:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        yield context
    finally:
        context.destroy(linger=0)


def _dealer(
    ctx: zmq.Context[zmq.Socket[bytes]], hub: LiveHub, fleet_dir: Path, keys: KeyPair
) -> zmq.Socket[bytes]:
    sock = ctx.socket(zmq.DEALER)
    sock.curve_serverkey = hub_keypair(fleet_dir).public
    sock.curve_publickey = keys.public
    sock.curve_secretkey = keys.secret
    sock.linger = 0
    sock.connect(hub.endpoint)
    return sock


def _close(sock: zmq.Socket[bytes]) -> None:
    sock.close(0)


def _answer(sock: zmq.Socket[bytes]) -> dict[str, object]:
    assert sock.poll(POLL_MS), "no answer from the hub"
    answer: dict[str, object] = msgpack.unpackb(sock.recv(), raw=False)
    return answer


def _read_request(meter_id: str) -> bytes:
    body = {
        "v": 1,
        "kind": "service_request",
        "request_id": "two-frames-1",
        "role": "IS",
        "service": "4.1.1",
        "device_id": meter_id,
    }
    packed: bytes = msgpack.packb(body, use_bin_type=True)
    return packed


@pytest.mark.parametrize(
    "frames",
    [
        pytest.param(lambda body: [b"", body], id="a REQ-style empty delimiter"),
        pytest.param(lambda body: [body[:10], body[10:]], id="a body split in two"),
        pytest.param(lambda body: [body, body, body], id="three frames"),
    ],
)
def test_a_message_of_more_than_one_frame_is_refused_h1_saying_send_it_as_one_frame(
    ctx: zmq.Context[zmq.Socket[bytes]],
    hub: LiveHub,
    fleet_dir: Path,
    frames: Callable[[bytes], list[bytes]],
) -> None:
    fleet: Fleet = load_fleet(fleet_dir)
    user, meter = supplier_meter(fleet)
    sock = _dealer(ctx, hub, fleet_dir, user_keypair(fleet_dir, user))
    try:
        _two_frames_then_one(sock, frames, meter.device_id)
    finally:
        _close(sock)


def _two_frames_then_one(
    sock: zmq.Socket[bytes], frames: Callable[[bytes], list[bytes]], meter_id: str
) -> None:
    sock.send_multipart(frames(_read_request(meter_id)))
    answer = _answer(sock)
    assert answer["kind"] == "refusal"
    assert answer["code"] == "H1"
    reason = str(answer["reason"])
    assert "more than one ZeroMQ frame" in reason
    assert "send the message as one frame" in reason
    assert "must be a msgpack map" not in reason
    assert answer["request_id"] is None
    # the same request sent as one frame is accepted on the same connection
    sock.send(_read_request(meter_id))
    assert _answer(sock)["kind"] == "acknowledgement"


def test_a_suspended_users_key_fails_the_curve_handshake_with_zap_status_400(
    ctx: zmq.Context[zmq.Socket[bytes]], hub: LiveHub, fleet_dir: Path
) -> None:
    fleet = load_fleet(fleet_dir)
    suspended = next(u for u in fleet.users.values() if u.status is UserStatus.SUSPENDED)
    refused_before = hub.handshakes_refused
    sock = ctx.socket(zmq.DEALER)
    sock.curve_serverkey = hub_keypair(fleet_dir).public
    keys = user_keypair(fleet_dir, suspended.user_id)
    sock.curve_publickey = keys.public
    sock.curve_secretkey = keys.secret
    sock.linger = 0
    monitor = sock.get_monitor_socket(
        zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_SUCCEEDED
    )
    sock.connect(hub.endpoint)
    assert monitor.poll(POLL_MS), "no handshake outcome"
    event = recv_monitor_message(monitor)
    assert event["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH
    assert event["value"] == 400  # the ZAP status
    wait_until(lambda: hub.handshakes_refused > refused_before, what="the refusal counted")
    sock.disable_monitor()
    monitor.close(0)
    sock.close(0)
