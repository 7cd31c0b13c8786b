"""Shared set-up of the live benchmarks: a keyed fleet, the hub in its own process, and the
hub process's resident memory. Loopback only; every process started here is stopped by the
caller's ``finally``."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub.reference.roles import DeviceType, Role
from hub.reference.uktime import uk_date
from hub.registers.inventory import DeviceStatus
from hub.registers.records import PaymentMode
from sdk.keys import create_keys
from simfield.fleet import generate_fleet
from simfield.fleet_dir import load_fleet
from simfield.fleet_files import write_fleet

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class Meter:
    """An electricity meter a supplier user may read (and top up, when prepayment)."""

    user: str
    party: str
    device_id: str
    comms_hub: str
    prepayment: bool


def keyed_fleet(tmp: Path, sites: int, seed: int = 11) -> tuple[Path, list[Meter]]:
    """Generate, write and key a fleet; return its directory and the meters each active
    import supplier serves today."""
    fleet_dir = tmp / "fleet"
    write_fleet(generate_fleet(sites, seed, datetime.now(UTC).date()), fleet_dir)
    fleet = load_fleet(fleet_dir)
    create_keys(fleet_dir, sorted(fleet.users))
    day = uk_date(datetime.now(UTC))
    party_user = {
        u.party_id: u.user_id
        for u in fleet.users.values()
        if Role.IS in u.roles and u.status.value == "active"
    }
    meters = []
    for d in fleet.inventory.devices.values():
        if d.device_type is not DeviceType.ESME or d.status is not DeviceStatus.COMMISSIONED:
            continue
        mp = fleet.registration.meter_point(d.mpxn)
        if mp is None or not mp.served_by_hub or mp.export:
            continue
        sup = mp.supplier_on(day)
        if sup in party_user and not mp.is_future_supplier(sup, day):
            meters.append(
                Meter(
                    party_user[sup],
                    sup,
                    d.device_id,
                    fleet.inventory.sites[d.site_id].comms_hub,
                    fleet.payment_modes.get(d.device_id) is PaymentMode.PREPAYMENT,
                )
            )
    return fleet_dir, meters


def start_hub(
    fleet_dir: Path, data_dir: Path, endpoint: str, *extra: str
) -> subprocess.Popen[bytes]:
    """``python -m cli serve`` in its own process."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli",
            "serve",
            "--fleet",
            str(fleet_dir),
            "--data",
            str(data_dir),
            "--endpoint",
            endpoint,
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        cwd=ROOT,
    )


def stop_hub(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL after 30 s."""
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def rss_mb(pid: int) -> float:
    """Resident memory of a process, MB (0 when it has gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def wait_idle_rss(pid: int, seconds: float) -> list[float]:
    """RSS samples every half second for ``seconds``."""
    samples = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        samples.append(rss_mb(pid))
        time.sleep(0.5)
    return samples
