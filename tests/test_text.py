"""Reasons the hub builds from what users sent stay within the wire's limit, whatever was sent."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hub.reference.codes import ResponseCode
from hub.reference.text import MAX_REASON_CHARS, bounded, join_reasons, show
from hub.wire import Refusal


@given(st.text(max_size=5000))
def test_a_bounded_text_is_never_empty_and_never_over_the_limit(text: str) -> None:
    out = bounded(text)
    assert 1 <= len(out) <= MAX_REASON_CHARS
    if text and len(text) <= MAX_REASON_CHARS:
        assert out == text


@given(st.lists(st.text(max_size=3000), max_size=60))
def test_joined_problems_always_make_a_valid_refusal_reason(parts: list[str]) -> None:
    reason = join_reasons(parts)
    assert 1 <= len(reason) <= MAX_REASON_CHARS
    Refusal(request_id="r1", code=ResponseCode.E12, reason=reason)  # constructs without raising


def test_problems_that_do_not_fit_are_counted_not_cut() -> None:
    parts = [f"unknown parameter 'p{i:03d}' for 4.1.1 (accepted: none)" for i in range(100)]
    reason = join_reasons(parts)
    assert reason.startswith(parts[0] + "; " + parts[1])
    assert reason.endswith("more problems")
    shown = reason.count("unknown parameter")
    assert f"and {100 - shown} more problems" in reason


def test_a_single_problem_is_shown_whole_when_it_fits() -> None:
    assert (
        join_reasons(["missing required parameter 'utrn'"]) == "missing required parameter 'utrn'"
    )
    assert join_reasons([]) == "-"


def test_a_hostile_value_is_pictured_short_and_ascii() -> None:
    assert show("9" * 3000) == "'" + "9" * 40 + "'..."
    assert show("é" * 3) == "'\\xe9\\xe9\\xe9'"
    assert show({"a": 1, "b": 2}) == "a dict of 2 items"
    assert show(2**200) == "an integer of 201 bits"
