"""Service flows the hub carries out itself: non-device answers, schedules (5.x) and firmware
distribution (11.x). Must never touch a device directly; they return what the engine applies.
"""
