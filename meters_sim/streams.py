"""Named random streams: one independent numpy generator per part of a scenario.

Decides: the random stream of every part of a simulation (a flow class in a region, an event,
the sites of a region), each derived from the scenario's seed and the part's **name** (not
its position), so that adding, removing or changing one part of a scenario leaves the draws
of every other part unchanged (common random numbers: an A/B comparison then differs only
where the change reaches).
Must never: derive a stream from an order of creation or a running counter, share one
generator between two parts, or read any entropy but the seed it is given.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable

import numpy as np


def stream_key(*name: Hashable) -> tuple[int, ...]:
    """The stable spawn key of a name: four 32-bit words of a BLAKE2b digest of each part's
    text (the same on every platform and Python run, unlike ``hash``)."""
    words: list[int] = []
    for part in name:
        digest = hashlib.blake2b(repr(part).encode(), digest_size=16).digest()
        words += [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
    return tuple(words)


class Streams:
    """The random streams of one run: ``streams.generator("arrivals", "top-ups", "north")``
    always gives the same fresh generator for the same seed and name."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        """The scenario's seed, the entropy of every stream."""

    def sequence(self, *name: Hashable) -> np.random.SeedSequence:
        """The seed sequence of a named part (its spawn key is the name's stable key)."""
        return np.random.SeedSequence(entropy=self.seed, spawn_key=stream_key(*name))

    def generator(self, *name: Hashable) -> np.random.Generator:
        """A new generator for a named part, positioned at the start of its stream: asking
        twice gives two generators drawing the same numbers."""
        return np.random.Generator(np.random.PCG64(self.sequence(*name)))
