"""Ports: the protocols the drivers implement for the hub core (the store today).

Only re-exports; each port lives in a module of its own.
"""

from hub.ports.store import OPEN_STATES, Restored, Store, StoreConflictError, StoreFailedError

__all__ = ["OPEN_STATES", "Restored", "Store", "StoreConflictError", "StoreFailedError"]
