"""The front door sheds late frames, live: a real hub on a loopback port with a tiny
``answer_within_s`` bound. While its loop is stalled (``FrontDoor.call_in_loop``, the hook it
offers tests and maintenance), clients pile up a burst of requests, each connection ending
with a ``delivery_ack`` and a ``hello``; once the loop runs again it decides every control
message and at most a batch of requests, and every request left waiting past the bound is
answered H8 with ``retry_after_s``, undecided. Every request gets exactly one answer; the ack
and the hellos are decided all the same. Every wait polls with a generous timeout."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.front_door import BATCH
from actors.live import HubSettings, LiveHub
from hub import wire
from hub.reference.codes import ResponseCode
from hub.reference.roles import Role
from sdk.client import HubClient
from sdk.keys import hub_keypair, user_keypair
from simfield.fleet_dir import Fleet, load_fleet
from tests.live_support import make_fleet, supplier_meter, wait_until

pytestmark = pytest.mark.timeout(240)

SENDERS = 12
"""Connections sending the burst: together more than a batch fits in their ZeroMQ queues."""
PER_SENDER = 60
"""Requests each sends while the loop is stalled (below the ROUTER's queue per connection)."""
ROUNDS = 5
"""Bursts tried until one was shed (the first one is, unless the machine is very slow)."""
UNKNOWN_DEVICE = "FFFFFFFFFFFFFFFF"
"""The requests' device: not in the inventory, so a decided request is refused E19 at once
(no device is asked, nothing is held)."""


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("fleet")
    make_fleet(directory, sites=10)
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
        answer_within_s=1e-6,
    )
    h = LiveHub(settings, fleet).start()
    try:
        yield h
    finally:
        h.stop()


class _Stall:
    """The front door's loop held between two turns until ``release``."""

    def __init__(self, hub: LiveHub) -> None:
        assert hub.front_door is not None
        self._front_door = hub.front_door
        self._stalled = threading.Event()
        self._release = threading.Event()
        self._thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self) -> None:
        def wait() -> None:
            self._stalled.set()
            self._release.wait(120)

        self._front_door.call_in_loop(wait, timeout=150)

    def __enter__(self) -> _Stall:
        self._thread.start()
        wait_until(self._stalled.is_set, 60, "the front door's loop to stall")
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._thread.join(timeout=60)


def _answers(
    client: HubClient, wanted: set[str]
) -> dict[str, list[wire.Acknowledgement | wire.Refusal]]:
    """Every answer to these request ids (polled until each has one, then a little longer
    for any second answer that should never come); welcomes are kept aside."""
    got: dict[str, list[wire.Acknowledgement | wire.Refusal]] = {}
    while not wanted <= got.keys():
        msg = client.receive(60)
        assert msg is not None, f"{len(wanted - got.keys())} requests unanswered"
        if isinstance(msg, (wire.Acknowledgement, wire.Refusal)):
            got.setdefault(msg.request_id, []).append(msg)
    return got


def test_requests_left_waiting_past_the_answer_bound_are_answered_h8_and_control_is_decided(
    hub: LiveHub, fleet_dir: Path, fleet: Fleet
) -> None:
    assert hub.front_door is not None
    assert hub.engine is not None
    user, meter = supplier_meter(fleet)
    keys = (hub.endpoint, hub_keypair(fleet_dir).public, user_keypair(fleet_dir, user))
    clients = [HubClient(*keys) for _ in range(SENDERS)]
    try:
        for c in clients:
            c.connect(timeout_s=60)
        listener = clients[-1]
        read = listener.request(Role.IS, "4.1.1", meter.device_id, timeout_s=60)
        assert isinstance(read, wire.Acknowledgement), read
        response = listener.wait_for(wire.ServiceResponse, 60)
        assert response is not None, "no response to the read"
        front_door = hub.front_door
        shed = 0
        for round_ in range(ROUNDS):
            sent: list[set[str]] = []
            with _Stall(hub):
                for c in clients:
                    ids = {c.next_request_id(f"late{round_}") for _ in range(PER_SENDER)}
                    for rid in sorted(ids):
                        c.submit(rid, Role.IS, "4.1.1", UNKNOWN_DEVICE)
                    if c is listener and round_ == 0:
                        c.ack([response.delivery_id])  # behind the burst on its connection
                    c.hello()
                    sent.append(ids)
            for c, ids in zip(clients, sent, strict=True):
                welcome = c.wait_for(wire.Welcome, 60)
                assert welcome is not None, "a hello behind the burst was not answered"
                answers = _answers(c, ids)
                assert {rid: len(a) for rid, a in answers.items() if len(a) != 1} == {}
                for [answer] in answers.values():
                    if answer.code is ResponseCode.H8:
                        assert answer.retry_after_s is not None
                        assert answer.retry_after_s > 0
                        assert "waited" in answer.reason or "ingress" in answer.reason
                        shed += 1
                    else:  # decided: the engine saw it and refused the unknown device
                        assert answer.code is ResponseCode.E19, answer
            if shed:
                break
        assert shed > 0, f"no request was shed in {ROUNDS} bursts of {SENDERS * PER_SENDER}"
        assert SENDERS * PER_SENDER > BATCH
        assert front_door.call_in_loop(lambda: front_door.stats["overdue"]) >= 1
        # the delivery_ack behind the burst was decided: nothing is held for the user any more
        wait_until(
            lambda: front_door.call_in_loop(lambda: len(hub.engine.outbox)) == 0,  # type: ignore[union-attr]
            60,
            "the delivery to be acknowledged",
        )
    finally:
        for c in clients:
            c.close()
