"""Named random streams: the same name gives the same draws, whatever else exists."""

from __future__ import annotations

import numpy as np

from meters_sim.streams import Streams, stream_key


def test_the_same_seed_and_name_give_the_same_draws() -> None:
    a = Streams(7).generator("arrivals", "top-ups", "north").random(5)
    b = Streams(7).generator("arrivals", "top-ups", "north").random(5)
    assert np.array_equal(a, b)


def test_a_streams_draws_do_not_depend_on_which_other_streams_were_made_first() -> None:
    alone = Streams(7).generator("outage", "north").random(3)
    busy = Streams(7)
    for name in ("a", "b", "c"):
        busy.generator(name).random(100)
    assert np.array_equal(busy.generator("outage", "north").random(3), alone)


def test_different_names_and_seeds_give_different_streams() -> None:
    s = Streams(7)
    assert not np.array_equal(s.generator("a").random(3), s.generator("b").random(3))
    assert not np.array_equal(s.generator("a").random(3), Streams(8).generator("a").random(3))
    assert stream_key("a", "b") != stream_key("ab")
