"""The hand-off of device messages from actor threads to the front door.

Decides: how decoded responses, alerts and failures cross threads: through a thread-safe queue
(the objects are not copied or pickled), with a zero-byte doorbell on an inproc PUSH/PULL pair
so the front door's poller wakes up.
Must never: let a socket cross threads (each sender creates its own PUSH socket in its thread).
"""

from __future__ import annotations

import contextlib
import queue

import zmq


class Uplinks:
    """The queue and the doorbell endpoint, shared by every sender and the front door."""

    def __init__(self, context: zmq.Context[zmq.Socket[bytes]], endpoint: str) -> None:
        self.context = context
        self.endpoint = endpoint
        self.queue: queue.SimpleQueue[object] = queue.SimpleQueue()

    def sender(self) -> UplinkSender:
        """A sender for the calling thread (call it in that thread)."""
        return UplinkSender(self)

    def take(self, limit: int) -> list[object]:
        """Up to ``limit`` messages waiting, oldest first (front door only)."""
        out: list[object] = []
        for _ in range(limit):
            try:
                out.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return out


class UplinkSender:
    """One actor thread's end: queue the message, then ring."""

    def __init__(self, uplinks: Uplinks) -> None:
        self._queue = uplinks.queue
        sock = uplinks.context.socket(zmq.PUSH)
        sock.linger = 0
        sock.connect(uplinks.endpoint)
        self._sock = sock

    def post(self, message: object) -> None:
        """Hand a message to the front door."""
        self._queue.put(message)
        # if the doorbell pipe is full, rings are pending already and the queue gets drained
        with contextlib.suppress(zmq.Again):
            self._sock.send(b"", zmq.NOBLOCK)

    def close(self) -> None:
        """Close the doorbell socket (in the owning thread)."""
        self._sock.close()
