"""The operator's inventory commands reaching a running hub: files dropped into the fleet's
``operator/inbox/`` directory (by ``dcc inventory adopt | approve-model | suspend-model``),
and early-smart meters the simulated field reports starting to communicate via the hub.

Decides: the command file format (one JSON object per file, ``docs/cli.md``), the order
commands are taken (file name order, which starts with the time written), what a file that
cannot be read becomes (moved to ``operator/rejected/`` with a ``.reason`` file beside it,
and logged), and when a file is removed: only after the batch that carried its command out
is committed, so a crash in between runs it again, and the engine (which keeps the id of
every command carried out in the inventory history) does nothing the second time.
Must never: change the inventory itself (the engine does), or read the inbox from any thread
but the front door's (``offer`` is the one call that is safe from other threads).
"""

from __future__ import annotations

import json
import logging
import queue
import uuid
from collections.abc import Mapping
from pathlib import Path
from time import time

from hub.flows.inventory_operator import OperatorAction, OperatorCommand
from hub.reference.roles import DeviceType
from hub.registers.inventory import Device, Product, Site

log = logging.getLogger(__name__)

INBOX_DIR = Path("operator") / "inbox"
"""Where command files are dropped, under the fleet directory."""
REJECTED_DIR = Path("operator") / "rejected"
"""Where unreadable command files are moved, under the fleet directory."""
MAX_PER_TURN = 100
"""Most commands taken in one housekeeping turn (the rest wait for the next)."""


def inbox_dir(fleet_dir: Path) -> Path:
    """The operator inbox of a fleet directory."""
    return fleet_dir / INBOX_DIR


def write_command(fleet_dir: Path, body: Mapping[str, object]) -> Path:
    """Drop one command file into the inbox atomically (written aside, then renamed); its
    name starts with the time, so commands are taken in the order written. Returns it."""
    directory = inbox_dir(fleet_dir)
    directory.mkdir(parents=True, exist_ok=True)
    command_id = str(body.get("command_id") or f"{time():.6f}-{uuid.uuid4().hex[:12]}")
    path = directory / f"{command_id}.json"
    tmp = directory / f".{command_id}.tmp"
    tmp.write_text(json.dumps({**body, "command_id": command_id}, sort_keys=True))
    tmp.replace(path)
    return path


class CommandError(ValueError):
    """A command file that cannot be carried out as written; the message says why."""


class OperatorInbox:
    """Commands for the engine, from the inbox directory and from the simulated field."""

    def __init__(
        self,
        fleet_dir: Path,
        candidates: Mapping[str, Device],
        candidate_sites: Mapping[str, Site],
    ) -> None:
        """``candidates``: the early-smart meters the field holds that the inventory may
        adopt (by device id), with their premises (by site id)."""
        self._dir = inbox_dir(fleet_dir)
        self._rejected = fleet_dir / REJECTED_DIR
        self._candidates = candidates
        self._sites = candidate_sites
        self._offered: queue.SimpleQueue[OperatorCommand] = queue.SimpleQueue()
        self._taken: list[Path] = []
        self._taken_offers: list[OperatorCommand] = []

    def offer(self, command: OperatorCommand) -> None:
        """A command from another thread (the simulated field's early-smart contacts)."""
        self._offered.put(command)

    def adoption(self, device_id: str, command_id: str, reason: str) -> OperatorCommand:
        """The command adopting an early-smart candidate (``CommandError`` if the field
        holds no such candidate)."""
        device = self._candidates.get(device_id)
        if device is None:
            raise CommandError(f"{device_id} is not an early-smart meter the field holds")
        return OperatorCommand(
            command_id,
            OperatorAction.ADOPT,
            device=device,
            site=self._sites.get(device.site_id),
            reason=reason,
        )

    def take(self) -> list[OperatorCommand]:
        """The commands waiting, oldest first (files stay until ``commit``)."""
        commands: list[OperatorCommand] = []
        while len(commands) < MAX_PER_TURN:
            try:
                commands.append(self._offered.get_nowait())
            except queue.Empty:
                break
        self._taken_offers = list(commands)
        if not self._dir.is_dir():
            return commands
        for path in sorted(self._dir.glob("*.json"))[: MAX_PER_TURN - len(commands)]:
            try:
                commands.append(self._parse(path))
            except (OSError, ValueError, KeyError, TypeError) as err:
                self._reject(path, str(err))
                continue
            self._taken.append(path)
        return commands

    def commit(self) -> None:
        """The batch that carried the taken commands out is durable: remove their files."""
        for path in self._taken:
            path.unlink(missing_ok=True)
        self._taken.clear()
        self._taken_offers.clear()

    def retry(self) -> None:
        """The batch was not committed: the taken files are read again next time, and the
        field's commands are offered again."""
        self._taken.clear()
        for command in self._taken_offers:
            self._offered.put(command)
        self._taken_offers.clear()

    def _parse(self, path: Path) -> OperatorCommand:
        body = json.loads(path.read_text())
        if not isinstance(body, dict):
            raise CommandError("a command file holds one JSON object")
        action = OperatorAction(str(body["action"]))
        command_id = str(body["command_id"])
        reason = str(body.get("reason", ""))
        if action is OperatorAction.ADOPT:
            return self.adoption(str(body["device_id"]), command_id, reason)
        model = f"{body['manufacturer']}/{body['model']}"
        if action is OperatorAction.SUSPEND_MODEL:
            return OperatorCommand(command_id, action, model=model, reason=reason)
        product = Product(
            str(body["manufacturer"]),
            str(body["model"]),
            DeviceType(str(body["device_type"])),
            str(body["head_end"]),
            bool(body.get("early_smart", False)),
        )
        return OperatorCommand(command_id, action, product=product, model=model, reason=reason)

    def _reject(self, path: Path, reason: str) -> None:
        log.warning("operator command %s refused: %s", path.name, reason)
        self._rejected.mkdir(parents=True, exist_ok=True)
        try:
            path.replace(self._rejected / path.name)
            (self._rejected / f"{path.name}.reason").write_text(reason + "\n")
        except OSError as err:
            log.warning("could not move %s aside: %s", path, err)
