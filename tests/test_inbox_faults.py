"""Hostile or failing inbox files: an operator command file too large or nested too deeply is
refused with its reason (never raised into the front door's thread), and a register inbox that
fails to read or tidy once does not end the register feed's thread."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from actors.operator_inbox import MAX_FILE_BYTES, OperatorInbox, inbox_dir
from actors.register_feed import RegisterFeed
from hub.registers.changes import ChangeBatch
from tests.live_support import wait_until

pytestmark = pytest.mark.timeout(60)


def _inbox_with(tmp_path: Path, name: str, data: bytes) -> OperatorInbox:
    directory = inbox_dir(tmp_path)
    directory.mkdir(parents=True)
    (directory / name).write_bytes(data)
    return OperatorInbox(tmp_path, {}, {})


def test_an_operator_command_file_nested_too_deeply_is_refused_not_raised(tmp_path: Path) -> None:
    inbox = _inbox_with(tmp_path, "deep.json", b"[" * 20_000 + b"]" * 20_000)
    assert inbox.take() == []
    [record] = inbox.refusals(0.0)
    assert "nested too deeply" in (record.reason or "")
    inbox.commit()
    assert (tmp_path / "operator" / "rejected" / "deep.json").exists()


def test_an_operator_command_file_over_the_size_bound_is_refused_unread(tmp_path: Path) -> None:
    inbox = _inbox_with(tmp_path, "big.json", b" " * (MAX_FILE_BYTES + 1))
    assert inbox.take() == []
    [record] = inbox.refusals(0.0)
    assert f"more than {MAX_FILE_BYTES}" in (record.reason or "")


def test_a_register_inbox_error_is_retried_and_the_feed_thread_goes_on(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    calls: list[str] = []
    failed = threading.Event()

    def offer(batch: ChangeBatch) -> tuple[int, int, str | None]:
        calls.append(batch.source)
        if not failed.is_set():
            failed.set()
            raise PermissionError("the inbox cannot be written just now")
        return (0, 0, None)

    feed = RegisterFeed(inbox, offer, poll_s=0.05).start()
    try:
        (inbox / "electricity-1.csv").write_text("", encoding="utf-8")
        wait_until(lambda: (inbox / "applied" / "electricity-1.csv").exists(), what="the retry")
        assert feed.is_alive()
        assert feed.error is None
        assert calls.count("electricity-1.csv") >= 2
    finally:
        feed.stop()
