"""dcc-hub core: pure decisions of the communications hub.

Nothing in this package opens a socket, starts a thread, reads a clock or touches a file.
The live driver (``actors``) and the simulated driver (``meters_sim``) supply I/O and time.
"""
