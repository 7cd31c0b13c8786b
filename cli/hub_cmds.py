"""``dcc keys``, ``dcc serve``, ``dcc send``, ``dcc listen`` and ``dcc audit``.

Decides: how a person starts the live hub, talks to it as a service user and reads its audit.
Must never: hold hub decisions.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import threading
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from actors.live import HubSettings, LiveHub
from actors.store import open_store
from hub import wire
from hub.engine import EngineConfig
from sdk.client import HubClient
from sdk.keys import create_keys, hub_keypair, user_keypair
from simfield.devices import sign_request
from simfield.fleet_dir import load_fleet
from simfield.wan import LatencyKind, WanProfile

console = Console()

FLEET = typer.Option(Path("data/fleet"), "--fleet", help="Fleet directory (dcc fleet generate).")
DATA = typer.Option(Path("data/hub"), "--data", help="Data directory holding hub.sqlite.")
ENDPOINT = typer.Option("tcp://127.0.0.1:5570", "--endpoint", help="Hub endpoint.")


def keys(
    fleet: Path = FLEET, overwrite: bool = typer.Option(False, help="Replace existing keys.")
) -> None:
    """Create CURVE key pairs for the hub and every user of a fleet (pyzmq certificate files)."""
    users = load_fleet(fleet).users
    created = create_keys(fleet, sorted(users), overwrite=overwrite)
    console.print(f"{len(created)} key pairs created under {fleet / 'keys'} ({len(users)} users)")


def serve(
    fleet: Path = FLEET,
    data: Path = DATA,
    endpoint: str = ENDPOINT,
    pools: int = typer.Option(4, help="Comms hub pool actors."),
    wan_latency: float = typer.Option(
        0.0, help="Fixed WAN round trip to every comms hub, seconds."
    ),
    wan_loss: float = typer.Option(0.0, help="Probability that one WAN attempt is lost."),
    hold: float = typer.Option(
        2 * 86400.0, help="Seconds a response or alert is held for an absent user."
    ),
    schedule_window: float = typer.Option(
        3600.0, help="Schedule firings are spread over this many seconds after their time."
    ),
) -> None:
    """Run the hub until interrupted, printing a status line every few seconds."""
    wan = WanProfile(
        latency=LatencyKind.FIXED if wan_latency > 0 else LatencyKind.ZERO,
        median_s=wan_latency,
        loss=wan_loss,
    )
    settings = HubSettings(
        fleet_dir=fleet,
        data_dir=data,
        endpoint=endpoint,
        pools=pools,
        wan=wan,
        engine=EngineConfig(hold_s=hold, schedule_window_s=schedule_window),
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with LiveHub(settings) as hub:
        console.print(f"hub listening on {hub.endpoint}; store {settings.store_path}; Ctrl-C stops")
        while not stop.wait(5.0):
            assert hub.engine is not None
            assert hub.front_door is not None
            c = hub.engine.counters
            console.print(
                f"frames in {hub.front_door.stats['frames_in']}, accepted {c.get('I99', 0)}, "
                f"refused {sum(v for k, v in c.items() if k[:1] in 'EH')}, pending {hub.engine.pending}, "
                f"held {len(hub.engine.outbox)}, refused handshakes {hub.handshakes_refused}, "
                f"schedules {len(hub.engine.scheduler)}, quarantined {len(hub.engine.quarantine)}, "
                f"security alerts {c.get('security_alert', 0)}"
            )
    console.print("hub stopped")


def _client(fleet: Path, user: str, endpoint: str, auto_hello: bool = True) -> HubClient:
    return HubClient(
        endpoint, hub_keypair(fleet).public, user_keypair(fleet, user), auto_hello=auto_hello
    )


def _parse_params(items: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"parameter {item!r} is not key=value")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


def _show(msg: Any) -> str:
    fields = {f.name: getattr(msg, f.name) for f in dataclasses.fields(msg)}
    return f"{type(msg).__name__} " + json.dumps(fields, default=str)


def send(
    user: str = typer.Option(..., help="User id (its keys are in the fleet's keys directory)."),
    role: str = typer.Option(..., help="Role to act in (IS, ES, GS, ED, GT, RSA, OU)."),
    service: str = typer.Option(..., help="Service reference variant, e.g. 4.1.1."),
    device: str | None = typer.Option(None, help="Target device id."),
    param: list[str] = typer.Option(
        [], "--param", "-p", help="Parameter key=value (value as JSON if it parses)."
    ),
    execute_at: float | None = typer.Option(
        None, help="Execution time, seconds since the epoch (future dated)."
    ),
    wait: float = typer.Option(30.0, help="Seconds to wait for the response."),
    sign: bool = typer.Option(
        False, help="Sign a critical command with the user's key (the simulated devices' scheme)."
    ),
    fleet: Path = FLEET,
    endpoint: str = ENDPOINT,
) -> None:
    """Send one service request, print the acknowledgement and the response, acknowledge it."""
    params = _parse_params(param)
    signature = b""
    if sign and device is not None:
        party = load_fleet(fleet).users[user].party_id
        signature = sign_request(party, service, device)
    with _client(fleet, user, endpoint) as client:
        client.connect()
        answer = client.request(role, service, device, params, execute_at, signature)
        console.print(_show(answer))
        if isinstance(answer, wire.Refusal):
            raise typer.Exit(1)
        resp = client.wait_for(wire.ServiceResponse, wait, request_id=answer.request_id)
        if resp is None:
            console.print(f"no response within {wait} s; it stays held for {user} (dcc listen)")
            raise typer.Exit(2)
        console.print(_show(resp))
        client.ack([resp.delivery_id])
        client.receive(0.2)  # let the ack leave before closing


def listen(
    user: str = typer.Option(..., help="User id."),
    count: int = typer.Option(0, help="Stop after this many deliveries (0: until interrupted)."),
    timeout: float = typer.Option(0.0, help="Stop after this many idle seconds (0: never)."),
    fleet: Path = FLEET,
    endpoint: str = ENDPOINT,
) -> None:
    """Print responses and alerts for a user as they arrive, acknowledging each."""
    got = 0
    with _client(fleet, user, endpoint) as client:
        while count == 0 or got < count:
            msg = client.receive(timeout or 3600.0)
            if msg is None:
                break
            console.print(_show(msg))
            if isinstance(msg, (wire.ServiceResponse, wire.DeviceAlertNotice, wire.HubAlert)):
                client.ack([msg.delivery_id])
                got += 1
        client.receive(0.2)
    console.print(f"{got} deliveries received")


def parse_instant(text: str | None) -> float | None:
    """Epoch seconds or an ISO date-time (UTC when no zone is given), or None."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as err:
        raise typer.BadParameter(f"{text!r} is neither epoch seconds nor an ISO date-time") from err
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def audit(
    data: Path = DATA,
    user: str | None = typer.Option(None, help="Only this user."),
    device: str | None = typer.Option(None, help="Only this device."),
    since: str | None = typer.Option(None, help="From this time (ISO or epoch seconds)."),
    until: str | None = typer.Option(None, help="Before this time (ISO or epoch seconds)."),
    limit: int = typer.Option(50, help="At most this many records."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """Query the audit trail by user, device and time."""
    start, end = parse_instant(since), parse_instant(until)
    try:
        with closing(open_store(data, read_only=True)) as store:
            records = store.audit_records(user, device, start, end, limit)
    except FileNotFoundError as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(1) from None
    if as_json:
        for r in records:
            typer.echo(json.dumps({k: getattr(r, k) for k in r.__dataclass_fields__}, default=str))
        return
    table = Table(title=f"audit: {len(records)} records")
    for col in (
        "time (UTC)",
        "dir",
        "user",
        "kind",
        "request",
        "service",
        "device",
        "code",
        "reason",
    ):
        table.add_column(col, overflow="fold")
    for r in records:
        table.add_row(
            time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.at)),
            r.direction.value,
            r.user_id or "-",
            r.kind,
            r.request_id or "-",
            r.service or "-",
            r.device_id or "-",
            r.code or "-",
            r.reason,
        )
    console.print(table)
