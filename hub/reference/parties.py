"""Service users: who they are, which roles they hold, whether they may send requests.

Decides: the shape of a user record and whether its status allows requests.
Must never: decide a user's relation to a meter point (see ``hub.policies.access``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hub.reference.roles import Role


class UserStatus(StrEnum):
    """A service user's standing with the hub."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True, slots=True)
class User:
    """A service user: one organisation's account at the hub."""

    user_id: str
    """The hub's id for the user (also the ZAP user id of its CURVE key)."""
    party_id: str
    """The market participant id the registers use for this organisation (supplier id,
    distributor id, transporter id, agent id or ESCO id)."""
    name: str
    """Human-readable organisation name."""
    roles: frozenset[Role]
    """Roles the user may act in; an organisation may hold several (IS and GS is common)."""
    status: UserStatus = UserStatus.ACTIVE
    """Only active users may send requests."""
    public_key: str = ""
    """Z85-encoded CURVE public key; empty until keys are issued."""

    def __post_init__(self) -> None:
        if not self.user_id or not self.party_id:
            raise ValueError("a user needs a user_id and a party_id")
        if not self.roles:
            raise ValueError(f"user {self.user_id} holds no role")
