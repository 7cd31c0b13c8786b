"""What the command line accepts: the options commands share and the checks of typed values.

Decides: the shared ``--fleet``, ``--data``, ``--endpoint`` and ``--keys`` options, what an
endpoint looks like (``tcp://host:port``), how a time is written (ISO 8601 or epoch seconds),
and how a fleet's users are read on their own (``users.csv`` only, not the whole fleet).
Must never: import the drivers or anything heavy; every command imports this module, so
``dcc --help`` pays for whatever it imports.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cli.errors import UserError

if TYPE_CHECKING:
    from hub.reference.parties import User

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5570"
"""Where ``dcc serve`` listens and the clients connect unless told otherwise."""

_ENDPOINT = re.compile(r"^tcp://(?P<host>\*|\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(?P<port>\d+)$")


def check_endpoint(value: str) -> str:
    """An endpoint as ``tcp://host:port`` (``*`` as host to listen on every interface; port 0
    for a free port); anything else is refused with the form to write."""
    match = _ENDPOINT.match(value)
    if match is None or not 0 <= int(match["port"]) <= 65535:
        example = DEFAULT_ENDPOINT
        if match is None and re.fullmatch(r"[A-Za-z0-9_.-]+:\d+", value):
            example = f"tcp://{value}"
        raise typer.BadParameter(
            f"{value!r} is not an endpoint of the form tcp://host:port (for example {example})"
        )
    return value


FLEET = typer.Option(
    Path("data/fleet"),
    "--fleet",
    envvar="DCC_FLEET",
    help="Fleet directory (dcc fleet generate).",
)
DATA = typer.Option(
    Path("data/hub"), "--data", envvar="DCC_DATA", help="Data directory holding hub.sqlite."
)
ENDPOINT = typer.Option(
    DEFAULT_ENDPOINT,
    "--endpoint",
    envvar="DCC_ENDPOINT",
    help="Hub endpoint, tcp://host:port.",
    callback=check_endpoint,
)
KEYS = typer.Option(
    None,
    "--keys",
    envvar="DCC_KEYS",
    help="Key directory holding hub.key and users/<id>.key_secret (default: <fleet>/keys).",
    show_default=False,
)


def parse_instant(text: str | None) -> float | None:
    """Epoch seconds or an ISO 8601 date or date-time (UTC when no zone is given), or None;
    anything else is refused."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither epoch seconds nor an ISO 8601 time "
            "(for example 2025-03-03T09:30:00Z or 2025-03-03)"
        ) from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def check_instant(text: str | None) -> str | None:
    """An option callback: the time as typed, once ``parse_instant`` accepts it."""
    parse_instant(text)
    return text


SINCE = typer.Option(
    None, callback=check_instant, help="From this time (ISO 8601 or epoch seconds)."
)
UNTIL = typer.Option(
    None, callback=check_instant, help="Before this time (ISO 8601 or epoch seconds)."
)


def iso(at: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC to the millisecond (``2025-03-03T09:30:00.000Z``)."""
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def load_users(fleet: Path) -> dict[str, User]:
    """The users of a fleet directory, read from its ``users.csv`` alone."""
    from hub.registers.records import USERS_FILE, parse_users

    if not fleet.is_dir():
        raise UserError(
            f"fleet directory {fleet} does not exist",
            "generate one with 'dcc fleet generate' or name it with --fleet (or DCC_FLEET)",
        )
    path = fleet / USERS_FILE
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return parse_users(fh, str(path))
    except FileNotFoundError:
        raise UserError(
            f"fleet file {path} is missing",
            "a fleet directory holds the files described in docs/fleet-files.md",
        ) from None


def known_user(fleet: Path, user: str) -> User:
    """A user of the fleet, or a user error saying it is not one."""
    users = load_users(fleet)
    found = users.get(user)
    if found is None:
        raise UserError(
            f"no user {user!r} in {fleet / 'users.csv'} ({len(users)} users there)",
            "a user must be listed in the fleet's users.csv (then 'dcc keys' creates its keys)",
        )
    return found
