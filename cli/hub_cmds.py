"""``dcc keys``, ``dcc serve``, ``dcc send``, ``dcc listen`` and ``dcc audit``.

Decides: how a person starts the live hub, talks to it as a service user and reads its audit.
Must never: hold hub decisions.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from cli import output
from cli.errors import ExitStatus, UserError
from cli.inputs import (
    DATA,
    ENDPOINT,
    FLEET,
    KEYS,
    SINCE,
    UNTIL,
    check_instant,
    known_user,
    load_users,
    parse_instant,
)
from hub.reference.roles import Role

if TYPE_CHECKING:  # the drivers are imported by the commands that use them (a fast --help)
    from hub import wire
    from sdk.client import HubClient
    from sdk.keys import KeyPair

console = Console()

JSON_DOCUMENT = typer.Option(False, "--json", help="Print the result as one JSON document.")
_EVERY_RECORD = 2**62  # a limit the store never reaches
NO_STORE_HINT = "a hub writes its store when 'dcc serve' first runs; check --data (or DCC_DATA)"


def keys(
    fleet: Path = FLEET,
    overwrite: bool = typer.Option(False, help="Replace existing keys."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON document."),
) -> None:
    """Create CURVE key pairs for the hub and every user of a fleet (pyzmq certificate files)."""
    from sdk.keys import create_keys

    users = load_users(fleet)
    created = create_keys(fleet, sorted(users), overwrite=overwrite)
    if as_json:
        output.document({"keys": str(fleet / "keys"), "users": len(users), "created": created})
        return
    console.print(f"{len(created)} key pairs created under {fleet / 'keys'} ({len(users)} users)")


def serve(
    fleet: Path = FLEET,
    data: Path = DATA,
    endpoint: str = ENDPOINT,
    pools: int = typer.Option(4, min=1, help="Comms hub pool actors."),
    wan_latency: float = typer.Option(
        0.0, min=0.0, help="Fixed WAN round trip to every comms hub, seconds."
    ),
    wan_loss: float = typer.Option(
        0.0, min=0.0, max=1.0, help="Probability that one WAN attempt is lost."
    ),
    hold: float = typer.Option(
        2 * 86400.0, min=0.0, help="Seconds a response or alert is held for an absent user."
    ),
    schedule_window: float = typer.Option(
        3600.0, min=0.0, help="Schedule firings are spread over this many seconds after their time."
    ),
) -> None:
    """Run the hub until interrupted, printing a status line every few seconds."""
    from actors.live import HubSettings, LiveHub
    from hub.engine.core import EngineConfig
    from simfield.wan import LatencyKind, WanProfile

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


def _client_keys(fleet: Path, keys: Path | None, user: str) -> tuple[bytes, KeyPair]:
    """The hub's public key and the user's key pair, from ``--keys`` or ``<fleet>/keys``."""
    import zmq.auth

    from sdk.keys import load_keypair

    kdir = keys if keys is not None else fleet / "keys"
    hub_public = kdir / "hub.key"
    if not hub_public.exists():
        raise UserError(
            f"no hub key {hub_public}",
            "run 'dcc keys' for the fleet, or point --keys (DCC_KEYS) at the hub's key directory",
        )
    public, _ = zmq.auth.load_certificate(str(hub_public))
    mine = kdir / "users" / f"{user}.key_secret"
    if not mine.exists():
        raise UserError(
            f"no key file {mine} for user {user!r}",
            "run 'dcc keys' for the fleet (it creates a key pair for every user in users.csv)",
        )
    return public, load_keypair(mine)


def _client(
    fleet: Path, keys: Path | None, user: str, endpoint: str, auto_hello: bool = True
) -> HubClient:
    from sdk.client import HubClient

    known_user(fleet, user)
    public, pair = _client_keys(fleet, keys, user)
    return HubClient(endpoint, public, pair, auto_hello=auto_hello)


def _connect(client: HubClient, endpoint: str, timeout: float) -> wire.Welcome:
    try:
        return client.connect(timeout)
    except TimeoutError:
        raise UserError(
            f"no hub answered at {endpoint} within {timeout:g} s",
            "is 'dcc serve' running there with this fleet's keys? (--endpoint, --connect-timeout)",
            ExitStatus.FAILURE,
        ) from None


def _parse_params(items: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{item!r} is not key=value", param_hint="--param")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


def _show(msg: Any) -> str:
    """A wire message for people: its name and its fields, times in ISO 8601 UTC."""
    fields = output.humane(output.message_fields(msg))
    del fields["type"]
    return f"{type(msg).__name__} " + json.dumps(fields, ensure_ascii=False)


def send(
    user: str = typer.Option(..., help="User id (its keys are in the fleet's keys directory)."),
    role: Role = typer.Option(..., help="Role to act in."),
    service: str = typer.Option(..., help="Service reference variant, e.g. 4.1.1."),
    device: str | None = typer.Option(None, help="Target device id."),
    param: list[str] = typer.Option(
        [], "--param", "-p", help="Parameter key=value (value as JSON if it parses)."
    ),
    execute_at: str | None = typer.Option(
        None,
        callback=check_instant,
        help="Execution time (future dated): ISO 8601 (UTC unless zoned) or epoch seconds.",
    ),
    wait: float = typer.Option(30.0, min=0.0, help="Seconds to wait for the response."),
    connect_timeout: float = typer.Option(
        5.0, min=0.1, help="Seconds to wait for the hub's welcome before giving up."
    ),
    sign: bool = typer.Option(
        False, help="Sign a critical command with the user's key (the simulated devices' scheme)."
    ),
    fleet: Path = FLEET,
    endpoint: str = ENDPOINT,
    keys: Path | None = KEYS,
    as_json: bool = JSON_DOCUMENT,
) -> None:
    """Send one service request, print the acknowledgement and the response, acknowledge it."""
    from hub import wire
    from simfield.devices import sign_request

    params = _parse_params(param)
    at = parse_instant(execute_at)
    party = known_user(fleet, user).party_id
    signature = sign_request(party, service, device) if sign and device is not None else b""
    with _client(fleet, keys, user, endpoint) as client:
        rid = client.next_request_id()
        # the wire protocol's own checks, before waiting for a hub that would refuse it
        wire.ServiceRequest(
            request_id=rid,
            role=role,
            service=service,
            device_id=device,
            params=params,
            execute_at=at,
            signature=signature,
        )
        _connect(client, endpoint, connect_timeout)
        answer = client.request(role, service, device, params, at, signature, request_id=rid)
        if not as_json:
            print(_show(answer))
        resp = None
        if isinstance(answer, wire.Acknowledgement):
            resp = client.wait_for(wire.ServiceResponse, wait, request_id=answer.request_id)
        if as_json:
            output.document(
                {
                    "answer": output.message_fields(answer),
                    "response": None if resp is None else output.message_fields(resp),
                }
            )
        if isinstance(answer, wire.Refusal):
            raise typer.Exit(ExitStatus.FAILURE)
        if resp is None:
            raise UserError(
                f"no response within {wait:g} s; it stays held for {user}",
                "collect it later with 'dcc listen', or wait longer with --wait",
                ExitStatus.FAILURE,
            )
        if not as_json:
            print(_show(resp))
        client.ack([resp.delivery_id])
        client.receive(0.2)  # let the ack leave before closing


def listen(
    user: str = typer.Option(..., help="User id."),
    count: int = typer.Option(
        0, min=0, help="Stop after this many deliveries (0: until interrupted)."
    ),
    timeout: float = typer.Option(
        0.0, min=0.0, help="Stop after this many idle seconds (0: never)."
    ),
    connect_timeout: float = typer.Option(
        5.0, min=0.1, help="Seconds to wait for the hub's welcome before giving up."
    ),
    fleet: Path = FLEET,
    endpoint: str = ENDPOINT,
    keys: Path | None = KEYS,
    as_json: bool = typer.Option(
        False, "--json", help="One JSON object per line for every message (JSON lines)."
    ),
) -> None:
    """Print responses and alerts for a user as they arrive, acknowledging each."""
    from hub import wire

    got = 0
    with _client(fleet, keys, user, endpoint) as client:
        welcome = _connect(client, endpoint, connect_timeout)
        if as_json:
            output.line(output.message_fields(welcome))
        else:
            print(_show(welcome))
        while count == 0 or got < count:
            msg = client.receive(timeout or 3600.0)
            if msg is None:
                break
            if as_json:
                output.line(output.message_fields(msg))
            else:
                print(_show(msg))
            if isinstance(msg, (wire.ServiceResponse, wire.DeviceAlertNotice, wire.HubAlert)):
                client.ack([msg.delivery_id])
                got += 1
        client.receive(0.2)
    summary = f"{got} deliveries received"
    if as_json:
        sys.stderr.write(summary + "\n")
    else:
        console.print(summary)


def audit(
    data: Path = DATA,
    user: str | None = typer.Option(None, help="Only this user."),
    device: str | None = typer.Option(None, help="Only this device."),
    since: str | None = SINCE,
    until: str | None = UNTIL,
    limit: int = typer.Option(50, min=1, help="At most this many records."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line (JSON lines)."),
    oldest_first: bool = typer.Option(
        False, "--oldest-first", help="The oldest records first (default: the newest first)."
    ),
) -> None:
    """Query the audit trail by user, device and time, newest first."""
    from rich.table import Table

    from actors.store import audit_query

    path = data / "hub.sqlite"
    try:
        records = list(
            audit_query(
                path,
                user,
                device,
                parse_instant(since),
                parse_instant(until),
                limit if oldest_first else _EVERY_RECORD,
            )
        )
    except FileNotFoundError as err:
        raise UserError(str(err), NO_STORE_HINT, ExitStatus.FAILURE) from None
    if not oldest_first:  # the store answers oldest first: keep the newest ``limit``
        records = records[: -limit - 1 : -1]
    if as_json:
        for r in records:
            output.line(output.record(r, times=("at",)))
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
            output.iso(r.at) or "-",
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
