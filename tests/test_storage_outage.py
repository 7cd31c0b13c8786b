"""A full store is survived by the live hub: real CURVE sockets on loopback, real actors, a
real SQLite file made full on demand with ``PRAGMA max_page_count`` (through the front door's
thread, which owns the store). While it is full the hub acknowledges nothing, answers H8
"storage unavailable" with a retry-after, and counts nothing it did not commit; once there is
room again it resumes by itself, and every request acknowledged before or after the fault is
answered exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from actors.live import HubSettings, LiveHub
from actors.store import SqliteStore, Synchronous, open_store
from hub import wire
from hub.policies.storage_outage import UNAVAILABLE_REASON
from hub.ports.store import Store
from hub.reference.codes import ResponseCode
from hub.reference.roles import Role
from sdk.client import HubClient
from sdk.keys import hub_keypair, user_keypair
from simfield.wan import LatencyKind, WanProfile
from tests.live_support import make_fleet, supplier_meter, wait_until

pytestmark = pytest.mark.timeout(180)


def _sqlite(store: Store) -> SqliteStore:
    assert isinstance(store, SqliteStore)
    return store


@pytest.fixture
def started(tmp_path: Path) -> Iterator[tuple[LiveHub, HubClient, str]]:
    fleet_dir = tmp_path / "fleet"
    fleet = make_fleet(fleet_dir, sites=20)
    user, meter = supplier_meter(fleet)
    settings = HubSettings(
        fleet_dir=fleet_dir,
        data_dir=tmp_path / "data",
        endpoint="tcp://127.0.0.1:0",
        pools=2,
        tick_s=0.1,
        wan=WanProfile(latency=LatencyKind.FIXED, median_s=0.2),
    )
    hub = LiveHub(settings, fleet).start()
    client = HubClient(hub.endpoint, hub_keypair(fleet_dir).public, user_keypair(fleet_dir, user))
    try:
        client.connect()
        yield hub, client, meter.device_id
    finally:
        client.close()
        hub.stop()


def _is_storage_busy(answer: wire.Acknowledgement | wire.Refusal) -> bool:
    return (
        isinstance(answer, wire.Refusal)
        and answer.code is ResponseCode.H8
        and UNAVAILABLE_REASON in answer.reason
    )


def test_a_full_store_stops_acknowledgements_and_the_hub_resumes_by_itself_losing_nothing(
    started: tuple[LiveHub, HubClient, str],
) -> None:
    hub, client, meter = started
    acknowledged: list[str] = []
    for _ in range(3):
        ack = client.request(Role.IS, "4.1.1", meter)
        assert isinstance(ack, wire.Acknowledgement), ack
        acknowledged.append(ack.request_id)
    room = hub.in_store_thread(lambda s: _sqlite(s).max_pages())
    hub.in_store_thread(lambda s: _sqlite(s).max_pages(1))  # full at its present size

    refused: list[str] = []
    for _ in range(2000):  # until a commit needs a page the file may not take
        answer = client.request(Role.IS, "4.1.1", meter)
        if isinstance(answer, wire.Acknowledgement):
            acknowledged.append(answer.request_id)
        elif _is_storage_busy(answer):
            assert answer.request_id is not None
            assert answer.retry_after_s is not None
            refused.append(answer.request_id)
            break
        else:
            assert answer.code is ResponseCode.H8, answer  # busy with in-flight work: wait
            client.receive(0.2)
    assert refused, "the store never filled up"
    assert hub.front_door is not None
    assert hub.front_door.storage_unavailable_since is not None
    # while it lasts: every request is refused the same way, and nothing is counted unless durable
    for _ in range(5):
        answer = client.request(Role.IS, "4.1.1", meter)
        assert _is_storage_busy(answer), answer
        assert answer.request_id is not None
        refused.append(answer.request_id)
    assert hub.engine is not None
    assert hub.engine.counters.get("I99", 0) == len(acknowledged)
    with closing(open_store(hub.settings.data_dir, read_only=True)) as report:
        durable = {r.request_id for r in report.load(since=0.0).requests}
    assert durable >= set(acknowledged)
    assert not durable & set(refused)

    hub.in_store_thread(lambda s: _sqlite(s).max_pages(room))
    wait_until(
        lambda: hub.front_door is not None and hub.front_door.storage_unavailable_since is None,
        30,
        "the hub to resume once the store had room",
    )
    assert hub.front_door.stats["storage_recoveries"] >= 1
    # a request refused during the outage was not remembered: resubmitted, it is accepted
    again = client.request(Role.IS, "4.1.1", meter, request_id=refused[0])
    assert isinstance(again, wire.Acknowledgement), again
    acknowledged.append(again.request_id)

    answered: dict[str, int] = {}
    wanted = set(acknowledged)

    def collect(seconds: float) -> None:
        msg = client.receive(seconds)
        if isinstance(msg, wire.ServiceResponse):
            answered[msg.request_id] = answered.get(msg.request_id, 0) + 1
            client.ack([msg.delivery_id])

    wait_until(
        lambda: collect(0.2) is None and wanted <= answered.keys(),
        90,
        "a response to every acknowledged request",
    )
    while (msg := client.receive(3.0)) is not None:  # anything else that comes after
        if isinstance(msg, wire.ServiceResponse):
            answered[msg.request_id] = answered.get(msg.request_id, 0) + 1
    assert {rid: n for rid, n in answered.items() if n != 1} == {}
    assert answered.keys() == wanted
    with closing(open_store(hub.settings.data_dir, read_only=True)) as report:
        records = report.audit_records(limit=-1, oldest_first=True)
        alerts = [r for r in records if r.code == "STORAGE_UNAVAILABLE"]
    assert len(alerts) >= 1
    assert "SQLITE_FULL" in alerts[0].reason


@pytest.mark.parametrize("level", list(Synchronous))
def test_the_live_store_commits_with_the_durability_the_settings_ask_for(
    tmp_path: Path, level: Synchronous
) -> None:
    fleet_dir = tmp_path / "fleet"
    fleet = make_fleet(fleet_dir, sites=10)
    settings = HubSettings(
        fleet_dir=fleet_dir,
        data_dir=tmp_path / "data",
        endpoint="tcp://127.0.0.1:0",
        pools=1,
        synchronous=level,
    )
    with LiveHub(settings, fleet) as hub:
        assert hub.in_store_thread(lambda s: _sqlite(s).synchronous_in_force) is level
