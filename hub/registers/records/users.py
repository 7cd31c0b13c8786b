"""Fleet file records of users: ``users.csv`` both ways.

Decides: whether a line of ``users.csv`` is a well-formed user (known roles and status, a user
id that appears once) and the line a user is written as.
Must never: decide what a user may do (access control does) or open a file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from hub.reference.parties import User, UserStatus
from hub.reference.roles import Role
from hub.registers.records._common import (
    csv_line,
    table,
)
from hub.registers.records.formats import (
    LIST_SEPARATOR,
    USERS_FILE,
    USERS_HEADER,
)

_ROLES = {r.value: r for r in Role}
_USER_STATUSES = {s.value: s for s in UserStatus}


def parse_users(lines: Iterable[str], file: str = USERS_FILE) -> dict[str, User]:
    """Parse ``users.csv`` into users keyed by user id."""
    users: dict[str, User] = {}
    with table(lines, file, USERS_HEADER) as (rows, _):
        for user_id, party_id, name, roles_text, status_text, key in rows:
            if user_id in users:
                raise ValueError(f"user {user_id} appears twice")
            roles = set()
            for text in roles_text.split(LIST_SEPARATOR) if roles_text else ():
                role = _ROLES.get(text)
                if role is None:
                    raise ValueError(f"unknown role {text!r}")
                roles.add(role)
            status = _USER_STATUSES.get(status_text)
            if status is None:
                raise ValueError(f"unknown user status {status_text!r}")
            users[user_id] = User(user_id, party_id, name, frozenset(roles), status, key)
    return users


def format_users(users: Iterable[User]) -> Iterator[str]:
    """Lines of ``users.csv`` (header first), roles in their declared order."""
    yield csv_line(USERS_HEADER)
    order = {r: i for i, r in enumerate(Role)}
    for u in users:
        roles = LIST_SEPARATOR.join(r.value for r in sorted(u.roles, key=order.__getitem__))
        yield csv_line((u.user_id, u.party_id, u.name, roles, u.status.value, u.public_key))
