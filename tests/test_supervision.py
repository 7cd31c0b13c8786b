"""A dead part means a dead process, and so does a failed start: ``dcc serve`` run as a real
process on a loopback port. A start that cannot go ahead prints one line and exits at once
(2: bad input, 1: runtime); SIGTERM stops the hub in order and exits 0; a part that dies inside
the process (``--inject-fault``, test only) ends it with status 70, and what it had accepted is
answered after a restart; ``dcc health`` follows all of it."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pykka
import pytest
from typer.testing import CliRunner

from actors.timers import TimerService
from cli.app import app
from hub import wire
from hub.reference.codes import ResponseCode
from hub.reference.roles import Role
from sdk.client import HubClient
from sdk.keys import hub_keypair, user_keypair
from simfield.fleet import generate_fleet
from simfield.fleet_dir import load_fleet
from simfield.fleet_files import write_fleet
from tests.live_support import free_port, make_fleet, supplier_meter, today, wait_until

pytestmark = pytest.mark.timeout(180)
runner = CliRunner()


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("fleet")
    make_fleet(directory, sites=20)
    return directory


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=30)
        for stream in (p.stdout, p.stderr):
            if stream is not None:
                stream.close()


def _serve(
    processes: list[subprocess.Popen[bytes]], fleet: Path, data: Path, *options: str
) -> subprocess.Popen[bytes]:
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli",
            "serve",
            "--fleet",
            str(fleet),
            "--data",
            str(data),
            *options,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    processes.append(p)
    return p


def _finish(p: subprocess.Popen[bytes]) -> tuple[int, str]:
    """Wait (generously) for the process to end by itself; its status and stderr."""
    _, err = p.communicate(timeout=60)
    return p.returncode, err.decode()


def _healthy(path: Path) -> bool:
    return runner.invoke(app, ["health", "--health-file", str(path)]).exit_code == 0


def _endpoint() -> str:
    return f"tcp://127.0.0.1:{free_port()}"


# ---- starts that cannot go ahead -----------------------------------------------------------


def test_a_hub_started_on_a_port_in_use_says_so_in_one_line_and_exits_1(
    fleet_dir: Path, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        p = _serve(processes, fleet_dir, tmp_path / "data", "--endpoint", f"tcp://127.0.0.1:{port}")
        status, err = _finish(p)
    assert status == 1
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "already in use" in lines[0]
    assert "--endpoint" in lines[0]


def test_a_hub_without_keys_says_so_in_one_line_and_exits_2(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    bare = tmp_path / "fleet"
    write_fleet(generate_fleet(10, 3, today()), bare)  # no 'dcc keys' run
    p = _serve(processes, bare, tmp_path / "data", "--endpoint", _endpoint())
    status, err = _finish(p)
    assert status == 2
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "dcc keys" in lines[0]


def test_a_hub_whose_store_cannot_be_opened_says_so_in_one_line_and_exits_2(
    fleet_dir: Path, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "hub.sqlite").write_bytes(b"this is not a database, it only has the name of one" * 100)
    p = _serve(processes, fleet_dir, data, "--endpoint", _endpoint())
    status, err = _finish(p)
    assert status == 2
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert str(data / "hub.sqlite") in lines[0]


@pytest.mark.parametrize(
    "options",
    [
        ["--pools", "0"],
        ["--pools", "100000"],
        ["--endpoint", "tcp://127.0.0.1"],
        ["--endpoint", "127.0.0.1:5570"],
        ["--endpoint", "tcp://127.0.0.1:70000"],
        ["--wan-loss", "1.5"],
        ["--retry", "0"],
        ["--hold", "0"],
    ],
    ids=" ".join,
)
def test_out_of_range_options_are_refused_with_status_2_before_anything_starts(
    fleet_dir: Path, tmp_path: Path, processes: list[subprocess.Popen[bytes]], options: list[str]
) -> None:
    p = _serve(processes, fleet_dir, tmp_path / "data", *options)
    status, err = _finish(p)
    assert status == 2
    lines = err.splitlines()
    assert 1 <= len(lines) <= 2, err  # what is wrong, and perhaps a hint
    assert lines[0].startswith("error: "), err
    assert not (tmp_path / "data").exists(), "the store was created before the options were checked"


# ---- stops asked for, and parts that die -----------------------------------------------------


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_sigterm_or_ctrl_c_stops_a_busy_hub_in_order_and_exits_0_without_a_traceback(
    fleet_dir: Path, tmp_path: Path, processes: list[subprocess.Popen[bytes]], stop: int
) -> None:
    health = tmp_path / "health"
    endpoint = _endpoint()
    p = _serve(
        processes,
        fleet_dir,
        tmp_path / "data",
        "--endpoint",
        endpoint,
        "--pools",
        "2",
        "--wan-latency",
        "0.5",
        "--health-file",
        str(health),
    )
    wait_until(lambda: _healthy(health), 60, "the hub to report itself healthy")
    user, meter = supplier_meter(load_fleet(fleet_dir))
    client = HubClient(endpoint, hub_keypair(fleet_dir).public, user_keypair(fleet_dir, user))
    try:
        client.connect(timeout_s=30)
        acks = [client.request(Role.IS, "4.1.1", meter.device_id, timeout_s=30) for _ in range(5)]
        assert all(isinstance(a, wire.Acknowledgement) for a in acks), acks
        p.send_signal(stop)  # WAN timers are pending for the commands in flight
        out, err = (b.decode() for b in p.communicate(timeout=60))
        status = p.returncode
    finally:
        client.close()
    assert status == 0, err
    assert f"hub listening on {endpoint}" in out
    assert f"hub public key (Z85): {hub_keypair(fleet_dir).public.decode()}" in out
    assert "hub stopped" in out
    assert "Traceback" not in err, err
    assert "ERROR" not in err, err
    assert not _healthy(health)


@pytest.mark.parametrize("part", ["front-door", "timers", "pool", "head-end", "authenticator"])
def test_a_part_that_dies_inside_the_hub_ends_the_process_with_status_70(
    fleet_dir: Path, tmp_path: Path, processes: list[subprocess.Popen[bytes]], part: str
) -> None:
    health = tmp_path / "health"
    p = _serve(
        processes,
        fleet_dir,
        tmp_path / "data",
        "--endpoint",
        _endpoint(),
        "--pools",
        "2",
        "--health-file",
        str(health),
        "--inject-fault",
        part,
    )
    wait_until(lambda: _healthy(health), 60, "the hub to report itself healthy")
    p.send_signal(signal.SIGUSR1)
    status, err = _finish(p)
    assert status == 70, err
    assert "Traceback" in err  # why it died, with where
    assert f"{part} fault injected for a test" in err
    assert "exits with status 70" in err
    assert not _healthy(health)


def test_what_a_hub_accepted_before_a_part_died_is_answered_after_the_restart(
    fleet_dir: Path, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    endpoint = _endpoint()
    data = tmp_path / "data"
    health = tmp_path / "health"
    options = ["--endpoint", endpoint, "--pools", "2", "--wan-latency", "3"]
    p = _serve(processes, fleet_dir, data, *options, "--inject-fault", "pool")
    user, meter = supplier_meter(load_fleet(fleet_dir))
    client = HubClient(endpoint, hub_keypair(fleet_dir).public, user_keypair(fleet_dir, user))
    try:
        client.connect(timeout_s=60)
        ack = client.request(Role.IS, "4.1.1", meter.device_id, timeout_s=30)
        assert isinstance(ack, wire.Acknowledgement), ack
        p.send_signal(signal.SIGUSR1)  # the WAN takes 3 s: no response yet
        status, _ = _finish(p)
        assert status == 70
        _serve(processes, fleet_dir, data, *options, "--health-file", str(health))
        resp = client.wait_for(wire.ServiceResponse, 90, request_id=ack.request_id)
        assert resp is not None, "the accepted request was lost"
        assert resp.code is ResponseCode.I0
        client.ack([resp.delivery_id])
        assert _healthy(health)
    finally:
        client.close()


def test_health_is_false_without_a_health_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["health", "--health-file", str(tmp_path / "nothing")])
    assert result.exit_code == 1


# ---- the timer thread ------------------------------------------------------------------------


class _Quiet(pykka.ThreadingActor):
    pass


def test_a_timer_that_fires_into_a_stopped_actor_is_harmless() -> None:
    timers = TimerService()
    ref = _Quiet.start()
    ref.stop()
    fired = threading.Event()
    try:
        timers.call_later(0.0, lambda: ref.tell("late"))
        timers.call_later(0.0, fired.set)
        assert fired.wait(30)
        assert timers.is_alive()
        assert timers.error is None
    finally:
        timers.stop()


def test_a_timer_callback_that_raises_ends_the_timer_thread_and_is_kept() -> None:
    timers = TimerService()

    def broken() -> None:
        raise ValueError("a bug in a callback")

    try:
        timers.call_later(0.0, broken)
        wait_until(lambda: not timers.is_alive(), 30, "the timer thread to end")
        assert isinstance(timers.error, ValueError)
    finally:
        timers.stop()
