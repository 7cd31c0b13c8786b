"""The SDK's send window: a client that holds back requests locally once a bound of them are
unanswered, so its frames wait where it can see them instead of in socket buffers in front of
a busy hub. Real CURVE sockets on loopback, a real live hub."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from actors.live import HubSettings, LiveHub
from hub import wire
from hub.reference.roles import Role
from sdk.client import HubClient, SendWindowFullError
from sdk.keys import KeyPair, hub_keypair, user_keypair
from simfield.fleet_dir import Fleet, load_fleet
from tests.live_support import make_fleet, supplier_meter, wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("fleet")
    make_fleet(directory, sites=30)
    return directory


@pytest.fixture(scope="module")
def fleet(fleet_dir: Path) -> Fleet:
    return load_fleet(fleet_dir)


@pytest.fixture
def hub(fleet_dir: Path, fleet: Fleet, tmp_path: Path) -> Iterator[LiveHub]:
    settings = HubSettings(
        fleet_dir=fleet_dir,
        data_dir=tmp_path / "data",
        endpoint="tcp://127.0.0.1:0",
        pools=1,
        tick_s=0.1,
    )
    h = LiveHub(settings, fleet).start()
    try:
        yield h
    finally:
        h.stop()


def _client(hub: LiveHub, fleet_dir: Path, user: str, window: int | None) -> HubClient:
    return HubClient(
        hub.endpoint,
        hub_keypair(fleet_dir).public,
        user_keypair(fleet_dir, user),
        send_window=window,
    )


def test_a_full_send_window_refuses_locally_and_sends_nothing(
    hub: LiveHub, fleet_dir: Path, fleet: Fleet
) -> None:
    user, device = supplier_meter(fleet)
    client = _client(hub, fleet_dir, user, window=3)
    try:
        client.connect()
        for _ in range(3):
            client.submit(client.next_request_id(), Role.IS, "4.1.1", device.device_id)
        assert client.unanswered == 3
        with pytest.raises(SendWindowFullError, match="send window 3"):
            client.submit("held-back", Role.IS, "4.1.1", device.device_id)
        answers: list[str] = []

        def three_answers() -> bool:
            msg = client.receive(0.1)
            if isinstance(msg, wire.Acknowledgement | wire.Refusal):
                answers.append(msg.request_id or "")
            return len(answers) == 3

        wait_until(three_answers, what="answers to the three requests sent")
        assert "held-back" not in answers
        assert client.unanswered == 0
        client.submit("now-sent", Role.IS, "4.1.1", device.device_id)
        assert client.unanswered == 1
    finally:
        client.close()


def test_an_answer_that_never_comes_stops_counting_after_the_window_timeout(
    hub: LiveHub, fleet_dir: Path, fleet: Fleet
) -> None:
    user, device = supplier_meter(fleet)
    client = HubClient(
        hub.endpoint,
        hub_keypair(fleet_dir).public,
        user_keypair(fleet_dir, user),
        send_window=1,
        window_timeout_s=0.0,
    )
    try:
        client.connect()
        client.submit("first", Role.IS, "4.1.1", device.device_id)
        # not received yet, but older than the (zero) timeout: it no longer holds the window
        client.submit("second", Role.IS, "4.1.1", device.device_id)
        assert client.unanswered == 1
    finally:
        client.close()


def test_a_send_window_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        HubClient("tcp://127.0.0.1:1", b"x" * 32, KeyPair(*zmq.curve_keypair()), send_window=0)
