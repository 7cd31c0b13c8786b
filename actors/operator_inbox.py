"""The operator's inventory commands reaching a running hub: files dropped into the fleet's
``operator/inbox/`` directory (by ``dcc inventory adopt | approve-model | suspend-model``),
early-smart meters the simulated field reports starting to communicate via the hub, and the
field engineer's fitting of a new premises' devices in the simulated field (``fit``).

Decides: the command file format (one JSON object per file, ``docs/cli.md``), the order
commands are taken (file name order, which starts with the time written), what a file that
cannot be read becomes (audited as a refused inventory command, with the batch it was read
in, then moved to ``operator/rejected/`` with a ``.reason`` file beside it, and logged), and
when a file is removed: only after the batch that carried its command out is committed, so a
crash in between runs it again, and the engine (which keeps the id of every command carried
out in the inventory history) does nothing the second time; a fitting is handed to the
field's ``fit`` callback (which records it durably, once per premises) before its file goes.
Must never: change the inventory itself (the engine does), or read the inbox from any thread
but the front door's (``offer`` is the one call that is safe from other threads).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from time import time

from hub.engine.effects import AuditKind, AuditRecord, Direction
from hub.flows.inventory_operator import OperatorAction, OperatorCommand
from hub.reference.roles import DeviceType
from hub.reference.text import bounded
from hub.registers.inventory import Device, DeviceStatus, Product, Site

log = logging.getLogger(__name__)

INBOX_DIR = Path("operator") / "inbox"
"""Where command files are dropped, under the fleet directory."""
REJECTED_DIR = Path("operator") / "rejected"
"""Where unreadable command files are moved, under the fleet directory."""
MAX_PER_TURN = 100
"""Most commands taken in one housekeeping turn (the rest wait for the next)."""
MAX_FILE_BYTES = 64 * 1024
"""Largest command or fitting file read (a command is a few hundred bytes)."""


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


FIT_ACTION = "fit"
"""The ``action`` of a command file fitting a new premises' devices in the simulated field
(the field engineer's visit; the hub learns of them only through 12.2 and what follows)."""


class CommandError(ValueError):
    """A command file that cannot be carried out as written; the message says why."""


def read_json_object(path: Path) -> dict[str, object]:
    """One JSON object read from ``path``, within ``MAX_FILE_BYTES`` and without letting a
    deeply nested file raise past the caller (``CommandError`` says why it will not do)."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise CommandError(f"{size} bytes, more than {MAX_FILE_BYTES}")
    try:
        body = json.loads(path.read_bytes().decode("utf-8"))
    except RecursionError as err:
        raise CommandError("nested too deeply") from err
    except UnicodeDecodeError as err:
        raise CommandError(f"not UTF-8 ({err.reason})") from err
    if not isinstance(body, dict):
        raise CommandError("a command file holds one JSON object")
    return body


@dataclass(frozen=True, slots=True)
class Fitting:
    """A new premises' devices fitted in the simulated field by a field engineer."""

    command_id: str
    """The command file's id."""
    site: Site
    """The premises (its comms hub, lead supplier, WAN region and cell)."""
    devices: tuple[Device, ...]
    """The devices fitted there (the comms hub among them), as the field holds them."""

    def to_json(self) -> dict[str, object]:
        """The command file's body (``read_fitting`` reads it back)."""
        return {
            "command_id": self.command_id,
            "action": FIT_ACTION,
            "site": {
                "site_id": self.site.site_id,
                "comms_hub": self.site.comms_hub,
                "lead_supplier": self.site.lead_supplier,
                "region": self.site.region,
                "cell": self.site.cell,
            },
            "devices": [
                {
                    "device_id": d.device_id,
                    "device_type": d.device_type.value,
                    "manufacturer": d.manufacturer,
                    "model": d.model,
                    "firmware": d.firmware,
                    "mpxn": d.mpxn,
                }
                for d in self.devices
            ],
        }


def read_fitting(
    body: Mapping[str, object], products: Mapping[tuple[str, str], Product]
) -> Fitting:
    """A fitting from its JSON body; each device's model must be on the approved products list
    (its head-end comes from there). ``CommandError`` (or ``KeyError``, ``TypeError``,
    ``ValueError``) if it is not one."""
    site_body = body["site"]
    devices_body = body["devices"]
    if not isinstance(site_body, dict) or not isinstance(devices_body, list) or not devices_body:
        raise CommandError("a fitting needs a site object and a non-empty list of devices")
    site = Site(
        str(site_body["site_id"]),
        str(site_body["comms_hub"]),
        str(site_body["lead_supplier"]),
        str(site_body["region"]),
        str(site_body["cell"]),
    )
    devices = []
    for d in devices_body:
        if not isinstance(d, dict):
            raise CommandError("each device of a fitting is a JSON object")
        product = products.get((str(d["manufacturer"]), str(d["model"])))
        if product is None:
            raise CommandError(f"{d['manufacturer']}/{d['model']} is not an approved product")
        devices.append(
            Device(
                str(d["device_id"]),
                DeviceType(str(d["device_type"])),
                site.site_id,
                product.manufacturer,
                product.model,
                str(d.get("firmware", "1.0")),
                product.head_end,
                DeviceStatus.PENDING,
                str(d.get("mpxn", "")),
            )
        )
    if site.comms_hub not in {d.device_id for d in devices if d.device_type is DeviceType.CHF}:
        raise CommandError(
            f"the devices fitted at {site.site_id} lack its comms hub {site.comms_hub}"
        )
    return Fitting(str(body["command_id"]), site, tuple(devices))


FITTINGS_DIR = "fitted"
"""Where the fittings carried out are remembered, under the hub's data directory (one JSON
file a premises)."""


def fittings_dir(data_dir: Path) -> Path:
    """The directory of the premises fitted in the field, under a data directory."""
    return data_dir / FITTINGS_DIR


def write_fitting(directory: Path, fitting: Fitting) -> None:
    """Remember a fitting durably: written aside, synced, then renamed over
    ``<site id>.json`` (a kill leaves either the whole file or none)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{fitting.site.site_id}.json"
    tmp = directory / f".{fitting.site.site_id}.tmp"
    with tmp.open("w") as f:
        json.dump(fitting.to_json(), f, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_fittings(directory: Path, products: Mapping[tuple[str, str], Product]) -> list[Fitting]:
    """The fittings remembered in a directory, by site id (none when it does not exist). A
    file that does not read as a fitting is an error (``CommandError``): the field it stands
    for cannot be rebuilt without it."""
    out = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            out.append(read_fitting(read_json_object(path), products))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise CommandError(f"{path}: cannot be read as a fitting: {err}") from err
    return out


class OperatorInbox:
    """Commands for the engine, from the inbox directory and from the simulated field."""

    def __init__(
        self,
        fleet_dir: Path,
        candidates: Mapping[str, Device],
        candidate_sites: Mapping[str, Site],
        *,
        products: Mapping[tuple[str, str], Product] | None = None,
        fit: Callable[[Fitting], None] | None = None,
    ) -> None:
        """``candidates``: the early-smart meters the field holds that the inventory may
        adopt (by device id), with their premises (by site id). ``fit`` fits a new premises'
        devices in the field, durably (without it a fitting file is refused); ``products``
        is the approved products list the fitted models are looked up in."""
        self._dir = inbox_dir(fleet_dir)
        self._rejected = fleet_dir / REJECTED_DIR
        self._candidates = candidates
        self._sites = candidate_sites
        self._products = products or {}
        self._fit = fit
        self._offered: queue.SimpleQueue[OperatorCommand] = queue.SimpleQueue()
        self._taken: list[Path] = []
        self._taken_offers: list[OperatorCommand] = []
        self._refused: list[tuple[Path, str]] = []

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
        self._refused.clear()
        for path in sorted(self._dir.glob("*.json"))[: MAX_PER_TURN - len(commands)]:
            try:
                command = self._parse(path)
            except (OSError, ValueError, KeyError, TypeError) as err:
                log.warning("operator command %s refused: %s", path.name, err)
                self._refused.append((path, str(err)))
                continue
            if command is not None:
                commands.append(command)
            self._taken.append(path)
        return commands

    def refusals(self, now: float) -> list[AuditRecord]:
        """The audit records of the files the last ``take`` could not read (each is moved
        aside at ``commit``, once its record is durable)."""
        return [
            AuditRecord(
                now,
                Direction.IN,
                None,
                AuditKind.INVENTORY_CHANGE,
                request_id=path.name,
                code="refused",
                reason=bounded(f"operator command file {path.name} refused: {reason}"),
            )
            for path, reason in self._refused
        ]

    def commit(self) -> None:
        """The batch that carried the taken commands out is durable: remove their files, and
        move the refused ones aside."""
        for path in self._taken:
            path.unlink(missing_ok=True)
        for path, reason in self._refused:
            self._reject(path, reason)
        self._taken.clear()
        self._taken_offers.clear()
        self._refused.clear()

    def retry(self) -> None:
        """The batch was not committed: the taken files (and the refused ones, so that their
        refusal is audited) are read again next time, and the field's commands are offered
        again."""
        self._taken.clear()
        self._refused.clear()
        for command in self._taken_offers:
            self._offered.put(command)
        self._taken_offers.clear()

    def _parse(self, path: Path) -> OperatorCommand | None:
        """The engine's command a file holds (None: a fitting, handed to the field)."""
        body = read_json_object(path)
        if body.get("action") == FIT_ACTION:
            if self._fit is None:
                raise CommandError("this hub's field takes no fittings")
            self._fit(read_fitting(body, self._products))
            return None
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
        self._rejected.mkdir(parents=True, exist_ok=True)
        try:
            path.replace(self._rejected / path.name)
            (self._rejected / f"{path.name}.reason").write_text(reason + "\n")
        except OSError as err:
            log.warning("could not move %s aside: %s", path, err)
