"""A live hub for the field-memory crash test, run as its own process: it serves a fleet, and
on the line ``hold`` from its standard input its front door stops taking turns, so the
devices can answer a command the hub will then never record; the test kills it with SIGKILL
at that moment. Usage: ``python -m tests.field_crash_hub FLEET DATA ENDPOINT WAN_SECONDS``.
Not a test module: it is started by ``tests/test_field_restart.py``."""

from __future__ import annotations

import functools
import sys
import threading
from pathlib import Path

from actors.live import HubSettings, LiveHub
from simfield.wan import LatencyKind, WanProfile


def main(argv: list[str]) -> None:
    """Serve until killed; ``hold`` on stdin stops the front door taking turns."""
    fleet, data, endpoint, wan_s = argv
    wan = WanProfile(latency=LatencyKind.FIXED, median_s=float(wan_s))
    settings = HubSettings(Path(fleet), Path(data), endpoint=endpoint, pools=2, wan=wan)
    hub = LiveHub(settings).start()
    print("ready", flush=True)
    stuck = threading.Event()  # never set: the front door waits on it until the process dies
    for line in sys.stdin:
        if line.strip() == "hold" and hub.front_door is not None:
            hold = functools.partial(hub.front_door.call_in_loop, stuck.wait, timeout=3600)
            threading.Thread(target=hold, daemon=True).start()
            print("held", flush=True)
    stuck.wait()


if __name__ == "__main__":
    main(sys.argv[1:])
