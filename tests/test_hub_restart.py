"""Invariant 1 across a crash: the hub process is killed with SIGKILL after I99 and before the
response; after a restart the request completes and its response reaches the client exactly
once through the SDK."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub import wire
from hub.flows.firmware import BLOCK_BYTES
from hub.reference.codes import ResponseCode
from hub.reference.roles import Role
from sdk.client import HubClient
from sdk.keys import hub_keypair, user_keypair
from tests.live_support import free_port, make_fleet, supplier_meter, wait_until

pytestmark = pytest.mark.timeout(180)


def _serve(fleet: Path, data: Path, endpoint: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli",
            "serve",
            "--fleet",
            str(fleet),
            "--data",
            str(data),
            "--endpoint",
            endpoint,
            "--pools",
            "2",
            "--wan-latency",
            "3",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=30)
        if p.stderr:
            p.stderr.close()


def test_a_request_accepted_before_sigkill_is_answered_exactly_once_after_restart(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    fleet_dir = tmp_path / "fleet"
    fleet = make_fleet(fleet_dir, sites=40)
    user, meter = supplier_meter(fleet)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    processes.append(_serve(fleet_dir, tmp_path / "data", endpoint))
    client = HubClient(endpoint, hub_keypair(fleet_dir).public, user_keypair(fleet_dir, user))
    try:
        client.connect(timeout_s=60)
        ack = client.request(Role.IS, "4.1.1", meter.device_id, timeout_s=30)
        assert isinstance(ack, wire.Acknowledgement), ack
        processes[0].send_signal(signal.SIGKILL)  # the WAN takes 3 s: no response yet
        processes[0].wait(timeout=30)
        processes.append(_serve(fleet_dir, tmp_path / "data", endpoint))
        resp = client.wait_for(wire.ServiceResponse, 90, request_id=ack.request_id)
        assert resp is not None, "the accepted request was lost"
        assert resp.code is ResponseCode.I0
        client.ack([resp.delivery_id])
        # nothing else about that request may come through the SDK
        again = client.wait_for(wire.ServiceResponse, 5, request_id=ack.request_id)
        assert again is None
        # the resubmission of the same request is recognised, not executed again
        repeat = client.request(Role.IS, "4.1.1", meter.device_id, request_id=ack.request_id)
        assert isinstance(repeat, wire.Acknowledgement)
        assert client.wait_for(wire.ServiceResponse, 5, request_id=ack.request_id) is None
    finally:
        client.close()


def test_schedules_and_held_requests_survive_sigkill_and_run_once(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    fleet_dir = tmp_path / "fleet"
    fleet = make_fleet(fleet_dir, sites=40)
    user, meter = supplier_meter(fleet)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    processes.append(_serve(fleet_dir, tmp_path / "data", endpoint))
    client = HubClient(endpoint, hub_keypair(fleet_dir).public, user_keypair(fleet_dir, user))
    try:
        client.connect(timeout_s=60)
        params = {
            "service": "4.6.1",
            "device_id": meter.device_id,
            "recurrence": "weekly",
            "day_of_week": "mon",
            "start_date": "2027-01-04",
            "time_of_day": "04:30",
            "params": {"window_s": 86400},
        }
        created_ack = client.request(Role.IS, "5.1", None, params, timeout_s=30)
        assert isinstance(created_ack, wire.Acknowledgement), created_ack
        created = client.wait_for(wire.ServiceResponse, 60, request_id=created_ack.request_id)
        assert created is not None
        assert created.code is ResponseCode.I0, created
        client.ack([created.delivery_id])
        held = client.request(
            Role.IS, "4.1.1", meter.device_id, execute_at=time.time() + 8, timeout_s=30
        )
        assert isinstance(held, wire.Acknowledgement), held
        processes[0].send_signal(signal.SIGKILL)
        processes[0].wait(timeout=30)
        processes.append(_serve(fleet_dir, tmp_path / "data", endpoint))
        resp = client.wait_for(wire.ServiceResponse, 90, request_id=held.request_id)
        assert resp is not None, "the held future-dated request was lost"
        assert resp.code is ResponseCode.I0
        client.ack([resp.delivery_id])
        assert client.wait_for(wire.ServiceResponse, 5, request_id=held.request_id) is None
        read_ack = client.request(Role.IS, "5.2", None, {}, timeout_s=30)
        listed = client.wait_for(wire.ServiceResponse, 30, request_id=read_ack.request_id)
        assert listed is not None
        assert [s["schedule_id"] for s in listed.body["schedules"]] == [created.body["schedule_id"]]  # type: ignore[union-attr,index]
    finally:
        client.close()


def test_a_firmware_transfer_interrupted_by_sigkill_resumes_and_completes_once(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    fleet_dir = tmp_path / "fleet"
    fleet = make_fleet(fleet_dir, sites=40)
    user, meter = supplier_meter(fleet)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    data = tmp_path / "data"
    processes.append(_serve(fleet_dir, data, endpoint))
    client = HubClient(endpoint, hub_keypair(fleet_dir).public, user_keypair(fleet_dir, user))
    try:
        client.connect(timeout_s=60)
        ack = client.request(
            Role.IS,
            "11.1",
            meter.device_id,
            {"version": "7.0.1", "image_size": 5 * BLOCK_BYTES},
            timeout_s=30,
        )
        assert isinstance(ack, wire.Acknowledgement), ack

        def progress() -> int:
            db = sqlite3.connect(f"file:{data / 'hub.sqlite'}?mode=ro", uri=True)
            try:
                row = db.execute("SELECT MAX(next_block) FROM transfers").fetchone()
            finally:
                db.close()
            return int(row[0] or 0)

        wait_until(lambda: progress() >= 1, 60, "the first block acknowledged")
        processes[0].send_signal(signal.SIGKILL)
        processes[0].wait(timeout=30)
        assert progress() < 5
        processes.append(_serve(fleet_dir, data, endpoint))
        resp = client.wait_for(wire.ServiceResponse, 120, request_id=ack.request_id)
        assert resp is not None, "the interrupted transfer was lost"
        assert resp.code is ResponseCode.I0, resp
        assert resp.body["blocks"] == 5
        client.ack([resp.delivery_id])
        assert client.wait_for(wire.ServiceResponse, 5, request_id=ack.request_id) is None
    finally:
        client.close()
