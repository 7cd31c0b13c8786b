"""Property: whatever frame a registered user sends, ``engine.on_frame`` never raises, and every
frame it returns decodes as a hub message (so every answer fits the wire's limits)."""

from __future__ import annotations

from datetime import timedelta

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub import wire
from hub.engine import EngineConfig, HubEngine
from hub.reference.catalogue import CATALOGUE
from hub.reference.service_params import SCHEMAS, example_params
from tests.world import COS_DAY, ESME, World, at

T0 = at(COS_DAY - timedelta(days=10)).timestamp()
USERS = ["u-supa", "u-supb", "u-ukpn", "u-agent", "u-gone"]
SERVICES = sorted(CATALOGUE)
ENGINE = HubEngine(World().access, EngineConfig())

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=True),
    st.text(max_size=3000),
    st.binary(max_size=200),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=8) | st.dictionaries(st.text(max_size=50), inner, max_size=8)
    ),
    max_leaves=40,
)
params = st.one_of(
    st.dictionaries(st.text(max_size=2500), values, max_size=40),
    st.sampled_from(sorted(SCHEMAS)).map(example_params),
    values,
)


@st.composite
def bodies(draw: st.DrawFn) -> dict[object, object]:
    """A service request body, valid or nearly so, with fields dropped, retyped or added."""
    body: dict[object, object] = {
        "v": wire.PROTOCOL_VERSION,
        "kind": "service_request",
        "request_id": draw(st.sampled_from(["r1", "r2", "x" * 64]) | st.text(max_size=200)),
        "role": draw(st.sampled_from(["IS", "GS", "ED", "RSA", "XX"])),
        "service": draw(st.sampled_from(SERVICES) | st.text(max_size=30)),
        "device_id": draw(st.sampled_from([ESME, None]) | st.text(max_size=40)),
        "params": draw(params),
        "execute_at": draw(st.none() | st.floats(T0 - 1e6, T0 + 1e8) | st.text(max_size=5)),
        "signature": draw(st.binary(max_size=64)),
    }
    for key in draw(st.lists(st.sampled_from(sorted(body, key=str)), max_size=3)):
        if draw(st.booleans()):
            body.pop(key, None)
        else:
            body[key] = draw(values)
    for _ in range(draw(st.integers(0, 2))):
        body[draw(st.text(max_size=30))] = draw(values)
    if draw(st.booleans()):
        body["kind"] = draw(
            st.sampled_from(["hello", "delivery_ack", "quarantine_decision", "set_thresholds"])
        )
    return body


def _packed(body: dict[object, object]) -> bytes:
    return bytes(msgpack.packb(body, use_bin_type=True))


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """Frames: packed bodies, truncated, with bytes flipped, deeply nested, or random bytes."""
    choice = draw(st.integers(0, 4))
    if choice == 4:
        return draw(st.binary(max_size=600))
    frame = _packed(draw(bodies()))
    if choice == 1 and frame:
        frame = frame[: draw(st.integers(0, len(frame) - 1))]
    elif choice == 2 and frame:
        data = bytearray(frame)
        for _ in range(draw(st.integers(1, 5))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        frame = bytes(data)
    elif choice == 3:
        nested: object = 1
        for _ in range(draw(st.integers(10, 200))):
            nested = [nested]
        frame = _packed({**draw(bodies()), "params": {"deep": nested}})
    return frame


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(USERS), frames(), st.floats(0, 1e5))
def test_no_frame_makes_the_engine_raise_and_every_answer_encodes(
    user: str, frame: bytes, offset: float
) -> None:
    effects = ENGINE.on_frame(user, frame, T0 + offset)
    assert effects.faults == []  # bad input is answered, not merely contained
    for send in effects.send:
        wire.decode_from_hub(send.payload)
    for record in effects.audit:
        assert len(record.reason) <= wire.MAX_REASON_CHARS
