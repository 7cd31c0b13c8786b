"""Service flows the hub carries out itself: non-device answers, schedules (5.x) and firmware
distribution (11.x), each with its handler in the one table of ``hub.flows.services``. Must
never touch a device directly; they return what the engine applies.
"""

# The handlers build the engine's effects, and the engine builds its flows from the table:
# load the engine first, so whichever of the two is imported first, neither sees the other
# half-loaded.
import hub.engine  # noqa: F401
