"""Scenario files on disk: read one into a ``Scenario``, or list a directory's.

Decides: nothing about scenarios (``meters_sim.scenario`` parses and validates them); only
that a scenario file is UTF-8 TOML named ``*.toml``, and that a file that cannot be read is
reported as a ``ScenarioError`` like any other problem with it.
Must never: write files, or parse anything itself.
"""

from __future__ import annotations

from pathlib import Path

from meters_sim.scenario import Scenario, ScenarioError, load_scenario


def read_scenario(path: str | Path) -> Scenario:
    """Read and validate the scenario file at ``path`` (its path names it in errors)."""
    label = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(label, "", f"not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise ScenarioError(label, "", f"cannot be read: {exc.strerror or exc}") from None
    return load_scenario(text, label)


def scenario_paths(directory: str | Path) -> list[Path]:
    """The ``*.toml`` files of a directory, sorted by name."""
    return sorted(Path(directory).glob("*.toml"))
