"""``dcc keys``, ``dcc serve``, ``dcc health``, ``dcc send``, ``dcc listen`` and ``dcc audit``.

Decides: how a person starts the live hub, talks to it as a service user and reads its audit;
how ``dcc serve`` ends: a start that fails prints one line on stderr and exits 2 (bad input) or
1 (runtime failure); Ctrl-C or SIGTERM stops the hub in order and exits 0; a part found dead
is logged and ends the process with status 70 within about a second, so a supervisor restarts
it (the store holds everything acknowledged). The health file says whether every part runs.
Must never: hold hub decisions, or keep a hub running that has lost a part.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
import types
from contextlib import closing
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console

from cli import logs, output
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
    from actors.live import LiveHub
    from hub import wire
    from sdk.client import HubClient
    from sdk.keys import KeyPair

console = Console()

JSON_DOCUMENT = typer.Option(False, "--json", help="Print the result as one JSON document.")
NO_STORE_HINT = "a hub writes its store when 'dcc serve' first runs; check --data (or DCC_DATA)"

EXIT_RUNTIME = 1
"""``dcc serve`` could not start for a reason of the machine (the port is in use, ...)."""
EXIT_BAD_INPUT = 2
"""``dcc serve`` was given options, a fleet, keys or a store it cannot run with."""
EXIT_PART_DIED = 70
"""A part of the running hub died (EX_SOFTWARE): restart it."""
WATCH_EVERY_S = 0.2
"""How often ``dcc serve`` checks that every part runs."""
HEALTH_EVERY_S = 1.0
"""How often the health file is rewritten while every part runs."""
STATUS_EVERY_S = 5.0
"""How often the status line is printed."""
DEAD_STOP_S = 2.0
"""How long the parts still alive get to stop after one died, before the process exits."""

log = logging.getLogger("dcc.serve")


class Durability(StrEnum):
    """``dcc serve --synchronous``: the store's durability level (``actors.store.Synchronous``,
    named here so that ``--help`` need not import the store)."""

    FULL = "full"
    NORMAL = "normal"


class FieldDurability(StrEnum):
    """``dcc serve --field-synchronous``: how durable each write of the simulated field's
    memory is (``actors.store.Synchronous``), or ``off``: the field remembers nothing."""

    FULL = "full"
    NORMAL = "normal"
    OFF = "off"


keys_app = typer.Typer(
    help="CURVE keys. Alone, 'dcc keys' makes pairs for demos and tests; 'register' records "
    "the public key a user generated, 'revoke' revokes one, 'list' lists them.",
)


@keys_app.callback(invoke_without_command=True)
def keys(
    ctx: typer.Context,
    fleet: Path = FLEET,
    overwrite: bool = typer.Option(False, help="Replace existing keys."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON document."),
) -> None:
    """Without a sub-command, for demos and tests: create the hub's key pair and a CURVE pair
    for every user of a fleet (and the parties' signing keys). Real users generate their own
    pairs and give the operator only the public key ('dcc keys register')."""
    if ctx.invoked_subcommand is not None:
        return
    from sdk.keys import create_keys

    users = load_users(fleet)
    created = create_keys(fleet, sorted(users), overwrite=overwrite)
    if as_json:
        output.document({"keys": str(fleet / "keys"), "users": len(users), "created": created})
        return
    console.print(f"{len(created)} key pairs created under {fleet / 'keys'} ({len(users)} users)")


@keys_app.command("register")
def keys_register(
    user: str = typer.Option(..., help="The user id (in the fleet's users.csv)."),
    public_key: str = typer.Option(..., help="The user's CURVE public key, 40 characters of Z85."),
    fleet: Path = FLEET,
    replace: bool = typer.Option(
        False, help="Revoke the user's current key and register this one."
    ),
    as_json: bool = JSON_DOCUMENT,
) -> None:
    """Register a public key a user generated; a running hub accepts it within a second."""
    from actors.security import fingerprint
    from sdk.keys import register_public_key

    known_user(fleet, user)
    try:
        path = register_public_key(fleet, user, public_key.strip(), replace=replace)
    except ValueError as err:
        raise UserError(
            f"cannot register the key: {err}", "check the key, or pass --replace"
        ) from None
    if as_json:
        output.document(
            {"user": user, "fingerprint": fingerprint(public_key.strip()), "file": str(path)}
        )
        return
    console.print(f"registered key {fingerprint(public_key.strip())} for {user} ({path})")


@keys_app.command("revoke")
def keys_revoke(
    user: str = typer.Option(..., help="The user id."),
    fleet: Path = FLEET,
    as_json: bool = JSON_DOCUMENT,
) -> None:
    """Revoke a user's key: a running hub refuses it from its next tick (new handshakes, and
    frames on connections already open)."""
    from sdk.keys import revoke_key

    try:
        moved = revoke_key(fleet, user)
    except LookupError as err:
        raise UserError(str(err), "list the registered keys with 'dcc keys list'") from None
    if as_json:
        output.document({"user": user, "revoked": [str(p) for p in moved]})
        return
    console.print(f"revoked the key of {user}; kept as {', '.join(str(p) for p in moved)}")


@keys_app.command("list")
def keys_list(fleet: Path = FLEET, as_json: bool = JSON_DOCUMENT) -> None:
    """The users with a registered key, and each key's fingerprint (never a secret)."""
    from actors.security import fingerprint
    from sdk.keys import registered_keys

    keys = registered_keys(fleet)
    if as_json:
        output.document(
            [{"user": u, "fingerprint": fingerprint(k), "public_key": k} for u, k in keys.items()]
        )
        return
    for user_id, key in keys.items():
        print(f"{user_id}\t{fingerprint(key)}\t{key}")


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
    wan_corrupt: float = typer.Option(
        0.0,
        min=0.0,
        max=1.0,
        help="Share of WAN frames (each direction) corrupted, as in a WAN integrity event: "
        "the head-ends' checks refuse them (docs/head-ends.md).",
    ),
    hold: float = typer.Option(
        2 * 86400.0, min=0.0, help="Seconds a response or alert is held for an absent user."
    ),
    retry: float = typer.Option(
        60.0,
        min=0.001,
        help="Seconds a pushed response or alert waits for its delivery_ack before it is pushed again.",
    ),
    schedule_window: float = typer.Option(
        3600.0, min=0.0, help="Schedule firings are spread over this many seconds after their time."
    ),
    synchronous: Durability = typer.Option(
        Durability.FULL,
        "--synchronous",
        case_sensitive=False,
        help="Durability of each commit: full survives a power cut (the default); normal "
        "survives the process being killed, and is faster (see benchmarks/README.md).",
    ),
    field_synchronous: FieldDurability = typer.Option(
        FieldDurability.NORMAL,
        "--field-synchronous",
        case_sensitive=False,
        help="The simulated field's memory (field.sqlite in --data): normal survives the hub "
        "being killed (the default); full a power cut too; off remembers nothing, so every "
        "start rebuilds the devices as the fleet says.",
    ),
    early_smart_per_day: float = typer.Option(
        0.0,
        "--early-smart-per-day",
        min=0.0,
        help="Early-smart meters of the fleet that start communicating via the hub a day, "
        "at seeded instants from the start, until all have (0: none do on their own).",
    ),
    answer_within: float = typer.Option(
        1.0,
        help="Requests not decided this many seconds after they arrive are answered H8 "
        "(busy, retry after) instead of late.",
    ),
    health_file: Path | None = typer.Option(
        None,
        "--health-file",
        help="Rewrite this file every second while every part runs; removed when the hub "
        "stops or a part dies (check it with 'dcc health').",
    ),
    status_every: float = typer.Option(
        STATUS_EVERY_S, min=0.1, help="Seconds between status lines."
    ),
    as_json: bool = typer.Option(
        False,
        "--json",
        help="Print the start, status and stop lines as JSON lines (keys in docs/cli.md).",
    ),
    inject_fault: str | None = typer.Option(
        None,
        "--inject-fault",
        hidden=True,
        help="Tests only: on SIGUSR1, make this part fail inside the process "
        "(front-door, timers, pool, head-end, authenticator).",
    ),
) -> None:
    """Run the hub until Ctrl-C or SIGTERM, printing a status line every few seconds.

    Exit status: 0 after a requested stop; 1 if the start failed for a runtime reason (the
    port is in use); 2 for bad options, fleet, keys or store; 70 if a part of the running hub
    died (restart it)."""
    from actors.live import HubSettings, LiveHub, Part, StartError, StartFault
    from actors.store import Synchronous
    from hub.engine import EngineConfig
    from simfield.wan import LatencyKind, WanProfile

    try:
        fault = Part(inject_fault) if inject_fault is not None else None
        if wan_latency < 0 or not 0.0 <= wan_loss <= 1.0:
            raise ValueError("--wan-latency must be 0 or more and --wan-loss from 0 to 1")
        wan = WanProfile(
            latency=LatencyKind.FIXED if wan_latency > 0 else LatencyKind.ZERO,
            median_s=wan_latency,
            loss=wan_loss,
            corrupt_share=wan_corrupt,
        )
        settings = HubSettings(
            fleet_dir=fleet,
            data_dir=data,
            endpoint=endpoint,
            pools=pools,
            wan=wan,
            engine=EngineConfig(hold_s=hold, retry_s=retry, schedule_window_s=schedule_window),
            synchronous=Synchronous(synchronous.value),
            answer_within_s=answer_within,
            remember_field=field_synchronous is not FieldDurability.OFF,
            field_synchronous=(
                Synchronous.NORMAL
                if field_synchronous is FieldDurability.OFF
                else Synchronous(field_synchronous.value)
            ),
            early_smart_per_day=early_smart_per_day,
        )
    except ValueError as err:
        _refuse(f"dcc serve: {err}", EXIT_BAD_INPUT)
    stop = threading.Event()
    faults = threading.Event()

    def on_signal(signum: int, frame: types.FrameType | None) -> None:
        if stop.is_set():  # asked twice: the operator will not wait for the ordered stop
            _exit_now("dcc serve: asked again to stop; exiting without an ordered stop", 1)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if fault is not None:
        signal.signal(signal.SIGUSR1, lambda *_: faults.set())
    try:
        hub = LiveHub(settings).start()
    except StartError as err:
        bad = err.fault is StartFault.BAD_INPUT
        _refuse(f"dcc serve: {err}", EXIT_BAD_INPUT if bad else EXIT_RUNTIME)
    health = _Health(health_file, hub.endpoint)
    if as_json:
        output.line(
            {
                "event": "listening",
                "time": output.iso(time.time()),
                "endpoint": hub.endpoint,
                "public_key": hub.public_key,
                "store": str(settings.store_path),
                "pid": os.getpid(),
            }
        )
    else:
        typer.echo(f"hub listening on {hub.endpoint}; store {settings.store_path}; Ctrl-C stops")
        typer.echo(f"hub public key (Z85): {hub.public_key}")
    next_status = time.monotonic() + status_every
    while not stop.wait(WATCH_EVERY_S):
        dead = hub.failure()
        if dead is not None:
            health.remove()
            log.error(
                "%s; the hub exits with status %d for its supervisor to restart it",
                dead,
                EXIT_PART_DIED,
                extra={"part": dead.part.value},
            )
            _stop_within(hub, DEAD_STOP_S)
            _exit_now("", EXIT_PART_DIED)
        health.beat()
        if fault is not None and faults.is_set():
            faults.clear()
            hub.inject_fault(fault)
        if time.monotonic() >= next_status:
            next_status += status_every
            _print_status(hub, as_json)
    health.remove()
    final = _status_fields(hub)
    hub.stop()
    if as_json:
        output.line({"event": "stopped", "time": output.iso(time.time()), **final})
    else:
        typer.echo("hub stopped")


def health(
    health_file: Path = typer.Option(..., "--health-file", help="The file dcc serve rewrites."),
    max_age: float = typer.Option(
        5.0, help="Unhealthy if the file was last rewritten longer ago than this, seconds."
    ),
) -> None:
    """Exit 0 if the hub that writes HEALTH_FILE runs with every part alive, else 1."""
    problem, info = _health_problem(health_file, max_age)
    if problem is not None:
        typer.echo(f"unhealthy: {problem}", err=True)
        raise typer.Exit(1)
    typer.echo(f"healthy: pid {info['pid']}, endpoint {info['endpoint']}")


def _health_problem(path: Path, max_age: float) -> tuple[str | None, dict[str, Any]]:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        age = time.time() - float(info["at"])
        pid = int(info["pid"])
    except FileNotFoundError:
        return f"no health file {path}: the hub is not running, or has stopped", {}
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"health file {path} unreadable: {err}", {}
    if age > max_age:
        return f"{path} last rewritten {age:.1f} s ago (more than {max_age} s)", info
    if not _pid_exists(pid):
        return f"process {pid} that wrote {path} is gone", info
    return None, info


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Health:
    """The health file: rewritten while every part runs, removed when not."""

    def __init__(self, path: Path | None, endpoint: str) -> None:
        self._path = path
        self._endpoint = endpoint
        self._next = 0.0
        self.beat()

    def beat(self) -> None:
        """Rewrite the file if a second has passed (atomically: write aside, then rename)."""
        if self._path is None or time.monotonic() < self._next:
            return
        self._next = time.monotonic() + HEALTH_EVERY_S
        body = {"pid": os.getpid(), "endpoint": self._endpoint, "at": time.time()}
        aside = self._path.with_name(self._path.name + ".new")
        try:
            aside.write_text(json.dumps(body), encoding="utf-8")
            os.replace(aside, self._path)
        except OSError as err:  # a full disk must not stop the hub; the file goes stale
            log.warning("cannot write the health file %s: %s", self._path, err)

    def remove(self) -> None:
        """Remove the file (the hub is stopping or has lost a part)."""
        if self._path is not None:
            self._path.unlink(missing_ok=True)


def _status_fields(hub: LiveHub) -> dict[str, int]:
    """The counts of a status line, by their JSON keys (docs/cli.md), in the order shown."""
    assert hub.engine is not None
    assert hub.front_door is not None
    c = hub.engine.counters
    return {
        "frames_in": hub.front_door.stats["frames_in"],
        "accepted": c.get("I99", 0),
        "refused": sum(v for k, v in c.items() if k[:1] in "EH"),
        "pending": hub.engine.pending,
        "held": len(hub.engine.outbox),
        "refused_handshakes": hub.handshakes_refused,
        "schedules": len(hub.engine.scheduler),
        "quarantined": len(hub.engine.quarantine),
        "security_alerts": c.get("security_alert", 0),
    }


def _print_status(hub: LiveHub, as_json: bool = False) -> None:
    fields = _status_fields(hub)
    if as_json:
        output.line({"event": "status", "time": output.iso(time.time()), **fields})
        return
    console.print(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in fields.items()))


def _refuse(line: str, status: int) -> NoReturn:
    """One line on stderr in the CLI's error convention (``error: ...``, or a JSON log line
    when log lines are JSON), then exit."""
    logs.refuse(log.name, line, status)
    raise typer.Exit(status)


def _stop_within(hub: LiveHub, seconds: float) -> None:
    """Stop the parts still alive in order, giving up after ``seconds`` (a dead part may
    leave the rest unable to stop)."""
    stopper = threading.Thread(target=hub.stop, name="dcc-stop", daemon=True)
    stopper.start()
    stopper.join(seconds)


def _exit_now(line: str, status: int) -> NoReturn:
    """End the process at once, whatever threads are left (actor threads are not daemons)."""
    if line:
        print(line, file=sys.stderr)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


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
        False, help="Sign a critical command with the user's party's key (keys/signing/)."
    ),
    fleet: Path = FLEET,
    endpoint: str = ENDPOINT,
    keys: Path | None = KEYS,
    as_json: bool = JSON_DOCUMENT,
) -> None:
    """Send one service request, print the acknowledgement and the response, acknowledge it."""
    from hub import wire

    params = _parse_params(param)
    at = parse_instant(execute_at)
    party = known_user(fleet, user).party_id
    signature = b""
    if sign and device is not None:
        from sdk.keys import signing_key

        signature = signing_key(fleet, party).sign(service, device, params)
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

    from actors.store import open_store

    try:
        with closing(open_store(data, read_only=True)) as store:
            records = store.audit_records(
                user,
                device,
                parse_instant(since),
                parse_instant(until),
                limit,
                oldest_first=oldest_first,
            )
    except FileNotFoundError as err:
        raise UserError(str(err), NO_STORE_HINT, ExitStatus.FAILURE) from None
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
