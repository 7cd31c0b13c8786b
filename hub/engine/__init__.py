"""The hub engine: a request's lifecycle from frame to answer, and delivery of responses and
alerts through the outbox. Sans I/O: it returns effects for a driver to apply. This package
only re-exports; each module has one job (lifecycle, effects, config, delivery, pipeline,
core, outbox).
"""

from hub.engine.config import EngineConfig
from hub.engine.core import HubEngine
from hub.engine.effects import (
    AuditKind,
    AuditRecord,
    Direction,
    Dispatch,
    Effects,
    EngineFault,
    Send,
)
from hub.engine.lifecycle import (
    TRANSITIONS,
    IllegalMoveError,
    RequestEvent,
    RequestIndex,
    RequestRecord,
    RequestState,
    lifecycle_markdown,
)
from hub.engine.outbox import Delivery, DeliveryKind, Held

__all__ = [
    "TRANSITIONS",
    "AuditKind",
    "AuditRecord",
    "Delivery",
    "DeliveryKind",
    "Direction",
    "Dispatch",
    "Effects",
    "EngineConfig",
    "EngineFault",
    "Held",
    "HubEngine",
    "IllegalMoveError",
    "RequestEvent",
    "RequestIndex",
    "RequestRecord",
    "RequestState",
    "Send",
    "lifecycle_markdown",
]
