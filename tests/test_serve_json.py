"""``dcc serve --json`` run as a real process on a loopback port: its start line (endpoint,
hub public key), its status lines and its stop line are JSON lines with the keys docs/cli.md
documents, and nothing else reaches stdout."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub import wire
from hub.reference.roles import Role
from sdk.client import HubClient
from sdk.keys import hub_keypair, user_keypair
from simfield.fleet_dir import load_fleet
from tests.live_support import free_port, make_fleet, supplier_meter

pytestmark = pytest.mark.timeout(180)

STATUS_KEYS = [
    "event",
    "time",
    "frames_in",
    "accepted",
    "refused",
    "pending",
    "held",
    "refused_handshakes",
    "schedules",
    "quarantined",
    "security_alerts",
]
"""The keys of a status line, in order (docs/cli.md)."""


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("fleet")
    make_fleet(directory, sites=10)
    return directory


class _Lines:
    """The stdout of a process, line by line, read by a thread of its own so the test can
    wait for the next line with a timeout."""

    def __init__(self, p: subprocess.Popen[bytes]) -> None:
        self._lines: queue.Queue[bytes] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(p,), daemon=True)
        self._thread.start()

    def _read(self, p: subprocess.Popen[bytes]) -> None:
        assert p.stdout is not None
        for raw in p.stdout:
            self._lines.put(raw)

    def next_json(self, timeout_s: float = 60.0) -> dict[str, Any]:
        """The next line, which must be one JSON object."""
        raw = self._lines.get(timeout=timeout_s)
        doc = json.loads(raw)
        assert isinstance(doc, dict), raw
        return doc

    def until(self, event: str, timeout_s: float = 60.0) -> dict[str, Any]:
        """The next line of this event (lines of other events before it are checked too)."""
        while True:
            doc = self.next_json(timeout_s)
            if doc["event"] == event:
                return doc

    def rest(self) -> list[dict[str, Any]]:
        """Every line left, once the process has ended."""
        self._thread.join(timeout=30)
        out = []
        while not self._lines.empty():
            out.append(json.loads(self._lines.get_nowait()))
        return out


@pytest.fixture
def serve(fleet_dir: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli",
            "serve",
            "--fleet",
            str(fleet_dir),
            "--data",
            str(tmp_path / "data"),
            "--endpoint",
            endpoint,
            "--pools",
            "1",
            "--status-every",
            "0.2",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    yield p, endpoint
    if p.poll() is None:
        p.kill()
    p.wait(timeout=30)
    for stream in (p.stdout, p.stderr):
        if stream is not None:
            stream.close()


def test_serve_json_prints_its_start_status_and_stop_lines_as_json_lines_with_stable_keys(
    serve: tuple[subprocess.Popen[bytes], str], fleet_dir: Path
) -> None:
    p, endpoint = serve
    lines = _Lines(p)
    start = lines.next_json()
    assert list(start) == ["event", "time", "endpoint", "public_key", "store", "pid"]
    assert start["event"] == "listening"
    assert (start["endpoint"], start["pid"]) == (endpoint, p.pid)
    assert start["public_key"] == hub_keypair(fleet_dir).public.decode()
    assert start["time"].endswith("Z")
    first = lines.until("status")
    assert list(first) == STATUS_KEYS
    assert all(isinstance(first[k], int) for k in STATUS_KEYS[2:])
    user, meter = supplier_meter(load_fleet(fleet_dir))
    client = HubClient(endpoint, hub_keypair(fleet_dir).public, user_keypair(fleet_dir, user))
    try:
        client.connect(timeout_s=30)
        ack = client.request(Role.IS, "4.1.1", meter.device_id, timeout_s=30)
        assert isinstance(ack, wire.Acknowledgement), ack
        status = lines.until("status")
        while status["accepted"] < 1:  # each line is a new count; the next one shows it
            status = lines.until("status")
        assert status["frames_in"] >= 2  # the hello and the request
    finally:
        client.close()
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=60) == 0
    rest = lines.rest()
    assert rest, "no stop line"
    stop = rest[-1]
    assert list(stop) == ["event", *STATUS_KEYS[1:]]
    assert stop["event"] == "stopped"
    assert stop["accepted"] >= 1
    assert all(line["event"] == "status" for line in rest[:-1])
