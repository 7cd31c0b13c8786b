"""CURVE keys and the ZAP authenticator that maps a client's public key to a service user.

Decides: which CURVE public keys may connect (registered keys of active users only, re-read
when the key directory changes, so a key registered or revoked takes effect on a running hub);
refused handshakes are counted and kept, bounded, for the audit.
Must never: trust a user id from a message body; the id comes from the authenticated key.
"""

from __future__ import annotations

import hashlib
import threading
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

from hub.reference.parties import User, UserStatus
from sdk.keys import keys_dir

ZAP_ID_SEP = "/"
"""Between the user id and the key fingerprint in a ZAP user id (user ids never hold it)."""
MAX_REFUSALS_HELD = 100
"""Refused handshakes kept between two front-door ticks for audit; beyond it they are counted."""


def user_public_keys(data_dir: Path) -> dict[bytes, str]:
    """Public key (Z85) -> user id, from the users' public certificate files."""
    out = {}
    for path in sorted((keys_dir(data_dir) / "users").glob("*.key")):
        public, _ = zmq.auth.load_certificate(str(path))
        out[public] = path.stem
    return out


def fingerprint(z85_key: bytes | str) -> str:
    """A short, stable name for a public key in audit records and logs (never the key)."""
    key = z85_key.encode("ascii", "replace") if isinstance(z85_key, str) else z85_key
    return hashlib.sha256(key).hexdigest()[:16]


class KeyChangeKind(StrEnum):
    """What happened to a user's registered public key."""

    REGISTERED = "key_registered"
    REVOKED = "key_revoked"


@dataclass(frozen=True, slots=True)
class KeyChange:
    """A change of the registered keys seen by a running hub."""

    user_id: str
    fingerprint: str
    """``fingerprint`` of the key concerned."""
    kind: KeyChangeKind


@dataclass(frozen=True, slots=True)
class RefusedHandshake:
    """A CURVE handshake the hub refused."""

    fingerprint: str
    """``fingerprint`` of the key offered."""
    address: str
    """The peer's address as libzmq reports it ('' when it gives none)."""


class KeyGate(Protocol):
    """What the front door asks of the authenticator: refused handshakes to audit, key
    changes to apply and audit, and whether a frame's key is still registered."""

    def drain_refused(self) -> list[RefusedHandshake]:
        """Handshakes refused since the last call."""
        ...

    def reload(self, force: bool = False) -> list[KeyChange]:
        """Keys registered or revoked since the last call."""
        ...

    def current(self, user_id: str, key_fingerprint: str) -> bool:
        """Whether that key is still registered to that user."""
        ...


def _listing(users_dir: Path) -> tuple[tuple[str, int, int], ...]:
    """What the key directory holds, cheaply: names, sizes and modification times."""
    try:
        entries = sorted(users_dir.glob("*.key"))
        return tuple((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in entries)
    except OSError:
        return ()


class UserKeyAuthenticator(ThreadAuthenticator):
    """ZAP handler: a client's key must belong to an active registered user; the ZAP user id
    it returns is that user's id, which the front door reads from every frame.

    The registered keys are the public certificate files in ``<fleet>/keys/users/``; ``reload``
    (called by the front door every tick, and cheap when nothing changed) picks up keys
    registered or revoked while the hub runs and reports each change once."""

    def __init__(
        self,
        context: zmq.Context[zmq.Socket[bytes]],
        fleet_dir: Path,
        users: dict[str, User],
        max_refusals: int = MAX_REFUSALS_HELD,
    ) -> None:
        super().__init__(context)
        self._users_dir = keys_dir(fleet_dir) / "users"
        self._fleet_dir = fleet_dir
        self._listed = _listing(self._users_dir)
        self._keys = user_public_keys(fleet_dir)
        self._current = frozenset((u, fingerprint(k)) for k, u in self._keys.items())
        self._users = users
        self._lock = threading.Lock()
        self._peer = ""
        self._admitted: tuple[bytes, str] = (b"", "")
        self.refused = 0
        """Handshakes refused (unknown, revoked or inactive keys)."""
        self.refusals_dropped = 0
        """Refused handshakes not kept for audit because too many were waiting (counted)."""
        self._refusals: deque[RefusedHandshake] = deque()
        self._max_refusals = max_refusals

    def start(self) -> None:
        """Start the ZAP thread and install the key check for every domain."""
        super().start()
        self.configure_curve_callback(domain="*", credentials_provider=self)

    async def handle_zap_message(self, msg: list[bytes]) -> None:
        """Note the peer's address (ZAP frame 4) for the key check, then authenticate."""
        self._peer = msg[3].decode("ascii", "replace")[:64] if len(msg) > 3 else ""
        await super().handle_zap_message(msg)

    def callback(self, domain: str, z85_key: bytes) -> bool:
        """Called by the ZAP thread for each CURVE handshake."""
        with self._lock:
            user_id = self._keys.get(z85_key)
        user = self._users.get(user_id) if user_id else None
        ok = user is not None and user.status is UserStatus.ACTIVE
        if ok and user_id is not None:
            # the ZAP thread asks curve_user_id next, for this key: answer from this decision,
            # so a revocation that lands in between cannot make it fail (and kill the thread)
            self._admitted = (z85_key, user_id)
        if not ok:
            with self._lock:
                self.refused += 1
                if len(self._refusals) < self._max_refusals:
                    self._refusals.append(RefusedHandshake(fingerprint(z85_key), self._peer))
                else:
                    self.refusals_dropped += 1
        return ok

    def drain_refused(self) -> list[RefusedHandshake]:
        """The handshakes refused since the last call (at most ``max_refusals`` are kept
        between calls; the rest are only counted, so a flood cannot grow memory)."""
        with self._lock:
            refusals = list(self._refusals)
            self._refusals.clear()
        return refusals

    def reload(self, force: bool = False) -> list[KeyChange]:
        """Re-read the key directory if it changed (or ``force``); return what changed."""
        listed = _listing(self._users_dir)
        if not force and listed == self._listed:
            return []
        fresh = user_public_keys(self._fleet_dir)
        with self._lock:
            old = self._keys
            self._keys = fresh
            self._listed = listed
            self._current = frozenset((u, fingerprint(k)) for k, u in fresh.items())
        changes = [
            KeyChange(user, fingerprint(key), KeyChangeKind.REVOKED)
            for key, user in sorted(old.items(), key=lambda kv: kv[1])
            if fresh.get(key) != user
        ]
        changes += [
            KeyChange(user, fingerprint(key), KeyChangeKind.REGISTERED)
            for key, user in sorted(fresh.items(), key=lambda kv: kv[1])
            if old.get(key) != user
        ]
        return changes

    def holds(self, user_id: str, z85_key: bytes) -> bool:
        """Whether ``z85_key`` is registered to ``user_id`` now."""
        with self._lock:
            return self._keys.get(z85_key) == user_id

    def current(self, user_id: str, key_fingerprint: str) -> bool:
        """Whether the key with this fingerprint is still registered to ``user_id`` (asked by
        the front door for every frame, so a revoked key's open connections stop at once)."""
        return (user_id, key_fingerprint) in self._current

    def curve_user_id(self, client_public_key: bytes) -> str:
        """The ZAP user id for a key: ``<user id>/<key fingerprint>``; the front door reads the
        user id from every frame and checks the key is still registered."""
        key = z85.encode(client_public_key)
        admitted_key, user_id = self._admitted
        if admitted_key != key:  # not the handshake just admitted: look it up (never raise)
            with self._lock:
                user_id = self._keys.get(key, "")
        return f"{user_id}{ZAP_ID_SEP}{fingerprint(key)}"


def split_zap_id(zap_id: str) -> tuple[str, str]:
    """(user id, key fingerprint) of a ZAP user id made by ``curve_user_id``."""
    user_id, _, key_fingerprint = zap_id.partition(ZAP_ID_SEP)
    return user_id, key_fingerprint
