"""A per-message SimPy FIFO queue (one or c servers), the reference the bulk-flow model in
``meters_sim.queueing`` is cross-checked against.

Decides: when each message of a small flow starts service and departs, by playing every message
as its own SimPy process through one ``simpy.Resource`` of ``servers`` slots.
Must never: be used for fleet-scale flows (each message costs several SimPy events; use
``meters_sim.queueing``), read a wall clock, draw random numbers or touch files; it runs in
simulated time only and returns the same ``QueueTimes`` as the vectorised model.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import numpy.typing as npt
import simpy

from meters_sim.queueing import QueueTimes, validate_flow


def simpy_departures(
    arrivals: npt.ArrayLike, service_times: npt.ArrayLike, servers: int = 1
) -> QueueTimes:
    """Departures and waits of a flow through ``servers`` identical FIFO servers, in SimPy.

    Every message is a SimPy process that waits until its arrival, requests the shared
    resource (SimPy grants requests first come, first served; simultaneous arrivals in index
    order), holds it for its service time and releases it. Arrivals must be sorted. When all
    arrivals are non-negative, each process wakes at exactly its arrival time, so the results
    match :func:`meters_sim.queueing.multi_server_departures` to the last bit.
    """
    if isinstance(servers, bool) or not isinstance(servers, int) or servers < 1:
        raise ValueError(f"servers must be a positive whole number, got {servers!r}")
    a, s = validate_flow(arrivals, service_times)
    origin = min(0.0, float(a[0])) if a.size else 0.0
    env = simpy.Environment(initial_time=origin)
    resource = simpy.Resource(env, capacity=servers)
    starts = np.empty(a.size)
    departures = np.empty(a.size)

    def message(index: int, arrival: float, service: float) -> Generator[Any, Any, None]:
        yield env.timeout(arrival - origin)
        with resource.request() as granted:
            yield granted
            starts[index] = env.now
            yield env.timeout(service)
            departures[index] = env.now

    for index, (arrival, service) in enumerate(zip(a.tolist(), s.tolist(), strict=True)):
        env.process(message(index, arrival, service))
    env.run()
    return QueueTimes(departures, starts - a)
