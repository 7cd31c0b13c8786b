"""Head-end plugins: the built-ins load through their entry points; broken plugins say which."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from hub.headends import (
    CosemHeadEnd,
    HeadEnd,
    TextHeadEnd,
    TlvHeadEnd,
    UnknownHeadEndError,
)
from hub.reference.standard import CommandStatus, DeviceResponse
from simfield.headend_plugins import HEAD_END_GROUP, HeadEndPluginError, load_head_ends


def declared(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=HEAD_END_GROUP)


def test_the_three_built_in_head_ends_load_through_their_entry_points() -> None:
    registry = load_head_ends()
    assert {"tlv", "cosem", "text"} <= set(registry)
    assert isinstance(registry["tlv"], TlvHeadEnd)
    assert isinstance(registry["cosem"], CosemHeadEnd)
    assert isinstance(registry["text"], TextHeadEnd)


def test_every_loaded_head_end_round_trips_a_response() -> None:
    response = DeviceResponse("c-1", "00-11", "4.1.1", CommandStatus.SUCCESS, {"kwh": 1.5})
    for head_end in load_head_ends().values():
        assert isinstance(head_end, HeadEnd)
        assert head_end.decode_uplink(head_end.encode_uplink(response)) == response


def test_an_unknown_head_end_type_gives_a_clear_error() -> None:
    with pytest.raises(UnknownHeadEndError, match="unknown head-end type 'acme'") as caught:
        load_head_ends().lookup("acme")
    assert {"tlv", "cosem", "text"} <= set(caught.value.known)


def test_a_plugin_that_fails_to_import_is_named() -> None:
    broken = declared("acme", "acme_head_end_not_installed:AcmeHeadEnd")
    with pytest.raises(HeadEndPluginError, match=r"'acme' .*failed to import: ModuleNotFound"):
        load_head_ends([broken])


def test_a_plugin_that_fails_to_construct_is_named() -> None:
    needs_arguments = declared("acme", "json:JSONDecodeError")
    with pytest.raises(HeadEndPluginError, match=r"'acme' .*failed to construct"):
        load_head_ends([needs_arguments])


def test_a_plugin_that_is_not_a_head_end_is_refused_with_what_it_lacks() -> None:
    with pytest.raises(HeadEndPluginError, match=r"'acme' .*missing method 'encode_command'"):
        load_head_ends([declared("acme", "builtins:object")])


def test_a_plugin_that_is_not_callable_is_refused() -> None:
    with pytest.raises(HeadEndPluginError, match="not a class or factory"):
        load_head_ends([declared("acme", "hub.headends.tlv:NAME")])


def test_a_plugin_filed_under_another_name_is_refused() -> None:
    with pytest.raises(HeadEndPluginError, match="calls itself 'tlv', not 'acme'"):
        load_head_ends([declared("acme", "hub.headends.tlv:TlvHeadEnd")])


def test_a_head_end_name_declared_twice_is_refused() -> None:
    twice = [
        declared("tlv", "hub.headends.tlv:TlvHeadEnd"),
        declared("tlv", "acme.head_end:Tlv"),
    ]
    with pytest.raises(HeadEndPluginError, match=r"already declared by hub\.headends\.tlv"):
        load_head_ends(twice)
