"""Head-end plugins: build the registry of head-ends from the ``dcc_hub.head_ends`` entry points.

Decides: which installed packages supply head-ends (every entry point in the group), that each
one imports, constructs with no arguments and satisfies ``hub.headends.HeadEnd``, and that its
entry-point name is the name it gives itself; any failure stops start-up with an error naming
the entry point.
Must never: skip a broken plugin silently, translate frames (the head-ends do), or import a
plugin outside this group.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points

from hub.headends import HeadEnd, HeadEndRegistry, head_end_problems

HEAD_END_GROUP = "dcc_hub.head_ends"
"""The entry-point group a package declares its head-ends under."""


class HeadEndPluginError(Exception):
    """A head-end plugin could not be loaded; the message names its entry point."""

    def __init__(self, entry_point: EntryPoint, problem: str) -> None:
        super().__init__(
            f"head-end plugin {entry_point.name!r} ({entry_point.value}, "
            f"group {HEAD_END_GROUP}): {problem}"
        )
        self.entry_point = entry_point
        """The entry point that failed."""
        self.problem = problem
        """What went wrong."""


def load_head_end(entry_point: EntryPoint) -> HeadEnd:
    """Import, construct and check the head-end one entry point declares."""
    try:
        factory = entry_point.load()
    except Exception as exc:
        raise HeadEndPluginError(
            entry_point, f"failed to import: {type(exc).__name__}: {exc}"
        ) from exc
    if not callable(factory):
        raise HeadEndPluginError(entry_point, f"{factory!r} is not a class or factory")
    try:
        head_end = factory()
    except Exception as exc:
        raise HeadEndPluginError(
            entry_point, f"failed to construct with no arguments: {type(exc).__name__}: {exc}"
        ) from exc
    problems = head_end_problems(head_end)
    if problems:
        raise HeadEndPluginError(entry_point, "not a HeadEnd: " + "; ".join(problems))
    assert isinstance(head_end, HeadEnd)  # head_end_problems checked every member
    if head_end.name != entry_point.name:
        raise HeadEndPluginError(
            entry_point, f"the head-end calls itself {head_end.name!r}, not {entry_point.name!r}"
        )
    return head_end


def load_head_ends(declared: Iterable[EntryPoint] | None = None) -> HeadEndRegistry:
    """Every head-end declared under ``dcc_hub.head_ends``, by name.

    ``declared`` replaces the installed entry points (for tests and embedding). Raises
    ``HeadEndPluginError`` for the first plugin that fails, or for a name declared twice.
    """
    if declared is None:
        declared = entry_points(group=HEAD_END_GROUP)
    head_ends: dict[str, HeadEnd] = {}
    sources: dict[str, EntryPoint] = {}
    for entry_point in declared:
        if entry_point.name in sources:
            earlier = sources[entry_point.name]
            raise HeadEndPluginError(
                entry_point, f"the name is already declared by {earlier.value}"
            )
        sources[entry_point.name] = entry_point
        head_ends[entry_point.name] = load_head_end(entry_point)
    return HeadEndRegistry(head_ends)
