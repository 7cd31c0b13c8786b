"""The command line's configuration file: ``dcc.toml`` in the working directory, or the file
named by ``--config`` (or ``DCC_CONFIG``).

Decides: where the file is looked for, what it may hold (at the top level the common options
``fleet``, ``data``, ``endpoint`` and ``keys``, and the options of ``dcc`` itself, such as
``log_level`` and ``log_format``; any command's own options in a table named after it,
``[send]``, ``[fleet.generate]``), and how it becomes the
defaults of the options (click's ``default_map``), so that the precedence is command line,
then environment (``DCC_*``), then file, then the built-in default.
Must never: override what the command line or the environment gave, or accept a key that no
command has (a misspelt key is refused, naming the file and the key).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import typer

from cli.errors import UserError

DEFAULT_FILE = Path("dcc.toml")
"""Looked for in the working directory when no ``--config`` is given."""

COMMON = ("fleet", "data", "endpoint", "keys")
"""Top-level keys that apply to every command with such an option."""


def config_path(argv: Sequence[str], environ: Mapping[str, str]) -> tuple[Path | None, bool]:
    """The configuration file to read and whether it was asked for by name (then it must
    exist): ``--config PATH`` (or ``--config=PATH``) among the arguments before the command,
    else ``DCC_CONFIG``, else ``dcc.toml`` when the working directory has one."""
    for i, arg in enumerate(argv):
        if not arg.startswith("-"):
            break  # the command: options after it are the command's own
        if arg == "--config" and i + 1 < len(argv):
            return Path(argv[i + 1]), True
        if arg.startswith("--config="):
            return Path(arg.split("=", 1)[1]), True
    if environ.get("DCC_CONFIG"):
        return Path(environ["DCC_CONFIG"]), True
    return (DEFAULT_FILE, False) if DEFAULT_FILE.is_file() else (None, False)


def read_config(path: Path) -> dict[str, Any]:
    """The file's tables and values, or a user error naming the file."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise UserError(
            f"configuration file {path} does not exist", "check --config (or DCC_CONFIG)"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML: {exc}", "fix the file (docs/cli.md)") from None


def _params(command: Any) -> set[str]:
    return {p.name for p in getattr(command, "params", ()) if p.name}


def _commands(command: Any) -> dict[str, Any]:
    found: dict[str, Any] = getattr(command, "commands", {})
    return found


def default_map(root: Any, config: Mapping[str, Any], label: str) -> dict[str, Any]:
    """Click's ``default_map`` for the command tree under ``root`` from a parsed file: the
    common keys go to every command having such an option, a table to the command it names.
    Keys no command has are refused."""
    common = {k: v for k, v in config.items() if k in COMMON}

    def build(command: Any, table: Mapping[str, Any], where: str) -> dict[str, Any]:
        params = _params(command)
        subs = _commands(command)
        out: dict[str, Any] = {k: v for k, v in common.items() if k in params}
        for key, value in table.items():
            if key in subs and isinstance(value, dict):
                out[key] = build(subs[key], value, f"{where}{key}.")
            elif key in params:
                out[key] = value
            elif not (where == "" and key in COMMON):
                raise UserError(
                    f"{label}: unknown key {where}{key}",
                    "the keys are the options' names with underscores (docs/cli.md)",
                )
        for name, sub in subs.items():
            if name not in out:
                built = build(sub, {}, f"{where}{name}.")
                if built:
                    out[name] = built
        return out

    return build(root, config, "")


def load_default_map(root: Any, argv: Sequence[str]) -> dict[str, Any] | None:
    """The ``default_map`` from the configuration file in force, or None when there is none."""
    path, _named = config_path(argv, os.environ)
    if path is None:
        return None
    return default_map(root, read_config(path), str(path))


CONFIG = typer.Option(
    None,
    "--config",
    help="Configuration file (default: ./dcc.toml when present; also DCC_CONFIG).",
    show_default=False,
)
"""The ``--config`` option: read before the command line is parsed (``load_default_map``);
declared so that it is accepted and documented."""
